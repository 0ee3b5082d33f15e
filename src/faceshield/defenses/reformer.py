"""MagNet's two halves (Meng & Chen 2017), with a denoising auto-encoder trained on clean CelebA:
the *reformer* (run a photo through the auto-encoder, which pulls it back towards the manifold of
clean faces) and the *detector* (a photo the auto-encoder cannot reconstruct well is off that
manifold: score = reconstruction error).

The auto-encoder (:class:`Reformer`) is MagNet's shape, wider: 3 x 3 convolutions with ReLU, one
2 x 2 average pooling down and one 2 x upsampling back, a sigmoid output. It is fully
convolutional, trained on random 64 x 64 patches of CelebA faces at their native resolution
(:mod:`faceshield.training.reformer`), so it runs on a whole photo of any size. Shipped weights:
package data ``reformer64.pt`` (fp16) and its sidecar ``reformer64.json`` (config, data digest,
loss history, held-out MSE, seconds, machine).

* :func:`reform` - ``(H, W, 3)`` uint8 -> ``(H, W, 3)`` uint8, ``passes`` times through the
  auto-encoder; the transform spec ``reformer:1`` (:class:`faceshield.transforms.restore.Reformer`)
  calls it.
* :class:`ReconstructionErrorDetector` - MagNet's detector: the mean squared reconstruction error
  on the faces MTCNN finds, with a threshold fitted on clean photos (MagDR's ``_Thresholded``).
"""
from __future__ import annotations

import functools
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from faceshield.core.check import check_rgb_uint8
from faceshield.core.errors import NoFaceError
from faceshield.defenses.magdr import _Thresholded
from faceshield.io.image import to_tensor, to_uint8

#: the shipped weights (package data)
PACKAGE_FILE = "reformer64.pt"


@dataclass(frozen=True)
class ReformerConfig:
    """The auto-encoder's width (channels of every hidden convolution)."""

    channels: int = 32

    def to_dict(self) -> dict:
        return asdict(self)


class Reformer(nn.Module):
    """MagNet's denoising auto-encoder, fully convolutional.

    ``conv3x3(3 -> C) ReLU, conv3x3(C -> C) ReLU, avgpool 2, conv3x3(C -> C) ReLU, upsample 2
    (bilinear), conv3x3(C -> C) ReLU, conv3x3(C -> 3) sigmoid`` (C = 32: 29,507 parameters).

    ``forward(x)``: ``(B, 3, H, W)`` RGB in [0, 1], H and W even -> ``(B, 3, H, W)`` in [0, 1]
    (use :meth:`reconstruct` for any size).
    """

    def __init__(self, config: ReformerConfig | None = None) -> None:
        super().__init__()
        self.config = config or ReformerConfig()
        c = self.config.channels
        self.enc = nn.Sequential(nn.Conv2d(3, c, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(c, c, 3, padding=1), nn.ReLU(inplace=True),
                                 nn.AvgPool2d(2), nn.Conv2d(c, c, 3, padding=1), nn.ReLU(inplace=True))
        self.dec = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), nn.Conv2d(c, c, 3, padding=1), nn.ReLU(inplace=True),
                                 nn.Conv2d(c, 3, 3, padding=1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dec(self.enc(x))

    def reconstruct(self, x: torch.Tensor, pad: int = 8) -> torch.Tensor:
        """The auto-encoder on an image of any size: ``(B, 3, H, W)`` in [0, 1] -> the same shape in
        [0, 1]. The input is reflect-padded by ``pad`` pixels (and up to an even size) so that the
        borders see image content rather than the convolutions' zero padding, then cropped back."""
        h, w = x.shape[-2:]
        p = min(pad, h - 1, w - 1)
        ph, pw = p + (h + 2 * p) % 2, p + (w + 2 * p) % 2
        xp = F.pad(x, (p, pw, p, ph), mode="reflect")
        return self(xp)[..., p : p + h, p : p + w]


def weights_path(weights: str | os.PathLike | None = None) -> Path:
    """The weight file: ``weights`` > ``$FACESHIELD_REFORMER`` > package data ``reformer64.pt``."""
    from faceshield.models.weights import resolve_weights

    return resolve_weights("MagNet reformer", path=weights, env="FACESHIELD_REFORMER", package_file=PACKAGE_FILE,
                           hint="train it with `python -m faceshield.training.reformer`")


def load_reformer(weights: str | os.PathLike | None = None) -> Reformer:
    """The trained auto-encoder in eval mode, float32 (the file is fp16; its ``.json`` sidecar gives
    the config). Loaded with ``torch.load(..., weights_only=True)``.

    Raises:
        WeightsNotFoundError: no weight file; ValueError: a file that does not fit the sidecar's config.
    """
    path = weights_path(weights)
    side = path.with_suffix(".json")
    meta = json.loads(side.read_text()) if side.is_file() else {}
    sd = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(sd, dict):
        raise ValueError(f"{path}: expected a state dict, got {type(sd).__name__}")
    net = Reformer(ReformerConfig(**meta.get("model", {})))
    try:
        net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()}, strict=True)
    except RuntimeError as e:
        raise ValueError(f"{path}: does not fit the reformer ({str(e).splitlines()[-1].strip()}); expected a state dict written by faceshield.training.reformer") from None
    return net.eval()


@functools.lru_cache(maxsize=1)
def _shipped() -> Reformer:
    return load_reformer()


@torch.no_grad()
def reconstruct(rgb: np.ndarray, passes: int = 1, model: Reformer | None = None) -> torch.Tensor:
    """``passes`` runs of the auto-encoder on a photo: ``(H, W, 3)`` uint8 -> ``(1, 3, H, W)`` float in [0, 1]."""
    net = model or _shipped()
    x = to_tensor(check_rgb_uint8(rgb))
    for _ in range(int(passes)):
        x = net.reconstruct(x)
    return x


def reform(rgb: np.ndarray, passes: int = 1, model: Reformer | None = None) -> np.ndarray:
    """MagNet's reformer on a whole photo: ``(H, W, 3)`` uint8 RGB -> ``(H, W, 3)`` uint8 RGB
    (``passes`` times through the auto-encoder; the shipped one unless ``model``)."""
    return to_uint8(reconstruct(rgb, passes, model))


class ReconstructionErrorDetector(_Thresholded):
    """MagNet's detector: ``score(rgb)`` = the mean squared difference (images in [0, 1]) between the
    photo and its reconstruction by the auto-encoder, inside the boxes of the faces ``detector``
    finds (mean over faces). Higher = further from the clean faces the auto-encoder was trained on.
    ``fit(clean, flag_rate)`` and ``__call__`` as MagDR's detectors.

    Args:
        model: the auto-encoder (default: the shipped one).
        detector: the landmark extractor whose face boxes make the face region (``"mtcnn"``).
    """

    def __init__(self, model: Reformer | None = None, detector: str = "mtcnn") -> None:
        from faceshield.models import create_extractor

        self.model = model or _shipped()
        self.detector = create_extractor(detector)
        self.threshold = None

    def score(self, rgb: np.ndarray) -> float:
        """Mean squared reconstruction error on the face boxes, ``float >= 0`` ([0, 1] scale).

        Raises:
            NoFaceError: the detector finds no face on ``rgb``.
        """
        rgb = check_rgb_uint8(rgb)
        faces = self.detector.detect(rgb)
        if not faces:
            raise NoFaceError("no face found for the reconstruction-error detector")
        x = to_tensor(rgb)
        sq = (reconstruct(rgb, 1, self.model) - x).pow(2).mean(1)[0]  # (H, W)
        h, w = sq.shape
        errs = []
        for f in faces:
            x0, y0, x1, y1 = f.box
            x0, y0 = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
            x1, y1 = min(w, int(np.ceil(x1))), min(h, int(np.ceil(y1)))
            if x1 > x0 and y1 > y0:
                errs.append(float(sq[y0:y1, x0:x1].mean()))
        if not errs:
            raise NoFaceError("the faces found lie outside the photo")
        return float(np.mean(errs))


__all__ = ["ReconstructionErrorDetector", "Reformer", "ReformerConfig", "load_reformer", "reconstruct", "reform"]
