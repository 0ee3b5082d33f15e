"""Batch protection of many photos: on N local processes or a Ray cluster, resumable after a kill.

A run writes into its output directory ``OUT``:

* ``OUT/<stem>.png`` and ``OUT/<stem>.json`` per photo, as :func:`faceshield.protect` does (each file
  written atomically: a temporary name, then one rename; the report is written after the PNG, so an
  item whose report is on disk is complete);
* ``OUT/faceshield-journal.jsonl``: one JSON line per finished item (``state`` ``done`` or
  ``failed``), appended and flushed to disk by the coordinating process only, so a run killed at any
  moment (``SIGKILL`` included) loses at most the items that were in flight;
* ``OUT/faceshield-summary.csv`` and ``.json`` at the end: every item of the run with its state.

``resume=True`` (``faceshield protect ... --resume``) skips every item that is done (journal entry, or
a complete report on disk: a kill between the rename and the journal line), redoes the others and
deletes the temporary files a kill left behind: every input protected exactly once, no finished
output redone.

Workers: ``workers=1`` runs in this process; ``workers=N`` uses N spawned processes with one torch
thread each, each building its targets once; ``ray_address`` runs N Ray actors (``"local"`` starts a
local cluster on 127.0.0.1, anything else is passed to :func:`ray.init`). Workers write their
outputs themselves, so with Ray ``OUT`` must be a directory every node sees (docs/batch.md).

    >>> from faceshield.pipeline.batch import protect_batch
    >>> summary = protect_batch(["photos/"], "protected/", workers=2, resume=True)  # doctest: +SKIP
    >>> summary.done, summary.failed                                                # doctest: +SKIP
    (120, 0)
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from faceshield.io import list_images, write_json_atomic
from faceshield.io.image import atomic_output
from faceshield.pipeline.api import ItemResult, _protect_one, available_extractors, build_targets, output_paths
from faceshield.pipeline.image import ProtectConfig

log = logging.getLogger(__name__)

JOURNAL_NAME = "faceshield-journal.jsonl"
SUMMARY_NAME = "faceshield-summary"


@dataclass(frozen=True)
class BatchItem:
    """One photo of a batch: its input and its protected PNG. ``key`` identifies it in the journal."""

    src: Path
    dst: Path

    @property
    def key(self) -> str:
        return str(self.src.resolve())


@dataclass
class BatchSummary:
    """What a batch run did: ``results`` for the items it ran, ``skipped`` those a resume found done."""

    results: list[ItemResult] = field(default_factory=list)
    skipped: list[BatchItem] = field(default_factory=list)
    journal: Path | None = None
    summary_csv: Path | None = None
    summary_json: Path | None = None
    seconds: float = 0.0

    @property
    def done(self) -> int:
        return sum(r.ok for r in self.results) + len(self.skipped)

    @property
    def failed(self) -> int:
        return sum(not r.ok for r in self.results)


class Journal:
    """Append-only JSON-lines record of finished items (one writer: the coordinating process).

    Each line is flushed and fsync'ed before the next item is reported, so after a kill the file
    holds every item that finished, possibly followed by one torn line, which :meth:`records` skips
    and the next :meth:`append` closes off."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)

    def records(self) -> list[dict]:
        """The intact records, oldest first."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by a kill
            if isinstance(rec, dict) and isinstance(rec.get("key"), str):
                out.append(rec)
        return out

    def done_keys(self) -> set[str]:
        return {r["key"] for r in self.records() if r.get("state") == "done"}

    def append(self, record: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+b") as f:
            f.seek(0, os.SEEK_END)
            if f.tell():
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    f.write(b"\n")  # close a torn line
            f.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())


def is_complete(item: BatchItem) -> bool:
    """Whether ``item``'s PNG and its report are on disk (the report is written last, atomically)."""
    try:
        report = json.loads(item.dst.with_suffix(".json").read_text(encoding="utf-8"))
        return Path(report["output"]).name == item.dst.name and item.dst.is_file()
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _remove_stale_temporaries(items: Sequence[BatchItem]) -> int:
    """Delete the temporary files (``.<name>.*.tmp``, see :func:`atomic_output`) a kill left beside ``items``' outputs."""
    n = 0
    for it in items:
        for target in (it.dst, it.dst.with_suffix(".json")):
            for tmp in target.parent.glob(f".{target.name}.*.tmp"):
                tmp.unlink(missing_ok=True)
                n += 1
    return n


class _Worker:
    """A worker's state: the targets and evaluators, built once; :meth:`run` protects one item."""

    def __init__(self, config: ProtectConfig, evaluate_with: Sequence[str] | None, max_pixels: int, threads: int | None):
        if threads:
            import torch

            torch.set_num_threads(threads)
        self.config, self.max_pixels = config, max_pixels
        self.targets = build_targets(config)
        self.evaluators, self.notes = available_extractors(evaluate_with)

    def run(self, item: BatchItem, overwrite: bool) -> tuple[BatchItem, ItemResult, str]:
        res = _protect_one(item.src, item.dst, self.config, self.targets, self.evaluators, self.notes, overwrite, self.max_pixels)
        return item, res, f"pid {os.getpid()}"


_STATE: _Worker | None = None


def _init_process(*args) -> None:
    global _STATE
    _STATE = _Worker(*args)


def _run_in_process(item: BatchItem, overwrite: bool):
    assert _STATE is not None
    return _STATE.run(item, overwrite)


def _run_serial(items, args, overwrite) -> Iterator:
    worker = _Worker(*args)
    for it in items:
        yield worker.run(it, overwrite)


def _run_processes(items, args, overwrite, workers: int) -> Iterator:
    ctx = multiprocessing.get_context("spawn")  # no fork of a process holding torch threads
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_process, initargs=args) as pool:
        futures = [pool.submit(_run_in_process, it, overwrite) for it in items]
        for f in as_completed(futures):
            yield f.result()


@contextlib.contextmanager
def ray_session(workers: int | None, address: str):
    """Ray, initialised for the run: ``address`` ``"local"`` starts a local cluster on 127.0.0.1 with
    ``workers`` CPUs; another address joins that cluster. Workers get ``OMP_NUM_THREADS=1``. A
    session this call started is shut down at the end."""
    try:
        import ray
    except ImportError as e:  # pragma: no cover - ray is a dependency of the tests
        raise ValueError("--ray: Ray is not installed; pip install 'faceshield[ray]'") from e
    started = not ray.is_initialized()
    if started:
        env = {"env_vars": {"OMP_NUM_THREADS": "1"}}
        if address == "local":
            ray.init(num_cpus=workers or os.cpu_count(), object_store_memory=256 * 1024**2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1", runtime_env=env)
        else:
            ray.init(address=address, log_to_driver=False, runtime_env=env)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def _run_ray(items, args, overwrite, workers: int | None, address: str) -> Iterator:
    from ray.util import ActorPool

    with ray_session(workers, address) as ray:
        n = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        actor = ray.remote(num_cpus=1)(_Worker)
        actors = [actor.remote(*args) for _ in range(n)]
        pool = ActorPool(actors)
        yield from pool.map_unordered(lambda a, it: a.run.remote(it, overwrite), list(items))
        for a in actors:
            ray.kill(a)


def protect_batch(
    inputs: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    config: ProtectConfig | None = None,
    *,
    workers: int = 1,
    ray_address: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    evaluate_with: Sequence[str] | None = None,
    max_pixels: int = 50_000_000,
    on_item: Callable[[ItemResult], None] | None = None,
    on_plan: Callable[[int, int], None] | None = None,
) -> BatchSummary:
    """Protect image files (or directories of them) into the directory ``output``, journaled.

    Args:
        inputs, output, config, overwrite, evaluate_with, max_pixels: as :func:`faceshield.protect`
            (``output`` a directory, or a ``.png`` path for a single input).
        workers: local processes (1: this process); with ``ray_address``, Ray actors (0: one per
            CPU of the cluster).
        ray_address: None (no Ray), ``"local"`` (start a local cluster) or a cluster address.
        resume: skip the items a previous run over ``output`` finished; redo the rest.
        on_item: called in this process after each item, in the order they finish.
        on_plan: called once with ``(to_run, skipped)`` before the first item starts.

    Returns:
        A :class:`BatchSummary`. The summary files list every item of this run.
    """
    if workers < 0 or (workers == 0 and ray_address is None):
        raise ValueError(f"--workers: expected a positive integer, got {workers}")
    t0 = time.perf_counter()
    config = config or ProtectConfig()
    out = Path(output)
    images, problems = list_images(inputs)
    items = [BatchItem(Path(s), Path(d)) for s, d in output_paths(images, out).items()]
    out_dir = out.parent if out.suffix.lower() == ".png" and not out.is_dir() else out
    journal = Journal(out_dir / JOURNAL_NAME)
    summary = BatchSummary(journal=journal.path)

    pending = items
    if resume:
        done = journal.done_keys()
        pending = []
        for it in items:
            if it.key in done and is_complete(it):
                summary.skipped.append(it)
            elif is_complete(it):  # finished, but killed before its journal line
                journal.append({"key": it.key, "input": str(it.src), "output": str(it.dst), "state": "done", "note": "recovered on resume"})
                summary.skipped.append(it)
            else:
                pending.append(it)
        removed = _remove_stale_temporaries(pending)
        if removed:
            log.info("removed %d temporary files left by an interrupted run", removed)
    if on_plan:
        on_plan(len(pending) + len(problems), len(summary.skipped))

    def record(res: ItemResult, item: BatchItem | None, where: str) -> None:
        journal.append({
            "key": item.key if item else str(res.input), "input": str(res.input), "output": str(res.output or (item.dst if item else "")),
            "state": "done" if res.ok else "failed", "error": res.error, "seconds": (res.report or {}).get("seconds"), "worker": where,
            "finished": round(time.time(), 3),
        })
        summary.results.append(res)
        if on_item:
            on_item(res)

    for p, msg in problems:
        record(ItemResult(input=p, ok=False, error=msg), None, "coordinator")
    if pending:
        # A resumed item may have left its PNG without its report: it is ours to replace.
        redo = overwrite or resume
        args = (config, evaluate_with, max_pixels, None if workers <= 1 and ray_address is None else 1)
        if ray_address is not None:
            stream = _run_ray(pending, args, redo, workers, ray_address)
        elif workers > 1:
            stream = _run_processes(pending, args, redo, workers)
        else:
            stream = _run_serial(pending, args, redo)
        for item, res, where in stream:
            record(res, item, where)
    summary.seconds = time.perf_counter() - t0
    summary.summary_csv, summary.summary_json = write_summary(out_dir, summary)
    return summary


SUMMARY_FIELDS = ("input", "output", "state", "error", "seconds", "faces", "ssim_i", "mask_ssim")


def _row(res: ItemResult | None, item: BatchItem | None) -> dict:
    if res is None:  # skipped on resume: read its report
        try:
            report = json.loads(item.dst.with_suffix(".json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            report = {}
        state, src, dst, error = "done", item.src, item.dst, None
    else:
        report, state, src, dst, error = res.report or {}, "done" if res.ok else "failed", res.input, res.output, res.error
    ev = report.get("evaluation") or {}
    faces = report.get("faces") or {}
    return {
        "input": str(src), "output": str(dst) if dst else "", "state": state, "error": error or "",
        "seconds": report.get("seconds", ""), "faces": max((len(v) for v in faces.values()), default="") if faces else "",
        "ssim_i": ev.get("ssim_i", ""), "mask_ssim": ev.get("mask_ssim", ""),
    }


def write_summary(out_dir: Path, summary: BatchSummary) -> tuple[Path, Path]:
    """Write ``faceshield-summary.csv`` and ``.json`` (atomically) listing every item of the run."""
    rows = [_row(None, it) for it in summary.skipped] + [_row(r, None) for r in summary.results]
    rows.sort(key=lambda r: r["input"])
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=SUMMARY_FIELDS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    csv_path = out_dir / f"{SUMMARY_NAME}.csv"
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_output(csv_path, overwrite=True) as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8")
    totals = {"items": len(rows), "done": summary.done, "failed": summary.failed, "skipped_as_done": len(summary.skipped), "seconds": round(summary.seconds, 3)}
    json_path = write_json_atomic(out_dir / f"{SUMMARY_NAME}.json", {"totals": totals, "items": rows}, overwrite=True)
    return csv_path, json_path


# ------------------------------------------------------------------------------------------- videos

_SEGMENT_TARGETS: dict = {}


def _protect_segment(seg: str, out: str, config: ProtectConfig, keyframe_interval: int, threads: int | None) -> dict | None:
    """Protect one lossless segment into ``out`` (FFV1); None when it has no face (``out`` = ``seg`` then)."""
    from faceshield.core.errors import NoFaceError
    from faceshield.pipeline.video import protect_video

    if threads:
        import torch

        torch.set_num_threads(threads)
    key = tuple(config.targets) + (config.detector,)
    if key not in _SEGMENT_TARGETS:  # each worker process builds its targets once
        _SEGMENT_TARGETS.clear()
        _SEGMENT_TARGETS[key] = build_targets(config)
    try:
        s = protect_video(seg, out, config, codec="ffv1", keyframe_interval=keyframe_interval, extractors=_SEGMENT_TARGETS[key] or None, measure=False, overwrite=True)
    except NoFaceError:
        return None
    return s.to_dict()


def split_ranges(frames: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous, near-equal ``[start, stop)`` ranges covering ``frames`` (none empty)."""
    parts = max(1, min(parts, frames))
    bounds = [round(i * frames / parts) for i in range(parts + 1)]
    return [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


def protect_video_split(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    config: ProtectConfig | None = None,
    *,
    workers: int = 2,
    ray_address: str | None = None,
    codec: str | None = None,
    crf: int | None = None,
    keyframe_interval: int = 1,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    extractors=None,
):
    """Protect one video on several workers: split it by frame ranges, protect each range, join in order.

    The source is decoded once into ``workers`` lossless (FFV1) segments of near-equal length in a
    temporary folder beside ``dst``; each worker protects its segment as
    :func:`~faceshield.pipeline.video.protect_video` does (its own face tracker, which starts afresh
    at the segment's first frame, so that frame is a key frame); the protected segments are decoded
    in order and encoded once into ``dst`` with ``codec`` / ``crf`` and the source's audio, then
    measured after the codec. Nothing but ``dst`` is left behind.

    Returns:
        A :class:`~faceshield.pipeline.video.VideoSummary` of the whole video (``seconds`` is wall time).
    """
    import itertools
    import shutil
    import tempfile

    from faceshield.core.errors import NoFaceError
    from faceshield.io.video import read_video, same_file, write_video
    from faceshield.pipeline.video import VideoSummary, codec_settings, measure_video

    config = config or ProtectConfig()
    src, dst = Path(src), Path(dst)
    if same_file(src, dst):
        raise FileExistsError(f"{dst}: output would replace the original; choose another output")
    if dst.exists() and not overwrite:
        from faceshield.core.errors import OutputExistsError

        raise OutputExistsError(f"{dst} exists; pass --overwrite to replace it")
    t0 = time.perf_counter()
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".parts"))
    try:
        video = read_video(src)
        info = video.info
        frames = iter(video.frames)
        ranges = split_ranges(max(1, info.frames), max(1, workers))
        segments, counts = [], []
        for k, (a, b) in enumerate(ranges):
            chunk = list(itertools.islice(frames, b - a)) if k < len(ranges) - 1 else list(frames)  # the last takes any frames the header missed
            if not chunk:
                break
            seg = tmp / f"in{k:03d}.mkv"
            write_video(seg, chunk, info.fps, codec="ffv1")
            segments.append(seg)
            counts.append(len(chunk))
        total = sum(counts)
        outs = [tmp / f"out{k:03d}.mkv" for k in range(len(segments))]
        threads = 1 if len(segments) > 1 else None
        jobs = [(str(s), str(o), config, keyframe_interval, threads) for s, o in zip(segments, outs)]
        if ray_address is not None:
            results = _map_ray(_protect_segment, jobs, workers, ray_address)
        elif workers > 1 and len(jobs) > 1:
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx) as pool:
                futures = [pool.submit(_protect_segment, *j) for j in jobs]
                results, done = [None] * len(jobs), 0
                index = {f: i for i, f in enumerate(futures)}
                for f in as_completed(futures):
                    results[index[f]] = f.result()
                    done += counts[index[f]]
                    if progress:
                        progress(done, total)
        else:
            results = [_protect_segment(*j) for j in jobs]
        if not any(results):
            raise NoFaceError(f"no face found by {', '.join(config.targets)} in any of the {total} frames of {src}")
        parts = [o if r is not None else s for s, o, r in zip(segments, outs, results)]

        def joined():
            for p in parts:
                yield from read_video(p).frames

        write_video(dst, joined(), info.fps, codec=codec, crf=crf, audio_from=src, overwrite=overwrite)
        try:
            from faceshield.models import LandmarkExtractor, create_extractor

            exts = {n: e for n, e in (extractors or build_targets(config)).items() if isinstance(e, LandmarkExtractor)}
            after = measure_video(src, dst, exts or {config.detector: create_extractor(config.detector)})
            seconds = time.perf_counter() - t0
            got = [r for r in results if r is not None]
            faces = [n for r, c in zip(results, counts) for n in (r["faces_per_frame"] if r is not None else [0] * c)]
            settings = got[0]["settings"] | codec_settings(dst, codec, crf) | {"workers": len(segments), "segments": [list(r) for r in ranges[:len(segments)]]}
            return VideoSummary(
                input=src, output=dst, frames=total, fps=float(info.fps), fps_fraction=f"{info.fps.numerator}/{info.fps.denominator}",
                size=[info.width, info.height], seconds=round(seconds, 3), frames_per_second=round(total / seconds, 3) if seconds > 0 else 0.0,
                key_frames=sum(r["key_frames"] for r in got), faces_per_frame=faces, reused_frames=sum(r["reused_frames"] for r in got),
                ssim_i=None, ssim_i_min=None,  # measured after the codec only (after_codec), not per segment
                linf=max(r["linf"] for r in got), audio=info.has_audio, settings=settings, after_codec=after,
            )
        except BaseException:
            dst.unlink(missing_ok=True)
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _map_ray(fn, jobs, workers, address) -> list:
    """``[fn(*j) for j in jobs]`` as Ray tasks (one CPU each), in order."""
    with ray_session(workers, address) as ray:
        task = ray.remote(num_cpus=1)(fn)
        return ray.get([task.remote(*j) for j in jobs])


def protect_videos_split(inputs, output, config=None, *, workers=2, ray_address=None, codec=None, crf=None, keyframe_interval=1,
                         overwrite=False, max_pixels=50_000_000, on_item=None, on_frame=None) -> list[ItemResult]:
    """:func:`faceshield.protect_videos`, each video split by frame ranges across ``workers`` (:func:`protect_video_split`)."""
    from functools import partial

    from faceshield.pipeline.api import _protect_video_one, video_output_paths

    config = config or ProtectConfig()
    targets = build_targets(config)
    fn = partial(protect_video_split, workers=workers, ray_address=ray_address)
    results = []
    for src, dst in video_output_paths([Path(p) for p in inputs], Path(output)).items():
        res = _protect_video_one(src, dst, config, targets, codec, crf, keyframe_interval, overwrite, max_pixels, on_frame, protect_fn=fn)
        results.append(res)
        if on_item:
            on_item(res)
    return results
