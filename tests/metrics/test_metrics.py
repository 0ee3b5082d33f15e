import numpy as np
import pytest
import torch

from faceshield.core.types import IBUG68, MTCNN5
from faceshield.metrics import box_mask, linf_levels, mask_ssim, nme, psnr, ssim


def test_nme_zero_on_identical_and_known_value():
    gt = np.zeros((5, 2))
    gt[0], gt[1] = (10, 20), (30, 20)  # eye centres 20 px apart
    assert nme(gt, gt, MTCNN5) == 0
    assert nme(gt + [2.0, 0.0], gt, MTCNN5) == pytest.approx(0.1)


def test_nme_uses_outer_eye_corners_for_68_points_and_matches_torch():
    rng = np.random.default_rng(0)
    gt = rng.uniform(0, 100, (68, 2))
    pred = gt + rng.normal(0, 1, (68, 2))
    d = np.linalg.norm(gt[36] - gt[45])
    want = np.linalg.norm(pred - gt, axis=1).mean() / d
    assert nme(pred, gt, IBUG68) == pytest.approx(want)
    assert float(nme(torch.tensor(pred), torch.tensor(gt), IBUG68)) == pytest.approx(want)


def test_nme_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"expected pred and gt of shape \(\.\.\., 68, 2\)"):
        nme(np.zeros((5, 2)), np.zeros((5, 2)), IBUG68)


def test_image_metrics():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert ssim(a, a) == pytest.approx(1.0)
    assert psnr(a, a) == float("inf")
    assert linf_levels(a, a) == 0
    b = a.copy()
    b[10:20, 10:20] = np.clip(b[10:20, 10:20].astype(int) + 15, 0, 255).astype(np.uint8)
    assert linf_levels(a, b) == 15
    assert ssim(a, b) < 1
    inside = box_mask(a.shape[:2], [(10, 10, 20, 20)])
    outside = box_mask(a.shape[:2], [(40, 40, 60, 60)])
    assert mask_ssim(a, b, inside) < ssim(a, b) < mask_ssim(a, b, outside) == pytest.approx(1.0, abs=1e-6)
    assert psnr(a, b) == pytest.approx(10 * np.log10(255**2 / np.mean((a.astype(float) - b) ** 2)))


def test_box_mask_scales_and_clips():
    m = box_mask((50, 50), [(20, 20, 30, 30)], scale=2.0)
    assert m.sum() == 20 * 20
    assert box_mask((50, 50), [(-10, -10, 5, 5)]).sum() == 25


def test_mask_ssim_rejects_empty_mask():
    a = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="non-empty region"):
        mask_ssim(a, a, np.zeros((8, 8), bool))
