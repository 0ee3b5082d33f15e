"""Heat-map landmark extractors (FAN, HRNet): decoding conventions and the shared crop pipeline.

Coordinate frames. A heat-map ``(h, w)`` is read in *heat-map pixels, edge convention*: pixel
``(i, j)`` (row ``i``, column ``j``) covers ``[j, j + 1) x [i, i + 1)``, so its centre is
``(j + 0.5, i + 0.5)`` and the whole map spans ``[0, w] x [0, h]`` (the convention of
:func:`~faceshield.faces.crop.crop_boxes`). A network heat-map covers the square crop it was computed
from, so a point ``u`` in that frame maps to the image as ``crop_x0 + u * side / w``.

The decoders reproduce the two libraries' post-processing exactly (argmax, then a quarter-pixel step
towards the larger neighbour), and differ only in the frame they return:

* :func:`decode_fan` - 1adrianb/face-alignment ``_get_preds_fromhm``: 1-based argmax ``+-0.25``
  ``- 0.5``, which is the edge frame above (``argmax_0based + 0.5 +- 0.25``).
* :func:`decode_hrnet` - HRNet-Facial-Landmark-Detection ``decode_preds``: 1-based argmax ``+-0.25``
  ``+ 0.5``, i.e. one more than :func:`decode_fan` (their ``transform_pixel`` subtracts the 1 again
  before mapping to the image).
* :func:`soft_argmax` - a differentiable decode in the :func:`decode_fan` frame.

:class:`HeatmapExtractor` owns everything around the network: detector box -> square crop (each
library's centre/scale convention) -> normalisation -> network -> decode -> image pixels, and its
differentiable twin on :func:`~faceshield.faces.crop.crop_boxes` for attacks.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from faceshield.core.check import check_rois
from faceshield.core.types import Face
from faceshield.faces.crop import crop_boxes
from faceshield.models.base import LandmarkExtractor, detected_rois

logger = logging.getLogger(__name__)

#: ImageNet statistics (RGB in [0, 1]) used by HRNet-Facial-Landmark-Detection's datasets.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: The ``200 px`` unit of the libraries' ``scale`` (crop side = ``200 * scale``).
SCALE_UNIT = 200.0
DECODES = ("soft", "library")


def _ibug68_mirror() -> tuple[int, ...]:
    """Index of each iBUG-68 point's mirror image (left <-> right), from the scheme's layout."""
    m = list(range(68))
    groups = [(0, 16), (17, 26), (31, 35), (48, 54), (55, 59), (60, 64), (65, 67)]  # symmetric runs
    for a, b in groups:
        for i in range(a, b + 1):
            m[i] = a + b - i
    for i, j in ((36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)):  # eyes: corners, lids
        m[i], m[j] = j, i
    return tuple(m)


#: Heat-map channel permutation that mirrors a point scheme left-right (for ``flip_input``).
MIRROR: dict[str, tuple[int, ...]] = {"ibug68": _ibug68_mirror()}


# ---------------------------------------------------------------------------------------------
# decoding (pure functions on tensors)
# ---------------------------------------------------------------------------------------------


def _check_heatmaps(h: object) -> torch.Tensor:
    if not isinstance(h, torch.Tensor):
        raise TypeError(f"h: expected a torch.Tensor, got {type(h).__name__}")
    if h.ndim != 4 or h.shape[-1] < 1 or h.shape[-2] < 1:
        raise ValueError(f"h: expected heat-maps of shape (N, K, h, w), got {tuple(h.shape)}")
    if not h.is_floating_point():
        raise TypeError(f"h: expected a floating-point tensor, got dtype {h.dtype}")
    return h


def _argmax_quarter(h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Shared core of both library decoders.

    Returns:
        ``xy`` ``(N, K, 2)`` float: 0-based argmax column/row plus ``0.25 * sign`` of the difference
        of the two neighbours along each axis (only for peaks not on the border, where both
        neighbours exist; ``sign(0) = 0``), and ``peak`` ``(N, K)``: the maximum value.
    """
    n, k, hh, ww = h.shape
    flat = h.detach().reshape(n, k, hh * ww)
    peak, idx = flat.max(dim=2)  # first maximum, as numpy's / torch's argmax
    ix, iy = idx % ww, idx // ww
    inner = (ix > 0) & (ix < ww - 1) & (iy > 0) & (iy < hh - 1)
    xl, xr = (ix - 1).clamp(0, ww - 1), (ix + 1).clamp(0, ww - 1)
    yu, yd = (iy - 1).clamp(0, hh - 1), (iy + 1).clamp(0, hh - 1)

    def at(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return flat.gather(2, (y * ww + x)[..., None])[..., 0]

    dx = torch.sign(at(iy, xr) - at(iy, xl))
    dy = torch.sign(at(yd, ix) - at(yu, ix))
    xy = torch.stack([ix, iy], dim=-1).to(h.dtype)
    xy = xy + 0.25 * torch.stack([dx, dy], dim=-1) * inner[..., None].to(h.dtype)
    return xy, peak


def decode_fan(h: torch.Tensor) -> torch.Tensor:
    """face-alignment's heat-map decode (``face_alignment.utils._get_preds_fromhm``).

    Argmax (first maximum); if the peak is not on the border, a step of ``0.25`` towards the larger
    of its two neighbours along x and along y (none when they are equal); then ``- 0.5`` on the
    library's 1-based coordinates.

    Args:
        h: ``(N, K, h, w)`` heat-maps.

    Returns:
        ``(N, K, 2)`` ``x, y`` in heat-map pixels, edge convention (pixel ``j`` covers ``[j, j + 1)``,
        so an argmax at 0-based column ``j`` decodes to ``j + 0.5 +- 0.25``). This is exactly the
        frame face-alignment passes to ``transform(..., invert=True)``, which maps it to the image as
        ``x_img = (center - 100 * scale) + x * (200 * scale) / w`` (and then truncates to int; we
        do not). Not differentiable (gradients are zero).
    """
    xy, _ = _argmax_quarter(_check_heatmaps(h))
    return xy + 0.5


def decode_hrnet(h: torch.Tensor) -> torch.Tensor:
    """HRNet-Facial-Landmark-Detection's heat-map decode (``lib/core/evaluation.py: decode_preds``).

    ``get_preds`` gives the 1-based argmax and zeroes it when the peak value is ``<= 0``; then, for
    peaks not on the border, a step of ``0.25`` towards the larger neighbour along x and y; then
    ``+ 0.5``.

    Args:
        h: ``(N, K, h, w)`` heat-maps.

    Returns:
        ``(N, K, 2)`` ``x, y`` in HRNet's **1-based** heat-map frame: an argmax at 0-based column
        ``j`` decodes to ``j + 1.5 +- 0.25`` (``(0.5, 0.5)`` for a map whose maximum is ``<= 0``).
        Subtract 1 to get the edge frame of :func:`decode_fan` (HRNet's ``transform_pixel`` does
        exactly that: ``x_img = (center - 100 * scale) + (x - 1) * (200 * scale) / w``, then
        ``int(.) + 1``, which we do not replicate). Not differentiable.
    """
    xy, peak = _argmax_quarter(_check_heatmaps(h))
    xy = torch.where((peak > 0)[..., None], xy + 1, torch.zeros_like(xy))
    return xy + 0.5


def soft_argmax(h: torch.Tensor, beta: float = 50.0, window: int | None = None) -> torch.Tensor:
    """Differentiable decode: expectation of the pixel centres under ``softmax(beta * h)``.

    Args:
        h: ``(N, K, h, w)`` heat-maps.
        beta: inverse temperature; the larger, the closer to the argmax (and the smaller the
            gradients). Heat-maps trained on unit-peak Gaussians (FAN, HRNet) need ``beta`` of a few
            tens for the background to stop pulling the estimate towards the map centre.
        window: if given, only the ``(2 window + 1)^2`` pixels around the argmax take part (a local
            soft-argmax: background mass far from the peak is ignored; the window position itself
            is piecewise constant).

    Returns:
        ``(N, K, 2)`` ``x, y`` in the frame of :func:`decode_fan` (heat-map pixels, edge convention:
        pixel ``j`` contributes its centre ``j + 0.5``), differentiable w.r.t. ``h``.
    """
    h = _check_heatmaps(h)
    if beta <= 0:
        raise ValueError(f"beta: expected > 0, got {beta}")
    n, k, hh, ww = h.shape
    logits = (beta * h).reshape(n, k, hh * ww)
    xs = torch.arange(ww, device=h.device, dtype=h.dtype) + 0.5
    ys = torch.arange(hh, device=h.device, dtype=h.dtype) + 0.5
    gx, gy = xs.repeat(hh), ys.repeat_interleave(ww)  # (hh * ww,) centres, row-major
    if window is not None:
        if window < 0:
            raise ValueError(f"window: expected >= 0, got {window}")
        idx = h.detach().reshape(n, k, -1).argmax(dim=2)
        cx, cy = (idx % ww).to(h.dtype) + 0.5, (idx // ww).to(h.dtype) + 0.5
        keep = ((gx - cx[..., None]).abs() <= window) & ((gy - cy[..., None]).abs() <= window)
        logits = logits.masked_fill(~keep, float("-inf"))
    p = torch.softmax(logits, dim=2)
    return torch.stack([(p * gx).sum(2), (p * gy).sum(2)], dim=-1)


# ---------------------------------------------------------------------------------------------
# crop geometry
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CropSpec:
    """How a detector box becomes the network's square input, and how the input is normalised.

    For a box ``x0, y0, x1, y1`` (``w = x1 - x0``, ``h = y1 - y0``)::

        centre = ((x0 + x1) / 2, (y0 + y1) / 2 - shift_y * h)
        scale  = scale_factor * (w + h) / reference_scale     # the libraries' "scale"
        side   = 200 * scale                                  # crop side in image pixels

    and the crop ``[centre - side / 2, centre + side / 2]^2`` is resized to ``input_size``.

    Attributes:
        input_size: network input side in pixels.
        shift_y: upward shift of the centre, in box heights.
        reference_scale: divisor of ``w + h``.
        scale_factor: extra enlargement of the crop.
        mean, std: per-channel normalisation of the ``[0, 1]`` RGB crop (``None``: fed as is).
        decoder: ``"fan"`` or ``"hrnet"``, the library decode :meth:`HeatmapExtractor.detect` uses.
    """

    input_size: int = 256
    shift_y: float = 0.0
    reference_scale: float = 200.0
    scale_factor: float = 1.0
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    decoder: str = "fan"

    def __post_init__(self) -> None:
        if self.input_size < 1:
            raise ValueError(f"input_size: expected >= 1, got {self.input_size}")
        if self.reference_scale <= 0 or self.scale_factor <= 0:
            raise ValueError(f"reference_scale, scale_factor: expected > 0, got {self.reference_scale}, {self.scale_factor}")
        if (self.mean is None) != (self.std is None):
            raise ValueError("mean, std: expected both or neither")
        if self.decoder not in ("fan", "hrnet"):
            raise ValueError(f"decoder: expected 'fan' or 'hrnet', got {self.decoder!r}")

    def square(self, boxes: torch.Tensor) -> torch.Tensor:
        """``(N, 4)`` detector boxes -> ``(N, 4)`` square crop boxes in pixels (differentiable)."""
        w = boxes[:, 2] - boxes[:, 0]
        h = boxes[:, 3] - boxes[:, 1]
        cx = (boxes[:, 0] + boxes[:, 2]) * 0.5
        cy = (boxes[:, 1] + boxes[:, 3]) * 0.5 - self.shift_y * h
        half = 0.5 * SCALE_UNIT * self.scale_factor * (w + h) / self.reference_scale
        return torch.stack([cx - half, cy - half, cx + half, cy + half], dim=1)


#: face-alignment (``api.py``): centre shifted up by 0.12 x box height, ``scale = (w + h) /
#: reference_scale`` with ``reference_scale = 195`` for its default SFD detector (and BlazeFace,
#: dlib); input ``/ 255`` only.
FAN_CROP = CropSpec(input_size=256, shift_y=0.12, reference_scale=195.0, scale_factor=1.0, decoder="fan")
#: HRNet-Facial-Landmark-Detection: ``scale *= 1.25`` on the dataset's ``scale`` (a face size / 200)
#: around the dataset's centre; ImageNet mean/std. The repository has no detector, so the box centre
#: and ``scale = mean box side / 200`` (``reference_scale = 400``) stand for the dataset's values.
HRNET_CROP = CropSpec(input_size=256, shift_y=0.0, reference_scale=400.0, scale_factor=1.25,
                      mean=IMAGENET_MEAN, std=IMAGENET_STD, decoder="hrnet")


def crop_for_weights(weights: object, crop: CropSpec) -> CropSpec:
    """``crop`` with the ``input_size`` recorded next to a weight file, if any.

    faceshield-trained compact models are trained on smaller crops than the official 256 px; their
    training script writes a sidecar ``<weights>.json`` (same name, ``.json`` suffix) whose
    ``"input_size"`` entry is the network input side. Files without a sidecar (the official
    checkpoints) keep ``crop`` unchanged.
    """
    import dataclasses
    import json
    from pathlib import Path

    if weights is None:
        return crop
    sidecar = Path(weights).with_suffix(".json")
    if not sidecar.is_file():
        return crop
    try:
        size = json.loads(sidecar.read_text()).get("input_size")
    except (OSError, ValueError, AttributeError) as e:
        raise ValueError(f"{sidecar}: unreadable weight sidecar ({e})") from None
    if size is None:
        return crop
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"{sidecar}: input_size: expected a positive integer, got {size!r}")
    return dataclasses.replace(crop, input_size=size)


# ---------------------------------------------------------------------------------------------
# the extractor base
# ---------------------------------------------------------------------------------------------


class HeatmapExtractor(LandmarkExtractor):
    """Detector box -> square crop -> network -> heat-maps -> points, for FAN / HRNet-style models.

    Subclasses set ``info`` (registry entry) and pass the network and its :class:`CropSpec`.

    Args:
        net: module mapping ``(N, 3, S, S)`` normalised crops to ``(N, K, h, w)`` heat-maps, or to
            a list of them (stacked hourglasses: the last one is used). Put in eval mode, frozen.
        crop: crop geometry, normalisation and library decoder.
        detector: registered name (default ``"mtcnn"``) or instance of the extractor whose
            ``detect`` supplies face boxes; created on first :meth:`detect`.
        soft_beta, soft_window: parameters of :func:`soft_argmax` for ``landmarks(decode="soft")``.
        antialias: supersample the differentiable crop (:func:`crop_boxes`) when it shrinks the
            image; :meth:`detect` always crops without it, like the libraries' bilinear resize.
        flip_input: also run the horizontally mirrored crop and add its mirrored heat-maps (point
            channels swapped left <-> right), as face-alignment's ``flip_input`` does.
        device: where the network runs.
    """

    def __init__(
        self,
        net: nn.Module,
        crop: CropSpec,
        *,
        detector: str | LandmarkExtractor = "mtcnn",
        soft_beta: float = 50.0,
        soft_window: int | None = 3,
        antialias: bool = True,
        flip_input: bool = False,
        device: str | torch.device = "cpu",
    ) -> None:
        if not isinstance(net, nn.Module):
            raise TypeError(f"net: expected a torch.nn.Module, got {type(net).__name__}")
        if soft_beta <= 0:
            raise ValueError(f"soft_beta: expected > 0, got {soft_beta}")
        self.device = torch.device(device)
        self.net = net.to(self.device).eval().requires_grad_(False)
        self.crop = crop
        self.soft_beta = float(soft_beta)
        self.soft_window = soft_window
        self.antialias = bool(antialias)
        self.flip_input = bool(flip_input)
        if self.flip_input and self.scheme.name not in MIRROR:
            raise ValueError(f"flip_input: no left-right point mirror is known for scheme {self.scheme.name!r}")
        self._detector = detector
        if crop.mean is not None:
            self._mean = torch.tensor(crop.mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
            self._std = torch.tensor(crop.std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)

    # ------------------------------------------------------------------ pieces

    @property
    def detector(self) -> LandmarkExtractor:
        """The face detector (created on first use)."""
        if isinstance(self._detector, str):
            from faceshield.models.registry import create_extractor

            self._detector = create_extractor(self._detector)
        return self._detector

    def frame_boxes(self, rois: torch.Tensor) -> torch.Tensor:
        """``(N, 4)`` detector boxes (``Face.roi``) -> ``(N, 4)`` the squares the heat-maps span (in
        pixels): heat-map coordinates map to the image through these."""
        return self.crop.square(rois)

    def input_boxes(self, rois: torch.Tensor) -> torch.Tensor:
        """``(N, 4)`` detector boxes -> ``(N, 4)`` the boxes resampled into the network input. The
        same as :meth:`frame_boxes` unless a library crops a slightly different (e.g. integer) box."""
        return self.frame_boxes(rois)

    def normalise(self, crops: torch.Tensor) -> torch.Tensor:
        """``(N, 3, S, S)`` RGB in ``[0, 1]`` -> network input."""
        if self.crop.mean is None:
            return crops
        return (crops - self._mean.to(crops.dtype)) / self._std.to(crops.dtype)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Network on normalised crops -> ``(N, K, h, w)`` (the last stack of a stacked network)."""
        out = self._run(inputs)
        if self.flip_input:
            mirror = torch.as_tensor(MIRROR[self.scheme.name], device=out.device)
            out = out + self._run(inputs.flip(-1)).index_select(1, mirror).flip(-1)
        return out

    def _run(self, inputs: torch.Tensor) -> torch.Tensor:
        out = self.net(inputs)
        return out[-1] if isinstance(out, (list, tuple)) else out

    def _heatmaps_and_squares(self, x: torch.Tensor, rois, index, antialias: bool, quantize: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        rois, index = check_rois(x, rois, index)
        crops = crop_boxes(x, self.input_boxes(rois), self.crop.input_size, index, antialias=antialias)
        if quantize:  # the libraries resize 8-bit crops to 8-bit crops
            crops = torch.round(crops * 255) / 255
        return self.forward(self.normalise(crops.to(self.device))), self.frame_boxes(rois).to(self.device)

    @staticmethod
    def to_image(points: torch.Tensor, squares: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Heat-map points ``(N, K, 2)`` (edge frame of :func:`decode_fan`) of ``size = (h, w)`` maps
        computed on the crops ``squares`` ``(N, 4)`` -> image pixels (edge convention)."""
        hh, ww = size
        sx = (squares[:, 2] - squares[:, 0]) / ww
        sy = (squares[:, 3] - squares[:, 1]) / hh
        scale = torch.stack([sx, sy], dim=-1)[:, None, :]
        return squares[:, None, 0:2] + points * scale.to(points.dtype)

    def decode_library(self, h: torch.Tensor) -> torch.Tensor:
        """The library's own decode, returned in the edge frame of :func:`decode_fan`."""
        return decode_fan(h) if self.crop.decoder == "fan" else decode_hrnet(h) - 1.0

    # ------------------------------------------------------------------ LandmarkExtractor

    def heatmaps(self, x: torch.Tensor, rois, index: torch.Tensor | None = None, *, antialias: bool | None = None) -> torch.Tensor:
        """Differentiable heat-maps.

        Args:
            x: ``(B, 3, H, W)`` RGB in ``[0, 1]``.
            rois: ``(N, 4)`` detector boxes ``x0, y0, x1, y1`` in pixels of ``x`` (``Face.roi``).
            index: ``(N,)`` image of each roi (default ``arange(B)``, needs N == B).
            antialias: override the extractor's ``antialias`` for this call.

        Returns:
            ``(N, K, h, w)`` raw network heat-maps (``h = w = 64`` for a 256 input), differentiable
            w.r.t. ``x`` (and ``rois``).
        """
        aa = self.antialias if antialias is None else bool(antialias)
        return self._heatmaps_and_squares(x, rois, index, aa)[0]

    def landmarks(self, x: torch.Tensor, rois, index: torch.Tensor | None = None, decode: str = "soft") -> torch.Tensor:
        """Landmarks in image pixels.

        Args:
            x, rois, index: as :meth:`heatmaps`.
            decode: ``"soft"``: :func:`soft_argmax` (``soft_beta``, ``soft_window``), differentiable
                w.r.t. ``x``; ``"library"``: the library's argmax + quarter-pixel decode (what
                :meth:`detect` reports), piecewise constant in ``x`` (zero gradient).

        Returns:
            ``(N, K, 2)`` ``x, y`` in pixels of ``x`` (edge convention).
        """
        if decode not in DECODES:
            raise ValueError(f"decode: expected one of {DECODES}, got {decode!r}")
        h, squares = self._heatmaps_and_squares(x, rois, index, self.antialias)
        if decode == "soft":
            pts = soft_argmax(h, self.soft_beta, self.soft_window)
        else:
            pts = self.decode_library(h)
        return self.to_image(pts, squares, h.shape[-2:])

    def detect(self, image: np.ndarray) -> list[Face]:
        """Detector boxes -> crop -> network -> library decode, on one image.

        The crop is :func:`crop_boxes` without antialiasing (bilinear, half-pixel centres: what
        OpenCV's ``INTER_LINEAR`` resize computes) of :meth:`input_boxes`, rounded to 8 bits as the
        libraries' ``uint8`` resize is. Remaining differences from the libraries' own pipelines: the
        crop's outermost pixels interpolate with the image beyond the box (OpenCV replicates the
        crop's border) and points are not truncated to integers at the end (face-alignment
        truncates; HRNet truncates and adds 1).

        Args:
            image: ``(H, W, 3)`` uint8 RGB.

        Returns:
            One :class:`Face` per detected face: ``box`` = ``roi`` = the detector box, ``score`` the
            detector's, ``points`` ``(K, 2)`` in pixels.
        """
        inputs = detected_rois(self.detector, image)
        if inputs is None:
            return []
        found, x, rois, index = inputs
        with torch.inference_mode():
            h, squares = self._heatmaps_and_squares(x, rois, index, False, quantize=True)
            pts = self.to_image(self.decode_library(h), squares, h.shape[-2:]).double().cpu().numpy()
        return [Face(box=f.box, points=p, scheme=self.scheme, score=f.score, roi=f.box) for f, p in zip(found, pts)]


def strip_prefixes(sd: dict, prefixes: tuple[str, ...] = ("module.",)) -> dict:
    """Remove wrapper prefixes (``nn.DataParallel``'s ``module.``) from every key that has them."""
    out = {}
    for key, value in sd.items():
        changed = True
        while changed:
            changed = False
            for p in prefixes:
                if key.startswith(p):
                    key, changed = key[len(p):], True
        out[key] = value
    return out


def unwrap_state_dict(obj: object, path: object) -> dict:
    """A checkpoint's state dict: the object itself or its ``"state_dict"`` entry, tensors only,
    ``module.`` prefixes removed."""
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj:
        raise ValueError(f"{path}: expected a state dict (or {{'state_dict': ...}}), got {type(obj).__name__}")
    sd = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not sd:
        raise ValueError(f"{path}: the state dict holds no tensors")
    return strip_prefixes(sd)


def load_matching(module: nn.Module, sd: dict, what: str) -> None:
    """``module.load_state_dict(sd)`` that tolerates only missing ``num_batches_tracked`` buffers
    (files saved by torch < 0.4.1) and reports key / shape mismatches in one readable line."""
    own = module.state_dict()
    missing = [k for k in own if k not in sd and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in sd if k not in own]
    wrong = [f"{k} {tuple(sd[k].shape)} != {tuple(own[k].shape)}" for k in own if k in sd and sd[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        def show(xs):
            return ", ".join(xs[:5]) + (f" (+{len(xs) - 5} more)" if len(xs) > 5 else "")
        parts = [f"missing {show(missing)}" if missing else "", f"unexpected {show(unexpected)}" if unexpected else "",
                 f"shape {show(wrong)}" if wrong else ""]
        raise ValueError(f"{what}: the weights do not fit the network: " + "; ".join(p for p in parts if p))
    full = dict(own)
    full.update({k: v.to(own[k].dtype) for k, v in sd.items()})
    module.load_state_dict(full)


__all__ = [
    "CropSpec", "DECODES", "FAN_CROP", "HRNET_CROP", "HeatmapExtractor", "IMAGENET_MEAN", "IMAGENET_STD", "MIRROR",
    "crop_for_weights", "decode_fan", "decode_hrnet", "load_matching", "soft_argmax", "strip_prefixes", "unwrap_state_dict",
]
