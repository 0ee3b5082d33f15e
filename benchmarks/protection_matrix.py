"""Protection-rate matrix of bench tables: one row per perturbation and source, one column per
extractor, each cell ``p/N`` (faces lost by the extractor's own pipeline or misplaced by NME >= 0.4,
over the faces it found on the clean photos) with the mean NME of the faces still found and the
number lost outright (``; l lost``); the black-box cells (not made on that network) are the transfer figures.

    python benchmarks/protection_matrix.py benchmarks/results/retinaface/table3.json benchmarks/results/retinaface_loo/table1.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from faceshield.models import extractor_info


def _white(name: str, made_on: str) -> bool:
    same = extractor_info(name).same_network_as
    return name in made_on.split("+") or (same is not None and same in made_on.split("+"))


def _source(made_on: str, names: list[str]) -> str:
    parts = made_on.split("+")
    if len(parts) <= 2:
        return made_on
    missing = [n for n in names if n not in parts and extractor_info(n).kind.value != "black-box"]
    return f"all {len(parts)} but {', '.join(missing)}" if missing else f"all {len(parts)} white-box"


def matrix(tables: list[dict]) -> str:
    names = [c[len("nme_"):] for c in tables[0]["columns"] if c.startswith("nme_")]
    head = ["perturbation", "made on", *names, "mask-SSIM", "SSIMULACRA2 face"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for t in tables:
        for r in t["rows"]:
            cells = []
            for n in names:
                faces = r.get(f"faces_{n}") or 0
                if not faces:
                    cells.append("-")
                    continue
                nme = r.get(f"nme_{n}")
                lost = r.get(f"lost_{n}") or 0
                c = f"{r[f'protected_{n}']}/{faces} ({'-' if nme is None else f'{nme:.2f}'}{f'; {lost} lost' if lost else ''})"
                cells.append(f"**{c}**" if _white(n, r["made_on"]) else c)
            vis = r.get("ssimulacra2_face")
            lines.append("| " + " | ".join([r["perturbation"], _source(r["made_on"], names), *cells, f"{r['mask_ssim']:.3f}",
                                            "-" if vis is None else f"{vis:.1f}"]) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tables", nargs="+", type=Path, help="table JSON files written by faceshield bench")
    args = ap.parse_args()
    print(matrix([json.loads(p.read_text()) for p in args.tables]))


if __name__ == "__main__":
    main()
