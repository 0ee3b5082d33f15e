"""Build the mean-face template shipped as ``faceshield/data/mean_face68.json``.

Generalised Procrustes analysis over the 68-point ground truth of ``landmarks68/train`` (HELEN
train + AFW): every face is aligned to the current mean by an Umeyama similarity fitted on points
17-67 (brows, eyes, nose, mouth; the jaw is carried along, not fitted), the mean is re-estimated, and
this repeats until it stops moving. The result is normalised so that points 17-67 span ``[0, 1]``
in x and y, the convention of faceswap's legacy mean face. Faces whose fit residual is in the worst
5 % (profile views) are left out of the final mean.

Usage: ``python scripts/make_mean_face.py [--data ../shared/data] [--out src/faceshield/data/mean_face68.json]``
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
from skimage.transform import SimilarityTransform


def read_pts(path: Path) -> np.ndarray:
    lines = path.read_text().splitlines()
    start = lines.index("{") + 1
    return np.array([[float(v) for v in ln.split()] for ln in lines[start:start + 68]])


def normalise(p: np.ndarray) -> np.ndarray:
    inner = p[17:]
    lo, hi = inner.min(0), inner.max(0)
    return (p - lo) / (hi - lo)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--out", default="src/faceshield/data/mean_face68.json")
    args = ap.parse_args()
    files = sorted(Path(args.data, "landmarks68", "train").glob("*.pts"))
    shapes = np.stack([read_pts(f) for f in files])
    mean = normalise(shapes[0])
    for _ in range(20):
        aligned = np.stack([SimilarityTransform.from_estimate(s[17:], mean[17:])(s) for s in shapes])
        new = normalise(aligned.mean(0))
        moved = np.abs(new - mean).max()
        mean = new
        if moved < 1e-6:
            break
    resid = np.abs(aligned[:, 17:] - mean[17:]).mean((1, 2))
    keep = resid <= np.quantile(resid, 0.95)
    mean = normalise(aligned[keep].mean(0))
    digest = hashlib.sha256(b"".join(f.name.encode() for f in files)).hexdigest()[:16]
    out = {
        "description": "Mean 68-point face (iBUG order), points 17-67 normalised to [0,1]; "
                       "generalised Procrustes (Umeyama on points 17-67) over landmarks68/train",
        "faces": int(keep.sum()),
        "files_digest": digest,
        "points": np.round(mean, 6).tolist(),
    }
    Path(args.out).write_text(json.dumps(out) + "\n")
    print(f"{args.out}: {keep.sum()} of {len(files)} faces, jaw y range {mean[:17, 1].min():.3f}..{mean[:17, 1].max():.3f}")


if __name__ == "__main__":
    main()
