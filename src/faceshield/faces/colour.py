"""Colour transfer between a synthesised face and the target face (Reinhard et al. 2001, in the Lab
space; DeepFaceLab's "rct"), which Celeb-DF applies after synthesis."""
from __future__ import annotations

import cv2
import numpy as np


def reinhard_transfer(source: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Give ``source`` the per-channel Lab mean and standard deviation of ``target``.

    Args:
        source, target: ``(H, W, 3)`` RGB, float32 in ``[0, 1]`` or uint8.
        mask: optional ``(H, W)`` weights in ``[0, 1]``; statistics are taken where ``mask > 0.5``
            (of both images), so the background does not count.

    Returns:
        ``(H, W, 3)`` float32 RGB in ``[0, 1]``.
    """
    def lab(x):
        x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
        return cv2.cvtColor(np.clip(x, 0, 1), cv2.COLOR_RGB2LAB)

    s, t = lab(source), lab(target)
    sel = np.ones(s.shape[:2], bool) if mask is None else np.asarray(mask) > 0.5
    if sel.sum() < 16:  # too little face to measure: leave the colours alone
        return cv2.cvtColor(s, cv2.COLOR_LAB2RGB)
    ms, ss = s[sel].mean(0), s[sel].std(0) + 1e-6
    mt, st = t[sel].mean(0), t[sel].std(0)
    out = (s - ms) * (st / ss) + mt
    out[..., 0] = np.clip(out[..., 0], 0, 100)
    out[..., 1:] = np.clip(out[..., 1:], -127, 127)
    return np.clip(cv2.cvtColor(out.astype(np.float32), cv2.COLOR_LAB2RGB), 0.0, 1.0)
