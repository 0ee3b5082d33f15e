"""The three light face detectors with 5 landmarks of biubug6/Face-Detector-1MB-with-landmark (MIT),
in plain torch (no torchvision), loading the original state dicts unchanged.

Architectures (``ARCHS``):

* ``"mobilenet0.25"``: RetinaFace with a MobileNet-0.25 body (3 stages), a 3-level FPN, one SSH
  context module per level and 1x1 heads, 2 anchors per cell, strides 8/16/32
  (``mobilenet0.25_Final.pth``).
* ``"slim"``: an SSD-like MobileNet (``conv1`` .. ``conv14``) with depthwise heads on 4 levels,
  strides 8/16/32/64, 3/2/2/3 anchors per cell (``slim_Final.pth``).
* ``"rfb"``: ``"slim"`` with its ``conv8`` replaced by a receptive-field block (``RBF_Final.pth``
  -- the file name is misspelt upstream).

All three use plain ReLU (not the leaky ReLU of the larger Pytorch_Retinaface) and no input scaling.

Conventions (those of the original):

* Network input: ``(B, 3, H, W)`` float, **BGR** channel order, pixel values ``[0, 255]`` minus the
  per-channel mean ``(104, 117, 123)`` (B, G, R); ``H, W`` arbitrary (>= 1). :func:`preprocess`
  makes this from an RGB ``[0, 1]`` tensor.
* Anchors (:func:`priors`): ``(cx, cy, w, h)`` normalised by the network input's width / height, one
  row per network output, in the network's output order: level by level, then row, column, anchor size.
* Outputs are decoded (:func:`decode_boxes`, :func:`decode_landmarks`) into coordinates normalised by
  the network input's width / height; multiply by ``(W, H)`` for input pixels and divide by the resize
  factor for pixels of the original image (that is what ``detect.py`` does; no half-pixel shift).
* Landmarks, in the original's order: 0 = the subject's **right** eye (left in the image, smaller x on
  an upright frontal face), 1 = the subject's left eye (right in the image), 2 = nose tip, 3 = right
  mouth corner (image left), 4 = left mouth corner (image right) -- i.e. "left eye, right eye, nose,
  left mouth, right mouth" in *image* terms (the RetinaFace / WIDER FACE annotation order; checked on
  HELEN: point 0 is left of point 1 in every image). Point 0 matches iBUG-68 points 36-41 (mean),
  1 matches 42-47, 2 matches 30, 3 matches 48 and 4 matches 54.

Accuracy note: the nets were trained on 300-px crops (largest anchor 256 px); landmarks degrade for
faces much wider than ~200 px at the network input (e.g. the 256-px HELEN crops resized to
``long_side=640``: NME ~0.2 instead of ~0.07 at their own size).

:func:`detect_faces` reproduces ``detect.py`` end to end (numpy / OpenCV, not differentiable);
:func:`preprocess`, :func:`resize_bilinear`, the networks and the decoders form a differentiable path
from an image tensor to boxes and landmarks.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from faceshield.core.check import check_rgb_uint8, check_rois
from faceshield.core.types import MTCNN5, ExtractorKind, Face
from faceshield.faces.crop import crop_boxes
from faceshield.models.base import ExtractorInfo, LandmarkExtractor
from faceshield.models.registry import register_extractor
from faceshield.models.weights import load_state_dict, resolve_weights

logger = logging.getLogger(__name__)

#: Environment variable naming a directory holding the upstream ``*_Final.pth`` files.
WEIGHTS_ENV = "FACESHIELD_RETINAFACE_DIR"

ARCHS = ("mobilenet0.25", "slim", "rfb")

#: Per-channel mean subtracted from the BGR ``[0, 255]`` image (B, G, R order).
BGR_MEAN = (104.0, 117.0, 123.0)

#: ``detect.py``'s command-line defaults.
LONG_SIDE = 640
CONF_THRESHOLD = 0.02
NMS_THRESHOLD = 0.4
TOP_K = 5000
KEEP_TOP_K = 750
VIS_THRESHOLD = 0.6


@dataclass(frozen=True)
class RetinaFaceConfig:
    """Anchor and decoding settings of one architecture (``data/config.py`` upstream).

    Attributes:
        name: one of :data:`ARCHS`.
        min_sizes: anchor side lengths in input pixels, one tuple per feature level.
        steps: stride of each feature level in input pixels.
        variance: the box-encoding variances (centre, size).
        clip: whether anchors are clamped to ``[0, 1]`` (False for all three).
        weight_file: file name of the upstream weights.
        train_size: square crop size used in training (inference accepts any size).
    """

    name: str
    min_sizes: tuple[tuple[int, ...], ...]
    steps: tuple[int, ...]
    weight_file: str
    variance: tuple[float, float] = (0.1, 0.2)
    clip: bool = False
    train_size: int = 300


CONFIGS: dict[str, RetinaFaceConfig] = {
    "mobilenet0.25": RetinaFaceConfig(
        "mobilenet0.25", ((10, 20), (32, 64), (128, 256)), (8, 16, 32), "mobilenet0.25_Final.pth"
    ),
    "slim": RetinaFaceConfig(
        "slim", ((10, 16, 24), (32, 48), (64, 96), (128, 192, 256)), (8, 16, 32, 64), "slim_Final.pth"
    ),
    "rfb": RetinaFaceConfig(
        "rfb", ((10, 16, 24), (32, 48), (64, 96), (128, 192, 256)), (8, 16, 32, 64), "RBF_Final.pth"
    ),
}

# names used by detect.py's --network and the weight files
_ALIASES = {"mobile0.25": "mobilenet0.25", "mobilenet": "mobilenet0.25", "rbf": "rfb"}


def arch_config(arch: str | RetinaFaceConfig) -> RetinaFaceConfig:
    """The :class:`RetinaFaceConfig` of ``arch`` (case-insensitive; ``"mobile0.25"`` and ``"RFB"``,
    detect.py's spellings, are accepted)."""
    if isinstance(arch, RetinaFaceConfig):
        return arch
    key = _ALIASES.get(str(arch).lower(), str(arch).lower())
    if key not in CONFIGS:
        raise ValueError(f"arch: expected one of {ARCHS}, got {arch!r}")
    return CONFIGS[key]


# --------------------------------------------------------------------------------------------
# building blocks (attribute names and Sequential indices match the upstream state dicts)
# --------------------------------------------------------------------------------------------


def _conv_bn(cin: int, cout: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    """3x3 conv (no bias, padding 1) + BN (+ ReLU): keys ``0.weight``, ``1.*``."""
    layers = [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _conv_bn_1x1(cin: int, cout: int) -> nn.Sequential:
    """1x1 conv (no bias) + BN + ReLU."""
    return nn.Sequential(nn.Conv2d(cin, cout, 1, 1, 0, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


def _conv_dw(cin: int, cout: int, stride: int) -> nn.Sequential:
    """Depthwise-separable block: 3x3 depthwise + BN + ReLU, 1x1 pointwise + BN + ReLU
    (keys ``0``, ``1``, ``3``, ``4``)."""
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False),
        nn.BatchNorm2d(cin),
        nn.ReLU(),
        nn.Conv2d(cin, cout, 1, 1, 0, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
    )


def _depth_head(cin: int, cout: int, kernel: int = 3, stride: int = 1, pad: int = 1) -> nn.Sequential:
    """Depthwise conv with bias + ReLU + 1x1 conv with bias (keys ``0``, ``2``); no BN."""
    return nn.Sequential(
        nn.Conv2d(cin, cin, kernel, stride, pad, groups=cin),
        nn.ReLU(),
        nn.Conv2d(cin, cout, 1),
    )


def _flatten_anchors(x: torch.Tensor, per_anchor: int) -> torch.Tensor:
    """Head output ``(B, A * per_anchor, h, w)`` -> ``(B, h * w * A, per_anchor)``: row, column,
    anchor order (the order of :func:`priors`)."""
    return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1, per_anchor)


class _MobileNetBody(nn.Module):
    """MobileNet-0.25 v1 up to its third stage (the classifier of the upstream class is dropped, as
    upstream's ``IntermediateLayerGetter`` does). ``(B, 3, H, W)`` -> 3 maps of 64, 128, 256 channels
    at strides 8, 16, 32 (sizes ``ceil(H / stride)``)."""

    def __init__(self) -> None:
        super().__init__()
        self.stage1 = nn.Sequential(
            _conv_bn(3, 8, 2),
            _conv_dw(8, 16, 1),
            _conv_dw(16, 32, 2),
            _conv_dw(32, 32, 1),
            _conv_dw(32, 64, 2),
            _conv_dw(64, 64, 1),
        )
        self.stage2 = nn.Sequential(_conv_dw(64, 128, 2), *[_conv_dw(128, 128, 1) for _ in range(5)])
        self.stage3 = nn.Sequential(_conv_dw(128, 256, 2), _conv_dw(256, 256, 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        c1 = self.stage1(x)
        c2 = self.stage2(c1)
        return [c1, c2, self.stage3(c2)]


class _FPN(nn.Module):
    """Top-down feature pyramid: 1x1 lateral convs, nearest-neighbour upsampling, 3x3 merge convs."""

    def __init__(self, in_channels: tuple[int, int, int], out_channels: int) -> None:
        super().__init__()
        self.output1 = _conv_bn_1x1(in_channels[0], out_channels)
        self.output2 = _conv_bn_1x1(in_channels[1], out_channels)
        self.output3 = _conv_bn_1x1(in_channels[2], out_channels)
        self.merge1 = _conv_bn(out_channels, out_channels)
        self.merge2 = _conv_bn(out_channels, out_channels)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        p1, p2, p3 = self.output1(feats[0]), self.output2(feats[1]), self.output3(feats[2])
        p2 = self.merge2(p2 + F.interpolate(p3, size=p2.shape[-2:], mode="nearest"))
        p1 = self.merge1(p1 + F.interpolate(p2, size=p1.shape[-2:], mode="nearest"))
        return [p1, p2, p3]


class _SSH(nn.Module):
    """SSH context module: 3x3, "5x5" (two 3x3) and "7x7" (three 3x3) branches concatenated
    (``C/2 + C/4 + C/4`` channels), then ReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv3X3 = _conv_bn(cin, cout // 2, relu=False)
        self.conv5X5_1 = _conv_bn(cin, cout // 4)
        self.conv5X5_2 = _conv_bn(cout // 4, cout // 4, relu=False)
        self.conv7X7_2 = _conv_bn(cout // 4, cout // 4)
        self.conv7x7_3 = _conv_bn(cout // 4, cout // 4, relu=False)  # sic: lower-case x upstream

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b5 = self.conv5X5_1(x)
        b7 = self.conv7x7_3(self.conv7X7_2(b5))
        return F.relu(torch.cat([self.conv3X3(x), self.conv5X5_2(b5), b7], dim=1))


class _Head1x1(nn.Module):
    """One 1x1 prediction conv (attribute ``conv1x1``); ``(B, C, h, w)`` -> ``(B, h*w*A, per_anchor)``."""

    def __init__(self, cin: int, num_anchors: int, per_anchor: int) -> None:
        super().__init__()
        self.per_anchor = per_anchor
        self.conv1x1 = nn.Conv2d(cin, num_anchors * per_anchor, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _flatten_anchors(self.conv1x1(x), self.per_anchor)


class RetinaFaceMobileNet(nn.Module):
    """RetinaFace, MobileNet-0.25 body (``"mobilenet0.25"``; 0.43 M parameters).

    ``forward(x)``: ``x`` ``(B, 3, H, W)`` BGR ``[0, 255]`` minus :data:`BGR_MEAN` ->
    ``(loc, conf_logits, landm)``: ``loc`` ``(B, P, 4)`` box offsets, ``conf_logits`` ``(B, P, 2)``
    (column 1 = face; softmax not applied), ``landm`` ``(B, P, 10)`` landmark offsets, with
    ``P = 2 * sum(ceil(H / s) * ceil(W / s) for s in (8, 16, 32))`` rows in :func:`priors` order.
    Upstream's ``phase="test"`` returns ``softmax(conf_logits, -1)`` in place of the logits.
    """

    def __init__(self) -> None:
        super().__init__()
        self.body = _MobileNetBody()
        self.fpn = _FPN((64, 128, 256), 64)
        self.ssh1 = _SSH(64, 64)
        self.ssh2 = _SSH(64, 64)
        self.ssh3 = _SSH(64, 64)
        self.ClassHead = nn.ModuleList([_Head1x1(64, 2, 2) for _ in range(3)])
        self.BboxHead = nn.ModuleList([_Head1x1(64, 2, 4) for _ in range(3)])
        self.LandmarkHead = nn.ModuleList([_Head1x1(64, 2, 10) for _ in range(3)])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p = self.fpn(self.body(x))
        feats = [self.ssh1(p[0]), self.ssh2(p[1]), self.ssh3(p[2])]
        loc = torch.cat([h(f) for h, f in zip(self.BboxHead, feats)], dim=1)
        conf = torch.cat([h(f) for h, f in zip(self.ClassHead, feats)], dim=1)
        landm = torch.cat([h(f) for h, f in zip(self.LandmarkHead, feats)], dim=1)
        return loc, conf, landm


class _BasicConv(nn.Module):
    """Conv (no bias) + BN (+ ReLU) with attributes ``conv``, ``bn`` (as upstream's ``BasicConv``)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0,
                 dilation: int = 1, relu: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, dilation, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-5, momentum=0.01)
        self.use_relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return F.relu(x) if self.use_relu else x


class _BasicRFB(nn.Module):
    """Receptive-field block (RFBNet): three branches of 1x1 -> 3x3 -> dilated 3x3 (dilations
    2, 3, 5), concatenated, 1x1 ``ConvLinear``, scaled by ``scale``, plus a 1x1 ``shortcut``, ReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1, scale: float = 0.1, map_reduce: int = 8,
                 vision: int = 1) -> None:
        super().__init__()
        self.scale = scale
        m = cin // map_reduce
        self.branch0 = nn.Sequential(
            _BasicConv(cin, m, 1, relu=False),
            _BasicConv(m, 2 * m, 3, stride, 1),
            _BasicConv(2 * m, 2 * m, 3, 1, vision + 1, vision + 1, relu=False),
        )
        self.branch1 = nn.Sequential(
            _BasicConv(cin, m, 1, relu=False),
            _BasicConv(m, 2 * m, 3, stride, 1),
            _BasicConv(2 * m, 2 * m, 3, 1, vision + 2, vision + 2, relu=False),
        )
        self.branch2 = nn.Sequential(
            _BasicConv(cin, m, 1, relu=False),
            _BasicConv(m, (m // 2) * 3, 3, 1, 1),
            _BasicConv((m // 2) * 3, 2 * m, 3, stride, 1),
            _BasicConv(2 * m, 2 * m, 3, 1, vision + 4, vision + 4, relu=False),
        )
        self.ConvLinear = _BasicConv(6 * m, cout, 1, relu=False)
        self.shortcut = _BasicConv(cin, cout, 1, stride, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.ConvLinear(torch.cat([self.branch0(x), self.branch1(x), self.branch2(x)], dim=1))
        return F.relu(out * self.scale + self.shortcut(x))


class SlimNet(nn.Module):
    """The ``"slim"`` detector (and, with ``rfb=True``, the ``"rfb"`` one; use :class:`RFBNet`).

    ``forward(x)``: ``x`` ``(B, 3, H, W)`` BGR ``[0, 255]`` minus :data:`BGR_MEAN` ->
    ``(loc, conf_logits, landm)``: ``(B, P, 4)``, ``(B, P, 2)`` logits (column 1 = face),
    ``(B, P, 10)``, ``P = sum(a * ceil(H / s) * ceil(W / s))`` over strides ``s`` = 8, 16, 32, 64 with
    ``a`` = 3, 2, 2, 3 anchors, rows in :func:`priors` order. Upstream's ``phase="test"`` returns
    ``softmax(conf_logits, -1)`` in place of the logits.
    """

    _ANCHORS = (3, 2, 2, 3)

    def __init__(self, rfb: bool = False) -> None:
        super().__init__()
        self.conv1 = _conv_bn(3, 16, 2)
        self.conv2 = _conv_dw(16, 32, 1)
        self.conv3 = _conv_dw(32, 32, 2)
        self.conv4 = _conv_dw(32, 32, 1)
        self.conv5 = _conv_dw(32, 64, 2)
        self.conv6 = _conv_dw(64, 64, 1)
        self.conv7 = _conv_dw(64, 64, 1)
        self.conv8 = _BasicRFB(64, 64, stride=1, scale=1.0) if rfb else _conv_dw(64, 64, 1)
        self.conv9 = _conv_dw(64, 128, 2)
        self.conv10 = _conv_dw(128, 128, 1)
        self.conv11 = _conv_dw(128, 128, 1)
        self.conv12 = _conv_dw(128, 256, 2)
        self.conv13 = _conv_dw(256, 256, 1)
        self.conv14 = nn.Sequential(
            nn.Conv2d(256, 64, 1), nn.ReLU(), _depth_head(64, 256, kernel=3, stride=2, pad=1), nn.ReLU()
        )
        self.loc = self._heads(4)
        self.conf = self._heads(2)
        self.landm = self._heads(10)

    def _heads(self, per_anchor: int) -> nn.Sequential:
        a = self._ANCHORS
        return nn.Sequential(
            _depth_head(64, a[0] * per_anchor),
            _depth_head(128, a[1] * per_anchor),
            _depth_head(256, a[2] * per_anchor),
            nn.Conv2d(256, a[3] * per_anchor, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.conv1(x)
        for layer in (self.conv2, self.conv3, self.conv4, self.conv5, self.conv6, self.conv7):
            x = layer(x)
        f8 = self.conv8(x)
        f11 = self.conv11(self.conv10(self.conv9(f8)))
        f13 = self.conv13(self.conv12(f11))
        f14 = self.conv14(f13)
        feats = (f8, f11, f13, f14)
        out = []
        for heads, k in ((self.loc, 4), (self.conf, 2), (self.landm, 10)):
            out.append(torch.cat([_flatten_anchors(h(f), k) for h, f in zip(heads, feats)], dim=1))
        return out[0], out[1], out[2]


class RFBNet(SlimNet):
    """The ``"rfb"`` detector: :class:`SlimNet` with a receptive-field block as ``conv8``; same
    ``forward`` contract."""

    def __init__(self) -> None:
        super().__init__(rfb=True)


def build_retinaface(arch: str) -> nn.Module:
    """An untrained network of architecture ``arch`` (see :data:`ARCHS`)."""
    name = arch_config(arch).name
    if name == "mobilenet0.25":
        return RetinaFaceMobileNet()
    return RFBNet() if name == "rfb" else SlimNet()


def load_retinaface(arch: str, path: str | os.PathLike | None = None) -> nn.Module:
    """Build ``arch`` and load the upstream weights (``weights_only=True``, ``strict=True``, a
    ``module.`` prefix stripped); eval mode, parameters frozen, on the CPU.

    Args:
        arch: one of :data:`ARCHS`.
        path: the ``.pth`` file, or a directory holding it under its upstream name; ``None``: the
            directory named by ``$FACESHIELD_RETINAFACE_DIR``.

    Raises:
        WeightsNotFoundError: no file found.
    """
    cfg = arch_config(arch)
    if path is not None and Path(path).expanduser().is_dir():
        path = Path(path).expanduser() / cfg.weight_file
    env_dir = os.environ.get(WEIGHTS_ENV)
    file = resolve_weights(
        f"RetinaFace {cfg.name}",
        path=path,
        candidates=(Path(env_dir).expanduser() / cfg.weight_file,) if env_dir else (),
        hint=f"set ${WEIGHTS_ENV} (now {env_dir or 'unset'}) to a directory holding {cfg.weight_file} "
        "(biubug6/Face-Detector-1MB-with-landmark, weights/)",
    )
    sd = load_state_dict(file)
    if "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    sd = {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()}
    net = build_retinaface(cfg.name)
    net.load_state_dict(sd, strict=True)
    net.eval().requires_grad_(False)
    logger.debug("RetinaFace %s weights: %s", cfg.name, file)
    return net


# --------------------------------------------------------------------------------------------
# anchors and decoding
# --------------------------------------------------------------------------------------------


def priors(arch_cfg: str | RetinaFaceConfig, height: int, width: int) -> torch.Tensor:
    """Anchors for a ``height x width`` network input.

    Returns:
        ``(P, 4)`` float32 ``(cx, cy, w, h)``, normalised by ``width`` / ``height`` (centres in
        ``(0, 1)``; sizes may exceed 1 for small inputs, as upstream, since ``clip`` is False).
        Order: feature level, then row ``i < ceil(height / step)``, column ``j``, anchor size --
        exactly upstream's ``PriorBox`` and the networks' output order. Centre of cell ``(i, j)``:
        ``((j + 0.5) * step / width, (i + 0.5) * step / height)``.
    """
    cfg = arch_config(arch_cfg)
    out = []
    for sizes, step in zip(cfg.min_sizes, cfg.steps):
        fh, fw = -(-height // step), -(-width // step)
        # float64 with upstream's operation order, then float32 (as torch.Tensor(list) does)
        cx = (np.arange(fw, dtype=np.float64) + 0.5) * step / width
        cy = (np.arange(fh, dtype=np.float64) + 0.5) * step / height
        s = np.asarray(sizes, dtype=np.float64)
        grid = np.empty((fh, fw, len(sizes), 4), dtype=np.float64)
        grid[..., 0] = cx[None, :, None]
        grid[..., 1] = cy[:, None, None]
        grid[..., 2] = (s / width)[None, None, :]
        grid[..., 3] = (s / height)[None, None, :]
        out.append(grid.reshape(-1, 4))
    p = torch.from_numpy(np.concatenate(out).astype(np.float32))
    if cfg.clip:
        p = p.clamp(0, 1)
    return p


def decode_boxes(loc: torch.Tensor, priors: torch.Tensor, variances=(0.1, 0.2)) -> torch.Tensor:
    """Box offsets -> corners (differentiable).

    Args:
        loc: ``(..., P, 4)`` network box output (unbatched ``(P, 4)`` or batched ``(B, P, 4)``).
        priors: ``(P, 4)`` from :func:`priors`.
        variances: ``(centre, size)`` variances of the config.

    Returns:
        ``(..., P, 4)`` ``x0, y0, x1, y1`` normalised by the network input's width / height:
        centre ``c = p_c + loc_c * v0 * p_wh``, size ``wh = p_wh * exp(loc_wh * v1)``,
        ``x0 = c - wh / 2``, ``x1 = x0 + wh``.
    """
    priors = priors.to(loc)
    c = priors[..., :2] + loc[..., :2] * variances[0] * priors[..., 2:]
    wh = priors[..., 2:] * torch.exp(loc[..., 2:] * variances[1])
    lo = c - wh / 2
    return torch.cat([lo, lo + wh], dim=-1)


def decode_landmarks(landm: torch.Tensor, priors: torch.Tensor, variances=(0.1, 0.2)) -> torch.Tensor:
    """Landmark offsets -> points (differentiable).

    Args:
        landm: ``(..., P, 10)`` network landmark output (``x, y`` of 5 points interleaved).
        priors: ``(P, 4)`` from :func:`priors`.
        variances: the config's variances (only the centre one, ``v0``, is used).

    Returns:
        ``(..., P, 5, 2)`` ``(x, y)`` normalised by the network input's width / height,
        ``p_c + landm_k * v0 * p_wh``; point order as in the module docstring.
    """
    priors = priors.to(landm)
    d = landm.unflatten(-1, (5, 2))
    return priors[..., None, :2] + d * variances[0] * priors[..., None, 2:]


# --------------------------------------------------------------------------------------------
# input: normalisation and resizing
# --------------------------------------------------------------------------------------------


def preprocess(x_rgb01: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` RGB in ``[0, 1]`` -> the networks' input: BGR ``* 255`` minus
    :data:`BGR_MEAN` (differentiable). Upstream subtracts the mean after resizing; bilinear weights
    sum to 1, so the order does not matter (up to float rounding)."""
    mean = x_rgb01.new_tensor(BGR_MEAN).view(1, 3, 1, 1)
    return x_rgb01.flip(1) * 255.0 - mean


def resize_factor(height: int, width: int, long_side: int = LONG_SIDE, origin_size: bool = False, upscale: bool = True) -> float:
    """``detect.py``'s scale: ``long_side / short side``, unless that makes the long side (rounded)
    exceed ``long_side``, then ``long_side / long side``; 1 when ``origin_size``. (With
    ``long_side`` as both upstream's target and max size, this is ``long_side / max(height, width)``
    except for near-square images.) ``upscale=False``: at most 1 (small images keep their size)."""
    if origin_size:
        return 1.0
    f = float(long_side) / float(min(height, width))
    if round(f * max(height, width)) > long_side:  # round: half to even, as np.round
        f = float(long_side) / float(max(height, width))
    return f if upscale else min(f, 1.0)


def resized_size(height: int, width: int, factor: float) -> tuple[int, int]:
    """Output ``(height, width)`` of ``cv2.resize(img, None, fx=factor, fy=factor)``: each side times
    ``factor`` rounded to nearest (ties to even, as OpenCV's ``saturate_cast<int>``)."""
    return int(round(height * factor)), int(round(width * factor))


def _linear_taps(n_in: int, n_out: int, factor: float, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """OpenCV INTER_LINEAR taps along one axis: source position ``(d + 0.5) / factor - 0.5``
    (computed in float32 as OpenCV does), clamped to ``[0, n_in - 1]``; returns ``(i0, i1, t)``."""
    src = ((np.arange(n_out, dtype=np.float64) + 0.5) * (1.0 / factor) - 0.5).astype(np.float32)
    i0 = np.floor(src).astype(np.int64)
    t = (src - i0).astype(np.float32)
    t[i0 < 0] = 0
    i0[i0 < 0] = 0
    last = i0 >= n_in - 1
    t[last] = 0
    i0[last] = n_in - 1
    i1 = np.minimum(i0 + 1, n_in - 1)
    as_t = lambda a: torch.from_numpy(a).to(device)  # noqa: E731
    return as_t(i0), as_t(i1), as_t(t)


def resize_bilinear(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Differentiable ``cv2.resize(img, None, fx=factor, fy=factor, interpolation=cv2.INTER_LINEAR)``
    on float images, as ``detect.py`` resizes.

    Args:
        x: ``(B, C, H, W)`` float (any range).
        factor: the scale (e.g. :func:`resize_factor`).

    Returns:
        ``(B, C, h, w)`` with ``(h, w) = resized_size(H, W, factor)``; ``x`` itself when the size is
        unchanged (OpenCV copies then).

    Same sampling as OpenCV for float32 input: separable 2-tap interpolation (horizontal pass, then
    vertical), source coordinate ``(d + 0.5) / factor - 0.5`` clamped to the image (edge pixels
    replicated), no antialiasing. Measured against ``cv2.resize`` (OpenCV 5.0) on float32
    ``[0, 255]`` images, factors 0.37 .. 2.5: max abs difference <= 3.3e-3 (float rounding; 0 for
    factor 0.5). ``F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False,
    antialias=False)`` uses the scale ``H / h`` instead of ``1 / factor``: identical to OpenCV when
    ``H * factor`` and ``W * factor`` are integers (e.g. 256 -> 640, 512 -> 640), otherwise shifted
    by up to ``|h - H * factor| / factor`` source pixels at the far edge -- measured max differences of
    13 .. 170 grey levels on edges (mean 0.4 .. 5).
    """
    H, W = x.shape[-2:]
    h, w = resized_size(H, W, factor)
    if (h, w) == (H, W):
        return x
    if h < 1 or w < 1:
        raise ValueError(f"resize_bilinear: factor {factor} makes a {H}x{W} image empty")
    c0, c1, tc = _linear_taps(W, w, factor, x.device)
    r0, r1, tr = _linear_taps(H, h, factor, x.device)
    tc, tr = tc.to(x.dtype), tr.to(x.dtype)
    x = x.index_select(-1, c0) * (1 - tc) + x.index_select(-1, c1) * tc
    tr = tr[:, None]
    return x.index_select(-2, r0) * (1 - tr) + x.index_select(-2, r1) * tr


# --------------------------------------------------------------------------------------------
# the detect.py pipeline
# --------------------------------------------------------------------------------------------


def py_cpu_nms(dets: np.ndarray, threshold: float) -> list[int]:
    """Greedy NMS as upstream's ``py_cpu_nms`` (Fast R-CNN's): areas and intersections with ``+1``
    on widths and heights, boxes sorted by ``argsort()[::-1]`` of the scores, a box dropped when its
    IoU with a kept one is ``> threshold``.

    Args:
        dets: ``(N, 5)`` ``x0, y0, x1, y1, score`` (float32 upstream).

    Returns:
        Indices of the kept rows, by decreasing score.
    """
    x0, y0, x1, y1, s = (dets[:, k] for k in range(5))
    area = (x1 - x0 + 1) * (y1 - y0 + 1)
    order = s.argsort()[::-1]
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(int(i))
        iw = np.maximum(0.0, np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]) + 1)
        ih = np.maximum(0.0, np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]) + 1)
        inter = iw * ih
        iou = inter / (area[i] + area[rest] - inter)
        order = rest[iou <= threshold]
    return keep


@torch.no_grad()
def detect_faces(
    net: nn.Module,
    arch: str,
    image_rgb_uint8: np.ndarray,
    *,
    long_side: int = LONG_SIDE,
    origin_size: bool = False,
    upscale: bool = True,
    conf_threshold: float = CONF_THRESHOLD,
    nms_threshold: float = NMS_THRESHOLD,
    top_k: int = TOP_K,
    keep_top_k: int = KEEP_TOP_K,
    vis_threshold: float = VIS_THRESHOLD,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detect faces as upstream's ``detect.py`` does for one image (not differentiable).

    Steps: RGB -> BGR float32; ``cv2.resize`` by :func:`resize_factor` (INTER_LINEAR) unless the
    factor is 1; minus :data:`BGR_MEAN`; network; softmax; decode; scale to the network input's
    pixels and divide by the factor; keep scores ``> conf_threshold``; the ``top_k`` best;
    :func:`py_cpu_nms` at ``nms_threshold``; the first ``keep_top_k``; finally drop scores
    ``< vis_threshold`` (upstream draws only those).

    Args:
        net: a network from :func:`load_retinaface` (any device).
        arch: its architecture (see :data:`ARCHS`).
        image_rgb_uint8: ``(H, W, 3)`` uint8 RGB.
        long_side: see :func:`resize_factor`.
        origin_size: run at the original size. NB: ``detect.py``'s ``--origin_size`` defaults to
            True (and, being ``type=str``, stays truthy whatever is passed), so the script as written
            never resizes; ``long_side=640`` resizing (False here) is what its help text describes.
        upscale: False: never enlarge (images whose long side is below ``long_side`` keep their size).
        conf_threshold, nms_threshold, top_k, keep_top_k, vis_threshold: ``detect.py``'s options,
            with its defaults 0.02, 0.4, 5000, 750, 0.6.

    Returns:
        ``(boxes, scores, points)``: ``(N, 4)`` float64 ``x0, y0, x1, y1``, ``(N,)`` float64 face
        probabilities, ``(N, 5, 2)`` float64 ``(x, y)`` landmarks (order in the module docstring), in
        pixels of ``image_rgb_uint8`` (continuous coordinates, no half-pixel convention applied), by
        decreasing score.
    """
    import cv2

    cfg = arch_config(arch)
    image = check_rgb_uint8(image_rgb_uint8)
    img = np.ascontiguousarray(image[..., ::-1], dtype=np.float32)
    resize = resize_factor(image.shape[0], image.shape[1], long_side, origin_size, upscale)
    if resize != 1:
        img = cv2.resize(img, None, None, fx=resize, fy=resize, interpolation=cv2.INTER_LINEAR)
    h, w = img.shape[:2]
    img -= np.asarray(BGR_MEAN, dtype=np.float32)
    device = next(net.parameters()).device
    x = torch.from_numpy(img.transpose(2, 0, 1).copy()).unsqueeze(0).to(device)
    loc, conf, landm = net(x)
    conf = F.softmax(conf, dim=-1)
    p = priors(cfg, h, w).to(device)
    scale = torch.tensor([w, h], dtype=torch.float32, device=device)
    boxes = (decode_boxes(loc[0], p, cfg.variance) * scale.repeat(2) / resize).cpu().numpy()
    points = (decode_landmarks(landm[0], p, cfg.variance) * scale / resize).cpu().numpy()
    scores = conf[0, :, 1].cpu().numpy()

    inds = np.where(scores > conf_threshold)[0]
    boxes, points, scores = boxes[inds], points[inds], scores[inds]
    order = scores.argsort()[::-1][:top_k]
    boxes, points, scores = boxes[order], points[order], scores[order]
    dets = np.hstack((boxes, scores[:, None])).astype(np.float32, copy=False)
    keep = py_cpu_nms(dets, nms_threshold)[:keep_top_k]
    dets, points = dets[keep], points[keep]
    vis = dets[:, 4] >= vis_threshold
    dets, points = dets[vis], points[vis]
    return dets[:, :4].astype(np.float64), dets[:, 4].astype(np.float64), points.astype(np.float64)


# --------------------------------------------------------------------------------------------
# the landmark extractors: the detect.py pipeline, and a differentiable landmark stage
# --------------------------------------------------------------------------------------------

#: registry name -> architecture
EXTRACTORS = {"retinaface-mnet": "mobilenet0.25", "retinaface-slim": "slim", "retinaface-rfb": "rfb"}
_TITLES = {"mobilenet0.25": "RetinaFace, MobileNet-0.25 backbone", "slim": "the 'slim' 1 MB detector", "rfb": "the 'RFB' 1 MB detector"}


def face_window(box: np.ndarray, height: int, width: int) -> np.ndarray:
    """The ``roi`` of a detected face: the square of side ``max(height, width)`` (the image's long
    side) centred on the face ``box``, ``x0, y0, x1, y1`` in pixels. Its side tells the
    differentiable stage the scale at which the pipeline saw the face (:func:`window_scale`)."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    h = max(height, width) / 2
    return np.array([cx - h, cy - h, cx + h, cy + h], dtype=np.float64)


def window_scale(side: float, long_side: int = LONG_SIDE, upscale: bool = False) -> float:
    """The pipeline's resize factor for an image whose long side is ``side`` (as
    :func:`resize_factor`, up to its rounding rule for near-square images)."""
    f = long_side / side
    return f if upscale else min(f, 1.0)


class RetinaFaceExtractor(LandmarkExtractor):
    """One of biubug6's three detectors as a 5-point landmark extractor.

    * :meth:`detect` is :func:`detect_faces` (``detect.py``: resize to a long side of ``long_side``,
      threshold 0.02, top 5000, NMS 0.4, keep 750, shown from 0.6) except that small images are not
      enlarged (``upscale=False``): the nets were trained on 300-px crops, and enlarging HELEN's
      256-px test photos 2.5x to 640 px raises their landmark error from 0.06-0.07 to 0.20 (the
      script as published runs at the original size, its ``--origin_size`` being always true).
    * :meth:`landmarks` is the same network on a differentiable crop: each face's ``roi``
      (:func:`face_window`) is a square of the image's long side centred on the face, resampled
      bilinearly (OpenCV's INTER_LINEAR positions, no antialiasing) to the size the pipeline gives
      the whole image, so the network sees the face at the scale it sees it in :meth:`detect`. The
      face's points are the mean of every anchor's decoded points weighted by
      ``softmax(face logit / 0.5) * exp(-d^2 / 2 sigma^2)``, ``d`` the distance of the anchor's
      decoded box centre from the window's centre and ``sigma`` a quarter of that box's side (at
      least 5 % of the window): the best-scoring detections of the face at the centre, which is
      what NMS keeps, while a neighbouring face weighs nothing.
    """

    TEMPERATURE = 0.5
    #: a re-detected face is the same face when its window centre is within this share of the side
    SAME_FACE = 0.05

    def __init__(self, info: ExtractorInfo, arch: str, weights: str | None = None, *, long_side: int = LONG_SIDE, upscale: bool = False) -> None:
        self.info = info
        self.config = arch_config(arch)
        self.arch = self.config.name
        self.net = load_retinaface(self.arch, weights)
        self.long_side = int(long_side)
        self.upscale = bool(upscale)
        self._priors: dict[int, torch.Tensor] = {}

    def detect(self, image: np.ndarray) -> list[Face]:
        """``image``: ``(H, W, 3)`` uint8 RGB -> faces (score >= 0.6) with 5 points in pixels."""
        image = check_rgb_uint8(image)
        boxes, scores, points = detect_faces(self.net, self.arch, image, long_side=self.long_side, upscale=self.upscale)
        h, w = image.shape[:2]
        return [Face(box=b, points=p, scheme=MTCNN5, score=float(s), roi=face_window(b, h, w)) for b, s, p in zip(boxes, scores, points)]

    def same_face(self, candidate: np.ndarray, roi: np.ndarray) -> bool:
        c = (np.asarray(candidate[:2]) + np.asarray(candidate[2:])) / 2
        r = (np.asarray(roi[:2]) + np.asarray(roi[2:])) / 2
        return bool(np.linalg.norm(c - r) <= self.SAME_FACE * (roi[2] - roi[0]))

    def _anchors(self, n: int, device) -> torch.Tensor:
        if n not in self._priors:
            self._priors[n] = priors(self.config, n, n)
        return self._priors[n].to(device)

    #: the pipeline shows faces from probability VIS_THRESHOLD (0.6)
    face_threshold = float(np.log(VIS_THRESHOLD / (1 - VIS_THRESHOLD)))

    def landmarks(self, x: torch.Tensor, rois, index: torch.Tensor | None = None) -> torch.Tensor:
        """Differentiable ``(N, 5, 2)`` points in pixels of ``x`` ``(B, 3, H, W)`` in ``[0, 1]`` for
        the face windows ``rois`` ``(N, 4)`` (``Face.roi``) in images ``index``."""
        return self.landmarks_and_scores(x, rois, index)[0]

    def _windows(self, x: torch.Tensor, rois, index: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, int]:
        """``(rois (N, 4), network inputs (N, 3, n, n), n)``: each window resampled to the pipeline's scale."""
        rois, index = check_rois(x, rois, index)
        side = float((((rois[:, 2] - rois[:, 0]) + (rois[:, 3] - rois[:, 1])) / 2).mean())
        n = max(16, int(round(side * window_scale(side, self.long_side, self.upscale))))
        return rois, preprocess(crop_boxes(x, rois, n, index, antialias=False)), n

    def features(self, x: torch.Tensor, rois, index: torch.Tensor | None = None) -> torch.Tensor:
        """Differentiable ``(N, 64, h, w)`` stride-8 features of the central half of each face
        window (``rois`` ``(N, 4)``, ``Face.roi``) of ``x`` ``(B, 3, H, W)`` in [0, 1]: the map the
        first heads start from (the MobileNet body's first stage; slim's ``conv8``, RFB's
        receptive-field block), computed without the rest of the network."""
        _, f, _ = self._windows(x, rois, index)
        if self.arch == "mobilenet0.25":
            f = self.net.body.stage1(f)
        else:
            for i in range(1, 9):
                f = getattr(self.net, f"conv{i}")(f)
        h, w = f.shape[-2:]
        return f[..., h // 4 : h - h // 4, w // 4 : w - w // 4]

    def landmarks_and_scores(self, x: torch.Tensor, rois, index: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`landmarks` and ``(N,)`` the face's logit: a soft maximum (temperature 0.5) of
        ``log p / (1 - p)`` over the anchors whose decoded box is centred on the window (within a
        quarter of its side; the Gaussian weight of :meth:`landmarks` in log form). The pipeline
        drops the face when every anchor is below :attr:`face_threshold`."""
        rois, inp, n = self._windows(x, rois, index)
        loc, conf, landm = self.net(inp)
        anchors = self._anchors(n, x.device)
        var = self.config.variance
        boxes = decode_boxes(loc, anchors, var)  # (N, P, 4) in [0, 1] of the window
        pts = decode_landmarks(landm, anchors, var)  # (N, P, 5, 2)
        centre = (boxes[..., :2] + boxes[..., 2:]) / 2
        size = ((boxes[..., 2] - boxes[..., 0]) + (boxes[..., 3] - boxes[..., 1])) / 2
        sigma = (0.25 * size).clamp(min=0.05)
        d2 = ((centre - 0.5) ** 2).sum(-1)
        logit = (conf[..., 1] - conf[..., 0]) / self.TEMPERATURE - d2 / (2 * sigma**2)
        w = torch.softmax(logit, dim=1)
        p = (w[..., None, None] * pts).sum(1)  # (N, 5, 2) in [0, 1] of the window
        wh = torch.stack([rois[:, 2] - rois[:, 0], rois[:, 3] - rois[:, 1]], -1)[:, None]
        return rois[:, None, :2] + p * wh, self.TEMPERATURE * torch.logsumexp(logit, dim=1)


def _register(name: str, arch: str) -> None:
    info = ExtractorInfo(
        name=name,
        scheme=MTCNN5,
        kind=ExtractorKind.REGRESSION,
        weights=f"{arch_config(arch).weight_file} of biubug6/Face-Detector-1MB-with-landmark (MIT) via weights= or ${WEIGHTS_ENV}; never shipped",
        description=f"{_TITLES[arch]} (WIDER FACE), its own detector: the black-box test nobody here trained",
        face_score=True,
        features=True,
    )

    @register_extractor(info)
    def factory(weights: str | None = None, **kwargs) -> RetinaFaceExtractor:
        return RetinaFaceExtractor(info, arch, weights, **kwargs)


for _name, _arch in EXTRACTORS.items():
    _register(_name, _arch)
