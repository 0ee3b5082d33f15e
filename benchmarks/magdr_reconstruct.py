"""After MagDR (detect by S_final, then the per-region restoration search of
:class:`faceshield.defenses.magdr.Reconstructor`): what each protection still does, on the 8
photos of the visibility frontier (the sample, HELEN test 1-4, CelebA 009900-009902).

Protections: every one we ship or reproduce: Ruiz et al.'s PGD and C&W on StarGAN (the paper's
setting), the learned generators (DeepFake Disrupter, the combined one), and the presets (`subtle`
the default, `paper`, `quality`). Per protection: photos detected as disrupted; StarGAN edits
still disrupted (L2 >= 0.05 against the clean photo's edits, clean alignment) before and after;
faces protected for MTCNN and FAN (lost or NME >= 0.4 against the clean photo) before and after;
SSIM_W of the face swap (aligned by FAN) against the clean photo's swap, before and after; PSNR of
the reconstructed photo against the clean one; the restorations chosen. The clean photos go
through the same pipeline (a false detection costs the forger fidelity).

    python benchmarks/magdr_reconstruct.py [NAME ...]    # about 60 min on 2 cores for all; NAME: only those protections
"""
from __future__ import annotations

import collections
import sys
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

PROTECTIONS = {
    "none (clean photo)": None,
    "PGD (Ruiz, StarGAN)": ProtectConfig.from_user({"targets": ("stargan",), "method": "pgd", "eps": 6.4, "alpha": 2.55, "steps": 10}),
    "C&W (StarGAN)": ProtectConfig.from_user({"targets": ("stargan",), "method": "cw", "eps": 6.4, "steps": 30}),
    "DeepFake Disrupter (generator)": ProtectConfig.from_user({"method": "generator:disrupter-stargan"}),
    "combined generator": ProtectConfig.from_user({"method": "generator"}),
    "subtle (default)": ProtectConfig.preset("subtle"),
    "paper": ProtectConfig.preset("paper"),
    "quality": ProtectConfig.preset("quality"),
}
EVALUATORS = ["mtcnn", "fan"]


def _landmarks(rgb, x, evaluators, boxes) -> tuple[dict, dict]:
    ev = evaluate_pair(rgb, x, evaluators, boxes, visibility=False)
    return ({e.extractor: sum(v is None or v >= PROTECTED_NME for v in e.nme_per_face) for e in ev.extractors},
            {e.extractor: e.faces_clean for e in ev.extractors})


def main(only: list[str] | None = None) -> None:
    from faceshield.deepfake import FaceSwapper, load_swap_model
    from faceshield.pipeline.swap import evaluate_swap

    images = photos()
    evaluators = [create_extractor(n) for n in EVALUATORS]
    detector = create_extractor("mtcnn")
    swapper = FaceSwapper(load_swap_model(None), extractor="fan")
    rec = Reconstructor()
    rows, per_photo = [], []
    t0 = time.perf_counter()
    for pname, cfg in PROTECTIONS.items():
        if only and not any(o.lower() in pname.lower() for o in only):
            continue
        detected, no_face, dis, dis_before, edits, ps, chosen = 0, 0, 0, 0, 0, [], collections.Counter()
        prot = {k: dict.fromkeys(EVALUATORS, 0) for k in ("before", "after")}
        faces = dict.fromkeys(EVALUATORS, 0)
        ssim_w = {"before": [], "after": []}
        swap_failed = {"before": 0, "after": 0}
        t1 = time.perf_counter()
        for stem, rgb in images:
            res = protect_array(rgb, cfg) if cfg is not None else None
            x = res.rgb if res is not None else rgb
            out, r = rec(x)
            detected += r["detected"]
            no_face += r["no_face"]
            chosen.update(c.split("@")[0] for c in r["restorations"])
            l2 = measure_disruption(rgb, out, "stargan").l2_each
            dis += sum(v >= DISRUPTED_L2 for v in l2)
            dis_before += sum(v >= DISRUPTED_L2 for v in measure_disruption(rgb, x, "stargan").l2_each)
            edits += len(l2)
            boxes = (res.face_boxes if res is not None else None) or [f.box for f in detector.detect(rgb)]
            for when, img in (("before", x), ("after", out)):
                p, n = _landmarks(rgb, img, evaluators, boxes)
                for e in EVALUATORS:
                    prot[when][e] += p.get(e, 0)
                sw = evaluate_swap(rgb, img, swapper)[0]
                swap_failed[when] += sw.failed
                if sw.ssim_w is not None:
                    ssim_w[when].append(sw.ssim_w)
            for e in EVALUATORS:
                faces[e] += n.get(e, 0)
            ps.append(psnr(rgb, out))
            per_photo.append({"protection": pname, "photo": stem, **{k: v for k, v in r.items()}})
            print(f"  {pname} {stem}: {r}", flush=True)
        mean = lambda v: float(np.mean(v)) if v else None  # noqa: E731
        rows.append({"protection": pname, "settings": cfg.to_dict() if cfg is not None else None, "detected": detected, "no_face": no_face, "photos": len(images),
                     "stargan_before": dis_before, "stargan_after": dis, "edits": edits, "protected_before": prot["before"], "protected_after": prot["after"], "faces": faces,
                     "ssim_w_before": mean(ssim_w["before"]), "ssim_w_after": mean(ssim_w["after"]), "swap_failed_before": swap_failed["before"], "swap_failed_after": swap_failed["after"],
                     "psnr": float(np.mean([p for p in ps if np.isfinite(p)] or [float("inf")])), "restorations": dict(chosen), "seconds": time.perf_counter() - t1})
        print(rows[-1], flush=True)
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    md = ["## After MagDR: what each protection keeps", "",
          f"{len(images)} photos (the sample, HELEN test 1-4, CelebA 009900-009902). Detection: S_final = {rec.detector.lam:.3g} S_dist + S_cons above {rec.detector.threshold:.3g} "
          "(fitted on 20 clean held-out CelebA photos, 5 % flagged; `python benchmarks/magdr_fit.py`); reconstruction: per FaceMesh region, the layers of denoisers (NL-means, TV, wavelet, "
          "bilateral, median) then of smoothing / re-encoding (JPEG, blur, resize, bit depth), top-3 families then top-1 by S_final (Alg. 1), while S_final is above the threshold. "
          f"StarGAN: edits with L2 >= {DISRUPTED_L2} against the clean photo's (5 domains per face). Landmarks: faces lost or NME >= {PROTECTED_NME} against the clean photo. "
          "SSIM_W: the face swap (our swap model, aligned by FAN) of the photo against that of the clean photo over the swapped region (lower = the protection spoils the swap more; "
          "'failed': no swap made). PSNR of the reconstructed photo against the clean one (inf counted out). "
          f"Command: `python benchmarks/magdr_reconstruct.py` ({time.perf_counter() - t0:.0f} s).", "",
          "| protection | detected (no face for the editor) | StarGAN disrupted before → after | " + " | ".join(f"protected {e} before → after" for e in EVALUATORS)
          + " | swap SSIM_W before → after (failed) | PSNR after (dB) | restorations chosen |",
          "|---" * (6 + len(EVALUATORS)) + "|"]
    for r in rows:
        md.append(f"| {r['protection']} | {r['detected']}/{r['photos']} ({r['no_face']}) | {r['stargan_before']} → {r['stargan_after']} of {r['edits']} | "
                  + " | ".join(f"{r['protected_before'][e]} → {r['protected_after'][e]} of {r['faces'][e]}" for e in EVALUATORS)
                  + f" | {fmt(r['ssim_w_before'])} → {fmt(r['ssim_w_after'])} ({r['swap_failed_before']} → {r['swap_failed_after']})"
                  + f" | {r['psnr']:.1f} | {', '.join(f'{k} ×{v}' for k, v in sorted(r['restorations'].items(), key=lambda kv: -kv[1])) or '-'} |")
    write("magdr_reconstruct", {"benchmark": "magdr_reconstruct", "rows": rows, "per_photo": per_photo, "env": environment()}, "\n".join(md) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:] or None)
