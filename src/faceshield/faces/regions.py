"""Soft facial-part masks from FaceMesh's 468 points, in place of a face parser (MagDR Sec. 3.2.1).

MagDR splits a face into parts with BiSeNet and restores each part its own way. No parser's weights
can be had here, so the parts come from FaceMesh's mesh: each part is a polygon through mesh
vertices, the outlines of MediaPipe's published contour sets (face oval, eyes, eyebrows, lips) and
the convex hull of its nose set:

==============  =====================================================================
region          pixels
==============  =====================================================================
``background``  outside the face oval (hair, neck, the scene)
``skin``        inside the face oval, in no other part
``brows``       the two eyebrow outlines (upper and lower contour joined)
``eyes``        the two eye outlines (lids)
``nose``        the convex hull of the nose vertices
``lips``        the outer lip outline (the mouth opening included)
==============  =====================================================================

A pixel's hard label is the last part (in this order) whose polygon holds it; each label's
indicator is blurred by a Gaussian of ``soft`` times the face's size, and the blurred indicators are
divided by their sum, so the ``N`` masks are soft at the borders and sum to 1 at every pixel.
"""
from __future__ import annotations

import cv2
import numpy as np

REGIONS = ("background", "skin", "brows", "eyes", "nose", "lips")

#: vertex loops (FaceMesh indices) of each part; several loops for paired parts
_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176, 149, 150, 136,
         172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109]
_LOOPS: dict[str, list[list[int]]] = {
    "brows": [[46, 53, 52, 65, 55, 107, 66, 105, 63, 70], [276, 283, 282, 295, 285, 336, 296, 334, 293, 300]],
    "eyes": [[33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246],
             [263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466]],
    "lips": [[61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185]],
}
_NOSE = [168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 98, 97, 326, 327, 294, 278, 344, 440, 275, 45, 220, 115, 48, 64]

#: the parts' vertex loops by name (FaceMesh indices): the face oval, each eyebrow, eye and the outer
#: lips as closed loops; the nose as its vertex set (hull it). For drawing a face's outline.
CONTOURS: dict[str, list[list[int]]] = {"oval": [_OVAL], **_LOOPS, "nose": [_NOSE]}


def region_labels(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Hard part labels: ``(H, W)`` uint8, values index :data:`REGIONS`.

    Args:
        points: ``(468, 2)`` FaceMesh points ``(x, y)`` in pixels of the image.
        shape: ``(H, W)``.
    """
    p = np.asarray(points, dtype=np.float64)
    if p.shape[0] < 468 or p.shape[1] < 2:
        raise ValueError(f"points: expected FaceMesh's (468, 2) points, got shape {p.shape}")
    lab = np.zeros(shape, np.uint8)
    poly = lambda idx: np.round(p[idx, :2] * 16).astype(np.int32)  # noqa: E731  (4 fractional bits)
    cv2.fillPoly(lab, [poly(_OVAL)], REGIONS.index("skin"), shift=4)
    for name in ("brows", "eyes"):
        cv2.fillPoly(lab, [poly(loop) for loop in _LOOPS[name]], REGIONS.index(name), shift=4)
    cv2.fillConvexPoly(lab, cv2.convexHull(poly(_NOSE)), REGIONS.index("nose"), shift=4)
    cv2.fillPoly(lab, [poly(loop) for loop in _LOOPS["lips"]], REGIONS.index("lips"), shift=4)
    return lab


def region_masks(points: np.ndarray, shape: tuple[int, int], soft: float = 0.02) -> np.ndarray:
    """Soft part masks that sum to 1 at every pixel.

    Args:
        points: ``(468, 2)`` FaceMesh points in pixels.
        shape: ``(H, W)``.
        soft: blur sigma as a fraction of the face oval's larger side (0: hard masks).

    Returns:
        ``(len(REGIONS), H, W)`` float32 in ``[0, 1]``, in :data:`REGIONS` order.
    """
    lab = region_labels(points, shape)
    masks = np.stack([(lab == i).astype(np.float32) for i in range(len(REGIONS))])
    if soft > 0:
        oval = np.asarray(points, dtype=np.float64)[_OVAL, :2]
        sigma = max(0.5, soft * float((oval.max(0) - oval.min(0)).max()))
        masks = np.stack([cv2.GaussianBlur(m, (0, 0), sigma, borderType=cv2.BORDER_REFLECT) for m in masks])
        masks = np.clip(masks, 0, None)
        masks /= masks.sum(0, keepdims=True)
    return masks
