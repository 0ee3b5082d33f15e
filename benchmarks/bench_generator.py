"""Speed of one forward pass against the iterative attack it replaces (seed 002 Table 9 shape).

On the 512x512 built-in sample, in one run on this machine: seconds to protect the photo with
20-step PGD on StarGAN at the generator's eps (alpha 1 level, every domain each step) against the
generator (``--method generator``, median of ``--repeat`` runs), both through
:func:`~faceshield.pipeline.image.protect_array` including face detection; the ratio; and the
frames per second of a 512x512 video protected with the generator on every frame (decode, detect,
one forward pass, encode H.264).

    python benchmarks/bench_generator.py [--generator disrupter-stargan] [--frames 20]
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import RESULTS, astronaut, environment
from faceshield.generators import create_generator
from faceshield.pipeline import ProtectConfig
from faceshield.pipeline.config import DEFAULT_GENERATOR
from faceshield.pipeline.image import protect_array


def clip(path: Path, rgb: np.ndarray, n: int) -> None:
    """A 512x512 H.264 clip of ``n`` frames: the photo shifted a little each frame."""
    import av

    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = rgb.shape[1], rgb.shape[0], "yuv420p"
        for i in range(n):
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(np.roll(rgb, 2 * i, axis=1)), format="rgb24")
            f.pts = i
            for p in v.encode(f):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--generator", default=DEFAULT_GENERATOR)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--out", type=Path, default=RESULTS / "generator_speed")
    args = ap.parse_args()
    rgb = astronaut()
    g = create_generator(args.generator)
    levels = g.eps * 255
    gen_cfg = ProtectConfig(method=f"generator:{args.generator}")
    pgd_cfg = ProtectConfig(method="pgd", targets=(g.info.trained_against[0],), eps=g.eps, alpha=1 / 255, steps=20)
    protect_array(rgb, gen_cfg)  # warm-up: models loaded, first-call allocations
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        protect_array(rgb, gen_cfg)
        times.append(time.perf_counter() - t0)
    t_gen = statistics.median(times)
    t0 = time.perf_counter()
    protect_array(rgb, pgd_cfg)
    t_pgd = time.perf_counter() - t0
    from faceshield.pipeline.video import protect_video

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "clip.mp4"
        clip(src, rgb, args.frames)
        s = protect_video(src, Path(tmp) / "out.mp4", gen_cfg, measure=False)
    rec = {"generator": args.generator, "eps_levels": round(levels, 3), "photo": list(rgb.shape[:2]), "generator_s": round(t_gen, 3), "generator_runs": [round(t, 3) for t in times],
           "pgd20_s": round(t_pgd, 3), "pgd_settings": pgd_cfg.to_dict(), "ratio_pgd_over_generator": round(t_pgd / t_gen, 1),
           "video": {"frames": s.frames, "size": s.size, "seconds": s.seconds, "frames_per_second": s.frames_per_second, "key_frames": s.key_frames},
           "env": environment()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "generator_speed.json").write_text(json.dumps(rec, indent=1) + "\n")
    md = (f"512x512 photo, eps {levels:g} levels, one run on {rec['env'].get('processor') or 'this CPU'} ({rec['env']['threads']} threads):\n\n"
          "| protection | s / photo |\n|---|---|\n"
          f"| PGD, 20 steps on {g.info.trained_against[0]} (every domain each step) | {t_pgd:.2f} |\n"
          f"| {args.generator} (one forward pass; median of {args.repeat}) | {t_gen:.3f} |\n\n"
          f"Ratio PGD / generator: {t_pgd / t_gen:.1f}x. Video, 512x512, {s.frames} frames, every frame through the generator "
          f"(decode, MTCNN, one pass, H.264): {s.frames_per_second:.2f} frames/s.\n")
    (args.out / "generator_speed.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
