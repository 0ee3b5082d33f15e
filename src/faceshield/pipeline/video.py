"""Protect a video: decode -> detect and track faces -> protect frames -> re-encode with the audio.

Every frame is protected with :func:`~faceshield.pipeline.image.protect_array` (``keyframe_interval=1``),
or only every k-th one ("key frames"): the perturbation of the last key frame,
``delta = protected - clean`` (``int16``, within ``eps``), is added to the following frames, moved
with the tracked faces (``carry="follow"``) or left in place (``carry="fixed"``). A frame is also made a
key frame when a new face appears. Either way each output frame differs from its decoded original by
at most ``eps`` before the video codec; the codec then changes both a little.

Faces are tracked across frames by box IoU (:class:`FaceTracker`): when the detector misses a face for
a few frames, the face's last box is reused, so the protection does not flicker off.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from faceshield.core.check import check_int
from faceshield.core.errors import NoFaceError, OutputExistsError
from faceshield.core.types import Face
from faceshield.faces.boxes import box_iou
from faceshield.io.video import default_codec, read_video, resolve_codec, same_file, write_video
from faceshield.metrics import linf_levels, ssim
from faceshield.models import LandmarkExtractor, create_extractor, create_target
from faceshield.pipeline.evaluate import evaluate_extractor
from faceshield.pipeline.image import ProtectConfig, protect_array

log = logging.getLogger(__name__)

CARRY_MODES = ("follow", "fixed")

#: ``progress(frames_done, frames_total)`` after each frame (the total is the header's frame count).
ProgressCallback = Callable[[int, int], None]


# --------------------------------------------------------------------------------------------- tracking


@dataclass
class TrackedFace:
    """A face in one frame. ``reused`` True: the detector missed it and this is its last seen box."""

    track_id: int
    face: Face
    reused: bool = False


@dataclass
class _Track:
    track_id: int
    face: Face
    missing: int = 0


class FaceTracker:
    """Associates faces across frames by box IoU and bridges short detection drop-outs.

    Each frame's detections are matched greedily (highest IoU first, IoU >= ``min_iou``) to the tracks
    of the previous frames; a match continues its track, an unmatched detection starts a new one. A
    track that finds no detection keeps its last face for up to ``max_missing`` frames (reported with
    ``reused=True``), then ends.

    Args:
        min_iou: least IoU between a track's last box and a detection to continue the track.
        max_missing: frames a track survives without a detection (0: never reuse a box).
    """

    def __init__(self, min_iou: float = 0.3, max_missing: int = 5) -> None:
        if not 0.0 < min_iou <= 1.0:
            raise ValueError(f"min_iou: expected a value in (0, 1], got {min_iou}")
        check_int(max_missing, "max_missing")
        self.min_iou, self.max_missing = float(min_iou), max_missing
        self._tracks: list[_Track] = []
        self._next_id = 0

    def update(self, faces: list[Face]) -> list[TrackedFace]:
        """Add one frame's detections; returns the faces to use in this frame (detected, then reused)."""
        pairs = sorted(
            ((box_iou(t.face.box, f.box), ti, fi) for ti, t in enumerate(self._tracks) for fi, f in enumerate(faces)),
            key=lambda p: -p[0],
        )
        track_of: dict[int, int] = {}
        used: set[int] = set()
        for iou, ti, fi in pairs:
            if iou < self.min_iou:
                break
            if ti in used or fi in track_of:
                continue
            used.add(ti)
            track_of[fi] = ti
        out: list[TrackedFace] = []
        kept: list[_Track] = []
        for fi, f in enumerate(faces):
            if fi in track_of:
                t = self._tracks[track_of[fi]]
                t.face, t.missing = f, 0
            else:
                t = _Track(self._next_id, f)
                self._next_id += 1
            kept.append(t)
            out.append(TrackedFace(t.track_id, f))
        for ti, t in enumerate(self._tracks):
            if ti not in used and t.missing < self.max_missing:
                t.missing += 1
                kept.append(t)
                out.append(TrackedFace(t.track_id, t.face, reused=True))
        self._tracks = kept
        return out


# --------------------------------------------------------------------------------------------- protection


@dataclass
class VideoSummary:
    """Outcome of :func:`protect_video`.

    Attributes:
        input, output: the files.
        frames: frames written; ``fps`` their rate (``fps_fraction`` exactly); ``size`` ``[W, H]``.
        seconds: wall time; ``frames_per_second``: ``frames / seconds``.
        key_frames: frames the attack ran on (the others carried a key frame's perturbation).
        faces_per_frame: faces protected in each frame (detected or reused from the track).
        reused_frames: frames in which at least one missed face was filled in from its track.
        ssim_i: mean SSIM_I over the frames, protected vs decoded original, before the video codec
            (``ssim_i_min`` the worst frame); None when not measured.
        after_codec: what survives the codec, measured on the written file (:func:`measure_video`,
            a :class:`VideoMeasurement`); None when not measured.
        linf: largest change in 8-bit levels over all frames, before the video codec (<= eps).
        audio: whether the output carries the source's audio.
        settings: the :class:`~faceshield.pipeline.image.ProtectConfig` plus the video settings.
    """

    input: Path
    output: Path
    frames: int
    fps: float
    fps_fraction: str
    size: list[int]
    seconds: float
    frames_per_second: float
    key_frames: int
    faces_per_frame: list[int]
    reused_frames: int
    ssim_i: float | None
    ssim_i_min: float | None
    linf: int
    audio: bool
    settings: dict = field(default_factory=dict)
    after_codec: "VideoMeasurement | None" = None

    @property
    def frames_with_faces(self) -> int:
        return sum(n > 0 for n in self.faces_per_frame)

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["input"], d["output"] = str(self.input), str(self.output)
        d["frames_with_faces"] = self.frames_with_faces
        d["after_codec"] = None if self.after_codec is None else asdict(self.after_codec)
        return d


@dataclass
class VideoMeasurement:
    """A protected video file against its original, frame by frame, after the video codec.

    Attributes:
        frames: frame pairs compared.
        ssim_i, ssim_i_min: mean and worst SSIM_I (whole frame) of the decoded protected frames.
        nme: per extractor, mean NME over the faces it finds in both videos (fraction of its
            normaliser; ground truth = its output on the original frame); None if none was found.
        faces: per extractor, faces found on the original frames; ``faces_lost`` how many of them it
            no longer finds on the protected frames (a protection success, not in ``nme``).
        normaliser: per extractor, the NME normaliser.
        visibility: :func:`~faceshield.metrics.perceptual.visibility` on every ``visibility_every``-th
            compared frame (the face = the first extractor's boxes on the original frame): the mean
            of each measure, and ``*_worst`` the worst frame's; ``visibility_frames`` how many.
    """

    frames: int
    ssim_i: float
    ssim_i_min: float
    nme: dict[str, float | None]
    faces: dict[str, int]
    faces_lost: dict[str, int]
    normaliser: dict[str, str]
    visibility: dict[str, float | None] = field(default_factory=dict)
    visibility_frames: int = 0


def measure_video(original: str | os.PathLike[str], protected: str | os.PathLike[str], extractors: Mapping[str, LandmarkExtractor], *, every: int = 1,
                  visibility_every: int = 25) -> VideoMeasurement:
    """Decode both videos in step and compare every ``every``-th frame pair: SSIM_I and, for each
    extractor, the NME of its full pipeline (detector included) on the decoded protected frame
    against the original frame (:func:`~faceshield.pipeline.evaluate.evaluate_extractor`); and on
    every ``visibility_every``-th compared pair (one a second at 25 fps; 0 = never) the visibility
    measures (about 2 s a frame).

    Raises:
        VideoReadError: either file is unreadable.
        ValueError: ``every`` < 1, or the videos have no frame pair.
    """
    if every < 1:
        raise ValueError(f"every: expected a positive integer, got {every}")
    from faceshield.metrics.perceptual import visibility

    a, b = read_video(original), read_video(protected)
    vis: list[dict] = []
    ssims: list[float] = []
    errs: dict[str, list[float]] = {n: [] for n in extractors}
    found = dict.fromkeys(extractors, 0)
    lost = dict.fromkeys(extractors, 0)
    for i, (clean, prot) in enumerate(zip(a.frames, b.frames)):
        if i % every:
            continue
        if visibility_every and len(ssims) % visibility_every == 0:
            boxes = [f.box for f in next(iter(extractors.values())).detect(clean)] if extractors else []
            vis.append(visibility(clean, prot, boxes))
        ssims.append(ssim(clean, prot))
        for n, ext in extractors.items():
            r = evaluate_extractor(ext, clean, prot)
            found[n] += r.faces_clean
            lost[n] += r.faces_lost
            errs[n] += [v for v in r.nme_per_face if v is not None]
    if not ssims:
        raise ValueError(f"{original} and {protected}: no frame pair to compare")
    return VideoMeasurement(
        frames=len(ssims), ssim_i=float(np.mean(ssims)), ssim_i_min=float(np.min(ssims)),
        nme={n: float(np.mean(v)) if v else None for n, v in errs.items()}, faces=found, faces_lost=lost,
        normaliser={n: e.scheme.normaliser_name for n, e in extractors.items()},
        visibility=_summarise(vis), visibility_frames=len(vis),
    )


def _summarise(vis: list[dict]) -> dict[str, float | None]:
    """Mean and worst frame of each visibility value (SSIMULACRA 2: the lowest; the others the highest)."""
    from faceshield.metrics.perceptual import HIGHER_IS_BETTER

    out: dict[str, float | None] = {}
    for k in (vis[0] if vis else {}):
        v = [d[k] for d in vis if d[k] is not None]
        out[k] = float(np.mean(v)) if v else None
        worst = min if HIGHER_IS_BETTER[k.removesuffix("_face")] else max
        out[f"{k}_worst"] = float(worst(v)) if v else None
    return out


def protect_video(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    config: ProtectConfig | None = None,
    *,
    codec: str | None = None,
    crf: int | None = None,
    keyframe_interval: int = 1,
    carry: str = "follow",
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
    extractors: Mapping[str, LandmarkExtractor] | None = None,
    tracker: Mapping[str, float | int] | None = None,
    measure: bool = True,
) -> VideoSummary:
    """Protect every face in a video and write it re-encoded, with the source's audio and frame rate.

    Frames are streamed: decoded, protected and encoded one at a time. The output is written
    atomically; on any failure nothing is left at ``dst`` (and ``src`` is never touched). Frames are
    written at the source's (average) frame rate, one timestamp per frame, so a variable-frame-rate
    source comes out at constant rate with the same frame count and duration.

    Args:
        src: the input video.
        dst: the output video; its extension picks the container (.mp4, .mov, .mkv, .webm, .avi).
        config: :class:`ProtectConfig` (defaults: Landmark Breaker on MTCNN).
        codec: video codec (see :func:`~faceshield.io.video.write_video`; default h264, vp9 for .webm).
        crf: codec quality, lower is better (default: x264 CRF 18). The codec smooths part of the
            perturbation away; a low CRF keeps more of it.
        keyframe_interval: run the attack on every k-th frame and carry its perturbation to the
            frames in between (1: attack every frame; about k times faster). A generator
            (``method="generator..."``) protects every frame in one forward pass and takes only 1.
        carry: ``follow`` moves the carried perturbation with the tracked faces (the mean of their
            landmarks), ``fixed`` keeps it where it was.
        overwrite: replace an existing ``dst``.
        progress: called as ``progress(done, total)`` after each frame.
        extractors: optional pre-built target extractors by name.
        tracker: :class:`FaceTracker` arguments (``min_iou``, ``max_missing``).
        measure: compute SSIM_I per frame (about 0.1 s per 512x512 frame) and, on the written file,
            what survives the codec (:func:`measure_video` with the target extractors: both files
            decoded once more and two detections per frame).

    Returns:
        :class:`VideoSummary`.

    Raises:
        VideoReadError: ``src`` is missing, unreadable or not a video.
        VideoWriteError: unknown or unavailable codec, or the encoder failed.
        OutputExistsError: ``dst`` exists (without ``overwrite``) or is ``src``.
        NoFaceError: no frame has a face (nothing is written).
        ValueError: bad settings (unknown or black-box target, ``keyframe_interval`` < 1, ...).
    """
    config = config or ProtectConfig()
    if isinstance(keyframe_interval, bool) or not isinstance(keyframe_interval, (int, np.integer)) or keyframe_interval < 1:
        raise ValueError(f"keyframe_interval: expected a positive integer, got {keyframe_interval!r}")
    if carry not in CARRY_MODES:
        raise ValueError(f"carry: expected one of {CARRY_MODES}, got {carry!r}")
    src, dst = Path(src), Path(dst)
    if same_file(src, dst):
        raise OutputExistsError(f"{dst}: output would replace the original; choose another output")
    if dst.exists() and not overwrite:
        raise OutputExistsError(f"{dst} exists; pass --overwrite to replace it")
    from faceshield.models import target_info

    from faceshield.pipeline.config import generator_name

    generator = generator_name(config.method) is not None  # one forward pass on every frame
    landmark = [] if generator else [n for n in config.targets if target_info(n).family == "landmark"]
    others = [] if generator else [n for n in config.targets if n not in landmark]  # manipulators, detectors
    # faces are tracked by the landmark targets, or by the forger's detector when there are none
    names = tuple(landmark) or (config.detector,)
    if generator and keyframe_interval != 1:
        raise ValueError(f"keyframe_interval: method {config.method} protects every frame in one forward pass; leave it at 1")
    exts = {n: (extractors or {}).get(n) or create_extractor(n) for n in names}
    for n, e in exts.items():
        if n in landmark and not e.differentiable:
            raise ValueError(f"target {n!r} is a {e.kind.value} extractor and cannot be attacked directly; use it with `evaluate` (transfer)")
    attacked = {**{n: exts[n] for n in landmark}, **{n: (extractors or {}).get(n) or create_target(n) for n in others}}
    trackers = {n: FaceTracker(**dict(tracker or {})) for n in exts}
    video = read_video(src)
    info = video.info
    total = info.frames

    faces_per_frame: list[int] = []
    ssims: list[float] = []
    stats = {"key": 0, "reused": 0, "linf": 0}
    ran = [config]  # the settings as run (a generator's own eps)
    t0 = time.perf_counter()

    def protected_frames():
        delta: np.ndarray | None = None  # int16 perturbation of the last key frame
        key_index, key_centres = -1, {}
        for i, clean in enumerate(video.frames):
            tracked = {n: trackers[n].update(e.detect(clean)) for n, e in exts.items()}
            count = max(len(ts) for ts in tracked.values())
            stats["reused"] += any(t.reused for ts in tracked.values() for t in ts)
            centres = {(n, t.track_id): t.face.points.mean(axis=0) for n, ts in tracked.items() for t in ts}
            if count == 0:
                out, delta = clean, None  # nothing to protect; the next face starts a new key frame
            elif generator or delta is None or i - key_index >= keyframe_interval or not set(centres) <= set(key_centres):
                res = protect_array(clean, config, extractors=attacked, faces={n: [t.face for t in ts] for n, ts in tracked.items()})
                out, ran[0] = res.rgb, res.config or config
                delta = out.astype(np.int16) - clean.astype(np.int16)
                key_index, key_centres = i, centres
                stats["key"] += 1
            else:
                shift = _mean_shift(key_centres, centres) if carry == "follow" else (0, 0)
                out = _apply(clean, _shifted(delta, shift))
            faces_per_frame.append(count)
            if out is not clean:
                stats["linf"] = max(stats["linf"], linf_levels(clean, out))
                if measure:
                    ssims.append(ssim(clean, out))
            elif measure:
                ssims.append(1.0)
            if progress is not None:
                progress(i + 1, max(total, i + 1))
            yield out
        if not any(faces_per_frame):  # raised inside the writer, so no output is left behind
            raise NoFaceError(f"no face found by {', '.join(names)} in any of the {len(faces_per_frame)} frames of {src}")

    write_video(dst, protected_frames(), info.fps, codec=codec, crf=crf, audio_from=src, overwrite=overwrite)
    seconds = time.perf_counter() - t0
    after = measure_video(src, dst, exts) if measure else None
    n = len(faces_per_frame)
    settings = ran[0].to_dict() | codec_settings(dst, codec, crf) | {"keyframe_interval": int(keyframe_interval), "carry": carry}
    log.debug("protected %s: %d frames, %d key frames, %.1f s", src, n, stats["key"], seconds)
    return VideoSummary(
        input=src, output=dst, frames=n, fps=float(info.fps), fps_fraction=f"{info.fps.numerator}/{info.fps.denominator}",
        size=[info.width, info.height], seconds=round(seconds, 3), frames_per_second=round(n / seconds, 3) if seconds > 0 else 0.0,
        key_frames=stats["key"], faces_per_frame=faces_per_frame, reused_frames=stats["reused"],
        ssim_i=float(np.mean(ssims)) if ssims else None, ssim_i_min=float(np.min(ssims)) if ssims else None,
        linf=stats["linf"], audio=info.has_audio, settings=settings, after_codec=after,
    )


def codec_settings(dst: str | os.PathLike[str], codec: str | None, crf: int | None) -> dict:
    """The report's codec fields for a video written to ``dst``: ``codec`` (as asked, or the
    container's default), ``encoder`` (FFmpeg's name) and ``crf`` (the quality used, None for a
    lossless codec)."""
    name = codec or default_codec(dst)
    enc = resolve_codec(name, crf)
    quality = crf if crf is not None else enc.qscale if enc.qscale is not None else enc.options.get("crf")
    return {"codec": name, "encoder": enc.name, "crf": None if quality is None else int(quality)}


def _mean_shift(before: dict, now: dict) -> tuple[int, int]:
    """Integer ``(dy, dx)``: mean displacement of the tracks present in both frames. A track's position
    is the mean of its landmarks, which jitters much less from frame to frame than the detector's box."""
    common = [k for k in now if k in before]
    if not common:
        return 0, 0
    d = np.mean([now[k] - before[k] for k in common], axis=0)
    return int(round(d[1])), int(round(d[0]))


def _shifted(delta: np.ndarray, shift: tuple[int, int]) -> np.ndarray:
    """``delta`` moved by ``(dy, dx)`` pixels, zero where it moved in from outside."""
    dy, dx = shift
    if dy == 0 and dx == 0:
        return delta
    h, w = delta.shape[:2]
    out = np.zeros_like(delta)
    if abs(dy) >= h or abs(dx) >= w:
        return out
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = delta[max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def _apply(clean: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """``clean + delta`` clipped to ``[0, 255]`` as uint8 (so ``|out - clean| <= |delta|``)."""
    return np.clip(clean.astype(np.int16) + delta, 0, 255).astype(np.uint8)
