"""StarGAN (Choi et al., CVPR 2018): an attribute editor G(x, c) and its PatchGAN critic.

The layout and parameter names are those of the public reference (yunjey/stargan ``model.py``:
``main.N`` sequential indices, ``ResidualBlock.main``, the critic's ``conv1`` / ``conv2`` heads),
so the official CelebA checkpoint (``200000-G.ckpt``: conv_dim 64, c_dim 5, 6 residual blocks,
128 px, instance norms with running statistics) loads as it is, and our own smaller models use the
same code with other widths.

Images are ``(B, 3, S, S)`` RGB in [-1, 1] (the reference's ``Normalize(0.5, 0.5)``); conditions
``c`` are ``(B, c_dim)`` in {0, 1} (hair colours one-hot, then Male, Young for the five CelebA
domains).

``output`` says how the last layer makes the image: ``"tanh"`` is the reference (a plain ``tanh``;
our shipped model too); ``"attention"`` predicts a colour image ``C`` (tanh) and an attention mask
``A`` (sigmoid) and returns ``A * x + (1 - A) * C``, as GANimation does; ``"residual"`` predicts a
change of the input's tanh-logit, ``tanh(atanh(x) + f)``. Both were meant to make identity free
for a short CPU training; both stayed at the identity map in short runs (see
:mod:`faceshield.training.stargan`), so the shipped model uses the reference's output.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn


@dataclass(frozen=True)
class StarGANConfig:
    size: int = 64
    c_dim: int = 5
    conv_dim: int = 32
    repeat_num: int = 3
    output: str = "tanh"  # "tanh" (the reference), "attention" or "residual"
    track_stats: bool = False  # the reference's InstanceNorm2d(track_running_stats=True)
    d_conv_dim: int = 32
    d_repeat_num: int = 4
    arch: str = "resnet"  # "resnet" (the reference), "conv" or "unet" (see StarGANGenerator)

    def to_dict(self) -> dict:
        return asdict(self)


class InstanceNorm(nn.InstanceNorm2d):
    """Instance norm that always normalises with the instance's own statistics: the reference runs
    its generator in training mode at test time too. ``track`` keeps the reference's running buffers
    so its checkpoints load as they are; they are never used."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.instance_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)


def _norm(ch: int, track: bool) -> nn.InstanceNorm2d:
    return InstanceNorm(ch, affine=True, track_running_stats=track)


class ResidualBlock(nn.Module):
    def __init__(self, dim: int, track: bool) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(dim, dim, 3, 1, 1, bias=False), _norm(dim, track), nn.ReLU(inplace=True),
            nn.Conv2d(dim, dim, 3, 1, 1, bias=False), _norm(dim, track),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.main(x)


class UNetBody(nn.Module):
    """pix2pix's U-Net generator (Isola et al. 2017, ``unet_128`` / ``unet_256`` of the reference)
    at any depth: ``levels`` stride-2 convolutions (4x4, instance norm, LeakyReLU 0.2; width
    doubling up to 8x) and as many transposed convolutions (ReLU), each up level concatenated with
    its down level, then ``tanh``. ``forward(h (B,in_ch,S,S)) -> (B,3,S,S)`` in [-1, 1]; ``S``
    divisible by ``2**levels``."""

    def __init__(self, in_ch: int, dim: int, levels: int, track: bool) -> None:
        super().__init__()
        if levels < 1:
            raise ValueError(f"a U-Net needs at least one level, got {levels}")
        widths = [min(dim * 2**i, dim * 8) for i in range(levels)]
        self.down = nn.ModuleList()
        c = in_ch
        for i, w in enumerate(widths):
            norm = [] if i in (0, levels - 1) else [_norm(w, track)]
            self.down.append(nn.Sequential(nn.Conv2d(c, w, 4, 2, 1, bias=False), *norm, nn.LeakyReLU(0.2, inplace=True)))
            c = w
        self.up = nn.ModuleList()
        for i in reversed(range(levels)):
            out = widths[i - 1] if i > 0 else dim
            cin = c if i == levels - 1 else c * 2
            self.up.append(nn.Sequential(nn.ConvTranspose2d(cin, out, 4, 2, 1, bias=False), _norm(out, track), nn.ReLU(inplace=True)))
            c = out
        self.head = nn.Sequential(nn.Conv2d(c + in_ch, 3, 3, 1, 1), nn.Tanh())

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        skips = [h]
        for layer in self.down:
            skips.append(layer(skips[-1]))
        y = skips.pop()
        for k, layer in enumerate(self.up):
            y = layer(y if k == 0 else torch.cat([y, skips.pop()], 1))
        return self.head(torch.cat([y, skips.pop()], 1))


class StarGANGenerator(nn.Module):
    """``forward(x (B,3,S,S) in [-1,1], c (B,c_dim)) -> (B,3,S,S) in [-1,1]``.

    ``config.arch`` picks the body (all take the image with the condition maps concatenated):
    ``"resnet"`` is the reference (two stride-2 convolutions, ``repeat_num`` residual blocks, two
    transposed convolutions); ``"conv"`` the same with plain conv-norm-ReLU layers in place of
    the residual blocks (no skip connection anywhere); ``"unet"`` pix2pix's U-Net with
    ``repeat_num`` levels (:class:`UNetBody`). The last two are black-box targets of other
    architectures (seed 003 Table 1)."""

    def __init__(self, cfg: StarGANConfig = StarGANConfig()) -> None:
        super().__init__()
        self.config = cfg
        t = cfg.track_stats
        d = cfg.conv_dim
        layers: list[nn.Module] = [nn.Conv2d(3 + cfg.c_dim, d, 7, 1, 3, bias=False), _norm(d, t), nn.ReLU(inplace=True)]
        for _ in range(2):
            layers += [nn.Conv2d(d, d * 2, 4, 2, 1, bias=False), _norm(d * 2, t), nn.ReLU(inplace=True)]
            d *= 2
        if cfg.arch not in ("resnet", "conv", "unet"):
            raise ValueError(f"arch: expected 'resnet', 'conv' or 'unet', got {cfg.arch!r}")
        if cfg.arch == "unet":
            if cfg.output != "tanh":
                raise ValueError(f"arch 'unet' has the 'tanh' output only, got {cfg.output!r}")
            self.main = UNetBody(3 + cfg.c_dim, cfg.conv_dim, cfg.repeat_num, t)
            return
        if cfg.arch == "conv":
            layers += [nn.Sequential(nn.Conv2d(d, d, 3, 1, 1, bias=False), _norm(d, t), nn.ReLU(inplace=True)) for _ in range(cfg.repeat_num)]
        else:
            layers += [ResidualBlock(d, t) for _ in range(cfg.repeat_num)]
        for _ in range(2):
            layers += [nn.ConvTranspose2d(d, d // 2, 4, 2, 1, bias=False), _norm(d // 2, t), nn.ReLU(inplace=True)]
            d //= 2
        if cfg.output not in ("tanh", "attention", "residual"):
            raise ValueError(f"output: expected 'tanh', 'attention' or 'residual', got {cfg.output!r}")
        if cfg.output == "attention":
            layers.append(nn.Conv2d(d, 4, 7, 1, 3, bias=True))  # colour (3) + attention (1)
        else:
            layers.append(nn.Conv2d(d, 3, 7, 1, 3, bias=False))
        if cfg.output == "tanh":
            layers.append(nn.Tanh())
        self.main = nn.Sequential(*layers)
        if cfg.output == "attention":
            with torch.no_grad():  # start with A ~ 0.73: mostly the input, some colour
                self.main[-1].bias.zero_()
                self.main[-1].bias[3] = 1.0

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.edit(x, c)[0]

    def edit(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(G(x, c), A)``: the edit and, for ``output="attention"``, its mask ``(B, 1, S, S)`` in
        [0, 1] (1 = the input kept); None otherwise."""
        cm = c.to(x.dtype)[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
        out = self.main(torch.cat([x, cm], 1))
        if self.config.output == "attention":
            a = torch.sigmoid(out[:, 3:])
            return a * x + (1 - a) * torch.tanh(out[:, :3]), a
        if self.config.output == "residual":
            return torch.tanh(torch.atanh(x.clamp(-0.995, 0.995)) + out), None
        return out, None


class StarGANDiscriminator(nn.Module):
    """PatchGAN critic: ``forward(x) -> (src (B,1,s,s) real-ness, cls (B,c_dim) logits)``."""

    def __init__(self, cfg: StarGANConfig = StarGANConfig()) -> None:
        super().__init__()
        d = cfg.d_conv_dim
        layers: list[nn.Module] = [nn.Conv2d(3, d, 4, 2, 1), nn.LeakyReLU(0.01)]
        for _ in range(1, cfg.d_repeat_num):
            layers += [nn.Conv2d(d, d * 2, 4, 2, 1), nn.LeakyReLU(0.01)]
            d *= 2
        k = cfg.size // 2**cfg.d_repeat_num
        self.main = nn.Sequential(*layers)
        self.conv1 = nn.Conv2d(d, 1, 3, 1, 1, bias=False)
        self.conv2 = nn.Conv2d(d, cfg.c_dim, k, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.main(x)
        return self.conv1(h), self.conv2(h).flatten(1)


# The official CelebA release (yunjey/stargan, ``stargan_celeba_128/models/200000-G.ckpt``).
OFFICIAL_CELEBA_128 = StarGANConfig(size=128, c_dim=5, conv_dim=64, repeat_num=6, output="tanh", track_stats=True)


def official_config(state: dict) -> StarGANConfig:
    """Infer the reference configuration of an official generator state dict.

    Raises:
        ValueError: the dict is not a StarGAN generator of the reference layout.
    """
    w0 = state.get("main.0.weight")
    if w0 is None or w0.ndim != 4 or w0.shape[2:] != (7, 7):
        raise ValueError("not a StarGAN generator state dict (expected 'main.0.weight' of shape (conv_dim, 3 + c_dim, 7, 7))")
    conv_dim, c_dim = int(w0.shape[0]), int(w0.shape[1]) - 3
    repeat = len({k.split(".")[1] for k in state if k.startswith("main.") and ".main." in k})
    track = "main.1.running_mean" in state
    return StarGANConfig(size=128, c_dim=c_dim, conv_dim=conv_dim, repeat_num=repeat, output="tanh", track_stats=track)
