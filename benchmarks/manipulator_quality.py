"""Quality of the trained manipulators on held-out identities (what is reported next to the weights):

* the share of edits the attribute classifier reads as the target domain (StarGAN's own measure;
  hair colours: the target hair attribute has the highest probability of the three and > 0.5;
  flipped attributes such as Male / Young / Smiling: the classifier's verdict flips);
* the cycle reconstruction L1 (edit towards the domain, then back to the face's own condition,
  mean absolute error in [-1, 1] units);
* a before/after grid of edits (docs/manipulators/<model>_grid.png).

    python benchmarks/manipulator_quality.py --model stargan --n 400 --out benchmarks/results/manipulators
    python benchmarks/manipulator_quality.py --model stargan --weights out/train/stargan_unet.pt --label stargan_unet --n 200
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch

from _common import DATA, ROOT, environment
from faceshield.models import create_target
from faceshield.models.manipulator import HAIR_DOMAINS
from faceshield.models.zoo import load_attribute_classifier
from faceshield.training.celeba import load_celeba
from faceshield.training.classifier import to_tensor


@torch.no_grad()
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="stargan")
    ap.add_argument("--weights", default=None, help="another file for the model (e.g. a black-box target of initiative_blackbox.yaml), with its sidecar")
    ap.add_argument("--label", default=None, help="the name of the result files (default: --model)")
    ap.add_argument("--n", type=int, default=400, help="held-out faces")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "manipulators")
    ap.add_argument("--grid", type=Path, default=ROOT.parent / "docs" / "manipulators")
    args = ap.parse_args()
    torch.manual_seed(0)
    g = create_target(args.model, weights=args.weights, cached=False)
    label = args.label or args.model
    clf, names = load_attribute_classifier()
    te = load_celeba("test", size=g.size, limit=args.n, root=DATA / "celeba")
    x = to_tensor(te.images)
    own_p = torch.sigmoid(clf(x if g.size == clf.config.size else torch.nn.functional.interpolate(x, size=(clf.config.size,) * 2, mode="area")))
    rows, grid_cols = {}, []
    for d in g.domains:
        hits, l1 = [], []
        outs = []
        for i in range(0, len(x), 100):
            xb, pb = x[i : i + 100], own_p[i : i + 100]
            attrs = [dict(zip(names, map(float, p))) for p in pb]
            c = torch.stack([g.condition(d, a) for a in attrs])
            back = torch.stack([g.condition(d, a) * 0 + torch.tensor([float(a.get(k, 0) > 0.5) if args.model == "stargan" else float(a.get(k, 0)) for k in g.domains]) for a in attrs])
            e = g(xb, c)
            rec = g(e, back)
            l1 += (rec - xb).abs().flatten(1).mean(1).tolist()
            pe = torch.sigmoid(clf(e if g.size == clf.config.size else torch.nn.functional.interpolate(e, size=(clf.config.size,) * 2, mode="area")))
            j = names.index(d)
            if d in HAIR_DOMAINS:
                hair = [names.index(h) for h in HAIR_DOMAINS]
                ok = (pe[:, hair].argmax(1) == HAIR_DOMAINS.index(d)) & (pe[:, j] > 0.5)
            else:
                ok = (pe[:, j] > 0.5) != (pb[:, j] > 0.5)
            hits += ok.tolist()
            outs.append(e)
        rows[d] = {"target_read": round(float(np.mean(hits)), 3), "cycle_l1": round(float(np.mean(l1)), 4), "faces": len(hits)}
        grid_cols.append(torch.cat(outs)[:8])
        print(d, rows[d], flush=True)
    mean = round(float(np.mean([r["target_read"] for r in rows.values()])), 3)
    args.out.mkdir(parents=True, exist_ok=True)
    rec = {"model": args.model, "weights": args.weights or "registry", "heldout_faces": len(x), "domains": rows, "target_read_mean": mean, "env": environment(),
           "notes": "held-out identities (CelebA split by identity, seed 0); target read = the 40-attribute classifier (also trained on the training identities only) reads the target; cycle L1 in [-1, 1] units"}
    (args.out / f"{label}.json").write_text(json.dumps(rec, indent=1) + "\n")
    # grid: rows = faces, columns = input then one edit per domain
    cols = [x[:8]] + grid_cols
    tiles = torch.stack(cols, 1).flatten(0, 1)  # (8 * (1 + D), 3, S, S)
    k = 1 + len(g.domains)
    img = ((tiles.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    rows_img = [np.concatenate(list(img[r * k : (r + 1) * k]), 1) for r in range(8)]
    grid = np.concatenate(rows_img, 0)
    grid = cv2.resize(grid, (grid.shape[1] * 2, grid.shape[0] * 2), interpolation=cv2.INTER_NEAREST)
    args.grid.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.grid / f"{label}_grid.png"), grid[:, :, ::-1])
    print(json.dumps({"target_read_mean": mean}))


if __name__ == "__main__":
    main()
