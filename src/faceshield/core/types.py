"""Typed records passed between layers: point schemes, extractor kinds and detected faces."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np


class ExtractorKind(str, Enum):
    """How a landmark extractor can be attacked."""

    HEATMAP = "heat-map"  # differentiable, exposes heat-maps (Landmark Breaker Eq. 1 applies)
    REGRESSION = "regression"  # differentiable, regresses coordinates directly
    BLACKBOX = "black-box"  # not differentiable: evaluation and transfer target only

    @property
    def family(self) -> str:
        return "landmark"


class TargetKind(str, Enum):
    """Models of the registry that are not landmark extractors (those are :class:`ExtractorKind`)."""

    MANIPULATOR = "manipulator"  # a face editor G(x, c): attacked by disrupting its output (Ruiz et al.)
    DETECTOR = "detector"  # a DeepFake detector: scores faces real / fake
    GENERATOR = "generator"  # a trained perturbation generator: protects in one forward pass; never a target

    @property
    def family(self) -> str:
        return self.value


@dataclass(frozen=True)
class PointScheme:
    """A landmark convention.

    Attributes:
        name: e.g. ``"mtcnn5"``, ``"ibug68"``.
        n_points: number of points K.
        normaliser: the two point indices whose distance normalises NME.
        normaliser_name: what those points are (reported next to every NME).
    """

    name: str
    n_points: int
    normaliser: tuple[int, int]
    normaliser_name: str

    def __post_init__(self) -> None:
        if self.n_points <= 0:
            raise ValueError(f"n_points: expected > 0, got {self.n_points}")
        if len(self.normaliser) != 2 or not all(0 <= i < self.n_points for i in self.normaliser):
            raise ValueError(f"normaliser: expected two indices in [0, {self.n_points}), got {self.normaliser}")


#: MTCNN's five points: left eye, right eye, nose tip, left and right mouth corners (image left/right).
MTCNN5 = PointScheme("mtcnn5", 5, (0, 1), "eye centres (points 0, 1)")
#: iBUG / 300-W 68-point scheme, 0-based (jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67).
IBUG68 = PointScheme("ibug68", 68, (36, 45), "outer eye corners (points 36, 45)")
#: WFLW 98-point scheme.
WFLW98 = PointScheme("wflw98", 98, (60, 72), "outer eye corners (points 60, 72)")
#: MediaPipe FaceMesh 468-point scheme.
FACEMESH468 = PointScheme("facemesh468", 468, (33, 263), "outer eye corners (points 33, 263)")


@dataclass
class Face:
    """One detected face.

    Attributes:
        box: ``(4,)`` float ``x0, y0, x1, y1`` in pixels of the image, the box the detector reports.
        points: ``(K, 2)`` float ``x, y`` in pixels.
        scheme: the point convention of ``points``.
        score: detector confidence.
        roi: ``(4,)`` the box the extractor's differentiable landmark stage starts from (for MTCNN the
            PNet proposal fed to RNet; for a crop-based model the detector box). Defaults to ``box``.
    """

    box: np.ndarray
    points: np.ndarray
    scheme: PointScheme
    score: float = 1.0
    roi: np.ndarray | None = field(default=None)

    def __post_init__(self) -> None:
        self.box = np.asarray(self.box, dtype=np.float64).reshape(4)
        self.points = np.asarray(self.points, dtype=np.float64)
        if self.points.shape != (self.scheme.n_points, 2):
            raise ValueError(f"points: expected shape ({self.scheme.n_points}, 2), got {self.points.shape}")
        self.roi = self.box.copy() if self.roi is None else np.asarray(self.roi, dtype=np.float64).reshape(4)

    @property
    def area(self) -> float:
        """Area of ``box`` in square pixels (for picking the main face of an image)."""
        return float((self.box[2] - self.box[0]) * (self.box[3] - self.box[1]))

    @property
    def interocular(self) -> float:
        """Distance between the scheme's normaliser points, in pixels."""
        i, j = self.scheme.normaliser
        return float(np.linalg.norm(self.points[i] - self.points[j]))

    def to_dict(self) -> dict:
        return {
            "box": [round(float(v), 2) for v in self.box],
            "score": round(float(self.score), 4),
            "scheme": self.scheme.name,
            "points": [[round(float(x), 2), round(float(y), 2)] for x, y in self.points],
        }
