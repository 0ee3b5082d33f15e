"""MagDR's consistency detector (seed 004, Eq. 7): an input whose manipulator output changes a lot,
and unevenly, under small pre-processings is a disrupted one.

For the photo ``x`` and each pre-processing ``f_k`` (restorations of
:mod:`faceshield.transforms.restore`, JPEG, blur ...), the manipulator edits the faces of ``x`` and of
``f_k(x)`` (aligned where the detector finds them on ``x``) for every domain; ``d^k`` is the mean
distance (:class:`~faceshield.defenses.distance.Distances`, L2 by default) between the two edits, and
``S_cons`` is the standard deviation of ``d^k`` over ``k``. A clean photo's edits barely move under
any of them; a disruption, fragile by construction, is undone by some and not by others. The
threshold is fitted on clean photos only (:meth:`ConsistencyDetector.fit`: a chosen share of clean
photos flagged).

The distortion detector (Eqs. 4-6), S_final (Eq. 9) and the reconstructor are not built yet.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from faceshield.core.errors import NoFaceError
from faceshield.defenses.distance import Distances
from faceshield.faces.crop import warp_crops
from faceshield.io.image import to_tensor
from faceshield.transforms import create_transform

#: the pre-processings ``f_k`` (MagDR's K augmentations), as transform specs
PREPROCESS = ("jpeg75", "blur:1.0", "resize:0.5", "median:3", "bits:5", "nlmeans:5", "wavelet:0.04")
#: distances where larger = more different (those :class:`ConsistencyDetector` can use)
GROWING = ("l1", "l2", "linf", "phi1", "phi2", "phi3", "phi4")


class ConsistencyDetector:
    """``S_cons`` of Eq. 7 and a threshold fitted on clean photos.

    Args:
        model: the manipulator (a registry name or a built one), e.g. ``"stargan"``.
        preprocess: transform specs ``f_k``.
        distance: one of :data:`GROWING`.
        detector: the landmark extractor that finds and aligns the faces.
    """

    def __init__(self, model="stargan", preprocess: Sequence[str] = PREPROCESS, distance: str = "l2", detector: str = "mtcnn") -> None:
        from faceshield.models import create_target

        if distance not in GROWING:
            raise ValueError(f"distance: expected one of {', '.join(GROWING)}, got {distance!r}")
        self.g = create_target(model) if isinstance(model, str) else model
        self.preprocess = [create_transform(s) for s in preprocess]
        self.distance, self.detector = distance, detector
        self.distances = Distances() if distance.startswith("phi") else None
        self.threshold: float | None = None

    def _d(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self.distances is not None:
            return self.distances(a, b)[self.distance]
        diff = (a - b).flatten(1)
        return {"l1": diff.abs().mean(1), "l2": diff.pow(2).mean(1), "linf": diff.abs().amax(1)}[self.distance]

    @torch.no_grad()
    def distances_per_preprocess(self, rgb: np.ndarray) -> np.ndarray:
        """``d^k`` for each pre-processing: ``(K,)`` float, mean over faces and domains.

        Raises:
            NoFaceError: the detector finds no face on ``rgb``.
        """
        from faceshield.deepfake.edit import find_faces

        found = find_faces(rgb, self.g, self.detector)
        if not found:
            raise NoFaceError(f"no face found by {self.detector}")
        mats = torch.from_numpy(np.stack([f.matrix for f in found]))
        idx = torch.zeros(len(found), dtype=torch.long)
        conds = [torch.stack([self.g.condition(d, f.attrs) for f in found]) for d in self.g.domains]
        crops = warp_crops(to_tensor(rgb), mats, self.g.size, idx) * 2 - 1
        base = [self.g(crops, c) for c in conds]
        out = []
        for f in self.preprocess:
            ck = warp_crops(to_tensor(f(rgb)), mats, self.g.size, idx) * 2 - 1
            out.append(float(torch.cat([self._d(b, self.g(ck, c)) for b, c in zip(base, conds)]).mean()))
        return np.array(out)

    def score(self, rgb: np.ndarray) -> float:
        """``S_cons`` (Eq. 7): the standard deviation of :meth:`distances_per_preprocess`."""
        return float(np.std(self.distances_per_preprocess(rgb)))

    def fit(self, clean: Sequence[np.ndarray], flag_rate: float = 0.05) -> float:
        """Set the threshold so that a share ``flag_rate`` of the clean photos ``clean`` is flagged (their
        ``1 - flag_rate`` quantile); photos without a face are skipped. Returns the threshold."""
        scores = []
        for rgb in clean:
            try:
                scores.append(self.score(rgb))
            except NoFaceError:
                continue
        if not scores:
            raise ValueError("fit: no clean photo with a face")
        self.threshold = float(np.quantile(scores, 1 - flag_rate))
        return self.threshold

    def __call__(self, rgb: np.ndarray) -> bool:
        """Whether ``rgb`` is judged disrupted (``S_cons`` above the fitted threshold)."""
        if self.threshold is None:
            raise ValueError("the detector has no threshold yet: fit it on clean photos first")
        return self.score(rgb) > self.threshold
