"""The images a benchmark runs on: the built-in sample, HELEN test images of the development data,
image files / directories / globs, and frames of a video (see :class:`~faceshield.benchmark.config.ImageSource`)."""
from __future__ import annotations

import glob
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from faceshield.benchmark.config import BenchConfigError, ImageSource, data_root, expand_path
from faceshield.io import IMAGE_EXTENSIONS, list_images, read_image


@dataclass
class BenchImage:
    """One benchmark image: ``rgb`` is ``(H, W, 3)`` uint8 RGB; ``name`` is unique within a run."""

    name: str
    rgb: np.ndarray = field(repr=False)
    source: str

    @cached_property
    def key(self) -> str:
        """Content hash of ``rgb`` (protections are cached per image content)."""
        return digest(self.rgb)


def digest(rgb: np.ndarray) -> str:
    """Content hash of an image array (shape and bytes)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((rgb.shape, rgb.dtype.str)).encode())
    h.update(np.ascontiguousarray(rgb).data)
    return h.hexdigest()


def _sample() -> list[tuple[str, np.ndarray]]:
    from faceshield.models.weights import package_data

    return [("astronaut", read_image(package_data("astronaut.png")).rgb)]


def _helen(count: int) -> tuple[list[tuple[str, np.ndarray]], list[str]]:
    test = data_root() / "landmarks68" / "test"
    if not test.is_dir():
        return [], [f"helen_test skipped: {test} not found (set FACESHIELD_DATA to the development data)"]
    files = sorted(test.glob("*.jpg"))[:count]
    return [(p.stem, read_image(p).rgb) for p in files], []


def _is_data(path: str) -> bool:
    """Paths under ``$FACESHIELD_DATA`` are development data: absent means skipped, not an error."""
    return "$FACESHIELD_DATA" in path or "${FACESHIELD_DATA}" in path


def _paths(src: ImageSource) -> tuple[list[tuple[str, np.ndarray]], list[str]]:
    path = expand_path(src.path)
    if any(c in src.path for c in "*?["):
        files = sorted(p for p in glob.glob(str(path), recursive=True) if p.lower().endswith(IMAGE_EXTENSIONS))
        notes = [] if files else [f"images {src.path!r}: the glob matched no image"]
    elif path.exists():
        files, problems = list_images([path])
        notes = [f"images {src.path!r}: {msg}" for _, msg in problems]
    elif _is_data(src.path):
        return [], [f"images {src.path!r} skipped: {path} not found (set FACESHIELD_DATA to the development data)"]
    else:
        raise BenchConfigError(f"images: {src.path!r} not found (expected an image, a directory of images or a glob; relative to the working directory)")
    files = files[: src.count] if src.count else files
    return [(Path(f).stem, read_image(f).rgb) for f in files], notes


def _video(src: ImageSource) -> tuple[list[tuple[str, np.ndarray]], list[str]]:
    from faceshield.io import read_video

    path = expand_path(src.path)
    if not path.is_file():
        if _is_data(src.path):
            return [], [f"video {src.path!r} skipped: {path} not found (set FACESHIELD_DATA to the development data)"]
        raise BenchConfigError(f"images: video {src.path!r} not found (relative to the working directory)")
    frames = read_video(path).array()
    first = max(0, len(frames) - src.tail)
    idx = np.unique(np.linspace(first, len(frames) - 1, min(src.count, len(frames) - first)).round().astype(int))
    return [(f"{path.stem}_{i:03d}", frames[i]) for i in idx], []


def load_source(src: ImageSource) -> tuple[list[tuple[str, np.ndarray]], list[str]]:
    """``(name, rgb)`` pairs of one source and notes on what was skipped."""
    if src.kind == "sample":
        return _sample(), []
    if src.kind == "helen_test":
        return _helen(src.count)
    if src.kind == "path":
        return _paths(src)
    if src.kind == "video":
        return _video(src)
    raise ValueError(f"unknown image source kind {src.kind!r}")


def shrink(rgb: np.ndarray, max_side: int | None) -> np.ndarray:
    """``rgb`` with its long side reduced to ``max_side`` (area interpolation); unchanged if smaller."""
    h, w = rgb.shape[:2]
    if max_side is None or max(h, w) <= max_side:
        return rgb
    import cv2

    s = max_side / max(h, w)
    return cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


class ImageLoader:
    """Loads each source once per run and hands out image lists with unique names (images larger
    than ``max_side`` shrunk)."""

    def __init__(self, max_side: int | None = None) -> None:
        self.max_side = max_side
        self._cache: dict[ImageSource, tuple[list[tuple[str, np.ndarray]], list[str]]] = {}

    def load(self, sources: Sequence[ImageSource], limit: int | None = None) -> tuple[list[BenchImage], list[str]]:
        """The images of ``sources`` in order (at most ``limit``), and notes. Names that repeat get
        a ``_2``, ``_3`` ... suffix."""
        out: list[BenchImage] = []
        notes: list[str] = []
        seen: dict[str, int] = {}
        for src in sources:
            if src not in self._cache:
                self._cache[src] = load_source(src)
            items, n = self._cache[src]
            notes += n
            for name, rgb in items:
                if limit is not None and len(out) >= limit:
                    break
                seen[name] = seen.get(name, 0) + 1
                out.append(BenchImage(name if seen[name] == 1 else f"{name}_{seen[name]}", shrink(rgb, self.max_side), src.describe()))
        return out, notes
