"""File-level Python API mirroring the CLI: :func:`protect`, :func:`protect_videos` and :func:`evaluate`.

    >>> import faceshield
    >>> from faceshield.models.weights import package_data
    >>> photo = package_data("astronaut.png")                             # the built-in sample
    >>> results = faceshield.protect([photo], "protected/", overwrite=True, evaluate_with=[])  # doctest: +SKIP
    >>> results[0].ok, results[0].output.name                             # doctest: +SKIP
    (True, 'astronaut.png')
    >>> faceshield.evaluate(photo, "protected/astronaut.png", extractors=["mtcnn"]).linf  # doctest: +SKIP
    15
"""
from __future__ import annotations

import logging
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import faceshield
from faceshield.core.errors import FaceshieldError, OutputExistsError, VideoReadError, WeightsNotFoundError
from faceshield.io import LoadedImage, list_images, read_image, write_image_atomic, write_json_atomic
from faceshield.io.video import VIDEO_MUXERS, probe_video, same_file
from faceshield.models import LandmarkExtractor, create_extractor, create_target, list_extractors
from faceshield.pipeline.evaluate import Evaluation, evaluate_pair
from faceshield.pipeline.config import generator_name
from faceshield.pipeline.image import ProtectConfig, protect_array
from faceshield.pipeline.video import VideoSummary, protect_video

log = logging.getLogger(__name__)


@dataclass
class ItemResult:
    """Outcome of one input file. ``ok`` False means ``error`` says why and nothing was written."""

    input: Path
    ok: bool
    output: Path | None = None
    report_path: Path | None = None
    error: str | None = None
    report: dict = field(default_factory=dict)
    evaluation: Evaluation | None = None


def available_extractors(names: Sequence[str] | None = None) -> tuple[list[LandmarkExtractor], list[str]]:
    """Build extractors by name (default: every registered one); those whose weights or packages
    are missing are skipped with a note instead of failing the run."""
    built, notes = [], []
    for n in names if names is not None else list_extractors():
        try:
            built.append(create_extractor(n))
        except (WeightsNotFoundError, ImportError) as e:
            notes.append(f"{n} skipped: {e}")
    return built, notes


def build_targets(config: ProtectConfig) -> dict:
    """The targets ``config`` attacks, by name (none for a generator, which needs no target at protection time)."""
    return {} if generator_name(config.method) else {n: create_target(n) for n in config.targets}


def _failed(src: Path, dst: Path, e: Exception) -> ItemResult:
    """The result of an item that failed with ``e``: one line naming the file."""
    msg = str(e)
    return ItemResult(input=src, ok=False, error=msg if str(src) in msg or str(dst) in msg else f"{src}: {msg}")


def output_paths(inputs: Sequence[Path], output: Path) -> dict[Path, Path]:
    """Where each input's protected PNG goes. ``output`` is a ``.png`` file for a single input,
    otherwise a directory receiving ``<stem>.png`` (``<stem>_<ext>.png`` when two inputs share a stem)."""
    if output.suffix.lower() == ".png" and len(inputs) == 1 and not output.is_dir():
        return {inputs[0]: output}
    stems: dict[str, int] = {}
    for p in inputs:
        stems[p.stem] = stems.get(p.stem, 0) + 1
    return {p: output / (f"{p.stem}.png" if stems[p.stem] == 1 else f"{p.stem}_{p.suffix.lstrip('.')}.png") for p in inputs}


def _versions() -> dict:
    return {"faceshield": faceshield.__version__, "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version()}


def protect(
    inputs: Sequence[str | Path],
    output: str | Path,
    config: ProtectConfig | None = None,
    *,
    overwrite: bool = False,
    evaluate_with: Sequence[str] | None = None,
    max_pixels: int = 50_000_000,
    on_item: Callable[[ItemResult], None] | None = None,
) -> list[ItemResult]:
    """Protect image files (or directories of them) and write lossless PNGs + a JSON report each.

    Args:
        inputs: image files and/or directories.
        output: a directory, or a ``.png`` path when there is a single input.
        config: :class:`ProtectConfig`.
        overwrite: replace existing outputs (otherwise an existing output is an error for that item).
        evaluate_with: extractors whose NME goes in the report (default: all available, white- and
            black-box); ``[]`` skips the evaluation.
        on_item: called after each item (e.g. to advance a progress bar).

    Returns:
        One :class:`ItemResult` per input; failed items have ``ok=False`` and wrote nothing.
    """
    config = config or ProtectConfig()
    images, problems = list_images(inputs)
    results = [ItemResult(input=p, ok=False, error=msg) for p, msg in problems]
    for r in results:
        if on_item:
            on_item(r)
    output = Path(output)
    targets = build_targets(config)
    evaluators, eval_notes = available_extractors(evaluate_with)
    for src, dst in output_paths(images, output).items():
        res = _protect_one(src, dst, config, targets, evaluators, eval_notes, overwrite, max_pixels)
        results.append(res)
        if on_item:
            on_item(res)
    return results


def _protect_one(src, dst, config, targets, evaluators, eval_notes, overwrite, max_pixels) -> ItemResult:
    report_path = dst.with_suffix(".json")
    try:
        if src.resolve() == dst.resolve():
            raise OutputExistsError(f"{dst}: output would replace the original; choose another output")
        for p in (dst, report_path):
            if p.exists() and not overwrite:
                raise OutputExistsError(f"{p} exists; pass --overwrite to replace it")
        img: LoadedImage = read_image(src, max_pixels=max_pixels)
        t0 = time.perf_counter()
        result = protect_array(img.rgb, config, extractors=targets)
        seconds = time.perf_counter() - t0
        written = write_image_atomic(dst, result.rgb, img.alpha, overwrite=overwrite)
        try:
            saved = read_image(written, max_pixels=max(max_pixels, img.rgb.shape[0] * img.rgb.shape[1])).rgb  # measure what is on disk
            evaluation = evaluate_pair(img.rgb, saved, evaluators, result.face_boxes) if evaluators else None
            report = {
                "input": str(src),
                "output": str(written),
                "size": [int(img.rgb.shape[1]), int(img.rgb.shape[0])],
                "input_notes": img.notes,
                "settings": (result.config or config).to_dict(),
                "faces": {n: [f.to_dict() for f in fs] for n, fs in result.faces.items()},
                "loss": {"start": result.loss_start, "end": result.loss_end},
                "seconds": round(seconds, 3),
                "evaluation": evaluation.to_dict() if evaluation else None,
                "evaluation_notes": list(eval_notes),
                "metric_notes": "NME is a fraction of the normaliser distance, ground truth = the extractor's own points on the clean image; SSIM_I over the whole image, mask_ssim over the protected face boxes; linf in 8-bit levels of the saved file",
                "versions": _versions(),
            }
            write_json_atomic(report_path, report, overwrite=overwrite)
        except BaseException:
            written.unlink(missing_ok=True)  # no half-finished item
            raise
        return ItemResult(input=src, ok=True, output=written, report_path=report_path, report=report, evaluation=evaluation)
    except (FaceshieldError, OSError, ValueError) as e:
        return _failed(src, dst, e)


def video_output_paths(inputs: Sequence[Path], output: Path) -> dict[Path, Path]:
    """Where each input video goes: ``output`` itself when it has a video extension and there is a
    single input, otherwise ``output/<stem><ext>`` (``<stem>_<ext><ext>`` when two inputs share a stem)."""
    if output.suffix.lower() in VIDEO_MUXERS and len(inputs) == 1 and not output.is_dir():
        return {inputs[0]: output}
    stems: dict[str, int] = {}
    for p in inputs:
        stems[p.stem] = stems.get(p.stem, 0) + 1
    return {p: output / (p.name if stems[p.stem] == 1 else f"{p.stem}_{p.suffix.lstrip('.')}{p.suffix}") for p in inputs}


def protect_videos(
    inputs: Sequence[str | Path],
    output: str | Path,
    config: ProtectConfig | None = None,
    *,
    codec: str | None = None,
    crf: int | None = None,
    keyframe_interval: int = 1,
    overwrite: bool = False,
    max_pixels: int = 50_000_000,
    on_item: Callable[[ItemResult], None] | None = None,
    on_frame: Callable[[Path, int, int], None] | None = None,
) -> list[ItemResult]:
    """Protect video files: each gets a re-encoded protected video (audio and frame rate kept) and a
    JSON report (``<output stem>.json``: settings, faces per frame, SSIM_I, timing).

    Args:
        inputs: video files.
        output: a video path (single input; its extension picks the container) or a directory.
        config, codec, crf, keyframe_interval: see :func:`~faceshield.pipeline.video.protect_video`.
        overwrite: replace existing outputs.
        max_pixels: refuse videos whose frames have more pixels.
        on_item: called after each video; ``on_frame(input, done, total)`` after each frame.

    Returns:
        One :class:`ItemResult` per input (``report`` holds the summary); failed items wrote nothing.
    """
    config = config or ProtectConfig()
    paths = [Path(p) for p in inputs]
    targets = {n: create_target(n) for n in config.targets}
    results = []
    for src, dst in video_output_paths(paths, Path(output)).items():
        res = _protect_video_one(src, dst, config, targets, codec, crf, keyframe_interval, overwrite, max_pixels, on_frame)
        results.append(res)
        if on_item:
            on_item(res)
    return results


def _protect_video_one(src, dst, config, targets, codec, crf, keyframe_interval, overwrite, max_pixels, on_frame, protect_fn=protect_video) -> ItemResult:
    report_path = dst.with_suffix(".json")
    try:
        if same_file(src, dst):
            raise OutputExistsError(f"{dst}: output would replace the original; choose another output")
        for p in (dst, report_path):
            if p.exists() and not overwrite:
                raise OutputExistsError(f"{p} exists; pass --overwrite to replace it")
        info = probe_video(src)
        if info.width * info.height > max_pixels:
            raise VideoReadError(f"cannot read {src}: frames too large (expected at most {max_pixels:,} pixels, got {info.width}x{info.height}); --max-pixels raises the limit")
        summary: VideoSummary = protect_fn(
            src, dst, config, codec=codec, crf=crf, keyframe_interval=keyframe_interval, overwrite=overwrite, extractors=targets,
            progress=None if on_frame is None else (lambda done, total: on_frame(src, done, total)),
        )
        try:
            report = summary.to_dict() | {
                "source": info.to_dict(),
                "metric_notes": "ssim_i: mean SSIM_I over frames, protected vs decoded original, before the video codec; linf in 8-bit levels before the codec; "
                "after_codec: the written file decoded again against the original, SSIM_I and NME of each target extractor's full pipeline (fraction of its normaliser)",
                "versions": _versions(),
            }
            write_json_atomic(report_path, report, overwrite=overwrite)
        except BaseException:
            dst.unlink(missing_ok=True)  # no half-finished item
            raise
        return ItemResult(input=src, ok=True, output=dst, report_path=report_path, report=report)
    except (FaceshieldError, OSError, ValueError) as e:
        return _failed(src, dst, e)


def evaluate(
    clean: str | Path,
    protected: str | Path,
    *,
    extractors: Sequence[str] | None = None,
    detector: str = "mtcnn",
    max_pixels: int = 50_000_000,
    swap: bool = False,
    aligner: str = "fan",
    swap_model: str | Path | None = None,
    sheet: str | Path | None = None,
    manipulate: Sequence[str] = (),
    judges: Sequence[str] = (),
    purify: str | None = None,
) -> Evaluation:
    """Compare a protected file with its clean original (see :class:`Evaluation`).

    Faces are those ``detector`` finds on the clean image; every extractor in ``extractors``
    (default: all available) runs its own full pipeline on both files. With ``swap``, both files
    also go through the face swap aligned by ``aligner`` (model: ``swap_model`` or the shipped one)
    and ``Evaluation.swap`` holds SSIM_W and the plausibility filter's verdict; ``sheet`` writes the
    before/after PNG there: the swap sheet, then the first face at 100 % and 200 % with the
    difference amplified (:func:`~faceshield.pipeline.swap.face_crops_sheet`). Each manipulator of
    ``manipulate`` edits both files for every domain (``Evaluation.disruption``, with ``judges``'
    verdicts on the edits); with ``sheet`` and no swap, the sheet shows the edits. ``purify`` first
    runs a forger's clean-up on the protected file and measures the purified copy: ``"magdr"``
    (:class:`~faceshield.defenses.magdr.Reconstructor`, watching the first manipulator of
    ``manipulate``, else StarGAN) or any purifier spec of
    :func:`~faceshield.defenses.purifiers.create_purifier`; ``Evaluation.purification`` records
    what it did.
    """
    purifier = None
    if purify is not None:
        from faceshield.defenses.purifiers import create_purifier

        purifier = create_purifier(f"magdr:{manipulate[0]}" if purify == "magdr" and manipulate else purify, detector=detector)
    a = read_image(clean, max_pixels=max_pixels).rgb
    b = read_image(protected, max_pixels=max_pixels).rgb
    record = None
    if purifier is not None:
        b = purifier.apply(b)
        record = getattr(purifier, "last_record", None) or {"purifier": purifier.spec, "detected": None, "restorations": [purifier.spec]}
    exts, _ = available_extractors(extractors)
    boxes = [f.box for f in create_extractor(detector).detect(a)]
    ev = evaluate_pair(a, b, exts, boxes)
    ev.purification = record
    if manipulate:
        from faceshield.deepfake.edit import disruption_sheet, measure_disruption

        ev.disruption = [measure_disruption(a, b, m, judges=judges, detector=detector) for m in manipulate]
        if sheet is not None and not swap:
            from faceshield.pipeline.swap import face_crops_sheet, stack_images

            parts = [disruption_sheet(a, b, m, detector=detector) for m in manipulate] + [face_crops_sheet(a, b, box, ev.visibility) for box in boxes[:1]]
            write_image_atomic(Path(sheet), stack_images(parts), overwrite=True)
            return ev
    if swap or sheet is not None:
        from faceshield.deepfake import FaceSwapper, load_swap_model
        from faceshield.pipeline.swap import before_after_sheet, evaluate_swap, face_crops_sheet, stack_images

        swapper = FaceSwapper(load_swap_model(swap_model), extractor=aligner)
        ev.swap, sc, sp = evaluate_swap(a, b, swapper)
        if sheet is not None:
            parts = [before_after_sheet(a, b, sc, sp, ev.swap)] + [face_crops_sheet(a, b, box, ev.visibility) for box in boxes[:1]]
            write_image_atomic(Path(sheet), stack_images(parts), overwrite=True)
    return ev
