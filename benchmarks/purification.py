"""What a forger's clean-up leaves of each protection (issue 16's first table, before MagDR's own
detector and search): every protection is made once per photo, then each restoration of
:mod:`faceshield.transforms.restore` (and JPEG, blur, down-up resizing) is run on the protected
photo, and what the protection still does is measured on the restored photo:

* StarGAN: share of (face, domain) edits still disrupted, L2(G(r(x + eta)), G(x)) >= 0.05 on the
  [-1, 1] output crop at the clean alignment, beside the floor the restoration causes on the clean
  photo alone, L2(G(r(x)), G(x)) (a restoration whose floor is >= 0.05 spoils the forger's edit too);
* landmarks: faces protected (lost, or NME >= 0.4 against the extractor's points on the *clean*
  photo) for MTCNN and FAN;
* PSNR of r(x + eta) against x (what the forger's photo costs in fidelity).

Photos: the built-in sample, HELEN test 1-4, CelebA 009900-009902 (none trained anything here).

    python benchmarks/purification.py [PROTECTION ...]   # all (about 15 min on 2 cores), or the named ones
"""
from __future__ import annotations

import json
import sys
import time

import numpy as np

from _common import RESULTS, environment, write
from default_protection import photos
from faceshield.benchmark.measure import PROTECTED_NME
from faceshield.deepfake.edit import DISRUPTED_L2, measure_disruption
from faceshield.metrics.image import psnr
from faceshield.models import create_extractor
from faceshield.pipeline import ProtectConfig, evaluate_pair, protect_array
from faceshield.transforms import create_transform

PROTECTIONS = {"subtle (default)": ProtectConfig.preset("subtle"), "paper": ProtectConfig.preset("paper"), "quality": ProtectConfig.preset("quality"),
               "subtle + EOT (JPEG, resize, blur)": ProtectConfig.preset("subtle", eot=("default",), eot_samples=2)}
RESTORATIONS = ["identity", "jpeg75", "blur:1.0", "resize:0.5", "median:3", "bilateral:25", "nlmeans:5", "tv:0.05", "wavelet:0.04", "bits:5", "resizepad:0.9", "deflect:200"]
EVALUATORS = ["mtcnn", "fan"]


def main(names: list[str]) -> None:
    images = photos()
    evaluators = [create_extractor(n) for n in EVALUATORS]
    detector = create_extractor("mtcnn")
    floors = {r: [] for r in RESTORATIONS}
    for _, rgb in images:  # what each restoration does to a clean photo's edits
        for r in RESTORATIONS:
            floors[r] += measure_disruption(rgb, create_transform(r)(rgb), "stargan").l2_each
    out = RESULTS / "purification.json"
    rows = [r for r in (json.loads(out.read_text())["rows"] if out.exists() else []) if names and r["protection"] not in names]
    for pname, cfg in PROTECTIONS.items():
        if names and pname not in names:
            continue
        t0 = time.perf_counter()
        made = [(rgb, protect_array(rgb, cfg)) for _, rgb in images]
        secs = (time.perf_counter() - t0) / len(images)
        for r in RESTORATIONS:
            t = create_transform(r)
            dis, edits, prot, faces, ps = 0, 0, dict.fromkeys(EVALUATORS, 0), dict.fromkeys(EVALUATORS, 0), []
            for rgb, res in made:
                washed = t(res.rgb)
                l2 = measure_disruption(rgb, washed, "stargan").l2_each
                dis += sum(v >= DISRUPTED_L2 for v in l2)
                edits += len(l2)
                boxes = res.face_boxes or [f.box for f in detector.detect(rgb)]
                ev = evaluate_pair(rgb, washed, evaluators, boxes, visibility=False)
                for e in ev.extractors:
                    faces[e.extractor] += e.faces_clean
                    prot[e.extractor] += sum(v is None or v >= PROTECTED_NME for v in e.nme_per_face)
                ps.append(psnr(rgb, washed))
            fl = floors[r]
            rows.append({"protection": pname, "restoration": r, "stargan_disrupted": dis, "stargan_edits": edits,
                         "floor_disrupted": int(sum(v >= DISRUPTED_L2 for v in fl)), "floor_edits": len(fl), "floor_l2": float(np.mean(fl)),
                         "protected": prot, "faces": faces, "psnr": float(np.mean([p for p in ps if np.isfinite(p)] or [float("inf")])), "protect_seconds": secs})
            print(rows[-1], flush=True)
    md = ["## What a forger's clean-up leaves of each protection", "",
          f"{len(images)} photos (the sample, HELEN test 1-4, CelebA 009900-009902). Each protection made once per photo, each restoration run on the protected photo. "
          f"StarGAN: edits of the restored photo with L2 >= {DISRUPTED_L2} against the clean photo's edits ([-1, 1] output crop, clean alignment); "
          "floor: the same for the restored *clean* photo (what the restoration alone does to the edits). "
          f"Landmarks: faces lost or with NME >= {PROTECTED_NME} against the extractor's points on the clean photo. PSNR of the restored protected photo against the clean one. "
          "Command: `python benchmarks/purification.py`.", "",
          "| protection | restoration | StarGAN disrupted | floor (clean photo restored) | " + " | ".join(f"protected {e}" for e in EVALUATORS) + " | PSNR (dB) |",
          "|---" * (5 + len(EVALUATORS)) + "|"]
    for r in rows:
        md.append(f"| {r['protection']} | {r['restoration']} | {r['stargan_disrupted']}/{r['stargan_edits']} | {r['floor_disrupted']}/{r['floor_edits']} (L2 {r['floor_l2']:.3f}) | "
                  + " | ".join(f"{r['protected'][e]}/{r['faces'][e]}" for e in EVALUATORS) + f" | {r['psnr']:.1f} |")
    write("purification", {"benchmark": "purification", "rows": rows, "settings": {k: v.to_dict() for k, v in PROTECTIONS.items()}, "env": environment()}, "\n".join(md) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
