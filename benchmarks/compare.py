"""Compare rows of several `faceshield bench` tables on the images they all share.

Tables run on different image sets cannot be compared by their printed means (one hard image moves a
9-image mean a lot). This reads the ``per_image`` records of each table's JSON, keeps the images
present in every table, and prints the white-box NME (the extractor the perturbation was made on;
mean over faces still found, lost faces counted apart), the median NME over all faces with a lost
face ranked above any NME (a lost face is a protection success; the mean over found faces drops
when the worst-hit faces are lost, the median does not), the share of faces protected (lost, or
NME at least ``--threshold``, default 0.4: the robustness goal after C2) and mask-SSIM per perturbation,
source and transform. A perturbation label found in more than one table is suffixed with the table's directory
(e.g. ``LB (MI-FGSM) (strong)``)::

    python benchmarks/compare.py benchmarks/results/lb_codecs/table4.json benchmarks/results/strong_codecs/table4.json
"""
from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tables", nargs="+", help="table JSON files written by `faceshield bench`")
    ap.add_argument("--threshold", type=float, default=0.4, help="a face counts as protected when lost or at this NME or more (default 0.4)")
    args = ap.parse_args()
    records = [json.load(open(p))["per_image"] for p in args.tables]
    common = set.intersection(*({r["image"] for r in recs} for recs in records))
    if not common:
        raise SystemExit("no image is shared by all tables")
    shared = Counter(label for recs in records for label in {r["perturbation"] for r in recs})
    groups: dict[tuple, dict] = defaultdict(lambda: {"nme": [], "all": [], "lost": 0, "mask_ssim": []})
    for path, recs in zip(args.tables, records):
        for r in recs:
            if r["image"] not in common:
                continue
            label = r["perturbation"] if shared[r["perturbation"]] == 1 else f"{r['perturbation']} ({Path(path).parent.name})"
            g = groups[(r["made_on"] if isinstance(r["made_on"], str) else "+".join(r["made_on"]), r.get("transform", "none"), label)]
            for e in r["extractors"]:
                if e["extractor"] == r["made_on"]:
                    g["nme"] += [v for v in e["nme_per_face"] if v is not None]
                    g["all"] += [np.inf if v is None else v for v in e["nme_per_face"]]
                    g["lost"] += e["faces_lost"]
            g["mask_ssim"].append(r["mask_ssim"])
    print(f"{len(common)} shared images: {', '.join(sorted(common))}")
    print(f"{'made on':10} {'transform':10} {'perturbation':28} {'white-box NME':>14} {'lost':>5} {'median (lost=inf)':>18} {f'protected (>={args.threshold:g})':>17} {'mask-SSIM':>10}")
    for (made, tr, pert), g in sorted(groups.items()):
        nme = f"{np.mean(g['nme']):.3f}" if g["nme"] else "-"
        med = f"{np.median(g['all']):.3f}" if g["all"] else "-"  # inf when most faces are lost
        safe = f"{sum(v >= args.threshold for v in g['all'])}/{len(g['all'])}"
        print(f"{made:10} {tr:10} {pert:28} {nme:>14} {g['lost']:>5} {med:>18} {safe:>17} {np.mean(g['mask_ssim']):>10.3f}")


if __name__ == "__main__":
    main()
