"""The plausibility filter a DeepFake tool applies after landmark extraction (modelled on faceswap's
aligner filter): faces whose landmarks look wrong are dropped and never swapped. For a protection
this is a success: the protected face does not make it into the DeepFake.

Tests, on the face aligned to the mean face (template units: inner points span ``[0, 1]``):

- ``features``: the lowest eye point lies below the highest mouth point;
- ``scale``: the aligned face's diagonal in the frame is below ``min_scale`` or above ``max_scale``
  times the frame's smaller side;
- ``distance``: the mean absolute distance of the aligned points from the mean face exceeds
  ``distance``;
- ``roll``: the in-plane rotation exceeds ``roll`` degrees.

Defaults are faceswap's extract defaults (min scale 0.07, max scale 2.0, distance 22.5 % of the
template, roll 45 degrees).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from faceshield.core.types import MTCNN5, PointScheme
from faceshield.faces.align import align, correspondences, to_ibug68


@dataclass(frozen=True)
class PlausibilityFilter:
    """Thresholds; 0 disables a test (``features=False`` disables the eye/mouth test)."""

    features: bool = True
    min_scale: float = 0.07
    max_scale: float = 2.0
    distance: float = 0.225
    roll: float = 45.0

    def check(self, points: np.ndarray, scheme: PointScheme, image_shape: tuple[int, int]) -> "PlausibilityResult":
        """Test one face's ``(K, 2)`` landmarks (image pixels) in an image of ``(H, W)``."""
        al = align(points, scheme, size=256, padding=0.0)
        src, dst = correspondences(points, scheme)
        aligned = al.to_template(src)
        distance = float(np.mean(np.abs(aligned - dst)))
        p68 = to_ibug68(points, scheme)
        if p68 is not None:
            t = al.to_template(p68)
            eye_mouth = float(t[48:68, 1].min() - t[36:48, 1].max())
        elif scheme == MTCNN5:
            t = al.to_template(points)
            eye_mouth = float(t[3:5, 1].min() - t[0:2, 1].max())
        else:  # pragma: no cover - correspondences() already refused the scheme
            raise ValueError(scheme.name)
        # diagonal of the aligned template square, in image pixels, relative to the frame
        scale = float(np.sqrt(2.0) * al.size / al.scale / min(image_shape[:2]))
        roll = al.roll
        reasons = []
        if self.features and eye_mouth < 0:
            reasons.append("features")
        if self.min_scale > 0 and scale < self.min_scale:
            reasons.append("min_scale")
        if self.max_scale > 0 and scale > self.max_scale:
            reasons.append("max_scale")
        if self.distance > 0 and distance > self.distance:
            reasons.append("distance")
        if self.roll > 0 and abs(roll) > self.roll:
            reasons.append("roll")
        return PlausibilityResult(dropped=bool(reasons), reasons=reasons, eye_mouth=eye_mouth, distance=distance, roll=roll, scale=scale)


@dataclass
class PlausibilityResult:
    """Outcome for one face: ``dropped`` if any test failed (``reasons`` names them), with the
    measured values (template units, degrees, fraction of the frame)."""

    dropped: bool
    reasons: list[str] = field(default_factory=list)
    eye_mouth: float = 0.0
    distance: float = 0.0
    roll: float = 0.0
    scale: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)
