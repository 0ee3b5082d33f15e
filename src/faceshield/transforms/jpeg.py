"""JPEG compression: the real codec (OpenCV / libjpeg) for evaluation and a differentiable
approximation (kornia, Reich et al. 2024) for the attack.

Landmark Breaker Sec. IV-D compresses the protected images "to quality 75% (Q75) and 50% (Q50)
using OpenCV": :class:`JPEG` does exactly that (``cv2.imencode(".jpg", ...)`` with
``IMWRITE_JPEG_QUALITY``, libjpeg's default 4:2:0 chroma subsampling and standard tables).

:func:`diff_jpeg` models the same pipeline (RGB -> YCbCr, 4:2:0 subsampling, 8x8 DCT, the standard
tables scaled by libjpeg's quality rule, rounding) with smooth surrogates of rounding and clipping.
Measured against OpenCV 4.x on the astronaut sample (512 x 512 and a 301 x 203 crop,
``tests/transforms/test_jpeg.py``, output rounded to 8 bits), the mean absolute difference is
1.24 8-bit levels at Q50, 1.11 at Q75 and 0.89 at Q90 (for scale: the real codec itself changes the
image by 3.93, 3.17 and 2.37 levels on average). The rest comes from libjpeg's integer DCT,
its "fancy" (triangular) chroma upsampling and the smooth rounding surrogate.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from faceshield.core.check import check_rgb_uint8
from faceshield.transforms.base import Transform

#: libjpeg pads to whole MCUs (16 x 16 pixels with 4:2:0 chroma subsampling).
MCU = 16


def _check_quality(quality: float, *, integer: bool) -> float:
    if isinstance(quality, bool) or not isinstance(quality, (int, float, np.integer, np.floating)):
        raise TypeError(f"quality: expected a number in [1, 100], got {type(quality).__name__}")
    if not 1 <= quality <= 100:
        raise ValueError(f"quality: expected a JPEG quality in [1, 100], got {quality}")
    if integer and quality != int(quality):
        raise ValueError(f"quality: expected an integer JPEG quality in [1, 100], got {quality}")
    return int(quality) if integer else float(quality)


def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    """Real JPEG round trip with OpenCV (libjpeg), in memory.

    Args:
        rgb: ``(H, W, 3)`` uint8 **RGB** (converted to OpenCV's BGR and back).
        quality: JPEG quality in [1, 100] (``cv2.IMWRITE_JPEG_QUALITY``).

    Returns:
        ``(H, W, 3)`` uint8 RGB, the decoded JPEG.
    """
    rgb = check_rgb_uint8(rgb, "rgb")
    q = _check_quality(quality, integer=True)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, q])
    if not ok:  # pragma: no cover - libjpeg does not fail on valid uint8 images
        raise RuntimeError(f"OpenCV failed to encode a {rgb.shape[1]}x{rgb.shape[0]} image as JPEG")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def diff_jpeg(x: torch.Tensor, quality: float | torch.Tensor) -> torch.Tensor:
    """Differentiable JPEG round trip (``kornia.enhance.jpeg_codec_differentiable``).

    The image is padded to a multiple of 16 pixels by replicating its last row / column (what
    libjpeg does for partial MCUs) and cropped back, so any ``H, W`` works with every kornia version.

    Args:
        x: ``(B, 3, H, W)`` RGB in [0, 1].
        quality: a number or a ``(B,)`` tensor of qualities in [1, 100] (may require grad).

    Returns:
        ``(B, 3, H, W)`` RGB in [0, 1] (soft-clipped, not rounded to 8 bits), differentiable w.r.t. ``x``.
    """
    from kornia.enhance import jpeg_codec_differentiable

    b, _, h, w = x.shape
    if not isinstance(quality, torch.Tensor):
        quality = torch.full((1,), _check_quality(quality, integer=False), dtype=x.dtype, device=x.device)
    elif quality.ndim == 0:
        quality = quality.reshape(1)
    if quality.ndim != 1 or quality.shape[0] not in (1, b):
        raise ValueError(f"quality: expected a number or a (1,) / ({b},) tensor, got shape {tuple(quality.shape)}")
    ph, pw = math.ceil(h / MCU) * MCU - h, math.ceil(w / MCU) * MCU - w
    xp = F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x
    out = jpeg_codec_differentiable(xp, quality.to(x.dtype))
    return out[..., :h, :w]


class JPEG(Transform):
    """Real JPEG compression at ``quality`` (OpenCV), for evaluation (``jpeg75``, ``jpeg:q=50``).

    ``t(rgb)``: ``(H, W, 3)`` uint8 RGB -> ``(H, W, 3)`` uint8 RGB. Not differentiable: inside the
    attack use :class:`DiffJPEG`.
    """

    name = "jpeg"

    def __init__(self, quality: int = 75) -> None:
        self.quality = _check_quality(quality, integer=True)

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        return jpeg(rgb, self.quality)

    @property
    def spec(self) -> str:
        return f"jpeg:q={self.quality}"


class DiffJPEG(Transform):
    """Differentiable JPEG at ``quality`` (see :func:`diff_jpeg`), ``diffjpeg:q=50``.

    ``t(x)``: ``(B, 3, H, W)`` RGB in [0, 1] -> same shape, in [0, 1], differentiable. On a uint8
    image it runs the same model and rounds (a JPEG *simulation*, not the real codec).
    """

    name = "diffjpeg"
    differentiable = True

    def __init__(self, quality: float = 75) -> None:
        self.quality = _check_quality(quality, integer=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return diff_jpeg(x, self.quality)

    @property
    def spec(self) -> str:
        return f"diffjpeg:q={self.quality:g}"


__all__ = ["DiffJPEG", "JPEG", "diff_jpeg", "jpeg"]
