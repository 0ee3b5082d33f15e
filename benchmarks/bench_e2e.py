"""(b) Wall time to protect one 512x512 photo end to end on this machine's cores (target <= 2 s):
read the file, detect, attack (Landmark Breaker defaults), write PNG + JSON report.

Two figures: *warm* (models already loaded, as in a batch run; median of 5) and *cold* (a fresh
`faceshield protect` process, including Python start-up, imports and weight loading).
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import faceshield
from _common import environment, write
from faceshield.models.weights import package_data
from faceshield.pipeline import ProtectConfig


def main() -> dict:
    src = package_data("astronaut.png")
    tmp = Path(tempfile.mkdtemp())
    try:
        faceshield.protect([src], tmp / "warmup", ProtectConfig(), evaluate_with=[])  # load models
        rows = {}
        for j, (label, ev) in enumerate((("protect only", []), ("protect + evaluation by every available extractor", None))):
            ts = []
            for i in range(5):
                t0 = time.perf_counter()
                r = faceshield.protect([src], tmp / f"run{j}_{i}", ProtectConfig(), evaluate_with=ev)
                ts.append(time.perf_counter() - t0)
                assert r[0].ok, r[0].error
            rows[label] = float(np.median(ts))
        exe = Path(sys.executable).with_name("faceshield")
        t0 = time.perf_counter()
        subprocess.run([str(exe), "protect", str(src), "-o", str(tmp / "cold"), "--evaluate-with", "none"], check=True, capture_output=True)
        cold = time.perf_counter() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    record = {"benchmark": "protect_512_end_to_end", "image": "astronaut.png 512x512", "settings": ProtectConfig().to_dict(), "warm_median_s": rows, "cold_cli_s": cold, "threads": torch.get_num_threads(), "env": environment()}
    md = ["## (b) Protect one 512x512 photo end to end (target <= 2 s)", "", f"Settings: Landmark Breaker defaults (MI-FGSM, eps 15, alpha 1, T 20, decay 0.5, target mtcnn, jitter 9), {torch.get_num_threads()} threads", "", "| run | wall time (s) |", "|---|---|"]
    for k, v in rows.items():
        md.append(f"| warm, {k} (median of 5) | {v:.2f} |")
    md.append(f"| cold CLI process (imports + weights + protect, no evaluation) | {cold:.2f} |")
    write("protect_e2e", record, "\n".join(md) + "\n")
    return record


if __name__ == "__main__":
    main()
