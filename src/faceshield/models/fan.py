"""FAN (Bulat & Tzimiropoulos 2017, "How far are we from solving the 2D & 3D face alignment
problem?"): stacked hourglasses of the 1adrianb/face-alignment library, 68 heat-maps.

Architecture (``face_alignment/models/fan.py``), for ``features = 256``::

    conv1 7x7/2 3->64 + bn1 + ReLU                        256 -> 128 px
    conv2 ConvBlock 64->128, 2x2 pool/2                   128 -> 64 px
    conv3 ConvBlock 128->128, conv4 ConvBlock 128->256
    per stack i:  m{i} HourGlass(depth 4) -> top_m_{i} ConvBlock -> conv_last{i} 1x1 + bn_end{i} + ReLU
                  -> l{i} 1x1 256->68 (heat-maps, 64 x 64)
                  (all but the last stack) previous += bl{i}(features) + al{i}(heat-maps)

ConvBlock(in, out): three pre-activated (BN, ReLU, 3x3 conv) layers with out/2, out/4, out/4
channels, concatenated, plus the input (through BN, ReLU, 1x1 conv when ``in != out``). An
HourGlass level ``n`` is ``b1_n(x) + up2(b3_n(inner(b2_n(pool(x)))))`` where ``inner`` is level
``n - 1`` or, at level 1, ``b2_plus_1``.

Parameter and buffer names equal the official state dicts (``conv1.weight``, ``bn1.*``,
``conv2.bn1.*`` ... ``conv2.downsample.0.*`` (BN) / ``.2.weight`` (1x1), ``m0.b1_4.*`` ...
``m0.b2_plus_1.*``, ``top_m_0.*``, ``conv_last0.*``, ``bn_end0.*``, ``l0.*``, ``bl0.*``, ``al0.*``).
The library's 2-D model "2DFAN-4" has **4 stacks** (``FAN(network_size=4)``), which is the default.

Weights in the wild: face-alignment 1.5 loads ``2DFAN4-11f355bf06.pth.tar`` (a plain state dict,
``weights_only=True``) into this architecture; earlier 1.x releases loaded the TorchScript archive
``2DFAN4-cd938726ad.zip`` with ``torch.jit.load``; the first (2017) code loaded ``2DFAN-4.pth.tar``
(``{"state_dict": ...}`` with ``module.`` prefixes) into ``nn.DataParallel(FAN(4))``.
:func:`load_fan` reads all three forms.

Pooling: the library's ``FAN`` uses 2x2 *average* pooling (stem and hourglasses) since at least the
version that loads ``2DFAN4-11f355bf06.pth.tar``; the 2017 code used *max* pooling. ``pool``
selects; :func:`load_fan` reads it from a TorchScript archive's code when it can.
"""
from __future__ import annotations

import logging
import os
import re
import zipfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from faceshield.core.types import IBUG68, ExtractorKind
from faceshield.models.base import ExtractorInfo, LandmarkExtractor
from faceshield.models.heatmap import FAN_CROP, CropSpec, HeatmapExtractor, crop_for_weights, load_matching, unwrap_state_dict
from faceshield.models.registry import register_extractor
from faceshield.models.weights import resolve_weights

logger = logging.getLogger(__name__)

#: Environment variable with a path to FAN weights.
WEIGHTS_ENV = "FACESHIELD_FAN"
#: File name of (future) faceshield-trained weights in ``faceshield/data``.
PACKAGE_FILE = "fan68.pt"
POOLS = ("avg", "max")
_HINT = (
    "faceshield downloads nothing; get face-alignment's 2DFAN-4 weights yourself (2DFAN4-11f355bf06.pth.tar, "
    "the state dict face-alignment 1.5 loads, or the TorchScript 2DFAN4-cd938726ad.zip earlier releases load)"
)


def _conv3x3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1, bias=False)


class ConvBlock(nn.Module):
    """face-alignment's pre-activation multi-scale residual block (``in -> out`` channels).

    ``forward(x)``: ``(N, in, H, W) -> (N, out, H, W)``.
    """

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        if cout % 4:
            raise ValueError(f"ConvBlock: output channels must be a multiple of 4, got {cout}")
        half, quarter = cout // 2, cout // 4
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = _conv3x3(cin, half)
        self.bn2 = nn.BatchNorm2d(half)
        self.conv2 = _conv3x3(half, quarter)
        self.bn3 = nn.BatchNorm2d(quarter)
        self.conv3 = _conv3x3(quarter, quarter)
        # names "downsample.0" (BN) and "downsample.2" (1x1 conv) as in the official state dicts
        self.downsample = None if cin == cout else nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, cout, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.conv1(F.relu(self.bn1(x)))
        b = self.conv2(F.relu(self.bn2(a)))
        c = self.conv3(F.relu(self.bn3(b)))
        skip = x if self.downsample is None else self.downsample(x)
        return torch.cat([a, b, c], dim=1) + skip


def _pool(x: torch.Tensor, kind: str) -> torch.Tensor:
    return F.avg_pool2d(x, 2, stride=2) if kind == "avg" else F.max_pool2d(x, 2, stride=2)


class HourGlass(nn.Module):
    """One hourglass of ``depth`` levels on ``features`` channels (submodules ``b1_n``, ``b2_n``,
    ``b3_n`` for ``n = depth .. 1`` and ``b2_plus_1``).

    ``forward(x)``: ``(N, C, H, W) -> (N, C, H, W)``, ``H, W`` divisible by ``2 ** depth``.
    """

    def __init__(self, depth: int = 4, features: int = 256, pool: str = "avg") -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth: expected >= 1, got {depth}")
        self.depth, self.pool = depth, pool
        self._build(depth, features)

    def _build(self, level: int, features: int) -> None:
        # registration order of the official implementation (so state dicts list keys alike)
        self.add_module(f"b1_{level}", ConvBlock(features, features))
        self.add_module(f"b2_{level}", ConvBlock(features, features))
        if level > 1:
            self._build(level - 1, features)
        else:
            self.add_module("b2_plus_1", ConvBlock(features, features))
        self.add_module(f"b3_{level}", ConvBlock(features, features))

    def _level(self, level: int, x: torch.Tensor) -> torch.Tensor:
        upper = self._modules[f"b1_{level}"](x)
        low = self._modules[f"b2_{level}"](_pool(x, self.pool))
        low = self._level(level - 1, low) if level > 1 else self._modules["b2_plus_1"](low)
        low = self._modules[f"b3_{level}"](low)
        return upper + F.interpolate(low, scale_factor=2, mode="nearest")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._level(self.depth, x)


class FAN(nn.Module):
    """Face Alignment Network: stacked hourglasses predicting ``num_points`` heat-maps.

    Args:
        num_stacks: number of hourglass stacks (2DFAN-4: 4).
        num_points: heat-maps per stack (68).
        features: channel width of the hourglasses (256 official; smaller for compact models);
            the stem uses ``features / 4`` and ``features / 2``.
        depth: hourglass depth (4).
        pool: ``"avg"`` (current face-alignment) or ``"max"`` (its first releases).

    ``forward(x)``: ``x`` ``(N, 3, S, S)`` RGB in ``[0, 1]`` (``S`` divisible by ``4 * 2 ** depth``;
    256 for the official models) -> list of ``num_stacks`` heat-map tensors ``(N, num_points, S/4, S/4)``;
    the last is the prediction.
    """

    def __init__(self, num_stacks: int = 4, num_points: int = 68, features: int = 256, depth: int = 4, pool: str = "avg") -> None:
        super().__init__()
        if num_stacks < 1:
            raise ValueError(f"num_stacks: expected >= 1, got {num_stacks}")
        if pool not in POOLS:
            raise ValueError(f"pool: expected one of {POOLS}, got {pool!r}")
        if features % 8:
            raise ValueError(f"features: expected a multiple of 8, got {features}")
        self.num_stacks, self.num_points, self.features, self.depth, self.pool = num_stacks, num_points, features, depth, pool
        c1, c2 = features // 4, features // 2
        self.conv1 = nn.Conv2d(3, c1, 7, stride=2, padding=3)
        self.bn1 = nn.BatchNorm2d(c1)
        self.conv2 = ConvBlock(c1, c2)
        self.conv3 = ConvBlock(c2, c2)
        self.conv4 = ConvBlock(c2, features)
        for i in range(num_stacks):
            self.add_module(f"m{i}", HourGlass(depth, features, pool))
            self.add_module(f"top_m_{i}", ConvBlock(features, features))
            self.add_module(f"conv_last{i}", nn.Conv2d(features, features, 1))
            self.add_module(f"bn_end{i}", nn.BatchNorm2d(features))
            self.add_module(f"l{i}", nn.Conv2d(features, num_points, 1))
            if i < num_stacks - 1:
                self.add_module(f"bl{i}", nn.Conv2d(features, features, 1))
                self.add_module(f"al{i}", nn.Conv2d(num_points, features, 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = F.relu(self.bn1(self.conv1(x)))
        x = _pool(self.conv2(x), self.pool)
        x = self.conv4(self.conv3(x))
        outputs = []
        for i in range(self.num_stacks):
            y = self._modules[f"top_m_{i}"](self._modules[f"m{i}"](x))
            y = F.relu(self._modules[f"bn_end{i}"](self._modules[f"conv_last{i}"](y)))
            heat = self._modules[f"l{i}"](y)
            outputs.append(heat)
            if i < self.num_stacks - 1:
                x = x + self._modules[f"bl{i}"](y) + self._modules[f"al{i}"](heat)
        return outputs


# ---------------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------------


def fan_config(sd: dict) -> dict:
    """Architecture of a FAN state dict (keys without wrapper prefixes): ``num_stacks``,
    ``num_points``, ``features``, ``depth``."""
    stacks = {int(m.group(1)) for k in sd if (m := re.match(r"m(\d+)\.", k))}
    levels = {int(m.group(1)) for k in sd if (m := re.match(r"m0\.b1_(\d+)\.", k))}
    if not stacks or not levels or "l0.weight" not in sd or "conv4.conv3.weight" not in sd:
        raise ValueError("not a FAN state dict (expected keys m0.b1_*, l0.weight, conv4.*)")
    return {
        "num_stacks": max(stacks) + 1,
        "num_points": int(sd["l0.weight"].shape[0]),
        "features": int(sd["l0.weight"].shape[1]),
        "depth": max(levels),
    }


def _torchscript_code(path: Path) -> str | None:
    """The TorchScript source files of a ``torch.jit.save`` archive, concatenated (``None`` if the
    file is not such an archive)."""
    if not zipfile.is_zipfile(path):
        return None
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        if not any(n.endswith("/data.pkl") for n in names) or not any("/code/" in n for n in names):
            return None
        return "\n".join(z.read(n).decode("utf-8", "replace") for n in names if "/code/" in n and n.endswith(".py"))


def _load_torchscript_tensors(path: Path, code: str) -> dict:
    """Tensors of a TorchScript archive, without ever calling its ``forward``.

    What ``torch.jit.load`` executes (PyTorch ``torch/csrc/jit/serialization/import.cpp``,
    ``ScriptModuleDeserializer``): it reads ``data.pkl`` / ``constants.pkl`` with TorchScript's own
    C++ unpickler, which resolves class names only to TorchScript types compiled from the archive's
    ``code/`` sources - it imports no Python module and runs no Python bytecode, unlike
    ``torch.load(weights_only=False)``. It does, however, *run* TorchScript code from the archive at
    load time when a class defines ``__setstate__`` (the object loader calls it), and TorchScript
    can call any registered operator; and the parser / unpickler are large C++ code with a history
    of memory-safety bugs. So this is *not* as safe as ``weights_only=True`` (which refuses
    TorchScript archives outright). We reduce the risk: archives whose code defines ``__setstate__``
    are refused (a plain traced FAN has none), nothing but ``state_dict()`` tensors is taken, and
    ``forward`` is never run - the weights go into our own module. Load only files you obtained from
    face-alignment's published URLs.
    """
    if re.search(r"\bdef\s+__setstate__\b", code):
        raise ValueError(f"{path}: refusing a TorchScript archive that defines __setstate__ (it would run code at load time)")
    ts = torch.jit.load(str(path), map_location="cpu")
    return {k: v.detach().clone() for k, v in ts.state_dict().items()}


def _pool_from_code(code: str) -> str | None:
    has_avg, has_max = "avg_pool2d" in code, "max_pool2d" in code
    if has_avg != has_max:
        return "avg" if has_avg else "max"
    return None


def load_fan(path: str | os.PathLike, *, pool: str | None = None, **overrides) -> FAN:
    """Build a :class:`FAN` from a weight file, in eval mode with frozen parameters.

    Accepted forms:

    * a state dict saved with ``torch.save`` (``.pth`` / ``.pth.tar`` / ``.pt``), possibly wrapped
      as ``{"state_dict": ...}`` and / or with ``module.`` prefixes (``nn.DataParallel``); loaded
      with ``torch.load(weights_only=True)``;
    * a TorchScript archive (``torch.jit.save``, the ``2DFAN4-cd938726ad.zip`` face-alignment
      distributes): only its tensors are taken (see :func:`_load_torchscript_tensors` for what
      loading it executes and why that is acceptable).

    The architecture (stacks, points, width, depth) is read from the tensor names and shapes.

    Args:
        path: the file.
        pool: ``"avg"`` / ``"max"``; default: read from a TorchScript archive's code, else ``"avg"``.
        overrides: further :class:`FAN` arguments checked against / added to the inferred ones.
    """
    path = Path(path)
    code = _torchscript_code(path)
    if code is not None:
        sd = _load_torchscript_tensors(path, code)
        found = _pool_from_code(code)
        if pool is None and found is not None:
            pool = found
        elif pool is not None and found is not None and pool != found:
            logger.warning("%s: the archive's code uses %s pooling, but pool=%r was asked for", path, found, pool)
    else:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    sd = unwrap_state_dict(sd, path)
    cfg = fan_config(sd)
    for k, v in overrides.items():
        if k in cfg and cfg[k] != v:
            raise ValueError(f"{path}: {k}={v} was asked for, but the weights have {k}={cfg[k]}")
    cfg.update(overrides)
    net = FAN(pool=pool or "avg", **cfg)
    load_matching(net, sd, f"FAN weights {path}")
    return net.eval().requires_grad_(False)


def find_fan_weights(weights: str | os.PathLike | None = None) -> Path:
    """Resolve the FAN weight file: ``weights`` > ``$FACESHIELD_FAN`` > ``faceshield/data/fan68.pt``."""
    return resolve_weights("FAN (2DFAN-4)", path=weights, env=WEIGHTS_ENV, package_file=PACKAGE_FILE, hint=_HINT)


# ---------------------------------------------------------------------------------------------
# extractor
# ---------------------------------------------------------------------------------------------

INFO = ExtractorInfo(
    name="fan",
    scheme=IBUG68,
    kind=ExtractorKind.HEATMAP,
    weights=f"package data {PACKAGE_FILE} (compact 2-stack FAN trained by faceshield train-landmarks, 128 px); official 2DFAN-4 .pth.tar / .zip via ${WEIGHTS_ENV}",
    description="FAN stacked hourglasses (Bulat & Tzimiropoulos 2017) on MTCNN boxes; 68 heat-maps at 1/4 input resolution",
)


@register_extractor(INFO)
class FANExtractor(HeatmapExtractor):
    """MTCNN boxes -> face-alignment crop (256 px) -> FAN -> 68 heat-maps -> points.

    Args:
        weights: weight file (see :func:`load_fan`); default ``$FACESHIELD_FAN``, else package data
            ``fan68.pt``; raises :class:`~faceshield.core.errors.WeightsNotFoundError` if none.
        net: use this network instead of loading weights (e.g. a compact or random-weight FAN).
        pool: pooling override for :func:`load_fan`.
        crop: crop convention (default :data:`~faceshield.models.heatmap.FAN_CROP`, with the
            ``input_size`` of the weights' sidecar JSON if they have one: see
            :func:`~faceshield.models.heatmap.crop_for_weights`).
        exact_crop: crop the integer box face-alignment's ``utils.crop`` copies out of the image,
            ``[trunc(c - side/2 + side/256), trunc(c + side/2))`` per axis, rather than the exact
            square ``[c - side/2, c + side/2)``; heat-map coordinates map to the image through the
            exact square either way (as face-alignment's ``transform`` does).
        flip_input: add the mirrored crop's heat-maps (face-alignment's ``flip_input``: default
            True since 1.5, False before).
        detector, soft_beta, soft_window, antialias, device: see :class:`HeatmapExtractor`.
    """

    info = INFO

    def __init__(
        self,
        weights: str | os.PathLike | None = None,
        *,
        net: FAN | None = None,
        pool: str | None = None,
        crop: CropSpec | None = None,
        detector: str | LandmarkExtractor = "mtcnn",
        soft_beta: float = 50.0,
        soft_window: int | None = 3,
        antialias: bool = True,
        exact_crop: bool = True,
        flip_input: bool = False,
        device: str | torch.device = "cpu",
    ) -> None:
        self.exact_crop = bool(exact_crop)
        if net is None:
            self.weights_path = find_fan_weights(weights)
            net = load_fan(self.weights_path, pool=pool)
            logger.debug("FAN weights: %s", self.weights_path)
        else:
            self.weights_path = None
        if crop is None:
            crop = crop_for_weights(self.weights_path, FAN_CROP)
        if net.num_points != self.info.scheme.n_points:
            raise ValueError(f"FAN: expected a {self.info.scheme.n_points}-point network, got {net.num_points} heat-maps")
        super().__init__(net, crop, detector=detector, soft_beta=soft_beta, soft_window=soft_window, antialias=antialias,
                         flip_input=flip_input, device=device)

    def input_boxes(self, rois: torch.Tensor) -> torch.Tensor:
        """The box face-alignment crops: its ``transform([1, 1])`` / ``transform([S, S])`` corners
        (``S`` = input size) truncated towards zero, i.e. image pixels ``ul .. br - 1``."""
        sq = self.frame_boxes(rois)
        if not self.exact_crop:
            return sq
        side = (sq[:, 2:] - sq[:, :2])
        return torch.cat([torch.trunc(sq[:, :2] + side / self.crop.input_size), torch.trunc(sq[:, 2:])], dim=1)


__all__ = ["FAN", "FANExtractor", "ConvBlock", "HourGlass", "PACKAGE_FILE", "WEIGHTS_ENV", "fan_config", "find_fan_weights", "load_fan"]
