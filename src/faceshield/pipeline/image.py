"""Protect one image: faces -> per-target losses -> optimiser -> 8-bit protected image."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from faceshield.attacks import (
    EOT_DEFAULT, JITTER_MODES, EOTLoss, HeatmapCosineLoss, LandmarkDisplacementLoss, SumLoss, check_smooth, create_attack, eot_pool, texture_budget,
)
from faceshield.core.check import check_int, check_positive
from faceshield.core.errors import NoFaceError
from faceshield.core.types import ExtractorKind, Face
from faceshield.io import to_tensor, to_uint8
from faceshield.metrics import box_mask
from faceshield.models import LandmarkExtractor, create_extractor

log = logging.getLogger(__name__)

MASK_MODES = ("face", "none")


#: Named settings on top of :class:`ProtectConfig`'s defaults ([0, 1] units), measured in the README
#: ("Stronger protection"; ``benchmarks/results/{strong,smooth,quality,robust}``): ``paper`` is
#: Landmark Breaker's Alg. 1 (the defaults, fastest); ``strong`` buys NME with 3x the steps, a
#: texture-following budget and random box jitter; ``smooth`` blurs the perturbation (sigma 2 px: far
#: higher SSIM); ``quality`` blurs less (sigma 1 px), puts SSIM into the objective and, on heat-map
#: models, keeps pushing the heat-maps away after Eq. 1 bottoms out, with 100 steps, random box
#: jitter and every box the detector weighs re-detected every 10 steps (the most NME at the highest
#: SSIM); ``robust`` is ``quality`` averaged over random JPEG /
#: resize / blur (EOT; about 2x slower) for photos and videos that will be re-compressed.
_QUALITY = {"steps": 100, "alpha": 2 / 255, "smooth": 1.0, "ssim_weight": 1.0, "push": 0.5, "jitter_mode": "random", "redetect": 10}
PRESETS: dict[str, dict] = {
    "paper": {},
    "strong": {"steps": 60, "perceptual": True, "jitter_mode": "random"},
    "smooth": {"steps": 60, "alpha": 2 / 255, "smooth": 2.0},
    "quality": _QUALITY,
    "robust": {**_QUALITY, "eot": ("default",), "eot_samples": 2},
}


@dataclass
class ProtectConfig:
    """Settings of a protection run. Budgets in [0, 1] units (``eps=15/255`` is the paper's 15 levels).

    Attributes:
        method: ``lb`` (MI-FGSM, Landmark Breaker), ``base1`` (FGSM), ``base2`` (I-FGSM), ``pgd``,
            ``lb_trans`` (MI-FGSM with input diversity), ``lb_mix`` (alternating Base2 / LB).
        targets: white-box extractors attacked together (their losses are summed).
        eps, alpha, steps, decay: optimiser settings (Landmark Breaker: 15/255, 1/255, 20, 0.5).
        budget: ``project`` (clip to the eps-ball every step) or ``paper`` (Alg. 1's stopping rule).
        mask: ``face`` perturbs only the face regions (boxes enlarged by ``mask_scale``), ``none`` lets
            the attack touch whatever its gradients reach.
        jitter: box-jitter copies per face (robustness to where the real detector puts the box).
        jitter_mode: ``fixed`` (a fixed pattern of shifted / scaled boxes) or ``random`` (fresh
            random boxes at every step, an expectation over boxes; one extra clean forward pass per
            step): see :mod:`faceshield.attacks.losses`.
        seed: random seed (PGD's random start, EOT and input-diversity draws); same seed -> identical bytes.
        eot: expectation over transformations: differentiable transform specs the loss is averaged
            over (e.g. ``("diffjpeg:q=40..90", "identity")``; ``("default",)`` means
            :data:`~faceshield.attacks.EOT_DEFAULT`); empty (default) = off.
        eot_samples: transforms drawn per iteration when ``eot`` is on (2: on the astronaut sample
            2, 4 and 8 samples gave the same NME after JPEG Q50; momentum averages over iterations too).
        perceptual: scale the budget pixel by pixel with local texture
            (:func:`~faceshield.attacks.budget.texture_budget`: flat skin gets a third of ``eps``,
            edges and hair the full ``eps``), which keeps SSIM higher for the same ``eps``.
        smooth: Gaussian sigma (pixels) the perturbation is blurred with inside the attack (0 = off):
            a smooth perturbation costs far less SSIM than pixel noise of the same amplitude and
            survives JPEG better; pair with more ``steps`` and a larger ``alpha`` (the blur averages
            the sign steps, so they reach the budget more slowly). See :mod:`faceshield.attacks.base`.
        ssim_weight: weight ``beta`` of ``1 - SSIM`` (over the protected region) added to the
            attack's loss (0 = off): every step weighs landmark damage against visible change.
        push: heat-map extractors only: weight of the push term added to Eq. 1 (0 = off, the
            paper's loss): the attack keeps moving each heat-map's mass away from the clean landmark
            after Eq. 1 has bottomed out (:func:`~faceshield.attacks.losses.heatmap_push`).
            Regression extractors (MTCNN, FaceMesh) already maximise the landmark displacement.
        redetect: every ``redetect`` steps, run each target's own detector on the current protected
            image (the whole photo, before any EOT transform) and add the boxes it now weighs for each
            face (``LandmarkExtractor.candidates``) to the boxes attacked (0 = off, the clean boxes
            only): the perturbation moves the detector's box,
            most of all MTCNN's cascade, whose final box comes from whichever of its proposals scores
            best (see :class:`~faceshield.attacks.losses.LandmarkDisplacementLoss`).
        nme_cap: regression extractors only (MTCNN, FaceMesh): count each attacked box's landmark
            displacement up to this NME (0 = off, the plain displacement), so the budget goes to the
            boxes still close to their clean points rather than to one already far off; meant for
            ``redetect``, which gives a face several boxes.
    """

    method: str = "lb"
    targets: tuple[str, ...] = ("mtcnn",)
    eps: float = 15 / 255
    alpha: float = 1 / 255
    steps: int = 20
    decay: float = 0.5
    budget: str = "project"
    mask: str = "face"
    mask_scale: float = 1.6
    jitter: int = 9
    jitter_mode: str = "fixed"
    seed: int = 0
    eot: tuple[str, ...] = ()
    eot_samples: int = 2
    perceptual: bool = False
    smooth: float = 0.0
    ssim_weight: float = 0.0
    push: float = 0.0
    redetect: int = 0
    nme_cap: float = 0.0

    def __post_init__(self) -> None:
        self.targets = tuple(self.targets)
        if not self.targets:
            raise ValueError("targets: expected at least one white-box extractor, got none")
        if self.mask not in MASK_MODES:
            raise ValueError(f"mask: expected one of {MASK_MODES}, got {self.mask!r}")
        if self.jitter < 1:
            raise ValueError(f"jitter: expected >= 1, got {self.jitter}")
        if self.jitter_mode not in JITTER_MODES:
            raise ValueError(f"jitter_mode: expected one of {JITTER_MODES}, got {self.jitter_mode!r}")
        eot = (self.eot,) if isinstance(self.eot, str) else tuple(self.eot)
        self.eot = tuple(s for e in eot for s in (EOT_DEFAULT if e == "default" else (e,)))
        if self.eot:
            self.eot = tuple(t.spec for t in eot_pool(self.eot))  # canonical specs; raises for bad ones
        self.smooth = check_smooth(self.smooth)
        self.ssim_weight = check_positive(self.ssim_weight, "ssim_weight", allow_zero=True)
        self.push = check_positive(self.push, "push", allow_zero=True)
        check_int(self.redetect, "redetect")
        self.nme_cap = check_positive(self.nme_cap, "nme_cap", allow_zero=True)
        check_int(self.eot_samples, "eot_samples", minimum=1)

    @classmethod
    def preset(cls, name: str, **overrides) -> "ProtectConfig":
        """The settings of :data:`PRESETS` ``name``, with ``overrides`` (any field) on top."""
        if name not in PRESETS:
            raise ValueError(f"preset: expected one of {', '.join(PRESETS)}, got {name!r}")
        return cls(**{**PRESETS[name], **overrides})

    def to_dict(self) -> dict:
        d = asdict(self)
        d["eps_levels"] = round(self.eps * 255, 4)
        d["alpha_levels"] = round(self.alpha * 255, 4)
        d["targets"] = list(self.targets)
        d["eot"] = list(self.eot)
        return d


@dataclass
class ProtectedImage:
    """Result of :func:`protect_array`.

    Attributes:
        rgb: ``(H, W, 3)`` uint8 protected image.
        faces: per target extractor, the faces it found on the clean image (and were protected).
        loss_start, loss_end: summed per-image loss before the first and after the last step (with
            EOT: the objective's estimate from that iteration's draws).
    """

    rgb: np.ndarray
    faces: dict[str, list[Face]]
    loss_start: float
    loss_end: float
    face_boxes: list[np.ndarray] = field(default_factory=list)


def build_loss(extractor: LandmarkExtractor, rois: Sequence[np.ndarray], config: ProtectConfig, canvas=None):
    """The Landmark Breaker loss for one extractor: heat-map cosine (Eq. 1) for heat-map models,
    landmark displacement for regression models, with ``config``'s box jitter, re-detection, push
    (heat-map models) and NME cap (regression models). ``canvas``: where the samples sit in
    whole images, for re-detection (:class:`~faceshield.attacks.LandmarkDisplacementLoss`)."""
    kw = {"jitter": config.jitter, "jitter_mode": config.jitter_mode, "seed": config.seed, "redetect": config.redetect, "canvas": canvas}
    if extractor.kind is ExtractorKind.HEATMAP:
        return HeatmapCosineLoss(extractor, rois, push=config.push, **kw)
    return LandmarkDisplacementLoss(extractor, rois, cap=config.nme_cap, **kw)


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


def protect_array(
    rgb: np.ndarray,
    config: ProtectConfig | None = None,
    *,
    extractors: dict[str, LandmarkExtractor] | None = None,
    faces: dict[str, list[Face]] | None = None,
) -> ProtectedImage:
    """Protect every face in one image.

    Args:
        rgb: ``(H, W, 3)`` uint8 RGB; never modified.
        config: :class:`ProtectConfig` (defaults: Landmark Breaker on MTCNN).
        extractors: optional pre-built extractors by name (otherwise from the registry).
        faces: optional faces per target already found on ``rgb`` (e.g. by a video tracker); targets
            missing from it are detected as usual.

    Returns:
        :class:`ProtectedImage` whose ``rgb`` differs from the input by at most ``eps`` 8-bit levels.

    Raises:
        NoFaceError: none of the target extractors finds a face.
        ValueError: a target is black-box or unknown.
    """
    config = config or ProtectConfig()
    exts = {n: (extractors or {}).get(n) or create_extractor(n) for n in config.targets}
    for n, e in exts.items():
        if not e.differentiable:
            raise ValueError(f"target {n!r} is a {e.kind.value} extractor and cannot be attacked directly; use it with `evaluate` (transfer)")
    given = faces or {}
    faces = {n: list(given[n]) if n in given else e.detect(rgb) for n, e in exts.items()}
    if not any(faces.values()):
        raise NoFaceError(f"no face found by {', '.join(config.targets)}")
    all_boxes = [f.roi for fs in faces.values() for f in fs] + [f.box for fs in faces.values() for f in fs]
    x0, y0, x1, y1 = _work_region(rgb.shape[:2], all_boxes, align=16 if config.eot else 1)
    offset = np.array([x0, y0, x0, y0], dtype=np.float64)
    sub = to_tensor(rgb[y0:y1, x0:x1])

    canvas = [(rgb, (x0, y0))]  # re-detection runs on the whole image, as the real detector will
    losses = [build_loss(exts[n], [np.array([f.roi - offset for f in fs]).reshape(-1, 4)], config, canvas) for n, fs in faces.items() if fs]
    loss = losses[0] if len(losses) == 1 else SumLoss(losses)
    if config.eot:
        loss = EOTLoss(loss, config.eot, samples=config.eot_samples, seed=config.seed)
    face_boxes = [f.box for fs in faces.values() for f in fs]
    mask = None
    if config.mask == "face":
        m = box_mask(sub.shape[-2:], [b - offset for b in face_boxes], scale=config.mask_scale)
        mask = torch.from_numpy(m)[None, None].float()
    if config.perceptual:
        w = texture_budget(sub)
        mask = w if mask is None else mask * w
    attack = create_attack(config.method, loss, eps=config.eps, alpha=config.alpha, steps=config.steps, decay=config.decay, budget=config.budget, smooth=config.smooth,
                           ssim_weight=config.ssim_weight)
    adv = attack(sub, mask, seed=config.seed)
    with torch.no_grad():
        loss_end = float(loss(adv, sub).sum())
    out = rgb.copy()
    out[y0:y1, x0:x1] = to_uint8(adv)
    loss_start = float(attack.history[0].sum()) if attack.history else loss_end
    log.debug("protected %d face(s) with %r: loss %.4f -> %.4f", len(face_boxes), attack, loss_start, loss_end)
    return ProtectedImage(rgb=out, faces=faces, loss_start=loss_start, loss_end=loss_end, face_boxes=face_boxes)
