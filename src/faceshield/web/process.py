"""What the web page does with one file: the checks on upload (by content), then protection,
evaluation and the DeepFake checks, each a step with progress, each failure one line naming the file.

Photos: :func:`~faceshield.pipeline.image.protect_array` (per optimiser step), the protected PNG read
back from disk and compared with :func:`~faceshield.pipeline.evaluate.evaluate_pair` (MTCNN and the
preset's landmark targets; SSIMULACRA 2 and FLIP on the face, not Butteraugli, which costs seconds), then the face swap of
``faceshield demo`` (clean vs protected) and the StarGAN editor (clean vs protected edits).
Videos: :func:`~faceshield.pipeline.video.protect_video` (per frame, every ``keyframe_interval``-th
frame attacked), the checks on the first frame.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from faceshield.web.jobs import FileItem, Job, JobStore, Step, amplified_difference
from faceshield.web.presets import WEB_PRESETS
from faceshield.web.uploads import IMAGE_FORMATS, VIDEO_CONTAINERS, VIDEO_FORMATS, sniff_kind

log = logging.getLogger(__name__)

EVALUATORS = ("mtcnn",)
EDITOR = "stargan"


@dataclass(frozen=True)
class Limits:
    """What an upload may be: bytes per file, pixels per image or video frame, video length."""

    max_upload_bytes: int
    max_pixels: int
    max_video_seconds: float
    max_video_frames: int


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n < 10e6 else f"{n / 1e6:.0f} MB"


def check_upload(path: Path | None, name: str, size: int, too_large: bool, limits: Limits) -> tuple[str | None, str | None, list[int] | None]:
    """Judge one received file by its content: ``(kind, error, [W, H])`` with ``kind`` ``image`` /
    ``video`` and ``error`` None when accepted, else ``error`` one line starting with ``name``."""
    if too_large or path is None:
        return None, f"{name}: too large (more than {_mb(limits.max_upload_bytes)}; at most {_mb(limits.max_upload_bytes)} per file)", None
    if size == 0:
        return None, f"{name}: the file is empty (0 bytes)", None
    with open(path, "rb") as f:
        head = f.read(16)
    kind = sniff_kind(head)
    if kind is None:
        return None, f"{name}: not a photo or a video (by its content, whatever its name says; expected {IMAGE_FORMATS} or {VIDEO_FORMATS})", None
    if kind == "image":
        try:
            with Image.open(path) as im:  # the header only: no pixels decoded yet
                w, h = im.size
        except Image.DecompressionBombError:
            return None, f"{name}: too many pixels (at most {limits.max_pixels:,})", None
        except Exception as e:
            return None, f"{name}: not a readable image (the {_sniffed(head)} header is damaged: {_one_line(e)})", None
        if w * h > limits.max_pixels:
            return None, f"{name}: too many pixels ({w}x{h} = {w * h:,}; at most {limits.max_pixels:,})", None
        return kind, None, [w, h]
    from faceshield.core.errors import VideoReadError
    from faceshield.io.video import probe_video

    try:
        w, h = _video_header_size(path)  # before any frame is decoded (a forged header must not allocate a huge frame)
    except Exception as e:
        return None, f"{name}: not a readable video ({_one_line(e)})", None
    if w * h > limits.max_pixels:
        return None, f"{name}: frames have too many pixels ({w}x{h}; at most {limits.max_pixels:,})", None
    try:
        info = probe_video(path)
    except VideoReadError as e:
        return None, f"{name}: not a readable video ({_strip_path(str(e), path)})", None
    except Exception as e:
        return None, f"{name}: not a readable video ({_one_line(e)})", None
    if info.container not in VIDEO_CONTAINERS:
        return None, f"{name}: not a video faceshield accepts (container {info.container}; expected {VIDEO_FORMATS})", None
    if info.width * info.height > limits.max_pixels:
        return None, f"{name}: frames have too many pixels ({info.width}x{info.height}; at most {limits.max_pixels:,})", None
    if info.duration > limits.max_video_seconds or info.frames > limits.max_video_frames:
        return None, (f"{name}: video too long ({info.duration:.1f} s, {info.frames} frames; at most {limits.max_video_seconds:g} s "
                      f"and {limits.max_video_frames} frames here: cut it, or use `faceshield protect`)"), None
    return kind, None, [info.width, info.height]


def _video_header_size(path: Path) -> tuple[int, int]:
    """``(W, H)`` of the first video stream as the container header declares it (nothing decoded)."""
    import av

    with av.open(str(path), metadata_errors="ignore") as c:
        if not c.streams.video:
            raise ValueError("no video stream")
        s = c.streams.video[0]
        return int(s.codec_context.width or 0), int(s.codec_context.height or 0)


def _sniffed(head: bytes) -> str:
    for sig, fmt in ((b"\x89PNG", "PNG"), (b"\xff\xd8", "JPEG"), (b"GIF8", "GIF"), (b"BM", "BMP"), (b"RIFF", "WebP"), (b"II", "TIFF"), (b"MM", "TIFF")):
        if head.startswith(sig):
            return fmt
    return "image"


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _strip_path(msg: str, path: Path) -> str:
    """A library message without the server's file path (and its ``cannot read ...:`` lead)."""
    msg = msg.replace(f"cannot read {path}: ", "").replace(str(path), "the file")
    return msg.replace("; --max-pixels raises the limit", "")


def image_steps(checks: bool) -> list[Step]:
    steps = [Step("read", "read the photo"), Step("protect", "protect (optimiser steps)"), Step("evaluate", "evaluate (landmarks, SSIM)")]
    if checks:
        steps += [Step("swap", "DeepFake check: face swap"), Step("edit", "DeepFake check: StarGAN editor")]
    return steps


def video_steps(checks: bool) -> list[Step]:
    steps = [Step("protect", "protect (frames)"), Step("evaluate", "evaluate (first frame)")]
    if checks:
        steps += [Step("swap", "DeepFake check: face swap (first frame)"), Step("edit", "DeepFake check: StarGAN editor (first frame)")]
    return steps


class Processor:
    """Protects the files of a job (called by the worker thread only, so its model caches need no lock)."""

    def __init__(self, store: JobStore, limits: Limits, keyframe_interval: int = 5, threads: int | None = None) -> None:
        self.store = store
        self.limits = limits
        self.keyframe_interval = keyframe_interval
        self.threads = threads
        self._targets: dict[str, dict] = {}
        self._evaluators: dict[str, object] = {}
        self._swapper = None
        self._editor = None
        self._threads_set = False

    # -- models, loaded on first use ------------------------------------------------------------
    def targets(self, preset: str) -> dict:
        if preset not in self._targets:
            from faceshield.pipeline.api import build_targets

            self._targets[preset] = build_targets(self.config(preset))
        return self._targets[preset]

    @staticmethod
    def config(preset: str):
        from faceshield.pipeline.config import ProtectConfig

        return ProtectConfig.preset(WEB_PRESETS[preset].preset)

    def evaluators(self, config) -> list:
        from faceshield.models import create_extractor, list_extractors

        names = list(dict.fromkeys([*EVALUATORS, *(t for t in config.targets if t in list_extractors())]))
        for n in names:
            if n not in self._evaluators:
                self._evaluators[n] = create_extractor(n)
        return [self._evaluators[n] for n in names]

    def swapper(self):
        if self._swapper is None:
            from faceshield.deepfake import FaceSwapper, load_swap_model

            self._swapper = FaceSwapper(load_swap_model(), extractor="fan")
        return self._swapper

    def editor(self):
        if self._editor is None:
            from faceshield.models import create_target, list_targets

            if EDITOR not in list_targets(family="manipulator"):
                raise LookupError(f"no {EDITOR} manipulator registered (see `faceshield models`)")
            self._editor = create_target(EDITOR)
        return self._editor

    # -- a job ----------------------------------------------------------------------------------
    def __call__(self, job: Job) -> None:
        if self.threads and not self._threads_set:
            import torch

            torch.set_num_threads(self.threads)
            self._threads_set = True
        self._set(job, lambda: setattr(job, "state", "running"))
        for f in job.files:
            if f.state != "queued":
                continue
            t0 = time.perf_counter()
            self._set(job, lambda f=f: setattr(f, "state", "running"))
            try:
                if f.kind == "video":
                    self._video(job, f)
                else:
                    self._image(job, f)
                state, error = "done", None
            except _FileFailed as e:
                state, error = "failed", f"{f.name}: {e}"
            except Exception as e:  # a bug must not take the server down: one line for this file
                log.exception("%s (job %s) failed", f.name, job.id)
                state, error = "failed", f"{f.name}: internal error ({_one_line(e)})"
            seconds = round(time.perf_counter() - t0, 2)

            def finish(f=f, state=state, error=error, seconds=seconds):
                f.state, f.error, f.seconds = state, error, seconds
                for s in f.steps:
                    if s.state in ("pending", "running"):
                        s.state = "skipped" if state == "done" else "failed" if s.state == "running" else "skipped"
            self._set(job, finish)
            (job.directory / f"{f.index}.upload").unlink(missing_ok=True)  # the upload itself is not needed any more
        self._set(job, lambda: (setattr(job, "state", "done"), setattr(job, "finished", time.time())))

    def _set(self, job: Job, fn) -> None:
        self.store.update(fn)

    def _begin(self, job: Job, f: FileItem, name: str, total: int = 1) -> None:
        def go():
            s = f.step(name)
            s.state, s.done, s.total = "running", 0, max(1, total)
        self._set(job, go)

    def _progress(self, job: Job, f: FileItem, name: str):
        def cb(done: int, total: int) -> None:
            def go():
                s = f.step(name)
                s.done, s.total = done, max(1, total)
            self._set(job, go)
        return cb

    def _end(self, job: Job, f: FileItem, name: str, state: str = "done", note: str | None = None) -> None:
        def go():
            s = f.step(name)
            s.state, s.note = state, note
            if state == "done":
                s.done = s.total
        self._set(job, go)

    def _add_image(self, job: Job, f: FileItem, kind: str, rgb: np.ndarray) -> None:
        from faceshield.io import write_image_atomic

        write_image_atomic(job.directory / f"{f.index}_{kind}.png", rgb, overwrite=True)
        self._set(job, lambda: f.images.append(kind))

    # -- photos ---------------------------------------------------------------------------------
    def _image(self, job: Job, f: FileItem) -> None:
        from faceshield.core.errors import FaceshieldError, NoFaceError
        from faceshield.io import read_image, write_image_atomic
        from faceshield.pipeline.image import protect_array

        src = job.directory / f"{f.index}.upload"
        self._begin(job, f, "read")
        try:
            img = read_image(src, max_pixels=self.limits.max_pixels)
        except FaceshieldError as e:
            raise _FileFailed(_strip_path(str(e), src)) from None
        self._set(job, lambda: (setattr(f, "size", [int(img.rgb.shape[1]), int(img.rgb.shape[0])]), f.notes.extend(img.notes)))
        self._add_image(job, f, "original", img.rgb)
        self._end(job, f, "read")

        config = self.config(job.preset)
        targets = self.targets(job.preset)
        self._begin(job, f, "protect", config.steps)
        try:
            result = protect_array(img.rgb, config, extractors=targets, on_step=self._progress(job, f, "protect"))
        except NoFaceError as e:
            raise _FileFailed(f"no face found ({e}); nothing was protected") from None
        out = job.directory / f"{f.index}_protected.png"
        write_image_atomic(out, result.rgb, img.alpha, overwrite=True)
        saved = read_image(out, max_pixels=max(self.limits.max_pixels, img.rgb.shape[0] * img.rgb.shape[1])).rgb  # what the download holds
        self._set(job, lambda: (setattr(f, "download", out.name), setattr(f, "download_name", f"protected_{f.stem}.png")))
        self._add_image(job, f, "protected", saved)
        self._add_image(job, f, "diff", amplified_difference(img.rgb, saved))
        self._end(job, f, "protect")
        self._evaluate(job, f, img.rgb, saved, result.face_boxes, config)
        if job.checks:
            self._checks(job, f, img.rgb, saved)

    def _evaluate(self, job: Job, f: FileItem, clean: np.ndarray, protected: np.ndarray, boxes, config) -> None:
        from faceshield.pipeline.evaluate import evaluate_pair

        self._begin(job, f, "evaluate")
        from faceshield.metrics.perceptual import visibility

        ev = evaluate_pair(clean, protected, self.evaluators(config), boxes, visibility=False)
        seen = visibility(clean, protected, boxes, measures=("ssimulacra2", "flip"))  # as people see it; Butteraugli costs seconds
        evaluation = {
            "ssim_i": ev.ssim_i, "mask_ssim": ev.mask_ssim, "psnr": ev.psnr, "linf": ev.linf,
            "ssimulacra2_face": seen.get("ssimulacra2_face"), "flip_face": seen.get("flip_face"),
            "eps_levels": round(config.eps * 255),
            "extractors": [{"extractor": r.extractor, "faces_before": r.faces_clean, "faces_after": r.faces_clean - r.faces_lost,
                            "nme": r.nme, "normaliser": r.normaliser} for r in ev.extractors],
        }
        self._set(job, lambda: setattr(f, "evaluation", evaluation))
        self._end(job, f, "evaluate")

    def _checks(self, job: Job, f: FileItem, clean: np.ndarray, protected: np.ndarray) -> None:
        """The face swap and the editor, clean vs protected; a failure is a note, not an error."""

        def swap():
            from faceshield.pipeline.swap import evaluate_swap

            w, sc, sp = evaluate_swap(clean, protected, self.swapper())
            verdict = ("the swap tool drops the protected face" if w.dropped_protected else "the face is lost on the protected photo" if w.lost
                       else "a swap is made from both" if w.ssim_w is not None else "no swap from either photo")
            return (_side_by_side(*(_around(x, w.region) for x in (sc.image, sp.image))),
                    {"aligner": w.aligner, "nme": w.nme, "ssim_w": w.ssim_w, "lost": w.lost, "dropped": w.dropped_protected, "verdict": verdict})

        def edit():
            from faceshield.deepfake.edit import DISRUPTED_L2, disruption_sheet, measure_disruption

            g = self.editor()
            m = measure_disruption(clean, protected, g)
            return (disruption_sheet(clean, protected, g),
                    {"model": m.model, "domains": m.domains, "edits": len(m.l2_each), "disrupted": int(sum(v >= DISRUPTED_L2 for v in m.l2_each)),
                     "l2": m.l2, "threshold": DISRUPTED_L2})

        self._check(job, f, "swap", "face-swap check", swap)
        self._check(job, f, "edit", "editor check", edit)

    def _check(self, job: Job, f: FileItem, key: str, label: str, run) -> None:
        """Run one DeepFake check (``run() -> (picture, record)``) as step ``key``: its picture and record
        go to the file; an exception becomes a "skipped" note."""
        self._begin(job, f, key)
        try:
            picture, record = run()
            self._add_image(job, f, key, picture)
            self._set(job, lambda: f.checks.update({key: record}))
            self._end(job, f, key)
        except Exception as e:
            log.info("%s of %s skipped: %s", label, f.name, e)
            self._set(job, lambda: f.checks.update({key: {"error": f"{label} skipped: {_one_line(e)}"}}))
            self._end(job, f, key, "skipped", _one_line(e))

    # -- videos ---------------------------------------------------------------------------------
    def _video(self, job: Job, f: FileItem) -> None:
        from faceshield.core.errors import FaceshieldError, NoFaceError
        from faceshield.io.video import read_video
        from faceshield.pipeline.video import protect_video

        src = job.directory / f"{f.index}.upload"
        out = job.directory / f"{f.index}_protected.mp4"
        config = self.config(job.preset)
        self._begin(job, f, "protect")
        try:
            summary = protect_video(src, out, config, keyframe_interval=self.keyframe_interval, overwrite=True, extractors=self.targets(job.preset),
                                    progress=self._progress(job, f, "protect"), measure=False)
        except NoFaceError as e:
            raise _FileFailed(f"no face found ({e}); nothing was protected") from None
        except FaceshieldError as e:
            raise _FileFailed(_strip_path(_strip_path(str(e), src), out)) from None
        self._set(job, lambda: (setattr(f, "download", out.name), setattr(f, "download_name", f"protected_{f.stem}.mp4"),
                                f.notes.append(f"{summary.frames} frames, {summary.key_frames} attacked (every {self.keyframe_interval}th), "
                                               f"the others carry their perturbation; faces in {summary.frames_with_faces} frames; re-encoded as H.264")))
        self._end(job, f, "protect")
        try:
            first = [next(iter(read_video(p, max_frames=1))) for p in (src, out)]
        except (FaceshieldError, StopIteration) as e:
            raise _FileFailed(f"cannot read the first frame back ({_one_line(e)})") from None
        clean, protected = first
        self._add_image(job, f, "original", clean)
        self._add_image(job, f, "protected", protected)
        self._add_image(job, f, "diff", amplified_difference(clean, protected))
        from faceshield.models import create_extractor

        boxes = [x.box for x in create_extractor("mtcnn").detect(clean)]
        self._evaluate(job, f, clean, protected, boxes, config)
        if job.checks:
            self._checks(job, f, clean, protected)


class _FileFailed(Exception):
    """One file cannot be protected; the message (without the file's name) says why."""


def _around(rgb: np.ndarray, region, margin: float = 0.6) -> np.ndarray:
    """The part of ``rgb`` around ``region`` (``x0, y0, x1, y1``; None: all of it), ``margin`` x its size added on each side."""
    if region is None:
        return rgb
    x0, y0, x1, y1 = region
    mx, my = int((x1 - x0) * margin), int((y1 - y0) * margin)
    return rgb[max(0, y0 - my):y1 + my, max(0, x0 - mx):x1 + mx]


def _side_by_side(a: np.ndarray, b: np.ndarray, gap: int = 8) -> np.ndarray:
    h = max(a.shape[0], b.shape[0])
    pad = lambda x: np.pad(x, ((0, h - x.shape[0]), (0, 0), (0, 0)), constant_values=255)  # noqa: E731
    return np.concatenate([pad(a), np.full((h, gap, 3), 255, np.uint8), pad(b)], 1)
