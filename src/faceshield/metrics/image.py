"""Image-quality metrics between a clean image and its protected copy.

All take ``(H, W, 3)`` uint8 RGB arrays (what is saved on disk is what is measured).

* :func:`ssim` - SSIM_I of Landmark Breaker: structural similarity (Wang et al. 2004: Gaussian window
  sigma 1.5, K1 0.01, K2 0.03) on the whole image, mean over RGB channels.
* :func:`mask_ssim` - the same SSIM map averaged only inside a region (Mask-SSIM, Ma et al. 2017), the
  face region here.
* :func:`psnr` in dB; :func:`linf_levels` the effective L_inf in 8-bit levels.
"""
from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape or a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected two (H, W, 3) images of the same shape, got {a.shape} and {b.shape}")


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel SSIM ``(H, W)`` (mean over channels) of two uint8 RGB images."""
    _check_pair(a, b)
    _, smap = structural_similarity(
        a, b, channel_axis=-1, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, full=True
    )
    return smap.mean(axis=-1)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM_I: mean SSIM over the whole image, in [-1, 1] (1 = identical)."""
    return float(ssim_map(a, b).mean())


def mask_ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Mask-SSIM: mean of the SSIM map inside ``mask`` (``(H, W)`` bool or weights in [0, 1])."""
    m = np.asarray(mask, dtype=np.float64)
    if m.shape != a.shape[:2]:
        raise ValueError(f"mask: expected shape {a.shape[:2]}, got {m.shape}")
    if m.sum() <= 0:
        raise ValueError("mask: expected a non-empty region, got an all-zero mask")
    return float((ssim_map(a, b) * m).sum() / m.sum())


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB (``inf`` for identical images)."""
    _check_pair(a, b)
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def linf_levels(a: np.ndarray, b: np.ndarray) -> int:
    """Largest absolute difference in 8-bit levels (the effective L_inf budget of the saved file)."""
    _check_pair(a, b)
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


def box_mask(shape: tuple[int, int], boxes, scale: float = 1.0) -> np.ndarray:
    """``(H, W)`` bool mask, True inside the (optionally enlarged) boxes ``[(x0, y0, x1, y1), ...]``."""
    h, w = shape
    m = np.zeros((h, w), dtype=bool)
    for x0, y0, x1, y1 in boxes:
        cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * scale / 2, (y1 - y0) * scale / 2
        r0, r1 = max(0, int(np.floor(cy - hh))), min(h, int(np.ceil(cy + hh)))
        c0, c1 = max(0, int(np.floor(cx - hw))), min(w, int(np.ceil(cx + hw)))
        m[r0:r1, c0:c1] = True
    return m
