"""Celeb-DF's improved blending mask: a smooth region bounded by the eyebrows above and, below, by
points interpolated on the cheeks and between the lower lip and the chin, feathered so that it has
no visible edge (Li et al., Celeb-DF, Sec. 4.3.1, Fig. 4.7)."""
from __future__ import annotations

import cv2
import numpy as np

#: Jaw points (iBUG 0-16) pulled towards the nose tip (30) by this fraction to give cheek points.
CHEEK_PULL = 0.2
#: Chin points (iBUG 6-10) pulled towards the lower lip (57) by this fraction.
CHIN_PULL = 0.5


def mask_outline(p68: np.ndarray) -> np.ndarray:
    """The mask polygon of a 68-point face: ``(27, 2)`` points (17 lower points from cheek to
    cheek, then the brows from right to left), in the coordinates of ``p68``."""
    p = np.asarray(p68, dtype=np.float64)
    lower = p[0:17].copy()
    cheeks = [*range(0, 6), *range(11, 17)]
    lower[cheeks] += CHEEK_PULL * (p[30] - lower[cheeks])
    lower[6:11] += CHIN_PULL * (p[57] - lower[6:11])
    return np.concatenate([lower, p[26:16:-1]])


def landmark_mask(p68: np.ndarray, shape: tuple[int, int], feather: float = 0.08) -> np.ndarray:
    """Feathered mask of the face region.

    Args:
        p68: ``(68, 2)`` iBUG points in pixels of the target array.
        shape: ``(H, W)`` of the mask.
        feather: softness as a fraction of the face size (the outline's bounding-box diagonal):
            the filled outline is eroded by ``feather`` and blurred with sigma ``feather / 2``, so
            the mask falls smoothly to ~0 at the outline and 1 well inside.

    Returns:
        ``(H, W)`` float32 in ``[0, 1]``, exactly 0 on the array's border.
    """
    h, w = shape
    outline = mask_outline(p68)
    hull = cv2.convexHull(np.round(outline * 16).astype(np.int32))
    m = np.zeros((h, w), np.float32)
    cv2.fillConvexPoly(m, hull, 1.0, lineType=cv2.LINE_AA, shift=4)
    diag = float(np.hypot(*(outline.max(0) - outline.min(0))))
    e = max(1, int(round(feather * diag)))
    m = cv2.erode(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * e + 1, 2 * e + 1)))
    sigma = max(0.5, e / 2.0)
    m = cv2.GaussianBlur(m, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)
    m[0, :] = m[-1, :] = 0.0
    m[:, 0] = m[:, -1] = 0.0
    return np.clip(m, 0.0, 1.0)
