"""Fit MagDR's detector and pre-train its reconstructor (Alg. 1, lines 1-6) on our StarGAN; prints
the constants shipped in ``faceshield.defenses.magdr`` (FITTED_LAMBDA, FITTED_THRESHOLD,
PRETRAINED) and writes them with their inputs to benchmarks/results/magdr_fit.{json,md}.

* ``lambda`` and the threshold of S_final (Eq. 9): on the first N held-out CelebA photos that MTCNN
  finds, clean only (the same photos as benchmarks/magdr_detection.py fits on), 5 % flagged;
* each restoration family's best parameter: the lowest mean S_final over M photos of *training*
  identities disrupted by Ruiz et al.'s PGD (eps 6.4 levels, step 2.55, 10 steps, all domains).

    python benchmarks/magdr_fit.py [N] [M]     # N = 20, M = 8: about 10 min on 2 cores
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2
import numpy as np

from _common import environment, write
from disruption import DATA, load_photos
from faceshield.deepfake.edit import find_faces
from faceshield.defenses.magdr import FinalDetector, Reconstructor
from faceshield.pipeline import ProtectConfig, protect_array

PGD = ProtectConfig.from_user({"targets": ("stargan",), "method": "pgd", "eps": 6.4, "alpha": 2.55, "steps": 10})


def training_photos(m: int, g) -> list[np.ndarray]:
    """The first ``m`` CelebA photos of training identities that MTCNN finds, at 178x218."""
    from faceshield.training.celeba import load_celeba

    tr = load_celeba("train", size=89, root=DATA / "celeba", limit=8 * m)
    out = []
    for f in tr.files:
        img = cv2.imread(str(DATA / "celeba" / "img" / f))[:, :, ::-1]
        img = np.ascontiguousarray(cv2.resize(img, (178, 218), interpolation=cv2.INTER_CUBIC))
        if find_faces(img, g):
            out.append(img)
        if len(out) == m:
            break
    return out


def main(n: int = 20, m: int = 8) -> None:
    t0 = time.perf_counter()
    det = FinalDetector()
    clean = [p for _, p in load_photos({"celeba_test": 3 * n}) if find_faces(p, det.g)][:n]
    thr = det.fit(clean, flag_rate=0.05)
    print(f"lambda {det.lam:.6g} threshold {thr:.6g}", flush=True)
    disrupted = [protect_array(p, PGD).rgb for p in training_photos(m, det.g)]
    rec = Reconstructor(det)
    q = rec.pretrain(disrupted)
    print(f"PRETRAINED = {tuple(q)!r}", flush=True)
    secs = time.perf_counter() - t0
    md = ["## MagDR: the fitted detector and the pre-trained layers", "",
          f"S_final = lambda * S_dist + S_cons (Eq. 9), fitted on {len(clean)} clean held-out CelebA photos (5 % flagged): lambda = std(S_cons) / std(S_dist) = {det.lam:.6g}, "
          f"threshold {thr:.6g}. Q_i (each family's best parameter by mean S_final over {len(disrupted)} PGD-disrupted training-identity photos, whole window restored): "
          + "; ".join(", ".join(layer.values()) for layer in q) + f". Command: `python benchmarks/magdr_fit.py {n} {m}` ({secs:.0f} s)."]
    write("magdr_fit", {"benchmark": "magdr_fit", "lambda": det.lam, "threshold": thr, "pretrained": q, "n_clean": len(clean), "n_disrupted": len(disrupted),
                        "pgd": PGD.to_dict(), "seconds": secs, "env": environment()}, "\n".join(md) + "\n")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
