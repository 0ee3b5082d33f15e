"""Paper-style tables on our extractors: a thin wrapper over :mod:`faceshield.benchmark` (the same
as ``faceshield bench CONFIG``) whose default config is ``benchmarks/configs/paper.yaml`` and whose
default output is ``benchmarks/results/<config name>/``.

Tables (see the config files): table1 (LB made on each white-box extractor), table2 (Base1 / Base2 /
LB), table3 (transfer: LB_trans, LB_mix, ensembles), table4 (JPEG / video-codec robustness, with and
without EOT), ablation (Fig. 4: alpha and T) and swap (SSIM_W through a face swap). Each writes
markdown + CSV + JSON (+ PNG); run.json records the config, versions, seed and timings.

    python benchmarks/tables.py                                   # every table of paper.yaml
    python benchmarks/tables.py --tables table2,table4 -n 5
    python benchmarks/tables.py benchmarks/configs/smoke.yaml
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from faceshield.benchmark import BenchConfigError, BenchRun, RichProgress, load_config, run_benchmark

ROOT = Path(__file__).resolve().parent
PAPER = ROOT / "configs" / "paper.yaml"


def main(config: str | Path = PAPER, tables: str | None = None, limit: int | None = None, out: str | Path | None = None) -> BenchRun:
    cfg = load_config(config)
    return run_benchmark(cfg, out=out or ROOT / "results" / cfg.name, tables=tables, limit=limit, progress=RichProgress())


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config", nargs="?", default=str(PAPER), help="YAML config (default: configs/paper.yaml)")
    ap.add_argument("--tables", default=None, help="comma-separated tables (default: all the config defines)")
    ap.add_argument("-n", "--limit", type=int, default=None, help="at most N images per table")
    ap.add_argument("--out", default=None, help="output directory (default: benchmarks/results/<config name>)")
    a = ap.parse_args()
    try:
        run = main(a.config, a.tables, a.limit, a.out)
    except BenchConfigError as e:
        sys.exit(f"error: {e}")
    print((run.out / "index.md").read_text())
