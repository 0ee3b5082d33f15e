"""(c) A Table-II-style table: Base1 (FGSM), Base2 (I-FGSM), LB (MI-FGSM) made on the white-box
MTCNN, evaluated by every extractor's full pipeline on the saved 8-bit images; SSIM_I, mask-SSIM.

Images: the built-in sample plus the first N HELEN test images of $FACESHIELD_DATA (when present).
Settings are the paper's (eps 15, alpha 1, T 20, lambda 0.5; FGSM takes one step of eps) and are
written next to the table.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from _common import environment, sample_images, write
from faceshield.core.errors import NoFaceError
from faceshield.pipeline import ProtectConfig, evaluate_pair, protect_array
from faceshield.pipeline.api import available_extractors

METHODS = {"Base1 (FGSM)": "base1", "Base2 (I-FGSM)": "base2", "LB (MI-FGSM)": "lb"}


def main(n: int = 20, budget: str = "project") -> dict:
    images = sample_images(n)
    evaluators, notes = available_extractors(None)
    names = [e.name for e in evaluators]
    rows = {}
    per_image = []
    for label, method in METHODS.items():
        cfg = ProtectConfig(method=method, budget=budget)
        acc = {k: [] for k in names}
        lost = {k: 0 for k in names}
        counted = {k: 0 for k in names}
        ssim_i, mssim, secs = [], [], []
        for name, img in images:
            try:
                t0 = time.perf_counter()
                res = protect_array(img, cfg)
                secs.append(time.perf_counter() - t0)
            except NoFaceError:
                continue
            ev = evaluate_pair(img, res.rgb, evaluators, res.face_boxes)
            ssim_i.append(ev.ssim_i)
            mssim.append(ev.mask_ssim)
            for r in ev.extractors:
                counted[r.extractor] += r.faces_clean
                lost[r.extractor] += r.faces_lost
                acc[r.extractor] += [v for v in r.nme_per_face if v is not None]
            per_image.append({"method": method, "image": name, **ev.to_dict()})
        rows[label] = {
            "nme": {k: (float(np.mean(v)) if v else None) for k, v in acc.items()},
            "faces_lost": {k: f"{lost[k]}/{counted[k]}" for k in names},
            "ssim_i": float(np.mean(ssim_i)),
            "mask_ssim": float(np.mean(mssim)),
            "images": len(ssim_i),
            "seconds_per_image": float(np.mean(secs)),
        }
    settings = {"eps_levels": 15, "alpha_levels": 1, "steps": 20, "decay": 0.5, "budget": budget, "targets": ["mtcnn"], "mask": "face (boxes x1.6)", "jitter": 9, "seed": 0, "fgsm": "one step of eps"}
    record = {"benchmark": "table2", "settings": settings, "images": [n for n, _ in images], "rows": rows, "per_image": per_image, "notes": notes, "env": environment()}
    md = [f"## (c) Table II on our extractors ({len(images)} images: astronaut + {len(images) - 1} HELEN test)", "",
          "Perturbation made on MTCNN (white box); every extractor runs its full pipeline on the saved PNG. NME is a fraction of the normaliser "
          "(MTCNN: eye centres; dlib68: outer eye corners 36/45), ground truth = the extractor's own output on the clean image, mean over faces still found; "
          "'lost' = faces the extractor no longer finds. SSIM_I: whole image; mask-SSIM: protected face boxes.", "",
          f"Settings: {settings}", "",
          "| attack | " + " | ".join(f"NME {k}" for k in names) + " | " + " | ".join(f"lost {k}" for k in names) + " | SSIM_I | mask-SSIM | s/image |",
          "|---|" + "---|" * (2 * len(names) + 3)]
    for label, r in rows.items():
        md.append(f"| {label} | " + " | ".join("-" if r["nme"][k] is None else f"{r['nme'][k]:.3f}" for k in names) + " | " + " | ".join(r["faces_lost"][k] for k in names) + f" | {r['ssim_i']:.3f} | {r['mask_ssim']:.3f} | {r['seconds_per_image']:.2f} |")
    md.append("")
    write(f"table2_{budget}", record, "\n".join(md) + "\n")
    return record


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-n", type=int, default=20, help="HELEN test images to use besides the sample")
    ap.add_argument("--budget", default="project", choices=["project", "paper"])
    a = ap.parse_args()
    main(a.n, a.budget)
