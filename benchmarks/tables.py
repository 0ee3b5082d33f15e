"""Paper-style tables on our extractors, every extractor evaluated through its full pipeline on the
saved 8-bit images (NME: fraction of the scheme's normaliser, ground truth = the extractor's own
output on the clean image, mean over faces still found; 'lost' = faces no longer found).

* ``table2``: Base1 (FGSM), Base2 (I-FGSM), LB (MI-FGSM) made on one white-box extractor (MTCNN).
* ``table1``: the white-box matrix: LB made on each white-box extractor (rows) x every extractor
  attacked (columns), including the black-box ones (transfer).

Images: the built-in sample plus the first N HELEN test images of $FACESHIELD_DATA (when present).
Settings (the paper's: eps 15, alpha 1, T 20, lambda 0.5; FGSM one step of eps) are written next
to every table, with versions and timings.

    python benchmarks/tables.py table2 -n 20
    python benchmarks/tables.py table1 -n 20
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


def run_rows(configs: dict[str, ProtectConfig], images, evaluators) -> tuple[dict, list]:
    """Protect every image with each config and aggregate the evaluation per config."""
    names = [e.name for e in evaluators]
    rows, per_image = {}, []
    for label, cfg in configs.items():
        acc = {k: [] for k in names}
        lost = dict.fromkeys(names, 0)
        counted = dict.fromkeys(names, 0)
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
            per_image.append({"row": label, "image": name, **ev.to_dict()})
        rows[label] = {
            "nme": {k: (float(np.mean(v)) if v else None) for k, v in acc.items()},
            "faces_lost": {k: f"{lost[k]}/{counted[k]}" for k in names},
            "ssim_i": float(np.mean(ssim_i)) if ssim_i else None,
            "mask_ssim": float(np.mean(mssim)) if mssim else None,
            "images": len(ssim_i),
            "seconds_per_image": float(np.mean(secs)) if secs else None,
        }
    return rows, per_image


def markdown(title: str, intro: str, settings: dict, rows: dict, evaluators) -> str:
    names = [e.name for e in evaluators]
    kinds = {e.name: e.kind.value for e in evaluators}
    f = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    md = [f"## {title}", "", intro, "", f"Settings: {settings}", "",
          "| perturbation | " + " | ".join(f"NME {k} ({kinds[k]})" for k in names) + " | SSIM_I | mask-SSIM | s/image |",
          "|---|" + "---|" * (len(names) + 3)]
    for label, r in rows.items():
        md.append(f"| {label} | " + " | ".join(f"{f(r['nme'][k])} (lost {r['faces_lost'][k]})" for k in names) + f" | {f(r['ssim_i'])} | {f(r['mask_ssim'])} | {f(r['seconds_per_image'])} |")
    return "\n".join(md) + "\n"


INTRO = ("Every extractor runs its full pipeline on the saved PNG. NME: fraction of the normaliser (MTCNN: eye centres; "
         "68-point models: outer eye corners 36/45; FaceMesh: outer eye corners 33/263), ground truth = the extractor's own "
         "output on the clean image, mean over faces still found; 'lost' = faces the extractor no longer finds. "
         "SSIM_I: whole image; mask-SSIM: protected face boxes.")


def main(table: str = "table2", n: int = 20, budget: str = "project") -> dict:
    images = sample_images(n)
    evaluators, notes = available_extractors(None)
    base = dict(eps=15 / 255, alpha=1 / 255, steps=20, decay=0.5, budget=budget, seed=0)
    if table == "table2":
        configs = {label: ProtectConfig(method=m, targets=("mtcnn",), **base) for label, m in METHODS.items()}
        title = f"Table II on our extractors: attacks made on MTCNN ({len(images)} images)"
    else:
        sources = [e.name for e in evaluators if e.differentiable]
        configs = {f"LB on {s}": ProtectConfig(method="lb", targets=(s,), **base) for s in sources}
        title = f"Table I on our extractors: LB made on each white-box extractor ({len(images)} images)"
    rows, per_image = run_rows(configs, images, evaluators)
    settings = {**{k: (round(v * 255, 3) if k in ("eps", "alpha") else v) for k, v in base.items()}, "units": "eps/alpha in 8-bit levels", "mask": "face boxes x1.6", "jitter": 9, "fgsm": "one step of eps"}
    record = {"benchmark": table, "settings": settings, "images": [name for name, _ in images], "rows": rows, "per_image": per_image, "notes": notes, "env": environment()}
    write(f"{table}_{budget}", record, markdown(title, INTRO + (" Skipped: " + "; ".join(notes) if notes else ""), settings, rows, evaluators))
    return record


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("table", choices=["table1", "table2"])
    ap.add_argument("-n", type=int, default=20, help="HELEN test images to use besides the sample")
    ap.add_argument("--budget", default="project", choices=["project", "paper"])
    a = ap.parse_args()
    main(a.table, a.n, a.budget)
