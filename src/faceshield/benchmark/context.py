"""What the tables of one benchmark run share: extractors, and caches of detections, protections
and face swaps, so that a perturbation two tables both use is made (and measured) once."""
from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from faceshield.benchmark.progress import BenchProgress
from faceshield.benchmark.sources import BenchImage, digest
from faceshield.core.errors import NoFaceError, WeightsNotFoundError
from faceshield.models import LandmarkExtractor, create_extractor, list_extractors
from faceshield.pipeline import ProtectConfig, protect_array

log = logging.getLogger(__name__)


class CachedExtractor:
    """A landmark extractor whose ``detect`` remembers its faces per image content; everything else
    (``name``, ``kind``, ``scheme``, ...) is the wrapped extractor's. Detection is deterministic, so
    the cache changes no result; it saves re-detecting the clean image for every row of every table."""

    def __init__(self, extractor: LandmarkExtractor) -> None:
        self.extractor = extractor
        self._faces: dict[str, list] = {}

    def detect(self, image: np.ndarray) -> list:
        key = digest(image)
        if key not in self._faces:
            self._faces[key] = self.extractor.detect(image)
        return list(self._faces[key])

    def __getattr__(self, name: str):
        return getattr(self.extractor, name)


class CachedSwapper:
    """A :class:`~faceshield.deepfake.FaceSwapper` whose ``swap`` of an image is computed once (the
    clean image's swap is compared with every protected copy)."""

    def __init__(self, swapper) -> None:
        self.swapper = swapper
        self._swaps: dict[str, object] = {}

    @property
    def extractor(self):
        return self.swapper.extractor

    def swap(self, image: np.ndarray):
        key = digest(image)
        if key not in self._swaps:
            self._swaps[key] = self.swapper.swap(image)
        return self._swaps[key]


@dataclass
class Protected:
    """A protected image as the tables use it: ``rgb`` ``(H, W, 3)`` uint8, the protected face
    boxes, and the seconds :func:`~faceshield.pipeline.protect_array` took (when it ran)."""

    rgb: np.ndarray = field(repr=False)
    face_boxes: list[np.ndarray]
    seconds: float
    loss_start: float
    loss_end: float


def config_key(config: ProtectConfig) -> str:
    return json.dumps(config.to_dict(), sort_keys=True)


class BenchContext:
    """Shared state of one run.

    Args:
        seed: the run's seed (protections carry it in their :class:`ProtectConfig`).
        progress: where progress goes (:class:`BenchProgress` does nothing).
    """

    def __init__(self, seed: int = 0, progress: BenchProgress | None = None) -> None:
        self.seed = seed
        self.progress = progress or BenchProgress()
        self._extractors: dict[str, CachedExtractor | Exception] = {}
        self._protected: dict[tuple[str, str], Protected | None] = {}
        self.stats: Counter = Counter()

    def extractor(self, name: str) -> CachedExtractor:
        """The run's (cached) extractor ``name``.

        Raises:
            WeightsNotFoundError, ImportError: its weights or package are missing (remembered).
        """
        if name not in self._extractors:
            try:
                self._extractors[name] = CachedExtractor(create_extractor(name))
            except (WeightsNotFoundError, ImportError) as e:
                self._extractors[name] = e
        got = self._extractors[name]
        if isinstance(got, Exception):
            raise got
        return got

    def evaluators(self, names: Sequence[str] | None) -> tuple[list[CachedExtractor], list[str]]:
        """Extractors by name (None: every registered one); those that cannot be built are left
        out with a note."""
        built, notes = [], []
        for n in list_extractors() if names is None else names:
            try:
                built.append(self.extractor(n))
            except (WeightsNotFoundError, ImportError) as e:
                notes.append(f"{n} skipped: {e}")
        return built, notes

    def protect(self, image: BenchImage, config: ProtectConfig) -> Protected | None:
        """``image`` protected with ``config`` (computed once per run); None when no target finds a face.

        Raises:
            WeightsNotFoundError, ImportError: a target's weights or package are missing.
        """
        key = (config_key(config), image.key)
        if key in self._protected:
            self.stats["protections_reused"] += 1
            return self._protected[key]
        targets = {n: self.extractor(n).extractor for n in config.targets}
        t0 = time.perf_counter()
        try:
            res = protect_array(image.rgb, config, extractors=targets)
            out = Protected(res.rgb, list(res.face_boxes), time.perf_counter() - t0, res.loss_start, res.loss_end)
        except NoFaceError:
            log.info("%s: no face found by %s", image.name, ", ".join(config.targets))
            out = None
        self.stats["protections"] += 1
        self._protected[key] = out
        return out

    def protections(self, images: Sequence[BenchImage], config: ProtectConfig, what: str, notes: list[str]):
        """Yield ``(image, protect(image, config))`` for each image, advancing the progress bar once
        the caller is done with it. If a target's weights or package are missing, append
        ``"<what> skipped: <reason>"`` to ``notes``, advance past the remaining images and stop."""
        for i, img in enumerate(images):
            try:
                p = self.protect(img, config)
            except (WeightsNotFoundError, ImportError) as e:
                notes.append(f"{what} skipped: {e}")
                self.progress.advance(len(images) - i)
                return
            yield img, p
            self.progress.advance()
