"""Face alignment as the DeepFake tools do it: an Umeyama similarity from the landmarks of brows,
eyes, nose and mouth (iBUG points 17-67; the jaw excluded) onto a mean face, then an affine warp to
a square crop and back.

Coordinates: points are ``(K, 2)`` ``x, y`` in pixels with pixel ``i`` covering ``[i, i + 1)``
(the convention of the extractors). OpenCV's warps sample at integer pixel *centres*, so matrices
here map continuous coordinates and :func:`warp_to_crop` / :func:`warp_from_crop` convert.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import cv2
import numpy as np
from skimage.transform import SimilarityTransform

from faceshield.core.types import FACEMESH468, IBUG68, MTCNN5, PointScheme

#: iBUG-68 index -> MediaPipe FaceMesh-468 index (image-left first, as in iBUG). Points 17-67 are the
#: anatomically corresponding mesh vertices; the jaw (0-16) is the vertex of FaceMesh's face-oval ring
#: nearest to the iBUG jaw point on average over 150 landmarks68/train images (FaceMesh's silhouette
#: is not iBUG's jaw line). On the first 60 HELEN test images, mean error / outer-eye-corner distance:
#: brows 0.069, nose 0.038, eyes 0.036, mouth 0.042, points 17-67 0.045, jaw 0.10, all 68 0.059 (checked in
#: ``tests/faces/test_align.py``).
FACEMESH_TO_IBUG68: tuple[int, ...] = (
    # jaw 0-16
    127, 234, 132, 58, 172, 150, 149, 148, 152, 377, 378, 365, 397, 288, 361, 454, 356,
    # brows 17-26
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
    # nose 27-35
    168, 197, 5, 4, 75, 97, 2, 326, 305,
    # eyes 36-47
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    # outer lip 48-59
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,
    # inner lip 60-67
    78, 82, 13, 312, 308, 317, 14, 87,
)

#: iBUG points the similarity is fitted on (brows, eyes, nose, mouth).
ALIGN_POINTS = tuple(range(17, 68))


@lru_cache(maxsize=1)
def mean_face() -> np.ndarray:
    """The shipped mean face: ``(68, 2)`` iBUG order, points 17-67 spanning ``[0, 1]`` in x and y
    (built by ``scripts/make_mean_face.py``)."""
    text = (resources.files("faceshield") / "data" / "mean_face68.json").read_text()
    pts = np.asarray(json.loads(text)["points"], dtype=np.float64)
    pts.setflags(write=False)
    return pts


def to_ibug68(points: np.ndarray, scheme: PointScheme) -> np.ndarray | None:
    """``(K, 2)`` points of ``scheme`` as ``(68, 2)`` iBUG points, or None if the scheme has no
    68-point equivalent (MTCNN's five points)."""
    if scheme == IBUG68:
        return np.asarray(points, dtype=np.float64)
    if scheme == FACEMESH468:
        return np.asarray(points, dtype=np.float64)[list(FACEMESH_TO_IBUG68)]
    return None


def _mtcnn5_from_68(p68: np.ndarray) -> np.ndarray:
    """MTCNN's five points (eye centres, nose tip, mouth corners) of a 68-point shape."""
    return np.stack([p68[36:42].mean(0), p68[42:48].mean(0), p68[30], p68[48], p68[54]])


def correspondences(points: np.ndarray, scheme: PointScheme) -> tuple[np.ndarray, np.ndarray]:
    """The points used for alignment and their places on the mean face.

    Returns:
        ``(src, dst)``: ``(M, 2)`` points of the face in pixels and ``(M, 2)`` mean-face points in
        template units (51 points 17-67 for 68- and 468-point schemes, 5 for MTCNN).
    """
    mf = mean_face()
    p68 = to_ibug68(points, scheme)
    if p68 is not None:
        return p68[list(ALIGN_POINTS)], mf[list(ALIGN_POINTS)]
    if scheme == MTCNN5:
        return np.asarray(points, dtype=np.float64), _mtcnn5_from_68(mf)
    raise ValueError(f"cannot align faces with the {scheme.name} point scheme (supported: ibug68, facemesh468, mtcnn5)")


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation; Umeyama 1991) mapping
    ``src`` onto ``dst``, both ``(M, 2)`` with M >= 2. Returns the ``(3, 3)`` homogeneous matrix."""
    src, dst = np.asarray(src, dtype=np.float64), np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"umeyama: expected two (M, 2) arrays with M >= 2, got {src.shape} and {dst.shape}")
    if not (np.isfinite(src).all() and np.isfinite(dst).all()):
        raise ValueError("umeyama: points must be finite")
    tf = SimilarityTransform.from_estimate(src, dst)
    if not tf:  # degenerate input (all points equal)
        raise ValueError("umeyama: degenerate points, no similarity fits")
    return np.asarray(tf.params, dtype=np.float64)


@dataclass(frozen=True)
class Alignment:
    """An aligned crop's geometry.

    Attributes:
        matrix: ``(2, 3)`` affine from image pixels to crop pixels (continuous coordinates).
        size: crop side in pixels.
        padding: fraction of the crop on each side around the template's inner points (17-67).
    """

    matrix: np.ndarray
    size: int
    padding: float

    @property
    def inverse(self) -> np.ndarray:
        """``(2, 3)`` affine from crop pixels back to image pixels."""
        return cv2.invertAffineTransform(self.matrix)

    @property
    def scale(self) -> float:
        """Crop pixels per image pixel."""
        return float(np.sqrt(abs(np.linalg.det(self.matrix[:, :2]))))

    @property
    def roll(self) -> float:
        """In-plane rotation of the face in degrees (0 = upright, positive = clockwise in the image)."""
        return float(np.degrees(np.arctan2(self.matrix[1, 0], self.matrix[0, 0])) * -1.0)

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        """``(K, 2)`` image points -> crop points."""
        return np.asarray(points, dtype=np.float64) @ self.matrix[:, :2].T + self.matrix[:, 2]

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """``(K, 2)`` crop points -> image points."""
        inv = self.inverse
        return np.asarray(points, dtype=np.float64) @ inv[:, :2].T + inv[:, 2]

    def to_template(self, points: np.ndarray) -> np.ndarray:
        """``(K, 2)`` image points -> mean-face template units (inner points span ``[0, 1]``)."""
        span = self.size * (1.0 - 2.0 * self.padding)
        return (self.to_crop(points) - self.size * self.padding) / span


def align(points: np.ndarray, scheme: PointScheme, size: int = 128, padding: float = 0.25) -> Alignment:
    """Fit the alignment of one face.

    Args:
        points: ``(K, 2)`` landmarks in image pixels, of ``scheme``.
        size: crop side in pixels (Celeb-DF: 64 / 128 / 256).
        padding: context around the inner face on each side, as a fraction of the crop; 0.25 puts
            the template's points 17-67 in the middle half, so the chin and cheeks are inside.
    """
    if size < 8:
        raise ValueError(f"size: expected >= 8, got {size}")
    if not 0.0 <= padding < 0.5:
        raise ValueError(f"padding: expected in [0, 0.5), got {padding}")
    src, dst = correspondences(points, scheme)
    span = size * (1.0 - 2.0 * padding)
    m = umeyama(src, dst * span + size * padding)
    return Alignment(matrix=m[:2].copy(), size=int(size), padding=float(padding))


def _centre_shift(m: np.ndarray) -> np.ndarray:
    """The same map for OpenCV's integer-centre convention: x' + 0.5 = A (x + 0.5) + t."""
    out = m.copy()
    out[:, 2] = m[:, :2] @ np.array([0.5, 0.5]) + m[:, 2] - 0.5
    return out


def warp_to_crop(image: np.ndarray, alignment: Alignment, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Cut the aligned face out: ``(H, W, C)`` image (any dtype) -> ``(size, size, C)``. Pixels
    outside the image repeat the border (a crop near the frame edge stays plausible)."""
    s = alignment.size
    flags = interpolation
    if alignment.scale < 0.5 and interpolation == cv2.INTER_LINEAR:
        flags = cv2.INTER_AREA  # strong shrink: average, as the tools' resize does
    return cv2.warpAffine(image, _centre_shift(alignment.matrix), (s, s), flags=flags, borderMode=cv2.BORDER_REPLICATE)


def warp_from_crop(crop: np.ndarray, alignment: Alignment, shape: tuple[int, int]) -> np.ndarray:
    """Put a crop back: ``(size, size[, C])`` -> ``(H, W[, C])`` float32 with zeros where the crop
    does not reach. ``shape`` is the image's ``(H, W)``."""
    h, w = shape
    src = crop.astype(np.float32, copy=False)
    return cv2.warpAffine(src, _centre_shift(alignment.matrix), (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
