"""After MagDR (simplified: detect by S_cons, then the greedy restoration search of
:class:`faceshield.defenses.magdr.Reconstructor`, at most 2 restorations): what each protection
still does, on the 8 photos of the visibility frontier (the sample, HELEN test 1-4, CelebA
009900-009902).

Per protection: photos detected as disrupted; StarGAN edits still disrupted (L2 >= 0.05 against
the clean photo's edits, clean alignment); faces protected for MTCNN and FAN (lost or NME >= 0.4
against the clean photo); PSNR of the reconstructed photo against the clean one; the restorations
chosen. The clean photos go through the same pipeline (a false detection costs the forger fidelity).

    python benchmarks/magdr_reconstruct.py     # about 8 min on 2 cores
"""
from __future__ import annotations

import collections
import time

import numpy as np

from _common import environment, write
from default_protection import photos
from faceshield.benchmark.measure import PROTECTED_NME
from faceshield.deepfake.edit import DISRUPTED_L2, measure_disruption
from faceshield.defenses.magdr import Reconstructor
from faceshield.metrics.image import psnr
from faceshield.models import create_extractor
from faceshield.pipeline import ProtectConfig, evaluate_pair, protect_array

PROTECTIONS = {"none (clean photo)": None, "subtle (default)": ProtectConfig.preset("subtle"), "paper": ProtectConfig.preset("paper"), "quality": ProtectConfig.preset("quality")}
EVALUATORS = ["mtcnn", "fan"]


def main() -> None:
    images = photos()
    evaluators = [create_extractor(n) for n in EVALUATORS]
    detector = create_extractor("mtcnn")
    rec = Reconstructor()
    rows = []
    t0 = time.perf_counter()
    for pname, cfg in PROTECTIONS.items():
        detected, no_face, dis, dis_before, edits, ps, chosen = 0, 0, 0, 0, 0, [], collections.Counter()
        prot, faces = dict.fromkeys(EVALUATORS, 0), dict.fromkeys(EVALUATORS, 0)
        for stem, rgb in images:
            res = protect_array(rgb, cfg) if cfg is not None else None
            x = res.rgb if res is not None else rgb
            out, r = rec(x)
            detected += r["detected"]
            no_face += r["no_face"]
            chosen.update(r["restorations"])
            l2 = measure_disruption(rgb, out, "stargan").l2_each
            dis += sum(v >= DISRUPTED_L2 for v in l2)
            dis_before += sum(v >= DISRUPTED_L2 for v in measure_disruption(rgb, x, "stargan").l2_each)
            edits += len(l2)
            boxes = (res.face_boxes if res is not None else None) or [f.box for f in detector.detect(rgb)]
            ev = evaluate_pair(rgb, out, evaluators, boxes, visibility=False)
            for e in ev.extractors:
                faces[e.extractor] += e.faces_clean
                prot[e.extractor] += sum(v is None or v >= PROTECTED_NME for v in e.nme_per_face)
            ps.append(psnr(rgb, out))
            print(f"  {pname} {stem}: {r}", flush=True)
        rows.append({"protection": pname, "detected": detected, "no_face": no_face, "photos": len(images), "stargan_before": dis_before, "stargan_after": dis, "edits": edits,
                     "protected": prot, "faces": faces, "psnr": float(np.mean([p for p in ps if np.isfinite(p)] or [float("inf")])), "restorations": dict(chosen)})
        print(rows[-1], flush=True)
    md = ["## After MagDR (simplified): what each protection keeps", "",
          f"{len(images)} photos (the sample, HELEN test 1-4, CelebA 009900-009902). Detection: S_cons above {rec.detector.threshold} (fitted on held-out CelebA, 5 % of clean photos flagged); "
          "reconstruction: at most 2 restorations chosen greedily by the lowest S_cons among 22 (JPEG, blur, resize, median, bilateral, NL-means, TV, wavelet, bit depth). "
          f"StarGAN: edits with L2 >= {DISRUPTED_L2} against the clean photo's. Landmarks: lost or NME >= {PROTECTED_NME}. PSNR against the clean photo (inf counted out). "
          f"Command: `python benchmarks/magdr_reconstruct.py` ({time.perf_counter() - t0:.0f} s).", "",
          "| protection | detected (no face for the editor) | StarGAN disrupted before → after | " + " | ".join(f"protected {e} after" for e in EVALUATORS) + " | PSNR after (dB) | restorations chosen |",
          "|---" * (5 + len(EVALUATORS)) + "|"]
    for r in rows:
        md.append(f"| {r['protection']} | {r['detected']}/{r['photos']} ({r['no_face']}) | {r['stargan_before']} → {r['stargan_after']} of {r['edits']} | "
                  + " | ".join(f"{r['protected'][e]}/{r['faces'][e]}" for e in EVALUATORS)
                  + f" | {r['psnr']:.1f} | {', '.join(f'{k} ×{v}' for k, v in sorted(r['restorations'].items(), key=lambda kv: -kv[1])) or '-'} |")
    write("magdr_reconstruct", {"benchmark": "magdr_reconstruct", "rows": rows, "env": environment()}, "\n".join(md) + "\n")


if __name__ == "__main__":
    main()
