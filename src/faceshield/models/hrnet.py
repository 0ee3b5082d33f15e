"""HRNetV2 for facial landmarks (Wang et al. 2019; HRNet/HRNet-Facial-Landmark-Detection).

Architecture of ``lib/models/hrnet.py: HighResolutionNet`` with the W18 configuration of
``experiments/300w/face_alignment_300w_hrnet_w18.yaml`` (also used for WFLW, COFW, AFLW)::

    stem     conv1 3x3/2 3->64 + bn1 + ReLU, conv2 3x3/2 64->64 + bn2 + ReLU     256 -> 64 px
    layer1   4 Bottlenecks (64 -> 256 channels)
    stage2   transition1 -> 2 branches (C, 2C) at 64, 32 px;  1 module
    stage3   transition2 -> 3 branches (C, 2C, 4C);            4 modules
    stage4   transition3 -> 4 branches (C, 2C, 4C, 8C);       3 modules
             a module = 4 BasicBlocks per branch, then every branch receives the sum of all
             branches (1x1 conv + BN + bilinear upsampling from lower resolutions, chains of
             3x3/2 conv + BN from higher ones), ReLU
    head     upsample branches 2-4 to 64 px (bilinear), concatenate (15C = 270 for C = 18),
             head.0 1x1 conv 15C->15C + head.1 BN + ReLU, head.3 1x1 conv 15C->K

with ``C = width = 18``; output ``(N, K, 64, 64)`` heat-maps for a ``256 x 256`` input normalised
with ImageNet mean/std. Module and parameter names follow the official state dicts (``HR18-300W.pth``,
``HR18-WFLW.pth``): ``conv1``, ``bn1``, ``conv2``, ``bn2``, ``layer1.{0..3}.{conv,bn}{1..3}``,
``layer1.0.downsample.{0,1}``, ``transition{1,2,3}.{i}...``, ``stage{2,3,4}.{m}.branches.{b}.{k}.*``,
``stage{2,3,4}.{m}.fuse_layers.{i}.{j}...``, ``head.{0,1,3}``. BN momentum 0.01 as in the source.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from faceshield.core.types import IBUG68, WFLW98, ExtractorKind, PointScheme
from faceshield.models.base import ExtractorInfo, LandmarkExtractor
from faceshield.models.heatmap import HRNET_CROP, CropSpec, HeatmapExtractor, crop_for_weights, load_matching, unwrap_state_dict
from faceshield.models.registry import register_extractor
from faceshield.models.weights import resolve_weights

logger = logging.getLogger(__name__)

#: Environment variable with a path to HRNet weights.
WEIGHTS_ENV = "FACESHIELD_HRNET"
#: File name of (future) faceshield-trained weights in ``faceshield/data``.
PACKAGE_FILE = "hrnet68.pt"
BN_MOMENTUM = 0.01
_SCHEMES: dict[int, PointScheme] = {68: IBUG68, 98: WFLW98}
_HINT = (
    "faceshield downloads nothing; get HR18-300W.pth (68 points) or HR18-WFLW.pth (98 points) from "
    "HRNet-Facial-Landmark-Detection's model zoo yourself"
)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, momentum=BN_MOMENTUM)


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def _projection(cin: int, cout: int) -> nn.Sequential | None:
    """1x1 conv + BN shortcut (``downsample.0`` / ``downsample.1``) when the width changes."""
    return None if cin == cout else nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), _bn(cout))


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual; ``(N, cin, H, W) -> (N, cout, H, W)``."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = _conv3x3(cin, cout)
        self.bn1 = _bn(cout)
        self.conv2 = _conv3x3(cout, cout)
        self.bn2 = _bn(cout)
        self.downsample = _projection(cin, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 (x4 expansion) with a residual; ``(N, cin, H, W) -> (N, 4 planes, H, W)``."""

    expansion = 4

    def __init__(self, cin: int, planes: int) -> None:
        super().__init__()
        cout = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = _bn(planes)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = _bn(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = _bn(cout)
        self.downsample = _projection(cin, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


def _conv_bn(cin: int, cout: int, *, stride: int = 1, kernel: int = 3, relu: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False), _bn(cout)]
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class HighResolutionModule(nn.Module):
    """Parallel branches of BasicBlocks followed by the all-to-all fusion.

    ``forward(xs)``: list of ``len(channels)`` tensors, branch ``b`` ``(N, channels[b], H / 2^b, W / 2^b)``
    -> list of the same shapes.
    """

    def __init__(self, channels: list[int], blocks: int) -> None:
        super().__init__()
        n = len(channels)
        self.branches = nn.ModuleList(
            nn.Sequential(*[BasicBlock(c, c) for _ in range(blocks)]) for c in channels
        )
        fuse = []
        for i in range(n):
            row: list[nn.Module | None] = []
            for j in range(n):
                if j > i:  # lower resolution: 1x1 conv + BN, upsampled in forward
                    row.append(_conv_bn(channels[j], channels[i], kernel=1, relu=False))
                elif j == i:
                    row.append(None)
                else:  # higher resolution: (i - j) stride-2 3x3 convs, ReLU between them
                    steps = [_conv_bn(channels[j], channels[j], stride=2, relu=True) for _ in range(i - j - 1)]
                    steps.append(_conv_bn(channels[j], channels[i], stride=2, relu=False))
                    row.append(nn.Sequential(*steps))
            fuse.append(nn.ModuleList(row))
        self.fuse_layers = nn.ModuleList(fuse) if n > 1 else None

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        if self.fuse_layers is None:
            return xs
        out = []
        for i, row in enumerate(self.fuse_layers):
            size = xs[i].shape[-2:]
            total = xs[i]
            for j, layer in enumerate(row):
                if j == i:
                    continue
                y = layer(xs[j])
                if j > i:
                    y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
                total = total + y
            out.append(F.relu(total))
        return out


@dataclass(frozen=True)
class HRNetConfig:
    """Shape of a :class:`HighResolutionNet`.

    Attributes:
        width: channels of the highest-resolution branch ``C`` (18 for W18); branch ``b`` has ``C * 2^b``.
        num_points: heat-maps K (68 for 300W, 98 for WFLW).
        modules: HR modules in stages 2, 3, 4 (1, 4, 3).
        blocks: BasicBlocks per branch in each module (4).
        stem: stem / layer1 planes (64; layer1 outputs ``4 * stem``).
        layer1_blocks: Bottlenecks in layer1 (4).
    """

    width: int = 18
    num_points: int = 68
    modules: tuple[int, int, int] = (1, 4, 3)
    blocks: int = 4
    stem: int = 64
    layer1_blocks: int = 4

    def __post_init__(self) -> None:
        for name in ("width", "num_points", "blocks", "stem", "layer1_blocks"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected >= 1, got {getattr(self, name)}")
        if len(self.modules) != 3 or min(self.modules) < 1:
            raise ValueError(f"modules: expected three counts >= 1, got {self.modules}")


class HighResolutionNet(nn.Module):
    """HRNetV2 landmark network (see the module docstring).

    Args:
        config: :class:`HRNetConfig` (default W18, 68 points); keyword arguments override its fields.

    ``forward(x)``: ``x`` ``(N, 3, S, S)`` normalised with ImageNet mean/std (``S`` divisible by 32;
    256 official) -> ``(N, K, S/4, S/4)`` heat-maps.
    """

    def __init__(self, config: HRNetConfig | None = None, **overrides) -> None:
        super().__init__()
        cfg = HRNetConfig(**{**(config.__dict__ if config else {}), **overrides})
        self.config = cfg
        self.num_points = cfg.num_points
        s = cfg.stem
        self.conv1 = nn.Conv2d(3, s, 3, stride=2, padding=1, bias=False)
        self.bn1 = _bn(s)
        self.conv2 = nn.Conv2d(s, s, 3, stride=2, padding=1, bias=False)
        self.bn2 = _bn(s)
        wide = s * Bottleneck.expansion
        self.layer1 = nn.Sequential(*[Bottleneck(s if k == 0 else wide, s) for k in range(cfg.layer1_blocks)])
        prev = [wide]
        for stage, count in zip((2, 3, 4), cfg.modules):
            channels = [cfg.width * 2**b for b in range(stage)]
            setattr(self, f"transition{stage - 1}", self._transition(prev, channels))
            setattr(self, f"stage{stage}", nn.Sequential(*[HighResolutionModule(channels, cfg.blocks) for _ in range(count)]))
            prev = channels
        total = sum(prev)
        self.head = nn.Sequential(
            nn.Conv2d(total, total, 1),
            _bn(total),
            nn.ReLU(),
            nn.Conv2d(total, cfg.num_points, 1),
        )

    @staticmethod
    def _transition(prev: list[int], cur: list[int]) -> nn.ModuleList:
        """Branch ``i`` of the next stage: kept (``None``), re-widened by a 3x3 conv, or - for a new
        branch - a chain of stride-2 3x3 convs from the lowest-resolution existing branch."""
        layers: list[nn.Module | None] = []
        for i, c in enumerate(cur):
            if i < len(prev):
                layers.append(None if prev[i] == c else _conv_bn(prev[i], c, relu=True))
            else:
                steps = [_conv_bn(prev[-1], prev[-1] if k < i - len(prev) else c, stride=2, relu=True) for k in range(i + 1 - len(prev))]
                layers.append(nn.Sequential(*steps))
        return nn.ModuleList(layers)

    @staticmethod
    def _apply_transition(transition: nn.ModuleList, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for i, layer in enumerate(transition):
            if i < len(xs):
                out.append(xs[i] if layer is None else layer(xs[i]))
            else:
                out.append(layer(xs[-1]))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        xs = [self.layer1(x)]
        for stage in (2, 3, 4):
            xs = self._apply_transition(getattr(self, f"transition{stage - 1}"), xs)
            xs = getattr(self, f"stage{stage}")(xs)
        size = xs[0].shape[-2:]
        ups = [xs[0]] + [F.interpolate(t, size=size, mode="bilinear", align_corners=False) for t in xs[1:]]
        return self.head(torch.cat(ups, dim=1))


# ---------------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------------


def hrnet_config(sd: dict) -> HRNetConfig:
    """The :class:`HRNetConfig` of a state dict (keys without wrapper prefixes)."""
    need = ("conv1.weight", "stage2.0.branches.0.0.conv1.weight", "head.3.weight")
    if any(k not in sd for k in need):
        raise ValueError(f"not an HRNet state dict (expected keys {', '.join(need)})")

    def count(pattern: str) -> int:
        return 1 + max(int(m.group(1)) for k in sd if (m := re.match(pattern, k)))

    return HRNetConfig(
        width=int(sd["stage2.0.branches.0.0.conv1.weight"].shape[0]),
        num_points=int(sd["head.3.weight"].shape[0]),
        modules=tuple(count(rf"stage{s}\.(\d+)\.") for s in (2, 3, 4)),
        blocks=count(r"stage2\.0\.branches\.0\.(\d+)\."),
        stem=int(sd["conv1.weight"].shape[0]),
        layer1_blocks=count(r"layer1\.(\d+)\."),
    )


def load_hrnet(path: str | os.PathLike, num_points: int | None = None) -> HighResolutionNet:
    """Build a :class:`HighResolutionNet` from a state-dict file (``HR18-300W.pth``, ``HR18-WFLW.pth``
    or faceshield's own), loaded with ``torch.load(weights_only=True)``; a ``{"state_dict": ...}``
    wrapper and ``module.`` prefixes (the 300W file was saved from ``nn.DataParallel``) are handled.
    The configuration (width, K, module counts) is read from the tensors.

    Args:
        path: the file.
        num_points: expected K (68 or 98); ``None`` accepts what the file has.

    Returns:
        The network in eval mode with frozen parameters.
    """
    path = Path(path)
    sd = unwrap_state_dict(torch.load(path, map_location="cpu", weights_only=True), path)
    cfg = hrnet_config(sd)
    if num_points is not None and cfg.num_points != num_points:
        raise ValueError(f"{path}: expected a {num_points}-point HRNet, the weights have {cfg.num_points} heat-maps")
    net = HighResolutionNet(cfg)
    load_matching(net, sd, f"HRNet weights {path}")
    return net.eval().requires_grad_(False)


def find_hrnet_weights(weights: str | os.PathLike | None = None) -> Path:
    """Resolve the HRNet weight file: ``weights`` > ``$FACESHIELD_HRNET`` > ``faceshield/data/hrnet68.pt``."""
    return resolve_weights("HRNet-W18", path=weights, env=WEIGHTS_ENV, package_file=PACKAGE_FILE, hint=_HINT)


# ---------------------------------------------------------------------------------------------
# extractor
# ---------------------------------------------------------------------------------------------

INFO = ExtractorInfo(
    name="hrnet",
    scheme=IBUG68,
    kind=ExtractorKind.HEATMAP,
    weights=f"package data {PACKAGE_FILE} (compact HRNet trained by faceshield train-landmarks, 128 px); official HR18-300W.pth / HR18-WFLW.pth via ${WEIGHTS_ENV}",
    description="HRNetV2 (Wang et al. 2019) on MTCNN boxes; 68 (300W) or 98 (WFLW) heat-maps at 1/4 input resolution",
)


@register_extractor(INFO)
class HRNetExtractor(HeatmapExtractor):
    """MTCNN boxes -> HRNet crop (256 px, ImageNet mean/std) -> HRNet -> heat-maps -> points.

    Args:
        weights: weight file (see :func:`load_hrnet`); default ``$FACESHIELD_HRNET``, else package
            data ``hrnet68.pt``; raises :class:`~faceshield.core.errors.WeightsNotFoundError` if none.
        num_points: expected K; the point scheme follows the weights (68: iBUG, 98: WFLW).
        net: use this network instead of loading weights.
        crop: crop convention (default :data:`~faceshield.models.heatmap.HRNET_CROP`, with the
            ``input_size`` of the weights' sidecar JSON if they have one: see
            :func:`~faceshield.models.heatmap.crop_for_weights`).
        detector, soft_beta, soft_window, antialias, device: see :class:`HeatmapExtractor`.
    """

    info = INFO

    def __init__(
        self,
        weights: str | os.PathLike | None = None,
        *,
        num_points: int | None = None,
        net: HighResolutionNet | None = None,
        crop: CropSpec | None = None,
        detector: str | LandmarkExtractor = "mtcnn",
        soft_beta: float = 50.0,
        soft_window: int | None = 3,
        antialias: bool = True,
        device: str | torch.device = "cpu",
    ) -> None:
        if net is None:
            self.weights_path = find_hrnet_weights(weights)
            net = load_hrnet(self.weights_path, num_points)
            logger.debug("HRNet weights: %s", self.weights_path)
        else:
            self.weights_path = None
            if num_points is not None and net.num_points != num_points:
                raise ValueError(f"HRNet: expected a {num_points}-point network, got {net.num_points} heat-maps")
        if crop is None:
            crop = crop_for_weights(self.weights_path, HRNET_CROP)
        if net.num_points not in _SCHEMES:
            raise ValueError(f"HRNet: expected 68 or 98 heat-maps, got {net.num_points}")
        if net.num_points != self.info.scheme.n_points:
            self.info = ExtractorInfo(INFO.name, _SCHEMES[net.num_points], INFO.kind, INFO.weights, INFO.description)
        super().__init__(net, crop, detector=detector, soft_beta=soft_beta, soft_window=soft_window, antialias=antialias, device=device)


__all__ = [
    "BasicBlock", "Bottleneck", "HRNetConfig", "HRNetExtractor", "HighResolutionModule", "HighResolutionNet",
    "PACKAGE_FILE", "WEIGHTS_ENV", "find_hrnet_weights", "hrnet_config", "load_hrnet",
]
