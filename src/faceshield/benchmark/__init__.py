"""Benchmarks: regenerate Landmark Breaker's Sec. IV tables on our extractors from a YAML config
(``faceshield bench CONFIG``).

Tables: ``table1`` (white-box matrix), ``table2`` (Base1 / Base2 / LB), ``table3`` (transfer: LB_trans,
LB_mix, ensembles), ``table4`` (robustness to JPEG and video codecs, with or without EOT),
``ablation`` (Fig. 4: alpha and T sweeps) and ``swap`` (SSIM_W through a real face swap). Each writes
markdown, CSV, JSON (and PNG plots); the run records its resolved config, package versions, seed and
timings beside them. See :mod:`faceshield.benchmark.config` for the file format.

A top layer beside :mod:`faceshield.cli`: it uses pipeline, deepfake, transforms and models.

    >>> from faceshield.benchmark import run_benchmark
    >>> run = run_benchmark("benchmarks/configs/smoke.yaml", out="out/bench/smoke")  # doctest: +SKIP
"""
from faceshield.benchmark.config import ATTACK_DEFAULTS, TABLE_KEYS, BenchConfig, BenchConfigError, ImageSource, RowSpec, load_config, parse_config
from faceshield.benchmark.progress import BenchProgress, RichProgress
from faceshield.benchmark.report import TableResult, environment
from faceshield.benchmark.runner import RUNNERS, BenchRun, run_benchmark, select_tables
from faceshield.benchmark.sources import BenchImage, ImageLoader

__all__ = [
    "ATTACK_DEFAULTS", "BenchConfig", "BenchConfigError", "BenchImage", "BenchProgress", "BenchRun", "ImageLoader", "ImageSource",
    "RUNNERS", "RichProgress", "RowSpec", "TABLE_KEYS", "TableResult", "environment", "load_config", "parse_config",
    "run_benchmark", "select_tables",
]
