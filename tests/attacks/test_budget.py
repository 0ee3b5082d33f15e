import pytest
import torch

from faceshield.attacks.budget import local_std, texture_budget


def test_local_std_is_zero_on_flat_and_large_on_texture():
    flat = torch.full((1, 3, 32, 32), 0.5)
    assert local_std(flat).abs().max() < 1e-3
    checker = ((torch.arange(32)[:, None] + torch.arange(32)[None]) % 2).float().expand(1, 3, 32, 32) * 0.2 + 0.4
    s = local_std(checker)
    assert s.shape == (1, 1, 32, 32)
    assert s[..., 8:24, 8:24].min() > 20  # +-0.1 alternating = +-25.5 levels


def test_texture_budget_follows_texture_within_its_range():
    x = torch.full((2, 3, 48, 48), 0.5)
    x[:, :, :, 24:] += 0.4 * torch.rand(2, 1, 48, 24, generator=torch.Generator().manual_seed(0)) - 0.2  # ~29 levels
    w = texture_budget(x, floor=0.25, full_at=12.0)
    assert w.shape == (2, 1, 48, 48)
    assert w.min() >= 0.25 and w.max() <= 1.0
    assert torch.allclose(w[..., :, :12], torch.full_like(w[..., :, :12], 0.25))  # flat: the floor
    assert (w[..., :, 36:] == 1.0).all()  # noisy: full budget


@pytest.mark.parametrize("kw", [dict(floor=-0.1), dict(floor=1.5), dict(full_at=0)])
def test_texture_budget_rejects_bad_arguments(kw):
    with pytest.raises(ValueError):
        texture_budget(torch.rand(1, 3, 8, 8), **kw)


def test_ssim_penalty_is_zero_for_identical_images_and_counts_only_the_region():
    from faceshield.attacks.budget import ssim_penalty

    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(ssim_penalty(x, x), torch.zeros(2), atol=1e-5)
    y = x.clone()
    y[:, :, 8:16, 8:16] = (y[:, :, 8:16, 8:16] + 0.2 * torch.randn(2, 3, 8, 8)).clamp(0, 1)
    region = torch.zeros(1, 1, 32, 32)
    region[..., 4:20, 4:20] = 1
    whole, local = ssim_penalty(y, x), ssim_penalty(y, x, region)
    assert (whole > 0).all() and (local > 2 * whole).all()  # the mean over the region is not diluted by the rest
    far = torch.zeros(1, 1, 32, 32)
    far[..., 26:, 26:] = 1
    assert torch.allclose(ssim_penalty(y, x, far), torch.zeros(2), atol=1e-5)
    y.requires_grad_(True)
    ssim_penalty(y, x, region).sum().backward()
    assert y.grad.abs().sum() > 0
