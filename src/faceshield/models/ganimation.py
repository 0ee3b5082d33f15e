"""GANimation (Pumarola et al., ECCV 2018): an attention-based expression editor G(x, c) and its critic.

The second manipulator of the package, another architecture than StarGAN (``stargan.py``): the
generator does not paint the output image directly but two maps from one shared trunk,

- a colour map ``C = tanh(conv7(h))``, ``(B, 3, S, S)`` in (-1, 1), and
- an attention map ``A = sigmoid(conv7(h))``, ``(B, 1, S, S)`` in (0, 1),

and blends them with the input: ``G(x, c) = A * x + (1 - A) * C``. ``A = 1`` keeps the input pixel,
``A = 0`` replaces it by the colour map, so an edit is confined to where the attention is low (the
mouth and cheeks for a smile). The layout follows the reference code
(albertpumarola/GANimation ``networks/generator_wasserstein_gan.py``): 7x7 conv, two stride-2
down-samplings, residual blocks, two transposed-conv up-samplings (instance norms with affine
parameters), then the two 7x7 heads ``img_reg`` and ``attention_reg``.

One difference: the attention head has a bias (the reference's heads have none), initialised to
``GANimationConfig.attention_bias`` (+1, ``A ~ 0.73``) so that the editor starts close to the
identity map and a short CPU training spends itself on the edit (as ``StarGANConfig.residual`` does
for the StarGAN-class editor), while the mask stays in the sigmoid's responsive range (slope 0.2) and
can still fall where the edit needs it.

Images are ``(B, 3, S, S)`` RGB in [-1, 1]; conditions ``c`` are ``(B, c_dim)`` continuous
intensities in [0, 1], in the order of ``faceshield.training.celeba.EXPRESSION_AUS``
(``Smiling``, ``Mouth_Slightly_Open``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn

from faceshield.models.stargan import ResidualBlock, StarGANDiscriminator


@dataclass(frozen=True)
class GANimationConfig:
    size: int = 64
    c_dim: int = 2
    conv_dim: int = 32
    repeat_num: int = 3
    attention_bias: float = 1.0  # initial bias of the attention head: sigmoid(1) ~ 0.73, mostly the input
    d_conv_dim: int = 32
    d_repeat_num: int = 4

    def to_dict(self) -> dict:
        return asdict(self)


class GANimationGenerator(nn.Module):
    """Attention-based expression editor.

    ``forward(x, c) -> (B, 3, S, S)`` in [-1, 1], with ``x`` ``(B, 3, S, S)`` RGB in [-1, 1] and ``c``
    ``(B, c_dim)`` target intensities in [0, 1]. ``masks(x, c) -> (A, C)``: the attention
    ``(B, 1, S, S)`` in [0, 1] (1 keeps the input) and the colour map ``(B, 3, S, S)`` in [-1, 1].
    """

    def __init__(self, cfg: GANimationConfig = GANimationConfig()) -> None:
        super().__init__()
        self.config = cfg
        d = cfg.conv_dim
        layers: list[nn.Module] = [nn.Conv2d(3 + cfg.c_dim, d, 7, 1, 3, bias=False), nn.InstanceNorm2d(d, affine=True), nn.ReLU(inplace=True)]
        for _ in range(2):
            layers += [nn.Conv2d(d, d * 2, 4, 2, 1, bias=False), nn.InstanceNorm2d(d * 2, affine=True), nn.ReLU(inplace=True)]
            d *= 2
        layers += [ResidualBlock(d, False) for _ in range(cfg.repeat_num)]
        for _ in range(2):
            layers += [nn.ConvTranspose2d(d, d // 2, 4, 2, 1, bias=False), nn.InstanceNorm2d(d // 2, affine=True), nn.ReLU(inplace=True)]
            d //= 2
        self.main = nn.Sequential(*layers)
        self.img_reg = nn.Sequential(nn.Conv2d(d, 3, 7, 1, 3, bias=False), nn.Tanh())
        self.attention_reg = nn.Sequential(nn.Conv2d(d, 1, 7, 1, 3, bias=True), nn.Sigmoid())
        nn.init.constant_(self.attention_reg[0].bias, cfg.attention_bias)

    def masks(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(A (B,1,S,S) in [0,1], C (B,3,S,S) in [-1,1])`` for images ``x`` and conditions ``c``."""
        cm = c.to(x.dtype)[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
        h = self.main(torch.cat([x, cm], 1))
        return self.attention_reg(h), self.img_reg(h)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        a, col = self.masks(x, c)
        return a * x + (1 - a) * col


class GANimationDiscriminator(StarGANDiscriminator):
    """PatchGAN critic, StarGAN's layout (GANimation's reference uses the same): stride-2 4x4
    convs, LeakyReLU 0.01. ``forward(x (B,3,S,S) in [-1,1]) -> (src (B,1,S/2^n,S/2^n) real-ness map
    (unbounded, WGAN), cond (B,c_dim) regressed intensities (unbounded; trained towards [0,1] by
    squared error))``; ``cfg`` needs ``size``, ``c_dim``, ``d_conv_dim``, ``d_repeat_num``.
    """
