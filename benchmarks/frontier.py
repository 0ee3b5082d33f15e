"""The visibility frontier of a `faceshield bench` table: protection against visibility, per row.

Reads a table JSON (e.g. ``benchmarks/results/visibility_frontier/table1.json``) and writes
``frontier.md`` (one line per row: faces protected per target - lost, or NME >= 0.4 - SSIMULACRA 2,
FLIP and Butteraugli on the face, seconds per image) and ``frontier.png`` (protection rate on the
row's own target against SSIMULACRA 2 on the face, the rows on the frontier joined)::

    python benchmarks/frontier.py benchmarks/results/visibility_frontier/table1.json --out docs/visibility
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def _fmt(v, d=3):
    return "-" if v is None else f"{v:.{d}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("table", type=Path, help="a table JSON written by `faceshield bench`")
    ap.add_argument("--out", type=Path, default=None, help="output directory (default: the table's)")
    args = ap.parse_args()
    t = json.loads(args.table.read_text())
    rows, out = t["rows"], args.out or args.table.parent
    out.mkdir(parents=True, exist_ok=True)
    names = [c.removeprefix("faces_") for c in t["columns"] if c.startswith("faces_")]

    def rate(r, n):
        return r[f"protected_{n}"] / r[f"faces_{n}"] if r.get(f"faces_{n}") else None

    lines = [f"Made on each row's source, measured on {len(t['images'])} images ({', '.join(t['images'])}). "
             "Protected = the extractor's full pipeline loses the face or misplaces its points by NME >= 0.4 "
             "(fraction of its normaliser). Face = the face box x 1.2 (SSIMULACRA 2: grown to 256 px).", "",
             "| row | made on | " + " | ".join(f"protected {n}" for n in names) + " | SSIMULACRA2 face | FLIP face | Butteraugli face | SSIM_I | s/image |",
             "|" + "---|" * (len(names) + 7)]
    for r in rows:
        prot = [f"{r[f'protected_{n}']}/{r[f'faces_{n}']}" for n in names]
        lines.append(f"| {r['perturbation']} | {r['made_on']} | " + " | ".join(prot)
                     + f" | {_fmt(r.get('ssimulacra2_face'), 1)} | {_fmt(r.get('flip_face'))} | {_fmt(r.get('butteraugli_face'), 2)} | {_fmt(r.get('ssim_i'))} | {_fmt(r.get('seconds_per_image'), 1)} |")
    (out / "frontier.md").write_text("\n".join(lines) + "\n")

    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.subplots()
    pts = []
    for r in rows:
        x, y = r.get("ssimulacra2_face"), rate(r, r["made_on"].split("+")[0])
        if x is None or y is None:
            continue
        pts.append((x, y))
        ax.scatter([x], [y])
        ax.annotate(r["perturbation"], (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    front = sorted(p for p in pts if not any(q[0] >= p[0] and q[1] >= p[1] and q != p for q in pts))
    if front:
        ax.plot(*zip(*front), color="0.4", linestyle="--", linewidth=1, label="frontier")
    ax.axvline(70, color="green", linewidth=0.8, linestyle=":", label="SSIMULACRA 2 = 70 (high quality)")
    ax.axvline(90, color="green", linewidth=0.8, linestyle="-.", label="SSIMULACRA 2 = 90 (visually lossless)")
    ax.set_xlabel("SSIMULACRA 2 on the face (higher = less visible)")
    ax.set_ylabel("faces protected on the row's target")
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(out / "frontier.png", dpi=120)
    print((out / "frontier.md").read_text())


if __name__ == "__main__":
    main()
