"""Mask, colour transfer and Kalman smoothing."""
from __future__ import annotations

import numpy as np
import pytest

from faceshield.faces.align import mean_face
from faceshield.faces.colour import reinhard_transfer
from faceshield.faces.mask import landmark_mask, mask_outline
from faceshield.faces.smooth import kalman_smooth


def test_mask_is_smooth_inside_the_image_and_covers_the_face():
    pts = mean_face() * 64 + 32
    m = landmark_mask(pts, (128, 128))
    assert m.dtype == np.float32 and m.min() >= 0 and m.max() <= 1
    assert m[0].max() == m[-1].max() == m[:, 0].max() == m[:, -1].max() == 0
    # no hard edge: neighbouring pixels differ by far less than a binary mask's step of 1
    assert np.abs(np.diff(m, axis=0)).max() < 0.15 and np.abs(np.diff(m, axis=1)).max() < 0.15
    nose = pts[30].astype(int)
    assert m[nose[1], nose[0]] > 0.99  # fully synthesised at the centre
    outline = mask_outline(pts)
    assert outline.shape == (27, 2)
    # brows on top, chin points between the lower lip and the chin
    assert outline[8, 1] > pts[57, 1] and outline[8, 1] < pts[8, 1]
    # a face at the border still gives a mask that is zero on the border
    m2 = landmark_mask(pts - 40, (128, 128))
    assert m2[0].max() == 0 and m2[:, 0].max() == 0


def test_reinhard_transfer_matches_lab_statistics():
    import cv2

    rng = np.random.default_rng(0)
    src = np.clip(rng.normal(0.3, 0.05, (64, 64, 3)), 0, 1).astype(np.float32)
    tgt = np.clip(rng.normal([0.7, 0.5, 0.4], 0.1, (64, 64, 3)), 0, 1).astype(np.float32)
    out = reinhard_transfer(src, tgt)
    lab = lambda x: cv2.cvtColor(x, cv2.COLOR_RGB2LAB).reshape(-1, 3)  # noqa: E731
    np.testing.assert_allclose(lab(out).mean(0), lab(tgt).mean(0), atol=1.5)
    np.testing.assert_allclose(lab(out).std(0), lab(tgt).std(0), rtol=0.15, atol=0.5)
    assert out.shape == src.shape and out.min() >= 0 and out.max() <= 1


def test_kalman_smoothing_reduces_jitter_and_fills_gaps():
    rng = np.random.default_rng(0)
    t = np.arange(60)[:, None, None]
    true = np.concatenate([100 + 0.8 * t + 0 * np.ones((60, 5, 1)), 80 + 10 * np.sin(t / 10.0) * np.ones((60, 5, 1))], 2)
    noisy = true + rng.normal(0, 2.0, true.shape)
    valid = np.ones(60, bool)
    valid[30:33] = False
    noisy[30:33] = 0.0  # garbage where the face was not found
    sm = kalman_smooth(noisy, valid=valid)
    err = lambda a: np.abs(a[valid] - true[valid]).mean()  # noqa: E731
    assert err(sm) < 0.6 * err(noisy)
    jitter = lambda a: np.abs(np.diff(a, 2, axis=0)).mean()  # noqa: E731
    assert jitter(sm) < 0.2 * jitter(np.where(valid[:, None, None], noisy, true))
    assert np.abs(sm[30:33] - true[30:33]).max() < 4.0  # gaps filled by the motion model
    with pytest.raises(ValueError):
        kalman_smooth(np.zeros((5, 3)))
