"""Run every benchmark; results (markdown + JSON with settings and versions) go to benchmarks/results/."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_e2e  # noqa: E402
import bench_engine  # noqa: E402
import tables  # noqa: E402

if __name__ == "__main__":
    bench_engine.main()
    bench_e2e.main()
    tables.main(tables.PAPER)  # every table of configs/paper.yaml -> results/paper/
