"""The basic DeepFake maker's auto-encoder (Celeb-DF, Sec. 4.2.1): one shared encoder and one
decoder per identity. The encoder maps an aligned face to a code that should carry pose and
expression; decoder ``i`` renders identity ``i`` from it. Swapping = encode a face of identity A,
decode with B's decoder.

Sizes follow the crop: the encoder halves the resolution ``log2(size) - 2`` times down to 4x4, a
dense bottleneck of ``latent`` units follows, then a pixel-shuffle upscale to 8x8; each decoder
upscales back to ``size``. Images are float ``(B, 3, S, S)`` RGB in ``[0, 1]``.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn


def _conv(cin: int, cout: int, k: int = 5, stride: int = 2) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2), nn.LeakyReLU(0.1, inplace=True))


class _Upscale(nn.Sequential):
    """Conv to 4x channels, then pixel shuffle: doubles H and W."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(nn.Conv2d(cin, cout * 4, 3, 1, 1), nn.LeakyReLU(0.1, inplace=True), nn.PixelShuffle(2))


class _Residual(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True), nn.Conv2d(c, c, 3, 1, 1))
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.body(x))


@dataclass
class SwapModelConfig:
    """Architecture of :class:`SwapAutoEncoder`.

    Attributes:
        size: aligned crop side (64, 128 or 256).
        identities: names of the decoders, e.g. ``["menendez", "markey"]``.
        width: channels of the first encoder layer (doubles per level, capped at ``8 * width``).
        latent: units of the dense bottleneck.
        padding: alignment padding the model was trained with (see :func:`faceshield.faces.align.align`).
    """

    size: int = 128
    identities: list[str] = field(default_factory=lambda: ["a", "b"])
    width: int = 32
    latent: int = 256
    padding: float = 0.25

    def __post_init__(self) -> None:
        if self.size < 32 or self.size & (self.size - 1):
            raise ValueError(f"size: expected a power of two >= 32, got {self.size}")
        if len(self.identities) < 2 or len(set(self.identities)) != len(self.identities):
            raise ValueError(f"identities: expected >= 2 distinct names, got {self.identities}")

    def to_dict(self) -> dict:
        return asdict(self)


class SwapAutoEncoder(nn.Module):
    """Shared encoder, one decoder per identity."""

    def __init__(self, config: SwapModelConfig) -> None:
        super().__init__()
        self.config = config
        w, levels = config.width, int(math.log2(config.size)) - 2  # down to 4x4
        chans = [min(w * 2**i, 8 * w) for i in range(levels)]
        enc, cin = [], 3
        for c in chans:
            enc.append(_conv(cin, c))
            cin = c
        self.encoder = nn.Sequential(*enc)
        self.bottleneck = nn.Sequential(
            nn.Flatten(), nn.Linear(cin * 16, config.latent), nn.Linear(config.latent, cin * 16),
        )
        self._top = cin
        self.up = _Upscale(cin, cin // 2)  # 4 -> 8
        self.decoders = nn.ModuleDict({name: self._decoder(cin // 2, levels - 1) for name in config.identities})

    @staticmethod
    def _decoder(cin: int, ups: int) -> nn.Sequential:
        layers: list[nn.Module] = []
        c = cin
        for i in range(ups):
            cout = max(c // 2, 16)
            layers.append(_Upscale(c, cout))
            if i < 2:
                layers.append(_Residual(cout))
            c = cout
        layers += [nn.Conv2d(c, 3, 5, 1, 2), nn.Sigmoid()]
        return nn.Sequential(*layers)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, S, S)`` in [0, 1] -> ``(B, C, 8, 8)`` code (C = half the top encoder width)."""
        z = self.bottleneck(self.encoder(x * 2.0 - 1.0))
        return self.up(z.view(-1, self._top, 4, 4))

    def decode(self, code: torch.Tensor, identity: str) -> torch.Tensor:
        """Code -> ``(B, 3, S, S)`` face of ``identity`` in [0, 1]."""
        if identity not in self.decoders:
            raise KeyError(f"unknown identity {identity!r}; this model has {list(self.decoders)}")
        return self.decoders[identity](code)

    def forward(self, x: torch.Tensor, identity: str) -> torch.Tensor:
        return self.decode(self.encode(x), identity)
