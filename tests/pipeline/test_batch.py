"""Batch protection: journal, resume after SIGKILL (exactly once, nothing partial), local processes, Ray."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceshield.pipeline import ProtectConfig
from faceshield.pipeline.batch import JOURNAL_NAME, BatchItem, Journal, is_complete, protect_batch

FAST = ProtectConfig(steps=3)


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory, astronaut):
    """Eight 256x256 face photos (the sample's face, shifted so that no two are the same)."""
    d = tmp_path_factory.mktemp("batch_in")
    face = astronaut[20:276, 100:356]
    for i in range(8):
        Image.fromarray(np.ascontiguousarray(np.roll(face, 3 * i, axis=1))).save(d / f"p{i}.png")
    return d


def _valid_png(p: Path, size=(256, 256)) -> bool:
    with Image.open(p) as im:
        im.load()
        return im.format == "PNG" and im.size == size


def _pngs(out: Path) -> list[str]:
    return sorted(p.name for p in out.glob("*.png"))


def _linf(a: Path, b: Path) -> int:
    return int(np.abs(np.asarray(Image.open(a).convert("RGB"), np.int16) - np.asarray(Image.open(b).convert("RGB"), np.int16)).max())


def test_journal_survives_a_torn_line(tmp_path):
    j = Journal(tmp_path / JOURNAL_NAME)
    j.append({"key": "a", "state": "done"})
    with open(j.path, "ab") as f:
        f.write(b'{"key": "b", "sta')  # killed mid-write
    j.append({"key": "c", "state": "done"})
    assert [r["key"] for r in j.records()] == ["a", "c"]
    assert j.done_keys() == {"a", "c"}


def test_serial_batch_writes_journal_and_summary(tmp_path, photo_dir):
    src = sorted(photo_dir.glob("*.png"))[:2]
    out = tmp_path / "out"
    s = protect_batch([*src, tmp_path / "missing.png"], out, FAST, evaluate_with=[])
    assert (s.done, s.failed) == (2, 1)
    assert _pngs(out) == [p.name for p in src]
    assert all(_valid_png(out / p.name) and 0 < _linf(p, out / p.name) <= 15 for p in src)
    recs = Journal(out / JOURNAL_NAME).records()
    assert sorted(r["state"] for r in recs) == ["done", "done", "failed"]
    summary = json.loads(s.summary_json.read_text())
    assert summary["totals"]["items"] == 3 and summary["totals"]["failed"] == 1
    assert s.summary_csv.read_text().splitlines()[0].startswith("input,output,state")
    # a second run without --resume refuses to replace the outputs; with it, nothing is redone
    assert protect_batch(src, out, FAST, evaluate_with=[]).failed == 2
    again = protect_batch(src, out, FAST, evaluate_with=[], resume=True)
    assert (len(again.skipped), again.results) == (2, [])


def test_resume_recovers_unjournaled_and_redoes_half_written(tmp_path, photo_dir):
    src = sorted(photo_dir.glob("*.png"))[:3]
    out = tmp_path / "out"
    protect_batch(src, out, FAST, evaluate_with=[])
    journal = out / JOURNAL_NAME
    journal.unlink()  # killed after the renames, before the journal lines
    (out / "p1.json").unlink()  # killed between p1's PNG and its report
    (out / ".p2.png.abc123.tmp").write_bytes(b"partial")  # a temporary file a kill left
    (out / "p2.png").unlink()
    (out / "p2.json").unlink()
    stat0 = (out / "p0.png").stat()
    s = protect_batch(src, out, FAST, evaluate_with=[], resume=True)
    assert [it.src.name for it in s.skipped] == ["p0.png"]
    assert sorted(r.input.name for r in s.results if r.ok) == ["p1.png", "p2.png"]
    assert (out / "p0.png").stat().st_mtime_ns == stat0.st_mtime_ns  # not redone
    assert not list(out.glob(".*.tmp"))
    assert all(is_complete(BatchItem(p, out / p.name)) for p in src)


def _journal_done(out: Path) -> list[str]:
    return [r["key"] for r in Journal(out / JOURNAL_NAME).records() if r.get("state") == "done"]


@pytest.mark.slow
def test_sigkilled_run_resumes_to_exactly_the_full_set(tmp_path, photo_dir):
    out = tmp_path / "out"
    cmd = [sys.executable, "-c", "from faceshield.cli.main import main; main()", "protect", str(photo_dir), "-o", str(out), "--preset", "paper", "--steps", "15", "--evaluate-with", "none", "--workers", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while len(_journal_done(out)) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None, "the run finished before it could be killed; give it more steps"
        os.killpg(proc.pid, signal.SIGKILL)  # the coordinator and its workers, mid-run
        proc.wait(30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    done_before = set(_journal_done(out))
    assert 2 <= len(done_before) < 8
    for p in out.glob("*.png"):  # whatever is visible is a whole PNG
        assert _valid_png(p)
    finished = {Path(k).name: (out / Path(k).name).stat() for k in done_before}
    res = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    names = sorted(p.name for p in photo_dir.glob("*.png"))
    assert _pngs(out) == names
    assert all(_valid_png(out / n) and 0 < _linf(photo_dir / n, out / n) <= 15 for n in names)
    for n, st in finished.items():  # finished outputs neither lost nor redone
        assert (out / n).stat().st_ino == st.st_ino and (out / n).stat().st_mtime_ns == st.st_mtime_ns
    done = _journal_done(out)
    assert sorted(done) == sorted(str((photo_dir / n).resolve()) for n in names)  # each exactly once
    assert not list(out.glob(".*"))
    assert json.loads((out / "faceshield-summary.json").read_text())["totals"] == {**json.loads((out / "faceshield-summary.json").read_text())["totals"], "items": 8, "done": 8, "failed": 0}


@pytest.mark.slow
def test_ray_local_cluster(tmp_path, photo_dir):
    pytest.importorskip("ray")
    src = sorted(photo_dir.glob("*.png"))[:3]
    out = tmp_path / "out"
    s = protect_batch(src, out, FAST, evaluate_with=[], workers=2, ray_address="local")
    assert (s.done, s.failed) == (3, 0)
    assert _pngs(out) == [p.name for p in src]
    assert all(_valid_png(out / p.name) and 0 < _linf(p, out / p.name) <= 15 for p in src)
    assert len({r["worker"] for r in Journal(out / JOURNAL_NAME).records()}) >= 1


def test_split_ranges():
    from faceshield.pipeline.batch import split_ranges

    assert split_ranges(10, 3) == [(0, 3), (3, 7), (7, 10)]
    assert split_ranges(2, 4) == [(0, 1), (1, 2)]
    assert split_ranges(5, 1) == [(0, 5)]


@pytest.mark.slow
def test_video_split_across_two_workers_keeps_order_and_audio(tmp_path, make_clip):
    from faceshield.io.video import probe_video, read_video
    from faceshield.pipeline.batch import protect_video_split

    src = tmp_path / "clip.mp4"
    make_clip(src, n=10, size=144)
    clean = read_video(src).array()
    dst = tmp_path / "out" / "clip.mp4"
    s = protect_video_split(src, dst, ProtectConfig(steps=2, jitter=3), workers=2, keyframe_interval=3, crf=10)
    info = probe_video(dst)
    assert (info.frames, info.fps, info.audio_codec) == (10, 25, "aac") and s.audio
    assert s.frames == 10 and s.settings["workers"] == 2 and s.settings["segments"] == [[0, 5], [5, 10]]
    assert s.key_frames == 4  # frames 0 and 3 of each segment: each segment's tracker starts afresh
    prot = read_video(dst).array()
    for i in range(10):  # frame i of the output is frame i of the source, protected
        d = np.abs(prot.astype(np.int16)[None] - clean.astype(np.int16)[:, None]).mean(axis=(2, 3, 4))[:, i]
        assert int(np.argmin(d)) == i
    assert 0 < s.linf <= 15 and s.after_codec.frames == 10
    assert sorted(p.name for p in dst.parent.iterdir()) == ["clip.mp4"]  # the segments are gone


@pytest.mark.slow
def test_cli_video_workers_and_refusals(tmp_path, make_clip):
    from typer.testing import CliRunner

    from faceshield.cli.main import app

    src = tmp_path / "clip.mp4"
    make_clip(src, n=6, size=144)
    run = lambda *a: CliRunner().invoke(app, [str(x) for x in a])  # noqa: E731
    res = run("protect", src, "-o", tmp_path / "out.mp4", "--steps", "2", "--jitter", "3", "--workers", "2")
    assert res.exit_code == 0, res.output
    assert "6 frames at 25 fps" in res.output and "on 2 workers" in res.output
    assert json.loads((tmp_path / "out.json").read_text())["settings"]["workers"] == 2
    res = run("protect", src, "-o", tmp_path / "again.mp4", "--resume")
    assert res.exit_code == 2 and "--resume applies to photos" in res.output
    res = run("protect", src, "-o", tmp_path / "again.mp4", "--workers", "-1")
    assert res.exit_code == 2 and "--workers: expected a positive integer" in res.output
    assert not (tmp_path / "again.mp4").exists()
