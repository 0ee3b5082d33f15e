"""GANimation-class expression editor: shapes, ranges, the attention blend, gradients (random weights, no data)."""
from __future__ import annotations

import pytest
import torch

from faceshield.models.ganimation import GANimationConfig, GANimationDiscriminator, GANimationGenerator

CFG = GANimationConfig(size=32, conv_dim=8, repeat_num=1, d_conv_dim=8, d_repeat_num=3)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _inputs(b: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.rand(b, 3, 32, 32, generator=g) * 2 - 1, torch.rand(b, CFG.c_dim, generator=g)


def test_shapes_and_ranges():
    torch.manual_seed(0)
    G = GANimationGenerator(CFG)
    x, c = _inputs()
    y = G(x, c)
    assert y.shape == x.shape
    assert y.min() >= -1 and y.max() <= 1
    a, col = G.masks(x, c)
    assert a.shape == (2, 1, 32, 32) and col.shape == (2, 3, 32, 32)
    assert a.min() >= 0 and a.max() <= 1
    assert col.min() >= -1 and col.max() <= 1
    torch.testing.assert_close(y, a * x + (1 - a) * col)
    # starts mostly on the input (attention bias +1, sigmoid(1) ~ 0.73)
    assert 0.55 < a.mean() < 0.9
    src, cond = GANimationDiscriminator(CFG)(y)
    assert src.shape == (2, 1, 4, 4) and cond.shape == (2, CFG.c_dim)


def test_saturated_attention_keeps_input():
    torch.manual_seed(0)
    G = GANimationGenerator(CFG)
    with torch.no_grad():
        G.attention_reg[0].bias.fill_(50.0)
    x, c = _inputs()
    assert torch.equal(G(x, c), x)


def test_gradients_reach_input_and_condition():
    torch.manual_seed(0)
    G = GANimationGenerator(CFG)
    x, c = _inputs()
    x.requires_grad_(True)
    c.requires_grad_(True)
    G(x, c).square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert c.grad is not None and c.grad.abs().sum() > 0
