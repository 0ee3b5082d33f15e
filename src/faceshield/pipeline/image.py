"""Protect one image: faces -> per-target losses -> optimiser -> 8-bit protected image."""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from faceshield.attacks import EOTLoss, FeatureDistortionLoss, HeatmapCosineLoss, LandmarkDisplacementLoss, SumLoss, create_attack, jnd_budget, texture_budget
from faceshield.core.errors import NoFaceError
from faceshield.core.types import ExtractorKind, Face
from faceshield.io import to_tensor, to_uint8
from faceshield.metrics import box_mask
from faceshield.attacks.disruption import DisruptionLoss
from faceshield.deepfake.edit import EditFace, find_faces
from faceshield.models import DeepfakeDetector, LandmarkExtractor, Manipulator, create_extractor, create_target
from faceshield.pipeline.config import MASK_MODES, PRESETS, ProtectConfig, generator_name

__all__ = ["MASK_MODES", "PRESETS", "ProtectConfig", "ProtectedImage", "build_loss", "protect_array"]

log = logging.getLogger(__name__)

@dataclass
class ProtectedImage:
    """Result of :func:`protect_array`.

    Attributes:
        rgb: ``(H, W, 3)`` uint8 protected image.
        faces: per target extractor, the faces it found on the clean image (and were protected).
        loss_start, loss_end: summed per-image loss before the first and after the last step (with
            EOT: the objective's estimate from that iteration's draws); None for a generator,
            which optimises no loss.
        face_boxes: the boxes of every face protected.
        config: the settings as run (a generator's default ``eps`` replaced by its own budget).
    """

    rgb: np.ndarray
    faces: dict[str, list[Face]]
    loss_start: float | None
    loss_end: float | None
    face_boxes: list[np.ndarray] = field(default_factory=list)
    config: ProtectConfig | None = None


def build_loss(extractor: LandmarkExtractor, rois: Sequence[np.ndarray], config: ProtectConfig, canvas=None):
    """The Landmark Breaker loss for one extractor: heat-map cosine (Eq. 1) for heat-map models,
    landmark displacement for regression models, with ``config``'s box jitter, re-detection, push
    (heat-map models), NME cap (regression models), face hiding (models with a face score) and
    feature distortion (models with features: a :class:`SumLoss` of both). ``canvas``: where the samples sit in
    whole images, for re-detection (:class:`~faceshield.attacks.LandmarkDisplacementLoss`)."""
    kw = {"jitter": config.jitter, "jitter_mode": config.jitter_mode, "seed": config.seed, "redetect": config.redetect, "canvas": canvas}
    if extractor.kind is ExtractorKind.HEATMAP:
        loss = HeatmapCosineLoss(extractor, rois, push=config.push, **kw)
    else:
        loss = LandmarkDisplacementLoss(extractor, rois, cap=config.nme_cap, hide=config.hide if extractor.info.face_score else 0.0, **kw)
    if config.feature_weight and extractor.info.features:
        plain = {k: v for k, v in kw.items() if k not in ("redetect", "canvas")}  # re-detection is the landmark loss's
        return SumLoss([loss, FeatureDistortionLoss(extractor, rois, **plain)], [1.0, config.feature_weight])
    return loss


def crop_extent(matrix: np.ndarray, size: int) -> np.ndarray:
    """``(4,)`` image box ``x0, y0, x1, y1`` covering the ``size`` px crop of ``matrix`` (image -> crop)."""
    a = np.vstack([matrix, [0, 0, 1]])
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], dtype=np.float64) @ np.linalg.inv(a)[:2].T
    return np.concatenate([corners.min(0), corners.max(0)])


def region_matrices(matrices: np.ndarray, origin: tuple[int, int]) -> np.ndarray:
    """``(N, 2, 3)`` photo -> crop maps as maps from a region whose top-left is ``origin`` in the
    photo (crop = M p_photo and p_photo = p_region + origin)."""
    m = np.array(matrices, dtype=np.float64)
    m[:, :, 2] += m[:, :, :2] @ np.asarray(origin, dtype=np.float64)
    return m


def disruption_loss(editor: Manipulator, faces: Sequence[EditFace], origin: tuple[int, int], config: ProtectConfig, detectors=()) -> DisruptionLoss:
    """Ruiz et al.'s distortion of ``editor``'s edits of ``faces`` for an attack on the region whose
    top-left is ``origin`` (its crop maps moved there), over ``config.domains`` (all of the
    editor's when empty, or those of them it has) with ``config.domain_mode``; ``detectors``'
    real-logits of the edits are added."""
    doms = [d for d in (config.domains or editor.domains) if d in editor.domains]
    if not doms:
        raise ValueError(f"domains: {editor.name} has none of {', '.join(config.domains)}; its domains: {', '.join(editor.domains)}")
    mats = region_matrices(np.stack([f.matrix for f in faces]), origin)
    conds = torch.stack([torch.stack([editor.condition(d, f.attrs) for d in doms]) for f in faces])
    return DisruptionLoss(editor, [mats], [conds], domain_mode=config.domain_mode, detectors=detectors, seed=config.seed)


def is_grey(rgb: np.ndarray) -> bool:
    """Whether an ``(H, W, 3)`` image is grey: R = G = B at every pixel."""
    return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())


def _work_region(shape: tuple[int, int], boxes: Sequence[np.ndarray], margin: float = 1.0, align: int = 1) -> tuple[int, int, int, int]:
    """Integer region ``x0, y0, x1, y1`` covering all boxes enlarged by ``margin`` x their size on
    each side: gradients of crop-based extractors never reach beyond it, so optimising only this
    region is exact and much cheaper on large photos. ``x0, y0`` are rounded down to multiples of
    ``align`` (16 with EOT, so the simulated JPEG blocks fall where the real codec puts them)."""
    h, w = shape
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    size = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])[:, None]
    lo = np.floor((b[:, :2] - margin * size).min(0)).astype(int)
    hi = np.ceil((b[:, 2:] + margin * size).max(0)).astype(int)
    x0, y0 = max(0, lo[0]) // align * align, max(0, lo[1]) // align * align
    return x0, y0, min(w, hi[0]), min(h, hi[1])


def _budget_mask(sub: torch.Tensor, boxes: Sequence[np.ndarray], config: ProtectConfig) -> torch.Tensor | None:
    """The per-pixel budget ``(1, 1 | 3, h, w)`` in [0, 1] of the region ``sub`` ``(1, 3, h, w)``:
    the face mask of ``boxes`` (region pixels) times the texture / JND budgets (None: no limit)."""
    mask = None
    if config.mask == "face":
        mask = torch.from_numpy(box_mask(sub.shape[-2:], boxes, scale=config.mask_scale))[None, None].float()
    if config.perceptual:
        w = texture_budget(sub)
        mask = w if mask is None else mask * w
    if config.jnd:
        w = jnd_budget(sub, config.eps)
        mask = w if mask is None else mask * w
    return mask


def _protect_with_generator(rgb: np.ndarray, config: ProtectConfig, given: dict[str, list[Face]]) -> ProtectedImage:
    """:func:`protect_array` with a trained generator: one forward pass per face crop, aligned by
    ``config.detector``'s five points (:class:`~faceshield.generators.GeneratorPerturber`)."""
    from faceshield.deepfake.edit import crop_matrix, five_points
    from faceshield.generators import GeneratorPerturber, create_generator

    name = generator_name(config.method)
    g = create_generator(name)
    det = config.detector
    found = list(given[det]) if det in given else create_extractor(det).detect(rgb)
    if not found:
        raise NoFaceError(f"no face found by {det}")
    mats = np.stack([crop_matrix(five_points(f), g.size, g.template) for f in found]).astype(np.float64)
    boxes = [f.box for f in found] + [crop_extent(m, g.size) for m in mats]
    x0, y0, x1, y1 = _work_region(rgb.shape[:2], boxes, margin=0.0)
    mats = region_matrices(mats, (x0, y0))
    offset = np.array([x0, y0, x0, y0], dtype=np.float64)
    sub = to_tensor(rgb[y0:y1, x0:x1])
    eps = None if config.eps == ProtectConfig.eps else config.eps  # the default: the generator's own budget
    perturber = GeneratorPerturber(g, mats, eps=eps, chroma=0.0 if is_grey(rgb) else config.chroma)
    config = replace(config, eps=perturber.eps)  # as run (the JND budget is relative to it)
    adv = perturber(sub, _budget_mask(sub, [f.box - offset for f in found], config), seed=config.seed)
    out = rgb.copy()
    out[y0:y1, x0:x1] = to_uint8(adv)
    log.debug("protected %d face(s) with %r", len(found), perturber)
    return ProtectedImage(rgb=out, faces={det: found}, loss_start=None, loss_end=None, face_boxes=[f.box for f in found], config=config)


def protect_array(
    rgb: np.ndarray,
    config: ProtectConfig | None = None,
    *,
    extractors: dict[str, LandmarkExtractor] | None = None,
    faces: dict[str, list[Face]] | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> ProtectedImage:
    """Protect every face in one image.

    Args:
        rgb: ``(H, W, 3)`` uint8 RGB; never modified.
        config: :class:`ProtectConfig` (defaults: Landmark Breaker on MTCNN).
        extractors: optional pre-built extractors by name (otherwise from the registry).
        faces: optional faces per target already found on ``rgb`` (e.g. by a video tracker); targets
            missing from it are detected as usual.
        on_step: optional progress hook, called as ``on_step(step, steps)`` after each optimiser
            iteration (a generator: once, ``(1, 1)``); it changes nothing in the result.

    Returns:
        :class:`ProtectedImage` whose ``rgb`` differs from the input by at most ``eps`` 8-bit levels.

    Raises:
        NoFaceError: none of the target extractors finds a face.
        ValueError: a target is black-box or unknown.
    """
    config = config or ProtectConfig()
    if generator_name(config.method) is not None:
        result = _protect_with_generator(rgb, config, faces or {})
        if on_step is not None:
            on_step(1, 1)
        return result
    models = {n: (extractors or {}).get(n) or create_target(n) for n in config.targets}
    for n, e in models.items():
        if not e.differentiable:
            raise ValueError(f"target {n!r} is a {e.kind.value} extractor and cannot be attacked directly; use it with `evaluate` (transfer)")
    exts = {n: e for n, e in models.items() if isinstance(e, LandmarkExtractor)}
    editors = {n: e for n, e in models.items() if isinstance(e, Manipulator)}
    given = faces or {}
    faces = {n: list(given[n]) if n in given else e.detect(rgb) for n, e in exts.items()}
    edit_faces = {}
    if editors:  # the forger's detector finds and aligns the faces a manipulator edits
        det = config.detector
        found = faces.get(det) if det in faces else (list(given[det]) if det in given else create_extractor(det).detect(rgb))
        edit_faces = {n: find_faces(rgb, g, det, found) for n, g in editors.items()}
    if not any(faces.values()) and not any(edit_faces.values()):
        raise NoFaceError(f"no face found by {', '.join(exts) or config.detector}")
    all_boxes = [f.roi for fs in faces.values() for f in fs] + [f.box for fs in faces.values() for f in fs]
    all_boxes += [b for n, fs in edit_faces.items() for f in fs for b in (f.face.box, crop_extent(f.matrix, editors[n].size))]
    x0, y0, x1, y1 = _work_region(rgb.shape[:2], all_boxes, align=16 if config.eot else 1)
    offset = np.array([x0, y0, x0, y0], dtype=np.float64)
    sub = to_tensor(rgb[y0:y1, x0:x1])

    canvas = [(rgb, (x0, y0))]  # re-detection runs on the whole image, as the real detector will
    losses = [build_loss(exts[n], [np.array([f.roi - offset for f in fs]).reshape(-1, 4)], config, canvas) for n, fs in faces.items() if fs]
    detectors = [e for e in models.values() if isinstance(e, DeepfakeDetector)]
    losses += [disruption_loss(editors[n], fs, (x0, y0), config, detectors) for n, fs in edit_faces.items() if fs]
    loss = losses[0] if len(losses) == 1 else SumLoss(losses)
    if config.eot:
        loss = EOTLoss(loss, config.eot, samples=config.eot_samples, seed=config.seed)
    face_boxes = [f.box for fs in faces.values() for f in fs] + [f.face.box for fs in edit_faces.values() for f in fs]
    mask = _budget_mask(sub, [b - offset for b in face_boxes], config)
    kwargs = config.attack_kwargs()
    if is_grey(rgb):
        kwargs["chroma"] = 0.0  # a grey photo gets a grey perturbation and stays grey (R = G = B)
    attack = create_attack(config.method, loss, **kwargs)
    attack.on_step = on_step
    adv = attack(sub, mask, seed=config.seed)
    with torch.no_grad():
        loss_end = float(loss(adv, sub).sum())
    out = rgb.copy()
    out[y0:y1, x0:x1] = to_uint8(adv)
    loss_start = float(attack.history[0].sum()) if attack.history else loss_end
    log.debug("protected %d face(s) with %r: loss %.4f -> %.4f", len(face_boxes), attack, loss_start, loss_end)
    faces.update({n: [f.face for f in fs] for n, fs in edit_faces.items()})
    return ProtectedImage(rgb=out, faces=faces, loss_start=loss_start, loss_end=loss_end, face_boxes=face_boxes, config=config)
