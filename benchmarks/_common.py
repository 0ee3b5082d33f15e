"""Shared helpers for the benchmarks: data location, sample images, result writing."""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import faceshield
from faceshield.models.weights import package_data

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
DATA = Path(os.environ.get("FACESHIELD_DATA", ROOT.parent.parent / "shared" / "data"))


def astronaut() -> np.ndarray:
    return np.array(Image.open(package_data("astronaut.png")).convert("RGB"))


def sample_images(n: int) -> list[tuple[str, np.ndarray]]:
    """The built-in sample plus the first ``n`` HELEN test images of $FACESHIELD_DATA (if present)."""
    out = [("astronaut", astronaut())]
    test = DATA / "landmarks68" / "test"
    if test.is_dir():
        for p in sorted(test.glob("*.jpg"))[:n]:
            out.append((p.stem, np.array(Image.open(p).convert("RGB"))))
    return out


def environment() -> dict:
    return {
        "faceshield": faceshield.__version__,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def write(name: str, record: dict, markdown: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown)
    print(markdown)


def prf(real: list[float], fake: list[float], thr: float = 0.5) -> dict:
    """Precision / recall / F1 with the fakes as positives (a face is called fake when P(real) < thr)."""
    tp = sum(p < thr for p in fake)
    fp = sum(p < thr for p in real)
    fn = len(fake) - tp
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    return {"precision": round(prec, 3), "recall": round(rec, 3), "f1": round(2 * prec * rec / (prec + rec), 3) if prec + rec else 0.0,
            "positives": len(fake), "negatives": len(real)}
