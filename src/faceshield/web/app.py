"""``faceshield serve``: one local page to protect photos and short videos (FastAPI).

Endpoints:

* ``GET /``: the page (``static/index.html`` with its script and style).
* ``GET /api/config``: the strengths offered and the limits.
* ``POST /api/jobs``: ``multipart/form-data`` with ``files`` (one or more) and ``preset``; each file
  is streamed to disk under a generated name, cut off at the size limit, and judged by its content.
  Returns the job (``id``, ``files``: accepted or ``rejected`` with one ``error`` line each).
* ``GET /api/jobs/{id}``: state, per-file and per-step progress, evaluation, DeepFake checks.
* ``GET /api/jobs/{id}/files/{n}/{kind}``: PNG views (original, protected, diff = |difference| x 10,
  swap, edit); ``.../download``: the protected file as an attachment.

Jobs and their files are deleted ``keep_seconds`` after they finish (a janitor thread, and on
requests). No name from the request is ever used on disk.
"""
from __future__ import annotations

import atexit
import logging
import re
import shutil
import tempfile
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from faceshield.web.jobs import IMAGE_KINDS, JOB_ID, FileItem, Job, JobStore, Worker, new_job_id
from faceshield.web.presets import DEFAULT_PRESET, WEB_PRESETS
from faceshield.web.process import Limits, Processor, check_upload, image_steps, video_steps
from faceshield.web.uploads import BadForm, UploadTooLarge, display_name, download_stem, read_multipart

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
_JOB_RE = re.compile(rf"^{JOB_ID}$")
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
}


@dataclass
class ServeSettings:
    """What ``faceshield serve`` allows and where it works.

    Attributes:
        max_upload_bytes: per file; a file over it is cut off while it streams in and refused.
        max_pixels: per photo or video frame (W x H), checked from the header before decoding.
        keep_seconds: jobs and every file of them are deleted this long after they finish.
        work_dir: where uploads and results go (each job in ``<work_dir>/<job id>/``); None: a fresh
            ``tempfile.mkdtemp()``, removed when the server stops.
        presets: the strengths offered (names of :data:`~faceshield.web.presets.WEB_PRESETS`).
        max_files: files per upload; more are refused.
        max_queued: jobs waiting at once; more get "busy, try again".
        max_video_seconds, max_video_frames: the longest video accepted.
        keyframe_interval: videos: attack every k-th frame, carry its perturbation to the others.
        checks: run the DeepFake checks (face swap, StarGAN editor) by default.
        threads: torch threads of the worker (None: torch's default).
        sweep_seconds: how often the janitor looks (None: a quarter of ``keep_seconds``, 5..60 s).
        default_preset: preselected on the page (the first of ``presets`` when it is not among them).
    """

    max_upload_bytes: int = 25_000_000
    max_pixels: int = 25_000_000
    keep_seconds: float = 1800.0
    work_dir: Path | None = None
    presets: tuple[str, ...] = tuple(WEB_PRESETS)
    max_files: int = 10
    max_queued: int = 20
    max_video_seconds: float = 10.0
    max_video_frames: int = 300
    keyframe_interval: int = 5
    checks: bool = True
    threads: int | None = None
    sweep_seconds: float | None = None
    default_preset: str = DEFAULT_PRESET

    def __post_init__(self) -> None:
        for name in ("max_upload_bytes", "max_pixels", "max_files", "max_queued", "max_video_frames", "keyframe_interval"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: expected a positive integer, got {v!r}")
        for name in ("keep_seconds", "max_video_seconds"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
                raise ValueError(f"{name}: expected a positive number of seconds, got {v!r}")
        unknown = [p for p in self.presets if p not in WEB_PRESETS]
        if unknown or not self.presets:
            raise ValueError(f"presets: expected some of {', '.join(WEB_PRESETS)}, got {', '.join(unknown) or 'none'}")
        if self.default_preset not in self.presets:
            self.default_preset = self.presets[0]

    @property
    def limits(self) -> Limits:
        return Limits(self.max_upload_bytes, self.max_pixels, self.max_video_seconds, self.max_video_frames)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(settings: ServeSettings | None = None) -> FastAPI:
    """The web app. Its worker and janitor threads start with the app (the ASGI lifespan) and stop
    with it; the state lives in ``app.state`` (``store``, ``worker``, ``settings``, ``work_dir``)."""
    settings = settings or ServeSettings()
    owned = settings.work_dir is None
    work_dir = Path(tempfile.mkdtemp(prefix="faceshield-serve-")) if owned else Path(settings.work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    if owned:  # also when the process ends without the ASGI shutdown (e.g. an embedding script exits)
        atexit.register(shutil.rmtree, work_dir, True)
    store = JobStore(work_dir, settings.keep_seconds)
    processor = Processor(store, settings.limits, settings.keyframe_interval, settings.threads)
    stop = threading.Event()

    def janitor() -> None:
        every = settings.sweep_seconds or min(60.0, max(5.0, settings.keep_seconds / 4))
        while not stop.wait(every):
            try:
                store.sweep()
            except Exception:
                log.exception("janitor")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.worker = Worker(processor, settings.max_queued)
        t = threading.Thread(target=janitor, name="faceshield-janitor", daemon=True)
        t.start()
        try:
            yield
        finally:
            stop.set()
            app.state.worker.stop()
            if owned:
                shutil.rmtree(work_dir, ignore_errors=True)
            else:
                for j in list(store.jobs.values()):
                    shutil.rmtree(j.directory, ignore_errors=True)

    app = FastAPI(title="faceshield", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings, app.state.store, app.state.work_dir = settings, store, work_dir
    last_sweep = [0.0]

    @app.middleware("http")
    async def housekeeping(request: Request, call_next):
        now = time.time()
        if now - last_sweep[0] > 1.0:  # deletes expired jobs on requests too (cheap, at most once a second)
            last_sweep[0] = now
            await run_in_threadpool(store.sweep, now)
        response = await call_next(request)
        for k, v in _SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        return response

    @app.get("/")
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html", headers={"Cache-Control": "no-store"})

    @app.get("/api/config")
    async def config() -> dict:
        return {
            "presets": [{"name": p, "label": WEB_PRESETS[p].label, "seconds": WEB_PRESETS[p].seconds, "preset": WEB_PRESETS[p].preset} for p in settings.presets],
            "default_preset": settings.default_preset,
            "max_upload_bytes": settings.max_upload_bytes, "max_pixels": settings.max_pixels, "max_files": settings.max_files,
            "max_video_seconds": settings.max_video_seconds, "max_video_frames": settings.max_video_frames,
            "keep_seconds": settings.keep_seconds, "checks": settings.checks,
        }

    @app.post("/api/jobs")
    async def create_job(request: Request):
        worker: Worker = request.app.state.worker
        total_cap = settings.max_files * settings.max_upload_bytes + 1_000_000
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > total_cap:
            return _error(413, f"upload too large ({int(length) / 1e6:.0f} MB; at most {settings.max_files} files of {settings.max_upload_bytes / 1e6:.0f} MB)")
        job_id = new_job_id()
        directory = work_dir / job_id
        with store.lock:
            store.uploading.add(job_id)
        directory.mkdir()
        try:
            return await _receive(request, worker, job_id, directory, total_cap)
        finally:
            with store.lock:
                store.uploading.discard(job_id)

    async def _receive(request: Request, worker: Worker, job_id: str, directory: Path, total_cap: int) -> JSONResponse:
        try:
            form = await read_multipart(request.headers.get("content-type"), request.stream(), directory, max_file_bytes=settings.max_upload_bytes,
                                        max_total_bytes=total_cap, max_files=settings.max_files)
        except UploadTooLarge as e:
            shutil.rmtree(directory, ignore_errors=True)
            return _error(413, str(e))
        except BadForm as e:
            shutil.rmtree(directory, ignore_errors=True)
            return _error(400, str(e))
        except BaseException:  # e.g. the client went away mid-upload
            shutil.rmtree(directory, ignore_errors=True)
            raise
        preset = form.fields.get("preset") or settings.default_preset
        problem = (f"preset: expected one of {', '.join(settings.presets)}, got {preset[:40]!r}" if preset not in settings.presets
                   else "no files: choose photos or a short video" if not form.files else None)
        if problem:
            shutil.rmtree(directory, ignore_errors=True)
            return _error(400, problem)
        checks = settings.checks if "checks" not in form.fields else form.fields["checks"].lower() in ("1", "true", "on", "yes")
        files = []
        for r in form.files:
            name = display_name(r.filename, r.index)
            try:
                kind, err, size = await run_in_threadpool(check_upload, r.path, name, r.size, r.too_large, settings.limits)
            except Exception as e:  # a bad file never takes the request down: one line for it
                log.exception("checking %s", name)
                kind, err, size = None, f"{name}: could not be checked ({type(e).__name__})", None
            item = FileItem(index=r.index, name=name, stem=download_stem(r.filename, r.index), kind=kind, size=size)
            if err:
                item.state, item.error = "rejected", err
                if r.path is not None:
                    r.path.unlink(missing_ok=True)
            else:
                item.steps = video_steps(checks) if kind == "video" else image_steps(checks)
            files.append(item)
        job = Job(id=job_id, directory=directory, preset=preset, checks=checks, files=files)
        extra = [f"{form.too_many} more file(s) not taken: at most {settings.max_files} per upload"] if form.too_many else []
        if any(f.state == "queued" for f in files):
            store.add(job)
            if not worker.submit(job):
                with store.lock:
                    store.jobs.pop(job.id, None)
                shutil.rmtree(directory, ignore_errors=True)
                return _error(503, "busy: too many jobs waiting; try again in a minute")
        else:
            job.state, job.finished = "done", time.time()
            store.add(job)
        body = store.snapshot(job, worker.position(job.id))
        body["messages"] = extra
        return JSONResponse(body, status_code=201)

    def _job(job_id: str) -> Job:
        job = store.get(job_id) if _JOB_RE.match(job_id) else None
        if job is None:
            raise HTTPException(404, "no such job (finished jobs are deleted after a while)")
        return job

    @app.get("/api/jobs/{job_id}")
    async def get_job(job_id: str, request: Request) -> dict:
        job = _job(job_id)
        return store.snapshot(job, request.app.state.worker.position(job.id))

    def _file(job: Job, n: int) -> FileItem:
        if not 0 <= n < len(job.files):
            raise HTTPException(404, "no such file in this job")
        return job.files[n]

    @app.get("/api/jobs/{job_id}/files/{n}/download")
    async def download(job_id: str, n: int) -> FileResponse:
        job = _job(job_id)
        f = _file(job, n)
        with store.lock:
            name, saved_as = f.download, f.download_name
        if not name or not (job.directory / name).is_file():
            raise HTTPException(404, "not protected (yet)")
        media = "video/mp4" if name.endswith(".mp4") else "image/png"
        return FileResponse(job.directory / name, media_type=media, filename=saved_as, headers={"Cache-Control": "no-store"})

    @app.get("/api/jobs/{job_id}/files/{n}/{kind}")
    async def image(job_id: str, n: int, kind: str) -> FileResponse:
        job = _job(job_id)
        f = _file(job, n)
        if kind not in IMAGE_KINDS:
            raise HTTPException(404, f"no such view; expected one of {', '.join(IMAGE_KINDS)}")
        with store.lock:
            ready = kind in f.images
        path = job.directory / f"{f.index}_{kind}.png"
        if not ready or not path.is_file():
            raise HTTPException(404, "not ready")
        return FileResponse(path, media_type="image/png", headers={"Cache-Control": "no-store"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
