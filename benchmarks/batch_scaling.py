"""Batch throughput: photos per second with 1 and 2 workers on this machine's cores, and through Ray.

Protects the same N photos (HELEN test photos of $FACESHIELD_DATA, else copies of the built-in
sample) with the `paper` preset (``faceshield protect DIR -o OUT --preset paper``, no evaluation) in four ways,
one after the other in one run, so that the ratios share the machine's state:

* 1 worker, this process, 1 torch thread (the unit of scaling);
* 1 worker, this process, torch's default threads (what a plain run does);
* 2 worker processes (``--workers 2``), one thread each;
* 2 Ray actors on a local cluster (``--ray --workers 2``).

Two rates per row: over the whole run (start-up, model loading and the local cluster included)
and in the steady state (between the first and the last item to finish, from the journal).

    python benchmarks/batch_scaling.py [N]
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from _common import DATA, astronaut, environment, write
from faceshield.pipeline import ProtectConfig
from faceshield.pipeline.batch import JOURNAL_NAME, Journal, protect_batch


def photos(n: int, into: Path) -> str:
    test = sorted((DATA / "landmarks68" / "test").glob("*.jpg"))[:n]
    if len(test) == n:
        for p in test:
            shutil.copy(p, into / p.name)
        return f"the first {n} HELEN test photos of {DATA}/landmarks68/test"
    face = astronaut()
    for i in range(n):
        Image.fromarray(np.ascontiguousarray(np.roll(face, 2 * i, axis=1))).save(into / f"s{i:03d}.png")
    return f"{n} shifted copies of the built-in sample (512x512)"


def main(n: int = 16) -> dict:
    tmp = Path(tempfile.mkdtemp())
    src = tmp / "in"
    src.mkdir()
    what = photos(n, src)
    default_threads = torch.get_num_threads()
    modes = [
        ("1 worker, 1 thread", dict(workers=1), 1),
        (f"1 worker, {default_threads} threads", dict(workers=1), default_threads),
        ("2 processes (--workers 2)", dict(workers=2), default_threads),
        ("2 Ray actors, local cluster (--ray --workers 2)", dict(workers=2, ray_address="local"), default_threads),
    ]
    rows = []
    try:
        for label, kw, threads in modes:
            torch.set_num_threads(threads)
            out = tmp / f"out{len(rows)}"
            t0 = time.perf_counter()
            s = protect_batch([src], out, ProtectConfig(), evaluate_with=[], **kw)
            wall = time.perf_counter() - t0
            assert s.failed == 0, [r.error for r in s.results if not r.ok]
            ends = sorted(r["finished"] for r in Journal(out / JOURNAL_NAME).records())
            steady = (len(ends) - 1) / (ends[-1] - ends[0]) if len(ends) > 1 and ends[-1] > ends[0] else float("nan")
            rows.append({"mode": label, "wall_s": wall, "items_per_s": n / wall, "steady_items_per_s": steady})
            print(rows[-1], flush=True)
    finally:
        torch.set_num_threads(default_threads)
        shutil.rmtree(tmp, ignore_errors=True)
    vrows = video_rows()
    base, base_steady = rows[0]["items_per_s"], rows[0]["steady_items_per_s"]
    md = ["## Batch throughput (photos per second)", "", f"{what}; the `paper` preset (ProtectConfig(): {ProtectConfig().method}, eps 15, T {ProtectConfig().steps}, target mtcnn), no evaluation; "
          f"{environment()['cpu_count']} cores. Command: `python benchmarks/batch_scaling.py {n}`. Ratios are against the first row, measured in the same run (goal: >= 1.7x with 2 workers).", "",
          "| mode | wall (s) | items/s, whole run | ratio | items/s, steady state | ratio |", "|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['mode']} | {r['wall_s']:.1f} | {r['items_per_s']:.2f} | {r['items_per_s'] / base:.2f}x | {r['steady_items_per_s']:.2f} | {r['steady_items_per_s'] / base_steady:.2f}x |")
    if vrows:
        md += ["", f"One video split by frame ranges (`--workers`): {vrows[0]['video']}, the `paper` preset, `--keyframe-interval 10`, H.264 CRF 18, measured after the codec.", "",
               "| mode | wall (s) | frames/s | ratio |", "|---|---|---|---|"]
        for r in vrows:
            md.append(f"| {r['mode']} | {r['wall_s']:.1f} | {r['frames_per_s']:.2f} | {r['frames_per_s'] / vrows[0]['frames_per_s']:.2f}x |")
    record = {"benchmark": "batch_scaling", "photos": what, "n": n, "settings": ProtectConfig().to_dict(), "rows": rows, "video_rows": vrows, "env": environment()}
    write("batch_scaling", record, "\n".join(md) + "\n")
    return record


def video_rows() -> list[dict]:
    """The first video of $FACESHIELD_DATA/videos protected whole (1 worker, 1 thread) and split across 2 processes."""
    from faceshield.pipeline.batch import protect_video_split
    from faceshield.pipeline.video import protect_video

    vids = sorted((DATA / "videos").glob("*.mp4"))
    if not vids:
        return []
    tmp = Path(tempfile.mkdtemp())
    rows, default = [], torch.get_num_threads()
    try:
        for label, threads, run in (("1 worker, 1 thread", 1, lambda d: protect_video(vids[0], d, ProtectConfig(), keyframe_interval=10)),
                                    ("2 processes (--workers 2)", None, lambda d: protect_video_split(vids[0], d, ProtectConfig(), workers=2, keyframe_interval=10))):
            if threads:
                torch.set_num_threads(threads)
            t0 = time.perf_counter()
            s = run(tmp / f"v{len(rows)}.mp4")
            wall = time.perf_counter() - t0
            torch.set_num_threads(default)
            rows.append({"mode": label, "video": f"{vids[0].name} ({s.frames} frames, {s.size[0]}x{s.size[1]})", "wall_s": wall, "frames_per_s": s.frames / wall,
                         "key_frames": s.key_frames, "after_codec_nme": s.after_codec.nme if s.after_codec else None})
            print(rows[-1], flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 16)
