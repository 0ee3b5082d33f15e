"""Gaussian blur (``cv2.GaussianBlur`` for uint8 images, ``kornia.filters.gaussian_blur2d`` for tensors)."""
from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from faceshield.core.check import check_rgb_uint8
from faceshield.transforms.base import Transform


def _check_sigma(sigma: float) -> float:
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float, np.integer, np.floating)):
        raise TypeError(f"sigma: expected a positive number, got {type(sigma).__name__}")
    if not 0 < sigma <= 20:
        raise ValueError(f"sigma: expected a blur sigma in (0, 20] pixels, got {sigma}")
    return float(sigma)


def kernel_size(sigma: float) -> int:
    """Odd kernel side ``2 * ceil(3 sigma) + 1`` (both implementations use it)."""
    return 2 * math.ceil(3 * sigma) + 1


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Differentiable Gaussian blur, reflect-101 border (OpenCV's default).

    Args:
        x: ``(B, C, H, W)`` in [0, 1].
        sigma: standard deviation in pixels, in (0, 20].

    Returns:
        ``(B, C, H, W)`` in [0, 1].
    """
    from kornia.filters import gaussian_blur2d

    sigma = _check_sigma(sigma)
    k = kernel_size(sigma)
    s = torch.tensor([[sigma, sigma]], dtype=x.dtype, device=x.device)
    return gaussian_blur2d(x, (k, k), s, border_type="reflect")


def gaussian_blur_uint8(rgb: np.ndarray, sigma: float) -> np.ndarray:
    """``cv2.GaussianBlur`` with the kernel of :func:`kernel_size`: ``(H, W, 3)`` uint8 -> same."""
    rgb = check_rgb_uint8(rgb, "rgb")
    sigma = _check_sigma(sigma)
    k = kernel_size(sigma)
    return cv2.GaussianBlur(rgb, (k, k), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)


class GaussianBlur(Transform):
    """Gaussian blur of ``sigma`` pixels (``blur:1.0``).

    ``t(rgb)``: ``(H, W, 3)`` uint8 RGB -> same (OpenCV); ``t(x)``: ``(B, 3, H, W)`` RGB in [0, 1]
    -> same, differentiable (kornia).
    """

    name = "blur"
    differentiable = True

    def __init__(self, sigma: float = 1.0) -> None:
        self.sigma = _check_sigma(sigma)

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        return gaussian_blur_uint8(rgb, self.sigma)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return gaussian_blur(x, self.sigma)

    @property
    def spec(self) -> str:
        return f"blur:{self.sigma:g}"


__all__ = ["GaussianBlur", "gaussian_blur", "gaussian_blur_uint8", "kernel_size"]
