"""Learned perturbation generators (DeepFake Disrupter, Initiative Defense's PG): one forward pass
maps an aligned face crop to a bounded perturbation.

A generator works on the CelebA-aligned crop a manipulator sees (:data:`CELEBA_TEMPLATE`, found by a
face detector's five points): ``(B, 3, S, S)`` RGB in [0, 1] in, ``(B, 3, S, S)`` in [-1, 1] out
(``tanh``), scaled by the budget ``eps``. The L_inf bound therefore holds by construction; the
pipeline pastes the crop's perturbation back into the photo through the inverse warp (a convex
combination, so still within ``eps``), and 8-bit rounding of an 8-bit photo plus a perturbation
within ``k / 255`` never exceeds ``k`` levels.

Two architectures (``PerturberConfig.arch``):

* ``resnet``: StarGAN's generator shape without the condition channels (7x7 conv, two stride-2
  down-samplings, residual blocks, two up-samplings, 7x7 conv), instance norm: the DeepFake
  Disrupter's ResNet-class P;
* ``unet``: a U-Net (Initiative Defense's PG class): ``depth`` stride-2 levels with skip
  connections.

Instance norm and no batch statistics: each sample's perturbation depends on that sample only.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from faceshield.models.manipulator import CELEBA_TEMPLATE, TargetInfo, frozen

ARCHS = ("resnet", "unet")


@dataclass(frozen=True)
class PerturberConfig:
    """Shape of a :class:`PerturbationNet`.

    Attributes:
        size: crop side S in pixels (the crop it was trained on; any multiple of ``2 ** depth``
            works, the net is fully convolutional).
        arch: ``resnet`` or ``unet``.
        conv_dim: channels of the first layer.
        blocks: residual blocks (``resnet``).
        depth: down-sampling levels (``unet``; ``resnet`` always has 2).
        max_size: 0: every face goes through at ``size``. Above 0: at the face's own resolution
            (one crop pixel per photo pixel), its side clamped to ``[size, max_size]`` (a generator
            trained on crops of several sides, so its pattern is not enlarged and blurred on the
            photo; :meth:`PerturbationGenerator.side`).
    """

    size: int = 64
    arch: str = "resnet"
    conv_dim: int = 32
    blocks: int = 3
    depth: int = 3
    max_size: int = 0

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"arch: expected one of {', '.join(ARCHS)}, got {self.arch!r}")
        for k in ("size", "conv_dim", "depth"):
            if int(getattr(self, k)) < 1:
                raise ValueError(f"{k}: expected >= 1, got {getattr(self, k)}")
        if self.blocks < 0:
            raise ValueError(f"blocks: expected >= 0, got {self.blocks}")
        if self.max_size and self.max_size < self.size:
            raise ValueError(f"max_size: expected 0 or >= size ({self.size}), got {self.max_size}")

    @property
    def multiple(self) -> int:
        """Crop sides must be multiples of this (the net's down-sampling)."""
        return 4 if self.arch == "resnet" else 2 ** self.depth

    def to_dict(self) -> dict:
        return asdict(self)


def _block(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Sequential:
    pad = (k - stride + 1) // 2  # keeps S (stride 1, odd k) or halves it (k 4, stride 2)
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, pad, bias=False), nn.InstanceNorm2d(cout, affine=True), nn.ReLU(inplace=True))


class _Residual(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.InstanceNorm2d(c, affine=True), nn.ReLU(inplace=True),
                                  nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.InstanceNorm2d(c, affine=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.InstanceNorm2d(cout, affine=True), nn.ReLU(inplace=True))


class PerturbationNet(nn.Module):
    """``forward(x)``: ``x`` ``(B, 3, S, S)`` RGB in [0, 1] -> ``(B, 3, S, S)`` in [-1, 1] (``tanh``),
    the perturbation in units of the budget."""

    def __init__(self, config: PerturberConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or PerturberConfig()
        c = cfg.conv_dim
        if cfg.arch == "resnet":
            self.body = nn.Sequential(_block(3, c, 7), _block(c, 2 * c, 4, 2), _block(2 * c, 4 * c, 4, 2), *[_Residual(4 * c) for _ in range(cfg.blocks)],
                                      _up(4 * c, 2 * c), _up(2 * c, c), nn.Conv2d(c, 3, 7, 1, 3))
        else:
            widths = [c * 2 ** i for i in range(cfg.depth + 1)]
            self.stem = _block(3, c, 3)
            self.down = nn.ModuleList(nn.Sequential(_block(widths[i], widths[i + 1], 4, 2), _block(widths[i + 1], widths[i + 1])) for i in range(cfg.depth))
            self.up = nn.ModuleList(_up(widths[i + 1], widths[i]) for i in reversed(range(cfg.depth)))
            self.fuse = nn.ModuleList(_block(2 * widths[i], widths[i]) for i in reversed(range(cfg.depth)))
            self.head = nn.Conv2d(c, 3, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x * 2 - 1
        if self.config.arch == "resnet":
            return torch.tanh(self.body(h))
        h = self.stem(h)
        skips = []
        for d in self.down:
            skips.append(h)
            h = d(h)
        for up, fuse in zip(self.up, self.fuse):
            h = fuse(torch.cat([up(h), skips.pop()], 1))
        return torch.tanh(self.head(h))


class PerturbationGenerator(nn.Module):
    """A trained generator as the pipeline uses it: a frozen :class:`PerturbationNet`, its budget and
    the crop it works on.

    ``forward(crops)``: ``(B, 3, S, S)`` RGB in [0, 1] (CelebA-aligned crops of side ``size``) ->
    ``(B, 3, S, S)`` perturbation in ``[-eps, eps]``.

    Attributes:
        info: the registry entry (``kind`` generator; ``trained_against`` the targets of its loss).
        eps: the L_inf budget it was trained for, in [0, 1] units.
        size: crop side; template: the five-point alignment (:data:`CELEBA_TEMPLATE`).
        record: its training sidecar (config, data digests, machine, seconds), ``{}`` if none.
    """

    template = CELEBA_TEMPLATE

    def __init__(self, net: PerturbationNet, info: TargetInfo, eps: float, record: dict | None = None) -> None:
        super().__init__()
        self.net = frozen(net)
        self.info, self.eps, self.record = info, float(eps), dict(record or {})
        self.size = net.config.size

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def kind(self):
        return self.info.kind

    @property
    def differentiable(self) -> bool:
        return False  # a protector, never an attack target

    def side(self, scale: float) -> int:
        """Crop side for a face whose ``size`` px crop is ``scale`` crop pixels per photo pixel:
        ``size`` for a fixed-size generator, else the face's own resolution (``size / scale``)
        clamped to ``[size, max_size]`` and rounded to the net's multiple."""
        cfg = self.net.config
        if not cfg.max_size:
            return self.size
        side = min(max(self.size / max(scale, 1e-6), self.size), cfg.max_size)
        return max(cfg.multiple, int(round(side / cfg.multiple)) * cfg.multiple)

    def forward(self, crops: torch.Tensor, eps: float | None = None) -> torch.Tensor:
        return (self.eps if eps is None else float(eps)) * self.net(crops)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, arch={self.net.config.arch!r}, size={self.size}, eps={self.eps * 255:g}/255)"
