"""Real JPEG (OpenCV) and its differentiable approximation (kornia)."""
import numpy as np
import pytest
import torch

from faceshield.transforms import JPEG, DiffJPEG, diff_jpeg, jpeg, rgb_to_tensor, tensor_to_rgb


def test_jpeg_keeps_size_and_rgb_order():
    img = np.zeros((40, 56, 3), np.uint8)
    img[..., 0] = 220  # pure red: swapped channels would come back blue
    out = JPEG(50)(img)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert out[..., 0].mean() > 200 and out[..., 2].mean() < 30


def test_jpeg_changes_the_image_more_at_lower_quality(astronaut):
    d50 = np.abs(jpeg(astronaut, 50).astype(int) - astronaut).mean()
    d90 = np.abs(jpeg(astronaut, 90).astype(int) - astronaut).mean()
    assert 1 < d90 < d50 < 10


@pytest.mark.parametrize("q", [50, 75])
def test_diffjpeg_approximates_opencv_jpeg(astronaut, q):
    """Measured: mean |DiffJPEG - OpenCV| = 1.24 levels at Q50, 1.11 at Q75 (the codec itself moves
    pixels by 3.93 / 3.17 levels on average)."""
    real = jpeg(astronaut, q).astype(np.float64)
    with torch.no_grad():
        sim = tensor_to_rgb(DiffJPEG(q)(rgb_to_tensor(astronaut))).astype(np.float64)
    gap = np.abs(sim - real).mean()
    codec = np.abs(real - astronaut).mean()
    assert gap < 1.5 and gap < 0.4 * codec


def test_diffjpeg_handles_sizes_that_are_not_multiples_of_16(astronaut):
    crop = np.ascontiguousarray(astronaut[:37, :53])
    x = rgb_to_tensor(crop)
    y = diff_jpeg(x, 50)
    assert y.shape == x.shape
    assert np.abs(tensor_to_rgb(y).astype(float) - jpeg(crop, 50)).mean() < 2.5


def test_diffjpeg_passes_gradients_to_the_image_and_the_quality():
    x = (torch.rand(2, 3, 24, 40, generator=torch.Generator().manual_seed(0)) * 0.8 + 0.1).requires_grad_(True)
    q = torch.tensor([50.0, 80.0], requires_grad=True)
    y = diff_jpeg(x, q)
    assert y.shape == x.shape and y.min() >= -0.01 and y.max() <= 1.01
    y.pow(2).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert torch.isfinite(q.grad).all() and (q.grad != 0).all()


def test_diffjpeg_on_uint8_is_a_rounded_simulation(astronaut):
    out = DiffJPEG(75)(astronaut)
    assert out.dtype == np.uint8 and out.shape == astronaut.shape


def test_jpeg_bad_arguments():
    with pytest.raises(ValueError, match=r"quality: expected a JPEG quality in \[1, 100\], got 0"):
        JPEG(0)
    with pytest.raises(ValueError, match="expected an integer JPEG quality"):
        JPEG(50.5)
    with pytest.raises(TypeError, match="quality: expected a number"):
        DiffJPEG("50")
    with pytest.raises(ValueError, match=r"expected \(H, W, 3\) uint8 RGB"):
        JPEG(50)(np.zeros((8, 8), np.uint8))
    with pytest.raises(TypeError, match="'jpeg:q=50' is not differentiable"):
        JPEG(50)(torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"quality: expected a number or a \(1,\) / \(2,\) tensor"):
        diff_jpeg(torch.rand(2, 3, 16, 16), torch.tensor([50.0, 60.0, 70.0]))
