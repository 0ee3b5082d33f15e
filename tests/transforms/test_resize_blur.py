"""Down-up resizing and Gaussian blur: uint8 (OpenCV) and differentiable (torch / kornia) twins."""
import numpy as np
import pytest
import torch

from faceshield.transforms import Compose, GaussianBlur, Identity, Resize, rgb_to_tensor, tensor_to_rgb


@pytest.mark.parametrize("scale", [0.5, 0.75])
def test_resize_twins_agree_and_keep_the_size(astronaut, scale):
    t = Resize(scale)
    a = t(astronaut)
    with torch.no_grad():
        b = tensor_to_rgb(t(rgb_to_tensor(astronaut)))
    assert a.shape == b.shape == astronaut.shape
    assert np.abs(a.astype(float) - b).mean() < 1.5
    assert np.abs(a.astype(float) - astronaut).mean() > 1  # it does something


@pytest.mark.parametrize("sigma", [0.5, 1.5])
def test_blur_twins_agree(astronaut, sigma):
    t = GaussianBlur(sigma)
    a = t(astronaut)
    with torch.no_grad():
        b = tensor_to_rgb(t(rgb_to_tensor(astronaut)))
    assert a.shape == astronaut.shape
    assert np.abs(a.astype(float) - b).mean() < 0.6


def test_resize_odd_size_scale_one_and_gradients():
    x = torch.rand(2, 3, 31, 45, generator=torch.Generator().manual_seed(0), requires_grad=True)
    assert Resize(1.0)(x) is x
    for t in (Resize(0.5), GaussianBlur(1.0), Compose([Resize(0.7), GaussianBlur(0.8)])):
        y = t(x)
        assert y.shape == x.shape
        (g,) = torch.autograd.grad(y.square().sum(), x)
        assert torch.isfinite(g).all() and g.abs().sum() > 0
    img = (torch.rand(31, 45, 3, generator=torch.Generator().manual_seed(1)) * 255).to(torch.uint8).numpy()
    assert Resize(0.3)(img).shape == img.shape


def test_identity_and_compose():
    img = np.full((8, 8, 3), 7, np.uint8)
    out = Identity()(img)
    assert np.array_equal(out, img) and out is not img
    c = Compose([Identity(), Resize(0.5)])
    assert c.differentiable and c.spec == "identity+resize:0.5"


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"scale: expected a down-scaling factor in \(0, 1\], got 2"):
        Resize(2)
    with pytest.raises(ValueError, match=r"sigma: expected a blur sigma in \(0, 20\] pixels, got 0"):
        GaussianBlur(0)
    with pytest.raises(ValueError, match=r"expected values in \[0, 1\]"):
        Resize(0.5)(torch.full((1, 3, 8, 8), 2.0))
