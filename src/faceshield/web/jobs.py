"""Jobs of the web page: what was uploaded, its progress per file and per step, one worker thread
that protects them in order, and the janitor that deletes everything after ``keep_seconds``.

Every file of a job lives in ``work_dir/<job id>/`` under names made here (``0.upload``,
``0_protected.png`` ...); the job id is a random uuid4 hex. The worker is the only thread that
runs torch, so the models it loads are cached without locks and the server stays responsive.
"""
from __future__ import annotations

import logging
import queue
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

JOB_ID = r"[0-9a-f]{32}"
#: the images a file offers (``GET /api/jobs/{id}/files/{n}/{kind}``), each a PNG in the job's directory
IMAGE_KINDS = ("original", "protected", "diff", "swap", "edit")
#: how much the difference view multiplies |protected - original|
AMPLIFY = 10


@dataclass
class Step:
    """One stage of a file: ``state`` is pending, running, done, failed or skipped; ``done`` of
    ``total`` units (optimiser iterations, video frames; 1 for one-shot stages); ``note`` says why
    it failed or was skipped."""

    name: str
    label: str
    state: str = "pending"
    done: int = 0
    total: int = 1
    note: str | None = None


@dataclass
class FileItem:
    """One uploaded file. ``state``: queued, running, done, failed (``error`` says why, one line
    starting with the name) or rejected (refused on upload). ``images``: the kinds ready to show."""

    index: int
    name: str
    stem: str
    kind: str | None = None  # image / video
    state: str = "queued"
    error: str | None = None
    steps: list[Step] = field(default_factory=list)
    size: list[int] | None = None
    seconds: float | None = None
    evaluation: dict | None = None
    checks: dict = field(default_factory=dict)
    images: list[str] = field(default_factory=list)
    download: str | None = None  # file name in the job directory
    download_name: str | None = None  # what the browser saves it as
    notes: list[str] = field(default_factory=list)

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)


@dataclass
class Job:
    id: str
    directory: Path
    preset: str
    checks: bool
    files: list[FileItem]
    state: str = "queued"  # queued, running, done
    created: float = field(default_factory=time.time)
    finished: float | None = None


def new_job_id() -> str:
    return uuid.uuid4().hex


class JobStore:
    """The jobs by id, under one lock; :meth:`sweep` deletes finished jobs older than ``keep_seconds``
    (and their directories), :meth:`snapshot` gives a job's state as plain data."""

    def __init__(self, work_dir: Path, keep_seconds: float) -> None:
        self.work_dir = work_dir
        self.keep_seconds = keep_seconds
        self.lock = threading.RLock()
        self.jobs: dict[str, Job] = {}
        self.uploading: set[str] = set()  # job directories still receiving their upload

    def add(self, job: Job) -> None:
        with self.lock:
            self.jobs[job.id] = job

    def get(self, job_id: str) -> Job | None:
        with self.lock:
            return self.jobs.get(job_id)

    def update(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` (which changes jobs) under the lock, so a snapshot never sees half a change."""
        with self.lock:
            fn()

    def sweep(self, now: float | None = None) -> list[str]:
        """Delete every finished job (and any stray directory) older than ``keep_seconds``; the ids removed."""
        now = time.time() if now is None else now
        with self.lock:
            old = [j for j in self.jobs.values() if j.state == "done" and (j.finished or j.created) + self.keep_seconds <= now]
            for j in old:
                del self.jobs[j.id]
            known = set(self.jobs) | self.uploading
        for j in old:
            shutil.rmtree(j.directory, ignore_errors=True)
        try:
            strays = [p for p in self.work_dir.iterdir() if p.name not in known and p.stat().st_mtime + self.keep_seconds <= now]
        except OSError:
            strays = []
        for p in strays:  # e.g. an upload that was cut off
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        if old:
            log.info("janitor removed %d job(s)", len(old))
        return [j.id for j in old]

    def snapshot(self, job: Job, queue_position: int | None = None) -> dict:
        with self.lock:
            return {
                "id": job.id, "state": job.state, "preset": job.preset, "checks": job.checks, "queue_position": queue_position,
                "expires_in": None if job.finished is None else max(0, round(job.finished + self.keep_seconds - time.time())),
                "files": [_file_dict(job, f) for f in job.files],
            }


def _file_dict(job: Job, f: FileItem) -> dict:
    base = f"/api/jobs/{job.id}/files/{f.index}"
    units = sum(s.total for s in f.steps if s.state != "skipped") or 1
    done = sum(s.total if s.state in ("done", "failed") else s.done for s in f.steps if s.state != "skipped")
    return {
        "index": f.index, "name": f.name, "kind": f.kind, "state": f.state, "error": f.error,
        "progress": 1.0 if f.state in ("done", "failed", "rejected") else round(done / units, 3),
        "steps": [{"name": s.name, "label": s.label, "state": s.state, "done": s.done, "total": s.total, "note": s.note} for s in f.steps],
        "size": f.size, "seconds": f.seconds, "evaluation": f.evaluation, "checks": f.checks, "notes": f.notes,
        "images": {k: f"{base}/{k}" for k in f.images},
        "download": f"{base}/download" if f.download else None, "download_name": f.download_name,
    }


def amplified_difference(a: np.ndarray, b: np.ndarray, amplify: int = AMPLIFY) -> np.ndarray:
    """``(H, W, 3)`` uint8: ``|b - a| * amplify``, clipped to 255 (black = unchanged)."""
    return np.clip(np.abs(b.astype(np.int16) - a.astype(np.int16)) * amplify, 0, 255).astype(np.uint8)


class Worker:
    """One daemon thread protecting queued jobs in order with ``process(job)``; ``stop`` ends it
    after the job in hand."""

    def __init__(self, process: Callable[[Job], None], max_queued: int) -> None:
        self.process = process
        self.queue: queue.Queue[Job | None] = queue.Queue(maxsize=max_queued)
        self.pending: list[str] = []  # job ids in queue order, for the queue position
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._loop, name="faceshield-worker", daemon=True)
        self.thread.start()

    def submit(self, job: Job) -> bool:
        """Queue ``job``; False when the queue is full."""
        with self._lock:
            try:
                self.queue.put_nowait(job)
            except queue.Full:
                return False
            self.pending.append(job.id)
            return True

    def position(self, job_id: str) -> int | None:
        """How many jobs wait before ``job_id`` (0: next), None when not waiting."""
        with self._lock:
            return self.pending.index(job_id) if job_id in self.pending else None

    def stop(self, timeout: float = 5.0) -> None:
        try:
            self.queue.put_nowait(None)
        except queue.Full:
            pass
        self.thread.join(timeout)

    def _loop(self) -> None:
        while True:
            job = self.queue.get()
            if job is None:
                return
            with self._lock:
                if job.id in self.pending:
                    self.pending.remove(job.id)
            try:
                self.process(job)
            except Exception:  # never let one job end the worker
                log.exception("job %s failed", job.id)
