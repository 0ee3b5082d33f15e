"""Evaluate a protected image against its clean original: NME per extractor (each run through its
full, real pipeline on the 8-bit images), SSIM_I, mask-SSIM on the face region, PSNR, L_inf, and
visibility as people see it (SSIMULACRA 2, FLIP, Butteraugli; :mod:`faceshield.metrics.perceptual`)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from faceshield.core.types import Face
from faceshield.faces.boxes import box_iou
from faceshield.metrics import box_mask, linf_levels, mask_ssim, nme, psnr, ssim
from faceshield.metrics.perceptual import visibility as measure_visibility
from faceshield.models import LandmarkExtractor

if TYPE_CHECKING:
    from faceshield.pipeline.swap import SwapEvaluation


def match_face(face: Face, candidates: Sequence[Face], min_iou: float = 0.2) -> Face | None:
    """The candidate whose box overlaps ``face``'s most (IoU >= ``min_iou``), else None."""
    best, best_iou = None, min_iou
    for c in candidates:
        iou = box_iou(face.box, c.box)
        if iou >= best_iou:
            best, best_iou = c, iou
    return best


@dataclass
class ExtractorResult:
    """NME of one extractor on one image pair. ``nme`` is the mean over faces found on both images
    (a fraction, normalised by ``normaliser``); ``faces_lost`` counts clean faces the extractor no
    longer finds on the protected image (a protection success, excluded from ``nme``)."""

    extractor: str
    kind: str
    points: int
    normaliser: str
    faces_clean: int
    faces_lost: int
    nme: float | None
    nme_per_face: list[float | None] = field(default_factory=list)


@dataclass
class Evaluation:
    """All metrics of one clean / protected pair. SSIM values are in [-1, 1], PSNR in dB,
    ``linf`` in 8-bit levels; ``mask_ssim`` is over the face boxes of ``faces``. ``visibility``:
    :func:`~faceshield.metrics.perceptual.visibility` (``ssimulacra2``, ``flip``, ``butteraugli`` and
    their ``*_face`` values on the face boxes x 1.2; empty when not measured)."""

    ssim_i: float
    mask_ssim: float | None
    psnr: float
    linf: int
    extractors: list[ExtractorResult]
    visibility: dict[str, float | None] = field(default_factory=dict)
    swap: "SwapEvaluation | None" = None  # set by evaluate(..., swap=True): the DeepFake measured
    #: set by evaluate(..., manipulate=[...]): one DisruptionMeasure per manipulator
    disruption: list = field(default_factory=list)
    #: set by evaluate(..., purify=SPEC): the forger's clean-up record (MagDR: detected, S_final, restorations);
    #: every other figure is then of the purified copy
    purification: dict | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["disruption"] = [m.to_dict() for m in self.disruption]
        return d


def evaluate_extractor(ext: LandmarkExtractor, clean: np.ndarray, protected: np.ndarray, regions: Sequence[np.ndarray] | None = None) -> ExtractorResult:
    """Run ``ext``'s real pipeline on both images and compare its landmarks.

    Args:
        clean, protected: ``(H, W, 3)`` uint8 RGB.
        regions: if given, only clean faces overlapping one of these boxes (the protected faces) count.
    """
    ref = ext.detect(clean)
    if regions is not None:
        ref = [f for f in ref if any(box_iou(f.box, r) >= 0.2 for r in regions)]
    adv = ext.detect(protected)
    per_face: list[float | None] = []
    for f in ref:
        m = match_face(f, adv)
        per_face.append(None if m is None else float(nme(m.points, f.points, ext.scheme)))
    found = [v for v in per_face if v is not None]
    return ExtractorResult(
        extractor=ext.name,
        kind=ext.kind.value,
        points=ext.scheme.n_points,
        normaliser=ext.scheme.normaliser_name,
        faces_clean=len(ref),
        faces_lost=sum(v is None for v in per_face),
        nme=float(np.mean(found)) if found else None,
        nme_per_face=per_face,
    )


def evaluate_pair(
    clean: np.ndarray,
    protected: np.ndarray,
    extractors: Sequence[LandmarkExtractor],
    face_boxes: Sequence[np.ndarray],
    *,
    visibility: bool = True,
) -> Evaluation:
    """Metrics of a protected image.

    Args:
        clean, protected: ``(H, W, 3)`` uint8 RGB of the same size.
        extractors: extractors to measure NME with (white-box and black-box alike).
        face_boxes: the protected faces' boxes; they define the mask-SSIM region, the face region of
            the visibility measures and which faces count.
        visibility: also measure SSIMULACRA 2, FLIP and Butteraugli (about 2 s for a 512-px image).
    """
    if clean.shape != protected.shape:
        raise ValueError(f"expected clean and protected images of the same size, got {clean.shape[1]}x{clean.shape[0]} and {protected.shape[1]}x{protected.shape[0]}")
    mask = box_mask(clean.shape[:2], face_boxes) if len(face_boxes) else None
    return Evaluation(
        ssim_i=ssim(clean, protected),
        mask_ssim=mask_ssim(clean, protected, mask) if mask is not None and mask.any() else None,
        psnr=psnr(clean, protected),
        linf=linf_levels(clean, protected),
        extractors=[evaluate_extractor(e, clean, protected, face_boxes if len(face_boxes) else None) for e in extractors],
        visibility=measure_visibility(clean, protected, face_boxes) if visibility else {},
    )
