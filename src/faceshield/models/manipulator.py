"""Face manipulators (editors ``G(x, c)``) and DeepFake detectors as models of the one registry.

A manipulator works on an aligned face crop: ``(B, 3, S, S)`` RGB in [-1, 1] (CelebA's
normalisation, as the StarGAN reference uses), conditions ``c`` ``(B, c_dim)``. The crop is the
CelebA alignment: a similarity transform putting the face's five points (eye centres, nose tip,
mouth corners; MTCNN's scheme) on :data:`CELEBA_TEMPLATE`. :mod:`faceshield.deepfake.edit` runs
them on whole photos.

:data:`CELEBA_TEMPLATE` was measured, not guessed: the median MTCNN points on 400 training images
of ``../shared/data/celeba`` (each upscaled 2x to 178x218, points mapped into the centre-square
crop), in units of the crop side. Run ``python -m faceshield.training.celeba --template`` to redo it.
"""
from __future__ import annotations

from abc import abstractmethod
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from faceshield.core.types import TargetKind

#: StarGAN's five CelebA domains (hair colours one-hot, then gender and age), in its condition order.
STARGAN_DOMAINS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")
HAIR_DOMAINS = STARGAN_DOMAINS[:3]
#: the GANimation-class editor's continuous conditions (CelebA labels used as intensities).
EXPRESSION_AUS = ("Smiling", "Mouth_Slightly_Open")

#: five points (left eye, right eye, nose tip, left / right mouth corner) of the CelebA crop, in
#: units of its side (median over 400 training faces; spread 0.01-0.04 of the side).
CELEBA_TEMPLATE = np.array([[25.16, 33.17], [39.26, 33.19], [32.10, 41.88], [25.98, 48.01], [38.24, 48.01]]) / 64.0


@dataclass(frozen=True)
class TargetInfo:
    """What ``faceshield models`` lists for a manipulator or a detector.

    Attributes:
        name: registry name; kind: :class:`TargetKind`; weights: where the weights come from, in words.
        inputs: what the network takes, in words (crop size, range, conditions).
        domains: a manipulator's named conditions (``--domain``); empty for detectors.
        trained_against: a perturbation generator's targets (the models in its training loss).
    """

    name: str
    kind: TargetKind
    weights: str
    description: str = ""
    inputs: str = ""
    domains: tuple[str, ...] = field(default=())
    trained_against: tuple[str, ...] = field(default=())

    @property
    def family(self) -> str:
        return self.kind.family

    def to_dict(self) -> dict:
        d = asdict(self)
        d["kind"] = self.kind.value
        d["family"] = self.family
        d["domains"] = list(self.domains)
        d["trained_against"] = list(self.trained_against)
        return d


def frozen(net: nn.Module) -> nn.Module:
    """``net`` in eval mode with gradients off for its parameters (a target is never trained)."""
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


class Manipulator(nn.Module):
    """Base of face editors: a frozen generator ``g`` with its ``info`` and crop ``size``;
    subclasses implement :meth:`condition`.

    ``forward(x, c) = edit(x, c)``: ``x`` ``(B, 3, S, S)`` RGB in [-1, 1], ``c`` ``(B, c_dim)``,
    returns ``(B, 3, S, S)`` in [-1, 1], differentiable w.r.t. ``x``.
    """

    info: TargetInfo
    size: int
    template: np.ndarray = CELEBA_TEMPLATE

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def kind(self) -> TargetKind:
        return self.info.kind

    @property
    def domains(self) -> tuple[str, ...]:
        return self.info.domains

    @property
    def differentiable(self) -> bool:
        return True

    def __init__(self, generator: nn.Module, info: TargetInfo, size: int) -> None:
        super().__init__()
        self.g = frozen(generator)
        self.info, self.size = info, int(size)

    def edit(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.g(x, c)

    @abstractmethod
    def condition(self, domain: str, attrs: dict[str, float]) -> torch.Tensor:
        """``(c_dim,)`` condition that edits a face towards ``domain``.

        Args:
            domain: one of :attr:`domains`.
            attrs: the face's own attribute probabilities in [0, 1] by CelebA name (from the
                attribute classifier), for the conditions the edit keeps.
        """

    def check_domain(self, domain: str) -> str:
        if domain not in self.domains:
            raise ValueError(f"unknown domain {domain!r} for {self.name}; expected one of {', '.join(self.domains)}")
        return domain

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.edit(x, c)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, size={self.size}, domains={list(self.domains)})"


class StarGANEditor(Manipulator):
    """StarGAN's CelebA editor on the five domains: hair colour (one-hot among Black / Blond /
    Brown), Male and Young (flipped), as the reference's ``create_labels`` builds them from the
    face's own labels."""

    HAIR = HAIR_DOMAINS

    def condition(self, domain: str, attrs: dict[str, float]) -> torch.Tensor:
        return stargan_condition(self.check_domain(domain), attrs, self.domains)


def stargan_condition(domain: str, attrs: dict[str, float], domains=STARGAN_DOMAINS) -> torch.Tensor:
    """``(len(domains),)`` StarGAN condition towards ``domain`` for a face with attribute
    probabilities ``attrs``: the hair colours one-hot, Male / Young flipped, the rest kept."""
    own = {d: float(attrs.get(d, 0.0) > 0.5) for d in domains}
    if domain in HAIR_DOMAINS:
        c = {**own, **{h: float(h == domain) for h in HAIR_DOMAINS if h in own}}
    else:
        c = {**own, domain: 1.0 - own[domain]}
    return torch.tensor([c[d] for d in domains], dtype=torch.float32)


class GANimationEditor(Manipulator):
    """The GANimation-class expression editor: continuous conditions (CelebA's ``Smiling`` and
    ``Mouth_Slightly_Open`` as intensities in [0, 1]); editing towards a domain flips that
    condition (0 -> 1 when the face does not show it, 1 -> 0 when it does) and keeps the other at
    the face's own probability."""

    def condition(self, domain: str, attrs: dict[str, float]) -> torch.Tensor:
        self.check_domain(domain)
        own = {d: float(attrs.get(d, 0.0)) for d in self.domains}
        c = {**own, domain: 0.0 if own[domain] > 0.5 else 1.0}
        return torch.tensor([c[d] for d in self.domains], dtype=torch.float32)


def load_generator_state(path, expect: str) -> dict:
    """A generator state dict from ``path`` (``weights_only=True``), fp16 tensors made float32.

    Raises:
        ValueError: the file is not a state dict (naming the file and ``expect``).
    """
    from faceshield.models.weights import load_state_dict

    try:
        sd = load_state_dict(path)
    except ValueError:
        raise
    except Exception as e:  # a truncated or foreign file
        raise ValueError(f"{path}: not a readable torch state dict ({e.__class__.__name__}); expected {expect}") from None
    return {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}


class DeepfakeDetector(nn.Module):
    """A DeepFake detector as a target and a judge: ``forward(x)`` with ``x`` ``(B, 3, h, w)`` RGB
    face crops in [0, 1] of any size (resized differentiably to the network's ``size``) returns
    ``(B,)`` logits of *real* (``sigmoid`` = probability the face is real)."""

    def __init__(self, net: nn.Module, info: TargetInfo, size: int) -> None:
        super().__init__()
        self.net = frozen(net)
        self.info, self.size = info, int(size)

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def kind(self) -> TargetKind:
        return self.info.kind

    @property
    def differentiable(self) -> bool:
        return True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.size, self.size):
            x = nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=x.shape[-1] > self.size)
        return self.net(x).reshape(x.shape[0])

    def prob_real(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.forward(x))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, size={self.size})"
