"""MTCNN (Zhang et al. 2016) with the facenet-pytorch 2.6.0 weights, without torchvision.

Two ways in:

* :meth:`MTCNNExtractor.detect` runs the complete cascade (PNet over an image pyramid, RNet, ONet)
  exactly as ``facenet_pytorch.models.utils.detect_face`` does for one image: same pyramid, same
  ``mode="area"`` resampling, same integer crops, thresholds, NMS and the same point formula.
* :meth:`MTCNNExtractor.landmarks` / :meth:`MTCNNExtractor.stages` run the last two stages on one
  face, differentiably w.r.t. the image: crop the RNet input box (``Face.roi``), RNet, box
  regression, square-up, crop, ONet, points in image pixels.

Box conventions (inherited from the original Caffe/Matlab code): a box ``x0, y0, x1, y1`` is cropped
as the pixel columns ``trunc(x0) - 1 .. trunc(x1) - 1`` (and rows likewise), i.e. in continuous
pixel-edge coordinates (pixel ``i`` covers ``[i, i + 1)``) the crop is ``[x0 - 1, x1)`` rounded
down, and ONet's normalised points ``p`` map to ``(x1 - x0 + 1) * p + x0 - 1``.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from faceshield.core.check import check_rgb_uint8, check_rois
from faceshield.core.errors import WeightsNotFoundError
from faceshield.core.types import MTCNN5, ExtractorKind, Face
from faceshield.models.base import ExtractorInfo, LandmarkExtractor
from faceshield.models.registry import register_extractor
from faceshield.models.weights import installed_package_file, load_state_dict, package_data, resolve_weights

logger = logging.getLogger(__name__)

#: Environment variable naming a directory with ``pnet.pt``/``rnet.pt``/``onet.pt`` (or ``mtcnn_*.pt``).
WEIGHTS_ENV = "FACESHIELD_MTCNN_DIR"
#: facenet-pytorch defaults (``MTCNN()``): stage thresholds, pyramid factor, smallest face in pixels.
THRESHOLDS = (0.6, 0.7, 0.7)
FACTOR = 0.709
MIN_FACE_SIZE = 20

_NETS = ("pnet", "rnet", "onet")
_PNET_STRIDE = 2
_PNET_CELL = 12


# --------------------------------------------------------------------------------------------
# networks (parameter names match facenet-pytorch's state dicts)
# --------------------------------------------------------------------------------------------


def _normalise(x255: torch.Tensor) -> torch.Tensor:
    """Pixel values ``[0, 255]`` -> the nets' input range ``[-0.996, 0.996]``."""
    return (x255 - 127.5) * 0.0078125


def _flatten_xyc(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, W*H*C)``, x slowest and channels fastest: the order in which the
    ported dense-layer weights were laid out."""
    return x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)


class PNet(nn.Module):
    """Proposal net, fully convolutional.

    ``forward(x)``: ``x`` ``(B, 3, H, W)`` normalised with :func:`_normalise` (``H, W >= 12``) ->
    ``(reg, prob)``: ``reg`` ``(B, 4, h, w)`` box offsets in units of the 12-px cell, ``prob``
    ``(B, 2, h, w)`` softmax (channel 1 = face), ``h = ceil((H - 2) / 2) - 4``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, 3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, 3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, 3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), torch.softmax(self.conv4_1(x), dim=1)


class RNet(nn.Module):
    """Refinement net.

    ``forward(x)``: ``x`` ``(B, 3, 24, 24)`` normalised -> ``(reg, prob)``: ``reg`` ``(B, 4)`` box
    offsets in units of the box size, ``prob`` ``(B, 2)`` softmax (column 1 = face).
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, 3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, 3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, 2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(3 * 3 * 64, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = self.prelu4(self.dense4(_flatten_xyc(x)))
        return self.dense5_2(x), torch.softmax(self.dense5_1(x), dim=1)


class ONet(nn.Module):
    """Output net.

    ``forward(x)``: ``x`` ``(B, 3, 48, 48)`` normalised -> ``(reg, points, prob)``: ``reg``
    ``(B, 4)`` box offsets in units of the box size, ``points`` ``(B, 10)`` = 5 x's then 5 y's in
    ``[0, 1]`` of the crop (roughly), ``prob`` ``(B, 2)`` softmax (column 1 = face).
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, 3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, 2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(3 * 3 * 128, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.dense5(_flatten_xyc(x)))
        return self.dense6_2(x), self.dense6_3(x), torch.softmax(self.dense6_1(x), dim=1)


def _weight_files(weights: str | os.PathLike | None) -> dict[str, Path]:
    """Resolve the three weight files: ``weights`` dir > ``$FACESHIELD_MTCNN_DIR`` > package data >
    an installed facenet-pytorch."""
    source, directory = "weights", weights
    if directory is None and os.environ.get(WEIGHTS_ENV):
        source, directory = f"${WEIGHTS_ENV}", os.environ[WEIGHTS_ENV]
    d = None
    if directory is not None:
        d = Path(directory).expanduser()
        if not d.is_dir():
            raise WeightsNotFoundError(
                f"MTCNN: {source}={str(d)!r} is not an existing directory; expected a directory holding "
                "pnet.pt, rnet.pt, onet.pt (or mtcnn_pnet.pt, mtcnn_rnet.pt, mtcnn_onet.pt)"
            )
    files = {}
    for net in _NETS:
        path = None
        if d is not None:
            found = [d / n for n in (f"mtcnn_{net}.pt", f"{net}.pt") if (d / n).is_file()]
            if not found:
                raise WeightsNotFoundError(f"MTCNN: neither mtcnn_{net}.pt nor {net}.pt is in {source}={str(d)!r}")
            path = found[0]
        package_file = f"mtcnn_{net}.pt"
        # look into facenet-pytorch only when needed (finding it is not free)
        fallback = ()
        if path is None and not package_data(package_file).is_file():
            fallback = (installed_package_file("facenet_pytorch", "data", f"{net}.pt"),)
        files[net] = resolve_weights(
            f"MTCNN {net}",
            path=path,
            package_file=package_file,
            candidates=fallback,
            hint=f"set ${WEIGHTS_ENV} to a directory holding pnet.pt, rnet.pt, onet.pt (facenet-pytorch 2.6.0)",
        )
    return files


def load_mtcnn_nets(weights: str | os.PathLike | None = None) -> tuple[PNet, RNet, ONet]:
    """Build the three nets in eval mode with frozen parameters and load their weights
    (``weights_only=True``). ``weights``: optional directory, see :class:`MTCNNExtractor`."""
    files = _weight_files(weights)
    nets = (PNet(), RNet(), ONet())
    for net, name in zip(nets, _NETS):
        net.load_state_dict(load_state_dict(files[name]))
        net.eval().requires_grad_(False)
        logger.debug("MTCNN %s weights: %s", name, files[name])
    return nets


# --------------------------------------------------------------------------------------------
# box utilities
# --------------------------------------------------------------------------------------------


def nms(boxes: torch.Tensor, scores: torch.Tensor, threshold: float, mode: str = "union") -> torch.Tensor:
    """Greedy non-maximum suppression.

    Args:
        boxes: ``(N, 4)`` ``x0, y0, x1, y1``.
        scores: ``(N,)``.
        threshold: a box is dropped when its overlap with a kept, higher-scoring box is ``> threshold``.
        mode: ``"union"``: IoU with areas ``(x1 - x0) * (y1 - y0)`` (torchvision's ``nms``);
            ``"min"``: intersection over the smaller area, areas ``(x1 - x0 + 1) * (y1 - y0 + 1)``
            (MTCNN's last stage).

    Returns:
        ``(K,)`` int64 indices of the kept boxes, by decreasing score.
    """
    if mode not in ("union", "min"):
        raise ValueError(f"mode: expected 'union' or 'min', got {mode!r}")
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    b = boxes.detach().cpu().numpy().astype(np.float32, copy=False)
    s = scores.detach().cpu().numpy()
    one = np.float32(1 if mode == "min" else 0)
    x0, y0, x1, y1 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    area = (x1 - x0 + one) * (y1 - y0 + one)
    order = np.argsort(-s, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        iw = np.maximum(np.float32(0), np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]) + one)
        ih = np.maximum(np.float32(0), np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]) + one)
        inter = iw * ih
        if mode == "min":
            overlap = inter / np.minimum(area[i], area[rest])
        else:
            overlap = inter / (area[i] + area[rest] - inter)
        order = rest[overlap <= threshold]
    return torch.as_tensor(np.asarray(keep, dtype=np.int64), device=boxes.device)


def _bbreg(boxes: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    """Apply RNet/ONet box regression. ``boxes``, ``reg``: ``(N, 4)`` -> ``(N, 4)`` (differentiable)."""
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    x0 = boxes[:, 0] + reg[:, 0] * w
    y0 = boxes[:, 1] + reg[:, 1] * h
    x1 = boxes[:, 2] + reg[:, 2] * w
    y1 = boxes[:, 3] + reg[:, 3] * h
    return torch.stack([x0, y0, x1, y1], dim=1)


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """Grow ``(N, 4)`` boxes to squares of side ``max(w, h)`` about the same centre (differentiable)."""
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(w, h)
    x0 = boxes[:, 0] + w * 0.5 - side * 0.5
    y0 = boxes[:, 1] + h * 0.5 - side * 0.5
    return torch.stack([x0, y0, x0 + side, y0 + side], dim=1)


def _onet_points(boxes: torch.Tensor, pts: torch.Tensor) -> torch.Tensor:
    """ONet's ``(N, 10)`` crop-relative points -> ``(N, 5, 2)`` pixels, for the ``(N, 4)`` ONet input boxes."""
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    px = w[:, None] * pts[:, :5] + boxes[:, 0:1] - 1
    py = h[:, None] * pts[:, 5:] + boxes[:, 1:2] - 1
    return torch.stack([px, py], dim=2)


def _crop_bounds(boxes: torch.Tensor, width: int, height: int) -> np.ndarray:
    """Integer crop of each box as the real pipeline takes it: ``(N, 4)`` int ``c0, r0, c1, r1``,
    the slice ``[r0:r1, c0:c1]`` (empty when ``c1 <= c0`` or ``r1 <= r0``)."""
    b = boxes.detach().trunc().int().cpu().numpy().astype(np.int64)
    c0 = np.maximum(b[:, 0], 1) - 1
    r0 = np.maximum(b[:, 1], 1) - 1
    c1 = np.minimum(b[:, 2], width)
    r1 = np.minimum(b[:, 3], height)
    return np.stack([c0, r0, c1, r1], axis=1)


def _crop_exact(x255: torch.Tensor, bounds: np.ndarray, size: int, image_index=None) -> torch.Tensor:
    """Integer crops resized with ``mode="area"``: ``(B, 3, H, W)`` -> ``(N, 3, size, size)``.
    Row ``n`` is cut from image ``image_index[n]`` (default ``0``)."""
    out = []
    images = x255.unbind(0)  # per-image views: a slice's backward then touches one image, not the batch
    for n, (c0, r0, c1, r1) in enumerate(bounds.tolist()):
        b = 0 if image_index is None else int(image_index[n])
        out.append(F.interpolate(images[b][None, :, r0:r1, c0:c1], size=(size, size), mode="area"))
    return torch.cat(out) if out else x255.new_zeros(0, 3, size, size)


def _area_weights(start: torch.Tensor, end: torch.Tensor, n_in: int, n_out: int) -> torch.Tensor:
    """Box-filter resampling matrices for continuous intervals, a smooth stand-in for ``mode="area"``.

    ``start, end``: ``(B,)`` pixel-edge coordinates (pixel ``i`` covers ``[i, i + 1)``). Returns
    ``(B, n_out, n_in)`` whose row ``j`` averages the pixels over ``[e_j - 1/2, e_{j+1} + 1/2)``,
    ``e_j = start + j (end - start) / n_out``, clipped to ``[0, n_in)``: torch's area resize
    (adaptive average pooling) takes whole pixels ``floor(e_j) .. ceil(e_{j+1}) - 1``, i.e. each
    cell reaches half a pixel further out on average. Piecewise linear in ``start, end``.
    """
    t = torch.linspace(0, 1, n_out + 1, dtype=start.dtype, device=start.device)
    edges = start[:, None] + (end - start)[:, None] * t
    lo, hi = edges[:, :-1, None] - 0.5, edges[:, 1:, None] + 0.5
    i = torch.arange(n_in, dtype=start.dtype, device=start.device)
    overlap = (torch.minimum(hi, i + 1) - torch.maximum(lo, i)).clamp(min=0)
    return overlap / overlap.sum(-1, keepdim=True).clamp(min=1e-6)


def _crop_soft(x255: torch.Tensor, boxes: torch.Tensor, size: int, index: torch.Tensor) -> torch.Tensor:
    """Continuous counterpart of the integer crop + area resize, differentiable w.r.t. both the
    images ``(B, 3, H, W)`` and the boxes ``(N, 4)`` (box ``n`` in image ``index[n]``) ->
    ``(N, 3, size, size)``.

    The real pipeline crops ``[trunc(x0) - 1, trunc(x1))``; over the unknown fractional parts
    ``trunc(x)`` is ``x - 1/2`` on average, so the continuous crop is ``[x0 - 3/2, x1 - 1/2)``
    (likewise in y), clipped to the image, resampled with :func:`_area_weights`. Each box only
    reads the whole-pixel window around it, so the cost does not grow with the image size.
    """
    _, _, height, width = x255.shape
    c0 = (boxes[:, 0] - 1.5).clamp(min=0)
    r0 = (boxes[:, 1] - 1.5).clamp(min=0)
    c1 = torch.maximum((boxes[:, 2] - 0.5).clamp(max=width), c0 + 1e-3)
    r1 = torch.maximum((boxes[:, 3] - 0.5).clamp(max=height), r0 + 1e-3)
    lo = torch.stack([c0, r0], 1).detach().floor().long().clamp(min=0)
    hi = torch.stack([c1, r1], 1).detach().ceil().long()
    hi[:, 0].clamp_(max=width)
    hi[:, 1].clamp_(max=height)
    images = x255.unbind(0)
    out = []
    for n in range(boxes.shape[0]):
        (wc0, wr0), (wc1, wr1) = lo[n].tolist(), hi[n].tolist()
        wx = _area_weights(c0[n : n + 1] - wc0, c1[n : n + 1] - wc0, wc1 - wc0, size)[0]  # (size, w)
        wy = _area_weights(r0[n : n + 1] - wr0, r1[n : n + 1] - wr0, wr1 - wr0, size)[0]  # (size, h)
        out.append(wy @ images[int(index[n])][:, wr0:wr1, wc0:wc1] @ wx.T)
    return torch.stack(out) if out else x255.new_zeros(0, x255.shape[1], size, size)


class MTCNNStages(NamedTuple):
    """Outputs of the differentiable RNet -> ONet chain, one row per face.

    Attributes:
        points: ``(B, 5, 2)`` ``x, y`` in pixels.
        rnet_prob: ``(B,)`` RNet face probability of the ``roi`` crop.
        onet_input: ``(B, 4)`` the RNet-regressed, squared box cropped for ONet.
        onet_prob: ``(B,)`` ONet face probability (``Face.score`` of the real pipeline).
        box: ``(B, 4)`` the ONet-regressed box (``Face.box`` of the real pipeline).
    """

    points: torch.Tensor
    rnet_prob: torch.Tensor
    onet_input: torch.Tensor
    onet_prob: torch.Tensor
    box: torch.Tensor


INFO = ExtractorInfo(
    name="mtcnn",
    scheme=MTCNN5,
    kind=ExtractorKind.REGRESSION,
    weights="package data: facenet-pytorch 2.6.0 pnet/rnet/onet.pt (MIT)",
    description="MTCNN cascade (P/R/O-Net, Zhang et al. 2016) as in facenet-pytorch; 5 points regressed by ONet",
    face_score=True,
)


@register_extractor(INFO)
class MTCNNExtractor(LandmarkExtractor):
    """MTCNN face detector + 5-point landmarks.

    Args:
        weights: optional directory holding ``pnet.pt, rnet.pt, onet.pt`` (or ``mtcnn_pnet.pt``, ...);
            default ``$FACESHIELD_MTCNN_DIR``, else the package data, else an installed facenet-pytorch.
        device: where the nets run.
        min_face_size, thresholds, factor: cascade parameters (facenet-pytorch defaults).
    """

    info = INFO

    def __init__(
        self,
        weights: str | os.PathLike | None = None,
        *,
        device: str | torch.device = "cpu",
        min_face_size: float = MIN_FACE_SIZE,
        thresholds: tuple[float, float, float] = THRESHOLDS,
        factor: float = FACTOR,
    ) -> None:
        if len(thresholds) != 3:
            raise ValueError(f"thresholds: expected 3 values, got {thresholds!r}")
        if not 0 < factor < 1:
            raise ValueError(f"factor: expected in (0, 1), got {factor}")
        if min_face_size <= 0:
            raise ValueError(f"min_face_size: expected > 0, got {min_face_size}")
        self.device = torch.device(device)
        self.pnet, self.rnet, self.onet = (n.to(self.device) for n in load_mtcnn_nets(weights))
        self.min_face_size = float(min_face_size)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.factor = float(factor)

    # ---------------------------------------------------------------- real pipeline

    def _scales(self, height: int, width: int) -> list[float]:
        """Pyramid scales: the first maps ``min_face_size`` to PNet's 12-px cell, then x ``factor``
        while the shorter side stays >= 12 px."""
        scale = 12.0 / self.min_face_size
        side = min(height, width) * scale
        scales = []
        while side >= 12:
            scales.append(scale)
            scale *= self.factor
            side *= self.factor
        return scales

    def _proposals(self, img: torch.Tensor) -> torch.Tensor:
        """PNet stage on ``img`` ``(1, 3, H, W)`` in ``[0, 255]`` -> ``(N, 9)``: box, score, 4 offsets."""
        _, _, height, width = img.shape
        found = []
        for scale in self._scales(height, width):
            im = F.interpolate(img, size=(int(height * scale + 1), int(width * scale + 1)), mode="area")
            reg, prob = self.pnet(_normalise(im))
            face = prob[0, 1]
            mask = face >= self.thresholds[0]
            yx = mask.nonzero()
            score = face[mask]
            offsets = reg[0][:, mask].T
            cell = yx.flip(1).to(reg.dtype)
            lo = ((_PNET_STRIDE * cell + 1) / scale).floor()
            hi = ((_PNET_STRIDE * cell + _PNET_CELL) / scale).floor()
            cand = torch.cat([lo, hi, score[:, None], offsets], dim=1)
            found.append(cand[nms(cand[:, :4], cand[:, 4], 0.5)])
        if not found:
            return img.new_zeros(0, 9)
        props = torch.cat(found)
        return props[nms(props[:, :4], props[:, 4], 0.7)]

    def detect(self, image: np.ndarray) -> list[Face]:
        """Run the full cascade on one image (see :class:`~faceshield.models.base.LandmarkExtractor`).

        Args:
            image: ``(H, W, 3)`` uint8 RGB.

        Returns:
            Faces in the order of the last NMS (decreasing ONet score). ``box``: ONet-regressed box,
            ``points``: ``(5, 2)`` left eye, right eye, nose, left and right mouth corner,
            ``score``: ONet probability, ``roi``: the PNet box (regressed, squared) fed to RNet.
        """
        return self._faces(image, pick=True)

    def candidates(self, image: np.ndarray) -> list[Face]:
        """Every face ONet accepts before the last NMS picks one per face (:meth:`detect` returns
        the best-scoring candidate of each overlapping group), in decreasing ONet score. Which one
        wins can change with a few levels of noise; an attack that moves the points of all of them
        does not depend on the pick. ``image``: ``(H, W, 3)`` uint8 RGB."""
        return self._faces(image, pick=False)

    def _faces(self, image: np.ndarray, pick: bool) -> list[Face]:
        image = check_rgb_uint8(image)
        with torch.inference_mode():
            rois, boxes, points, scores = self._cascade(image, pick)
        return [
            Face(box=b, points=p, scheme=MTCNN5, score=float(s), roi=r)
            for r, b, p, s in zip(rois.numpy(), boxes.numpy(), points.numpy(), scores.numpy())
        ]

    def _cascade(self, image: np.ndarray, pick: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The three stages (without the last NMS when not ``pick``: every ONet-accepted box, in
        decreasing score). Returns ``rois (N, 4)``, ``boxes (N, 4)``, ``points (N, 5, 2)``,
        ``scores (N,)`` (CPU float32)."""
        img = torch.from_numpy(np.array(image, order="C", copy=True)).to(self.device).permute(2, 0, 1)[None].float()
        _, _, height, width = img.shape
        t_rnet, t_onet = self.thresholds[1:]
        empty = (torch.zeros(0, 4), torch.zeros(0, 4), torch.zeros(0, 5, 2), torch.zeros(0))

        props = self._proposals(img)
        # PNet offsets are in units of the box size without the +1 the later stages use
        size = (props[:, 2:4] - props[:, 0:2]).repeat(1, 2)
        rois = _square(props[:, :4] + props[:, 5:9] * size)
        bounds = _crop_bounds(rois, width, height)
        ok = np.flatnonzero((bounds[:, 2] > bounds[:, 0]) & (bounds[:, 3] > bounds[:, 1]))
        if ok.size == 0:
            return empty
        rois, bounds = rois[torch.as_tensor(ok, device=rois.device)], bounds[ok]

        # RNet
        reg, prob = self.rnet(_normalise(_crop_exact(img, bounds, 24)))
        score = prob[:, 1]
        keep = torch.nonzero(score > t_rnet)[:, 0]
        keep = keep[nms(rois[keep], score[keep], 0.7)]
        if keep.numel() == 0:
            return empty
        rois, reg, score = rois[keep], reg[keep], score[keep]
        boxes = _square(_bbreg(rois, reg))

        # ONet
        bounds = _crop_bounds(boxes, width, height)
        ok = np.flatnonzero((bounds[:, 2] > bounds[:, 0]) & (bounds[:, 3] > bounds[:, 1]))
        if ok.size == 0:
            return empty
        sel = torch.as_tensor(ok, device=boxes.device)
        rois, boxes, bounds = rois[sel], boxes[sel], bounds[ok]
        reg, pts, prob = self.onet(_normalise(_crop_exact(img, bounds, 48)))
        score = prob[:, 1]
        keep = torch.nonzero(score > t_onet)[:, 0]
        rois, boxes, reg, pts, score = rois[keep], boxes[keep], reg[keep], pts[keep], score[keep]
        points = _onet_points(boxes, pts)
        boxes = _bbreg(boxes, reg)
        keep = nms(boxes, score, 0.7, mode="min") if pick else score.argsort(descending=True)
        return rois[keep].cpu(), boxes[keep].cpu(), points[keep].cpu(), score[keep].cpu()

    # ---------------------------------------------------------------- differentiable stages

    def _crop(self, x255: torch.Tensor, boxes: torch.Tensor, size: int, crop: str, index: torch.Tensor) -> torch.Tensor:
        """Differentiable crops: ``(B, 3, H, W)``, ``(N, 4)`` boxes in images ``index`` ``(N,)`` -> ``(N, 3, size, size)``."""
        if crop == "soft":
            return _crop_soft(x255, boxes, size, index)
        _, _, height, width = x255.shape
        bounds = _crop_bounds(boxes, width, height)
        bad = np.flatnonzero((bounds[:, 2] <= bounds[:, 0]) | (bounds[:, 3] <= bounds[:, 1]))
        if bad.size:
            raise ValueError(f"boxes: box {boxes[int(bad[0])].tolist()} lies outside the {width}x{height} image")
        out = _crop_exact(x255, bounds, size, image_index=index.tolist())
        if boxes.requires_grad:
            # straight-through: the value of the integer crop, the box gradient of the continuous one
            soft = _crop_soft(x255.detach(), boxes, size, index)
            out = out + (soft - soft.detach())
        return out

    @staticmethod
    def _inputs(x: torch.Tensor, boxes: torch.Tensor | np.ndarray, index: torch.Tensor | None, name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        boxes, index = check_rois(x, boxes, index, name)
        return x.float() * 255.0, boxes, index

    def _onet_stage(self, x255: torch.Tensor, boxes: torch.Tensor, crop: str, index: torch.Tensor):
        reg, pts, prob = self.onet(_normalise(self._crop(x255, boxes, 48, crop, index)))
        return _onet_points(boxes, pts), prob[:, 1], _bbreg(boxes, reg)

    def stages(self, x: torch.Tensor, rois: torch.Tensor | np.ndarray, index: torch.Tensor | None = None, crop: str = "exact") -> MTCNNStages:
        """RNet -> ONet on one face per image, differentiable w.r.t. ``x``.

        Args:
            x: ``(B, 3, H, W)`` RGB in ``[0, 1]``.
            rois: ``(N, 4)`` RNet input boxes in pixels of ``x`` (``Face.roi``).
            index: ``(N,)`` long, the image of each roi (default ``arange(B)``, needs N == B).
            crop: ``"exact"``: the real pipeline's integer crops and area resize, so on an 8-bit
                image the outputs equal :meth:`detect`'s; gradients reach ``x`` through the crop
                pixels, and the RNet box regression's effect on the ONet crop position is
                back-propagated through the continuous crop (straight-through). ``"soft"``: a
                continuous crop (the integer crop's expected value over the boxes' fractional
                parts, see :func:`_crop_soft`), a smooth function of ``x`` and the boxes with no
                integer jumps; points differ from :meth:`detect`'s by up to about a pixel.

        Returns:
            :class:`MTCNNStages` (thresholds are not applied).
        """
        if crop not in ("exact", "soft"):
            raise ValueError(f"crop: expected 'exact' or 'soft', got {crop!r}")
        x255, rois, index = self._inputs(x, rois, index, "rois")
        reg, prob = self.rnet(_normalise(self._crop(x255, rois, 24, crop, index)))
        boxes = _square(_bbreg(rois, reg))
        points, onet_prob, box = self._onet_stage(x255, boxes, crop, index)
        return MTCNNStages(points, prob[:, 1], boxes, onet_prob, box)

    def landmarks(self, x: torch.Tensor, rois: torch.Tensor | np.ndarray, index: torch.Tensor | None = None, crop: str = "exact") -> torch.Tensor:
        """Differentiable 5 points: ``x`` ``(B, 3, H, W)`` in ``[0, 1]``, ``rois`` ``(N, 4)``
        (``Face.roi``) in images ``index`` -> ``(N, 5, 2)`` pixels. See :meth:`stages`."""
        return self.stages(x, rois, index, crop).points

    #: RNet and ONet keep a face from probability 0.7
    face_threshold = float(np.log(THRESHOLDS[1] / (1 - THRESHOLDS[1])))

    def landmarks_and_scores(self, x: torch.Tensor, rois: torch.Tensor | np.ndarray, index: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`landmarks` and ``(N,)`` the lower of the RNet and ONet face logits (the face is lost
        when either stage rejects it, below :attr:`face_threshold`)."""
        s = self.stages(x, rois, index)
        logit = lambda p: torch.logit(p.clamp(1e-6, 1 - 1e-6))  # noqa: E731
        return s.points, torch.minimum(logit(s.rnet_prob), logit(s.onet_prob))

    def onet_landmarks(self, x: torch.Tensor, boxes: torch.Tensor | np.ndarray, index: torch.Tensor | None = None, crop: str = "exact") -> torch.Tensor:
        """ONet alone on already refined boxes: ``x`` ``(B, 3, H, W)`` in ``[0, 1]``, ``boxes``
        ``(B, 4)`` ONet input boxes (``MTCNNStages.onet_input``) -> ``(B, 5, 2)`` pixels."""
        if crop not in ("exact", "soft"):
            raise ValueError(f"crop: expected 'exact' or 'soft', got {crop!r}")
        x255, boxes, index = self._inputs(x, boxes, index, "boxes")
        return self._onet_stage(x255, boxes, crop, index)[0]


__all__ = ["MTCNNExtractor", "MTCNNStages", "ONet", "PNet", "RNet", "load_mtcnn_nets", "nms", "WEIGHTS_ENV"]
