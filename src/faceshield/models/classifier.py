"""A CelebA attribute classifier (40 attributes), trained here by
:mod:`faceshield.training.classifier`.

It scores edits as the StarGAN paper does (does the edited face read as the target attribute?)
and is the fixed feature network Φ of MagDR's distances. Input ``(B, 3, S, S)`` RGB in [-1, 1]
(the manipulators' range) at the size it was trained at; output ``(B, 40)`` logits.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn


@dataclass(frozen=True)
class ClassifierConfig:
    size: int = 64
    width: int = 32
    n_attrs: int = 40

    def to_dict(self) -> dict:
        return asdict(self)


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True), nn.MaxPool2d(2))


class AttributeClassifier(nn.Module):
    """Four conv blocks (widths w, 2w, 4w, 8w; each halves the size), global average pool, linear."""

    def __init__(self, cfg: ClassifierConfig = ClassifierConfig()) -> None:
        super().__init__()
        self.config = cfg
        w = cfg.width
        self.blocks = nn.ModuleList([_block(3, w), _block(w, 2 * w), _block(2 * w, 4 * w), _block(4 * w, 8 * w)])
        self.head = nn.Linear(8 * w, cfg.n_attrs)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The four block outputs ``Φ_1..Φ_4`` and the pooled penultimate vector ``(B, 8w)``."""
        feats = []
        for b in self.blocks:
            x = b(x)
            feats.append(x)
        feats.append(x.mean((2, 3)))
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)[-1])
