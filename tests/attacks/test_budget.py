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
