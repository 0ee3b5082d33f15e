"""Compare rows of several `faceshield bench` tables on the images they all share.

Tables run on different image sets cannot be compared by their printed means (one hard image moves a
9-image mean a lot). This reads the ``per_image`` records of each table's JSON, keeps the images
present in every table, and prints the white-box NME (the extractor the perturbation was made on;
mean over faces still found, lost faces counted apart) and mask-SSIM per perturbation, source and
transform::

    python benchmarks/compare.py benchmarks/results/issue5/table4.json benchmarks/results/strong_t4/table4.json
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tables", nargs="+", help="table JSON files written by `faceshield bench`")
    args = ap.parse_args()
    records = [json.load(open(p))["per_image"] for p in args.tables]
    common = set.intersection(*({r["image"] for r in recs} for recs in records))
    if not common:
        raise SystemExit("no image is shared by all tables")
    groups: dict[tuple, dict] = defaultdict(lambda: {"nme": [], "lost": 0, "mask_ssim": []})
    for recs in records:
        for r in recs:
            if r["image"] not in common:
                continue
            g = groups[(r["made_on"] if isinstance(r["made_on"], str) else "+".join(r["made_on"]), r.get("transform", "none"), r["perturbation"])]
            for e in r["extractors"]:
                if e["extractor"] == r["made_on"]:
                    g["nme"] += [v for v in e["nme_per_face"] if v is not None]
                    g["lost"] += e["faces_lost"]
            g["mask_ssim"].append(r["mask_ssim"])
    print(f"{len(common)} shared images: {', '.join(sorted(common))}")
    print(f"{'made on':10} {'transform':10} {'perturbation':22} {'white-box NME':>14} {'lost':>5} {'mask-SSIM':>10}")
    for (made, tr, pert), g in sorted(groups.items()):
        nme = f"{np.mean(g['nme']):.3f}" if g["nme"] else "-"
        print(f"{made:10} {tr:10} {pert:22} {nme:>14} {g['lost']:>5} {np.mean(g['mask_ssim']):>10.3f}")


if __name__ == "__main__":
    main()
