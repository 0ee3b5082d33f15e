"""Resizing down and back up (a re-upload at lower resolution), size and geometry preserved."""
from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from faceshield.core.check import check_rgb_uint8
from faceshield.transforms.base import Transform


def _check_scale(scale: float) -> float:
    if isinstance(scale, bool) or not isinstance(scale, (int, float, np.integer, np.floating)):
        raise TypeError(f"scale: expected a number in (0, 1], got {type(scale).__name__}")
    if not 0 < scale <= 1:
        raise ValueError(f"scale: expected a down-scaling factor in (0, 1], got {scale}")
    return float(scale)


def reduced_size(h: int, w: int, scale: float) -> tuple[int, int]:
    """The intermediate size ``(max(1, round(h * scale)), max(1, round(w * scale)))``."""
    return max(1, round(h * scale)), max(1, round(w * scale))


def resize_down_up(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Differentiable down-up resize: antialiased bilinear down to :func:`reduced_size`, bilinear back.

    Args:
        x: ``(B, C, H, W)`` in [0, 1].
        scale: factor in (0, 1] (1 returns ``x``).

    Returns:
        ``(B, C, H, W)`` in [0, 1], differentiable w.r.t. ``x``.
    """
    scale = _check_scale(scale)
    h, w = x.shape[-2:]
    small = reduced_size(h, w, scale)
    if small == (h, w):
        return x
    y = F.interpolate(x, size=small, mode="bilinear", align_corners=False, antialias=True)
    return F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False).clamp(0, 1)


def resize_down_up_uint8(rgb: np.ndarray, scale: float) -> np.ndarray:
    """OpenCV down-up resize: ``INTER_AREA`` down (antialiased), ``INTER_LINEAR`` back.

    Args:
        rgb: ``(H, W, 3)`` uint8 RGB.
        scale: factor in (0, 1].

    Returns:
        ``(H, W, 3)`` uint8 RGB.
    """
    rgb = check_rgb_uint8(rgb, "rgb")
    scale = _check_scale(scale)
    h, w = rgb.shape[:2]
    sh, sw = reduced_size(h, w, scale)
    if (sh, sw) == (h, w):
        return rgb.copy()
    small = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


class Resize(Transform):
    """Down to ``scale`` of the size and back up (``resize:0.5``).

    ``t(rgb)``: ``(H, W, 3)`` uint8 RGB -> same (OpenCV, :func:`resize_down_up_uint8`);
    ``t(x)``: ``(B, 3, H, W)`` RGB in [0, 1] -> same, differentiable (:func:`resize_down_up`).
    The two agree to about one 8-bit level on natural images (``tests/transforms``).
    """

    name = "resize"
    differentiable = True

    def __init__(self, scale: float = 0.5) -> None:
        self.scale = _check_scale(scale)

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        return resize_down_up_uint8(rgb, self.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return resize_down_up(x, self.scale)

    @property
    def spec(self) -> str:
        return f"resize:{self.scale:g}"


__all__ = ["Resize", "reduced_size", "resize_down_up", "resize_down_up_uint8"]
