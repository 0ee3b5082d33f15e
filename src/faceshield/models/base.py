"""The one interface every landmark extractor implements.

An extractor has two faces:

* ``detect(image)`` runs its *real, unmodified* pipeline (face detection + landmarks) on a saved
  8-bit image. Evaluation always goes through this, for white-box and black-box extractors alike.
* white-box extractors also expose the differentiable stage an attack needs:
  ``landmarks(x, rois)`` and, for heat-map models, ``heatmaps(x, rois)``, on a differentiable crop
  of the full image so gradients reach its pixels.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch

from faceshield.core.check import check_rgb_uint8
from faceshield.core.types import ExtractorKind, Face, PointScheme
from faceshield.io import to_tensor


@dataclass(frozen=True)
class ExtractorInfo:
    """What ``faceshield models`` lists for an extractor."""

    name: str
    scheme: PointScheme
    kind: ExtractorKind
    weights: str  # where the weights come from, in words
    description: str = ""
    #: the registered white-box extractor that runs the same network (a port of it), if any: a
    #: perturbation made on that one is white-box here too, not transfer.
    same_network_as: str | None = None
    #: the differentiable stage also gives the detector's face score (:meth:`LandmarkExtractor.face_logits`):
    #: an attack can then hide the face from the detector (``hide``)
    face_score: bool = False
    #: the differentiable stage also gives intermediate features (:meth:`LandmarkExtractor.features`):
    #: an attack can distort them (``feature_weight``)
    features: bool = False

    @property
    def family(self) -> str:
        return "landmark"

    @property
    def inputs(self) -> str:
        return f"a whole photo (its own face detector); {self.scheme.n_points} points ({self.scheme.name})"

    def to_dict(self) -> dict:
        """What ``faceshield models --json`` prints for it."""
        return {"name": self.name, "family": "landmark", "kind": self.kind.value, "inputs": self.inputs, "weights": self.weights,
                "description": self.description, "points": self.scheme.n_points, "scheme": self.scheme.name,
                "normaliser": self.scheme.normaliser_name, "same_network_as": self.same_network_as,
                "face_score": self.face_score, "features": self.features}


class LandmarkExtractor(ABC):
    """Base class of landmark extractors.

    Subclasses set ``info`` and implement ``detect``; white-box ones also ``landmarks`` (and
    ``heatmaps`` when the model has them).
    """

    info: ExtractorInfo

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def scheme(self) -> PointScheme:
        return self.info.scheme

    @property
    def kind(self) -> ExtractorKind:
        return self.info.kind

    @property
    def differentiable(self) -> bool:
        return self.info.kind is not ExtractorKind.BLACKBOX

    @abstractmethod
    def detect(self, image: np.ndarray) -> list[Face]:
        """Run the full pipeline on one image.

        Args:
            image: ``(H, W, 3)`` uint8 RGB.

        Returns:
            One :class:`Face` per detected face (possibly empty), in pixels of ``image``.
        """

    def candidates(self, image: np.ndarray) -> list[Face]:
        """Every face the pipeline weighs before it settles on the faces :meth:`detect` returns,
        best first (default: :meth:`detect`'s faces; MTCNN: every box ONet accepts before its last
        NMS). Attacks that re-detect (``redetect``) attack all of them. ``image``: ``(H, W, 3)``
        uint8 RGB."""
        return self.detect(image)

    def same_face(self, candidate: np.ndarray, roi: np.ndarray) -> bool:
        """Whether a re-detected candidate's ``roi`` ``(4,)`` is the face whose clean ``roi`` is
        ``roi`` (default: the candidate's centre lies in it; re-detection, :mod:`faceshield.attacks.losses`)."""
        cx, cy = (candidate[0] + candidate[2]) / 2, (candidate[1] + candidate[3]) / 2
        return bool(roi[0] <= cx <= roi[2] and roi[1] <= cy <= roi[3])

    def landmarks(self, x: torch.Tensor, rois: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        """Differentiable landmarks.

        Args:
            x: ``(B, 3, H, W)`` RGB in ``[0, 1]``.
            rois: ``(N, 4)`` ``x0, y0, x1, y1`` in pixels of ``x`` (``Face.roi``), one face per row.
            index: ``(N,)`` long, which image each roi is in (default ``arange(B)``, needs N == B);
                crops are taken with :func:`faceshield.faces.crop.crop_boxes`, never copying images.

        Returns:
            ``(N, K, 2)`` ``x, y`` in pixels of ``x``.
        """
        raise NotImplementedError(f"{self.name} is a {self.kind.value} extractor: it has no differentiable landmarks")

    #: the detector keeps a face whose :meth:`face_logits` is at least this (``log p / (1 - p)``)
    face_threshold: float = 0.0

    def landmarks_and_scores(self, x: torch.Tensor, rois: torch.Tensor, index: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Differentiable ``(N, K, 2)`` landmarks (as :meth:`landmarks`) and ``(N,)`` face logits of
        the detector (``info.face_score`` extractors only): the face is lost below
        :attr:`face_threshold`."""
        raise NotImplementedError(f"{self.name} gives no differentiable face score")

    def features(self, x: torch.Tensor, rois: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        """Differentiable ``(N, C, h, w)`` intermediate features of the network around each face
        (``info.features`` extractors only)."""
        raise NotImplementedError(f"{self.name} gives no differentiable features")

    def heatmaps(self, x: torch.Tensor, rois: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        """Differentiable heat-maps ``(N, K, h, w)`` for the faces in ``rois`` (heat-map models only)."""
        raise NotImplementedError(f"{self.name} is a {self.kind.value} extractor: it has no heat-maps")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, points={self.scheme.n_points}, kind={self.kind.value})"


def detected_rois(detector: LandmarkExtractor, image: np.ndarray) -> tuple[list[Face], torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """Run ``detector`` on ``image`` (``(H, W, 3)`` uint8 RGB, checked) and prepare a crop-based
    landmark stage: ``(faces, x, rois, index)`` with ``x`` ``(1, 3, H, W)`` in [0, 1], ``rois``
    ``(N, 4)`` float32 detector boxes and ``index`` ``(N,)`` zeros; None when no face is found."""
    image = check_rgb_uint8(image)
    found = detector.detect(image)
    if not found:
        return None
    rois = torch.as_tensor(np.stack([f.box for f in found]), dtype=torch.float32)
    return found, to_tensor(image), rois, torch.zeros(len(found), dtype=torch.long)
