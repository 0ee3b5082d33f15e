"""dlib's 68-point shape predictor (ensemble of regression trees) as a *black-box* extractor.

Pipeline: dlib's HOG frontal face detector (upsampled once) -> ``shape_predictor_68_face_landmarks``.
Not differentiable: faceshield evaluates it and measures transfer to it, it never computes its
gradients. The model file is licensed for non-commercial use and is not shipped with faceshield; it
is found in ``face_recognition_models`` (pip) or Debian's ``libdlib-data``, or given by path.
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from faceshield.core.types import IBUG68, ExtractorKind, Face
from faceshield.models.base import ExtractorInfo, LandmarkExtractor
from faceshield.models.registry import register_extractor
from faceshield.models.weights import installed_package_file, resolve_weights

_MODEL = "shape_predictor_68_face_landmarks.dat"

INFO = ExtractorInfo(
    name="dlib68",
    scheme=IBUG68,
    kind=ExtractorKind.BLACKBOX,
    weights=f"{_MODEL} from face_recognition_models or Debian libdlib-data (non-commercial licence); $FACESHIELD_DLIB68",
    description="dlib HOG face detector + 68-point ERT shape predictor (Kazemi & Sullivan 2014)",
)


def find_dlib68_model(path: str | None = None) -> Path:
    """Resolve the 68-point model file (explicit path > $FACESHIELD_DLIB68 > installed copies)."""
    return resolve_weights(
        "dlib 68-point shape predictor",
        path=path,
        env="FACESHIELD_DLIB68",
        candidates=(
            installed_package_file("face_recognition_models", "models", _MODEL),
            Path("/usr/share/dlib") / _MODEL,
        ),
        hint="pip install face_recognition_models (or apt install libdlib-data)",
    )


@register_extractor(INFO)
class Dlib68Extractor(LandmarkExtractor):
    """dlib HOG detector + 68-point shape predictor.

    Args:
        weights: path to ``shape_predictor_68_face_landmarks.dat`` (optional, see :func:`find_dlib68_model`).
        upsample: how many times the HOG detector upsamples the image (1 finds faces down to ~40 px).
    """

    info = INFO

    def __init__(self, weights: str | None = None, upsample: int = 1) -> None:
        try:
            import dlib
        except ImportError as e:  # pragma: no cover - depends on the install
            raise ImportError("dlib68 needs dlib: pip install 'faceshield[dlib]' (dlib-bin)") from e
        self.model_path = find_dlib68_model(weights)
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(self.model_path))
        self._dlib = dlib
        self.upsample = int(upsample)
        self._lock = threading.Lock()  # dlib objects are not documented as thread-safe

    def detect(self, image: np.ndarray) -> list[Face]:
        """``image``: ``(H, W, 3)`` uint8 RGB -> faces with 68 points (iBUG order) in pixels."""
        img = np.ascontiguousarray(image, dtype=np.uint8)
        faces: list[Face] = []
        with self._lock:
            dets, scores, _ = self._detector.run(img, self.upsample, 0.0)
            for rect, score in zip(dets, scores):
                shape = self._predictor(img, rect)
                pts = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
                box = np.array([rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1], dtype=np.float64)
                faces.append(Face(box=box, points=pts, scheme=IBUG68, score=float(score)))
        return faces
