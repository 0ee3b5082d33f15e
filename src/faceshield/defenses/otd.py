"""The "OTD" detection baseline of MagDR's Table 1 (seed 004, Sec. 4.3): a network trained to tell a
manipulator's *outputs* on clean inputs from its outputs on disrupted ones.

:class:`OTDNet` is a small CNN (about 210 k parameters) trained by :mod:`faceshield.training.otd` on
our 64-px StarGAN's edits of CelebA training identities, clean (label 0) and disrupted by Ruiz et
al.'s PGD at crop level at several strengths (label 1); its weights are package data
(``otd64.pt`` + ``otd64.json``). :class:`OTDDetector` edits every face of a photo for every domain
(:func:`~faceshield.defenses.magdr.edit_faces`, at the forger's alignment) and scores the photo
with the mean ``P(disrupted)`` of those edits; its threshold is fitted on clean photos only, as
MagDR's own detectors' are (:class:`~faceshield.defenses.magdr._Thresholded`).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from faceshield.core.errors import NoFaceError
from faceshield.defenses.magdr import _Thresholded


@dataclass(frozen=True)
class OTDConfig:
    size: int = 64
    widths: tuple[int, ...] = (16, 32, 64, 96)

    def to_dict(self) -> dict:
        return {**asdict(self), "widths": list(self.widths)}


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True), nn.MaxPool2d(2))


class OTDNet(nn.Module):
    """Conv blocks of :attr:`OTDConfig.widths` (two 3x3 convolutions with batch norm each, then a 2x2
    max-pool), global average pool, linear.

    ``forward(x)``: ``x`` ``(B, 3, S, S)`` manipulator outputs in [-1, 1] (resized to ``size`` when
    ``S`` differs) -> ``(B,)`` logits of *disrupted*.
    """

    def __init__(self, cfg: OTDConfig = OTDConfig()) -> None:
        super().__init__()
        self.config = cfg
        chans = (3, *cfg.widths)
        self.blocks = nn.Sequential(*[_block(a, b) for a, b in zip(chans[:-1], chans[1:])])
        self.head = nn.Linear(chans[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.config.size
        if x.shape[-2:] != (s, s):
            x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False, antialias=x.shape[-1] > s)
        return self.head(self.blocks(x).mean((2, 3))).reshape(x.shape[0])


def load_otd(weights: str | None = None) -> OTDNet:
    """The shipped OTD classifier (package data ``otd64.pt`` and its sidecar ``otd64.json``; or
    ``weights=PATH`` / ``$FACESHIELD_OTD``), in eval mode, float32.

    Raises:
        WeightsNotFoundError: no weight file; ValueError: a file that does not fit :class:`OTDNet`.
    """
    from faceshield.models.weights import load_state_dict, resolve_weights

    path = resolve_weights("OTD classifier", path=weights, env="FACESHIELD_OTD", package_file="otd64.pt",
                           hint="train it with `python -m faceshield.training.otd`")
    side = path.with_suffix(".json")
    meta = json.loads(side.read_text()) if side.is_file() else {}
    m = meta.get("model", {})
    cfg = OTDConfig(**{**m, "widths": tuple(m["widths"])}) if "widths" in m else OTDConfig(**m)
    net = OTDNet(cfg)
    sd = {k: v.float() if v.is_floating_point() else v for k, v in load_state_dict(path).items()}
    try:
        net.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise ValueError(f"{path}: does not fit the OTD classifier ({str(e).splitlines()[-1].strip()}); "
                         "expected a state dict written by faceshield.training.otd") from None
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval()


class OTDDetector(_Thresholded):
    """Table 1's OTD: ``score(rgb)`` = the mean over faces and domains of ``P(disrupted)`` of the
    photo's edits.

    Args:
        model: the manipulator (a registry name or a built one); the shipped classifier was trained
            on the outputs of our ``stargan``.
        detector: the landmark extractor that finds and aligns the faces (the forger's).
        net: an :class:`OTDNet` (default: :func:`load_otd`).
    """

    def __init__(self, model="stargan", detector: str = "mtcnn", net: OTDNet | None = None) -> None:
        from faceshield.models import create_target

        self.g = create_target(model) if isinstance(model, str) else model
        self.detector = detector
        self.net = net if net is not None else load_otd()
        self.threshold = None

    @torch.no_grad()
    def probabilities(self, rgb: np.ndarray) -> np.ndarray:
        """``(D, N)`` float ``P(disrupted)`` of each domain's edit of each face of ``rgb`` (``(H, W, 3)`` uint8).

        Raises:
            NoFaceError: the detector finds no face on ``rgb``.
        """
        from faceshield.defenses.magdr import edit_faces, locate

        faces = locate(rgb, self.g, self.detector, mesh=False)
        if faces is None:
            raise NoFaceError(f"no face found by {self.detector}")
        e = edit_faces(self.g, [faces.cut(rgb)], faces)[0]  # (D, N, 3, S, S) in [-1, 1]
        return torch.sigmoid(self.net(e.flatten(0, 1))).reshape(e.shape[:2]).numpy()

    def score(self, rgb: np.ndarray) -> float:
        """Mean of :meth:`probabilities`, in [0, 1] (higher = more likely disrupted)."""
        return float(self.probabilities(rgb).mean())
