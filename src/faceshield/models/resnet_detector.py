"""Our own DeepFake detector: a ResNet-18-class binary classifier of face crops, trained from
scratch by :mod:`faceshield.training.detector` on real frames and the fakes of our face swap
(:mod:`faceshield.deepfake.swap`). It has never seen StarGAN edits, as the detectors of the
DeepFake Disrupter paper had never seen the manipulator they judged.

Layout: ResNet-18 (He et al. 2016): a 7x7 stride-2 stem conv + BatchNorm + ReLU + 3x3 stride-2
max pool, four stages of two :class:`BasicBlock` each (widths ``w, 2w, 4w, 8w``; stages 2-4 halve
the resolution), global average pool, one linear unit. ``width`` (``w``) defaults to 32 instead of
ResNet-18's 64 so that it trains on a CPU.

Input ``(B, 3, S, S)`` RGB in ``[0, 1]`` (``S = 128``: a square crop of 1.3x the MTCNN face box),
normalised inside with the fixed mean / std 0.5 (i.e. to ``[-1, 1]``); output ``(B,)`` logits of
*real* (``sigmoid`` = probability that the face is real), as :class:`~faceshield.models.manipulator.DeepfakeDetector`
expects of its ``net``.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

#: what a weight file for this module must be, in the words of the errors.
EXPECTED = "a ResNetDetector state dict written by faceshield.training.detector (fp16 tensors, a NAME.json sidecar with the 'model' config)"


@dataclass(frozen=True)
class DetectorConfig:
    """Architecture of :class:`ResNetDetector`.

    Attributes:
        size: side of the input crop the detector was trained at (pixels; the network itself is
            fully convolutional up to the global pool, :class:`DeepfakeDetector` resizes to it).
        width: channels of the stem and of the first stage (ResNet-18: 64); stages have
            ``width * (1, 2, 4, 8)``.
    """

    size: int = 128
    width: int = 32

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or self.size < 32:
            raise ValueError(f"size: expected an int >= 32 (five halvings down to >= 1 px), got {self.size!r}")
        if not isinstance(self.width, int) or self.width < 1:
            raise ValueError(f"width: expected a positive int, got {self.width!r}")

    def to_dict(self) -> dict:
        return asdict(self)


class BasicBlock(nn.Module):
    """ResNet's basic block: two 3x3 conv + BN, identity shortcut (1x1 conv + BN when the shape
    changes), ReLU after the sum. ``(B, cin, H, W) -> (B, cout, H / stride, W / stride)``."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + self.shortcut(x))


class ResNetDetector(nn.Module):
    """ResNet-18 layout (:class:`BasicBlock`, ``[2, 2, 2, 2]``) -> one logit of *real*.

    Args:
        width: base channels (stem and stage 1); ResNet-18 has 64, the default 32 has 1/4 of its
            multiply-adds and about 2.8 M parameters.
        size: the input side the detector is meant for (recorded in :attr:`config`).

    ``forward(x)``: ``x`` ``(B, 3, H, W)`` float RGB in ``[0, 1]`` (``H = W = size`` in use; any
    ``H, W >= 32`` runs) -> ``(B,)`` float logits of *real*; differentiable w.r.t. ``x``.
    """

    MEAN = 0.5
    STD = 0.5

    def __init__(self, width: int = 32, size: int = 128) -> None:
        super().__init__()
        self.config = DetectorConfig(size=size, width=width)
        w = width
        self.stem = nn.Sequential(
            nn.Conv2d(3, w, 7, 2, 3, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1),
        )
        stages, cin = [], w
        for i, cout in enumerate((w, 2 * w, 4 * w, 8 * w)):
            stride = 1 if i == 0 else 2
            stages.append(nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)))
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Linear(cin, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():  # zero-init the last BN of each residual branch (blocks start as identities)
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    @classmethod
    def from_config(cls, config: DetectorConfig) -> ResNetDetector:
        return cls(width=config.width, size=config.size)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in [0, 1] -> pooled ``(B, 8 * width)`` features."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"x: expected (B, 3, H, W) RGB in [0, 1], got shape {tuple(x.shape)}")
        x = (x - self.MEAN) / self.STD
        return self.stages(self.stem(x)).mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x)).reshape(x.shape[0])


def _first_line(e: Exception) -> str:
    lines = [s.strip() for s in str(e).splitlines() if s.strip()]
    return (lines[1] if len(lines) > 1 else lines[0]) if lines else e.__class__.__name__


def load_resnet_detector(path: str | os.PathLike) -> ResNetDetector:
    """Load a trained :class:`ResNetDetector` (float32, eval mode).

    The architecture comes from the JSON sidecar next to the weights (``NAME.json``, key
    ``"model"``: :class:`DetectorConfig`; the defaults when there is no sidecar); the weights are
    read with :func:`faceshield.models.weights.load_state_dict` (``weights_only=True``) and fp16
    tensors are made float32.

    Raises:
        ValueError: the file is not a readable state dict, the sidecar is not a detector config,
            or the tensors do not fit the architecture (the message names the file and what was
            expected).
    """
    from faceshield.models.weights import load_state_dict

    p = Path(path)
    side = p.with_suffix(".json")
    cfg = DetectorConfig()
    if side.is_file():
        try:
            meta = json.loads(side.read_text())
            cfg = DetectorConfig(**meta["model"]) if isinstance(meta, dict) and "model" in meta else cfg
        except (json.JSONDecodeError, TypeError, ValueError) as e:
            raise ValueError(f"{side}: not a detector sidecar ({e.__class__.__name__}: {e}); expected a JSON object whose 'model' is {{'size': int, 'width': int}}") from None
    try:
        sd = load_state_dict(p)
    except ValueError as e:
        raise ValueError(f"{e}; expected {EXPECTED}") from None
    except Exception as e:  # a truncated or foreign file
        raise ValueError(f"{p}: not a readable torch state dict ({e.__class__.__name__}); expected {EXPECTED}") from None
    sd = {k: v.float() if torch.is_tensor(v) and v.is_floating_point() else v for k, v in sd.items()}
    model = ResNetDetector.from_config(cfg)
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise ValueError(f"{p}: does not fit ResNetDetector(width={cfg.width}, size={cfg.size}) ({_first_line(e)}); expected {EXPECTED}") from None
    return model.eval()


__all__ = ["BasicBlock", "DetectorConfig", "ResNetDetector", "load_resnet_detector"]
