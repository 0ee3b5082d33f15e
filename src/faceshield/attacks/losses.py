"""Per-sample losses for the attack engine: ``loss(x_adv, x_clean) -> (B,)``, lower = more damage.

* :func:`heatmap_cosine_loss` / :class:`HeatmapCosineLoss` - Landmark Breaker Eq. 1: cosine
  similarity between the heat-maps predicted on ``x_adv`` and on the clean image, averaged over the
  K heat-maps (Eq. 1 sums them; the mean keeps the value in [-1, 1]: 1 for identical heat-maps).
* :class:`LandmarkDisplacementLoss` - for regression extractors: minus the NME between landmarks
  on ``x_adv`` and on the clean image (normalised by the clean inter-ocular distance).
* :func:`heatmap_push` - optional push term of :class:`HeatmapCosineLoss` (``push=lambda``): Eq. 1
  stops rewarding damage once the heat-maps are orthogonal to the clean ones (the cosine is then
  about 0 and its gradient vanishes), wherever the new peaks happen to sit. The push term adds the
  expected distance of each heat-map's soft-max mass from the clean landmark, in NME units (capped),
  so the attack keeps moving the peaks away: in the ``quality`` preset it raised the NME through
  the real pipeline from 0.75 to 1.07 (FAN) and from 0.60 to 0.98 (HRNet) at about the same SSIM
  (docs/results.md, ``benchmarks/results/quality_no_redetect``).
* :class:`SumLoss` - an ensemble over several extractors (weighted sum of their losses).

Faces: each loss takes ``rois``, a list with one ``(F_b, 4)`` array of boxes per sample (``Face.roi``
in pixels); a sample's loss is the sum over its faces. With ``jitter`` the loss is averaged over
copies of each box shifted and scaled, so that a perturbation holds when the real detector places
the box a little differently on the protected image (the perturbation itself moves the detector's
box by a few per cent). ``jitter_mode="fixed"`` uses a fixed pattern of copies (see
:func:`jitter_boxes`); ``"random"`` draws fresh copies at every call (expectation over boxes, seeded
by ``(seed, call, face)``; :meth:`reset` restarts the draws), which costs one extra forward pass on
the clean image per call and, on FAN / HELEN with 60 steps, kept the NME through the real detector
close to the NME at the clean box where the fixed pattern lost up to 70 % of it.

Re-detection (``redetect=k``): the perturbation moves the detector's box too, and the real pipeline
then reads the landmarks from a box the attack never saw. MTCNN is the extreme case: its final box
and points come from whichever of its many proposals ONet scores best, so on 5 HELEN / sample faces
the ``robust`` settings reached NME 1.26 at the clean box but 0.10 through the real cascade (a
diagnostic run; docs/results.md "Re-detection: MTCNN, the hard case" has the benchmarks). Every
``k`` iterations the loss runs the extractor's own detector on the engine's current iterate (8-bit,
before any EOT or input-diversity transform, :meth:`_FaceLoss.observe`) and adds the
boxes it weighs for each face (:meth:`~faceshield.models.base.LandmarkExtractor.candidates`: for
MTCNN every box ONet accepts before the last NMS picks the best-scoring one; the runners-up of one
round are often the pick of the next) to the boxes attacked (up to :attr:`_FaceLoss.MAX_BOXES`; the
face's ``jitter`` copies are shared among them, so the cost per call stays the same). With several
boxes per face, ``LandmarkDisplacementLoss(cap=...)`` stops rewarding a box once its NME reaches the
cap, so the budget goes to the boxes still near their clean points.

Geometry: ``loss(x_t, x_clean, affine=(sx, sy, ox, oy))`` evaluates the loss on an image ``x_t``
whose pixel content was moved by ``u -> (sx * u_x + ox, sy * u_y + oy)`` (continuous pixel
coordinates, pixel ``i`` covering ``[i, i + 1)``), e.g. resized and padded for input diversity
(:mod:`faceshield.attacks.difgsm`): the face boxes are moved the same way, and landmarks predicted on
``x_t`` are mapped back before they are compared with the clean ones.
"""
from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from faceshield.core.check import check_int, check_positive
from faceshield.faces.boxes import box_iou
from faceshield.metrics.nme import nme
from faceshield.models.base import LandmarkExtractor


def heatmap_cosine_loss(h_adv: torch.Tensor, h_clean: torch.Tensor) -> torch.Tensor:
    """Landmark Breaker Eq. 1, mean over heat-maps.

    Args:
        h_adv, h_clean: ``(B, K, h, w)`` heat-maps.

    Returns:
        ``(B,)`` mean over k of ``<h_k, h'_k> / (||h_k|| ||h'_k||)``, in [-1, 1].
    """
    if h_adv.shape != h_clean.shape or h_adv.ndim != 4:
        raise ValueError(f"heatmap_cosine_loss: expected two (B, K, h, w) tensors, got {tuple(h_adv.shape)} and {tuple(h_clean.shape)}")
    return nn.functional.cosine_similarity(h_adv.flatten(2), h_clean.flatten(2), dim=2, eps=1e-12).mean(1)


#: Soft-max inverse temperature of :func:`heat-map push <heatmap_push>` (FAN / HRNet heat-maps peak at
#: about 1, so 50 concentrates the mass on the few highest pixels, as ``soft_argmax`` does).
PUSH_BETA = 50.0
#: Distances beyond this many normaliser units (inter-ocular distances) earn no more push: the
#: landmark is already lost, and the budget is better spent on the others.
PUSH_CAP = 1.5


def heatmap_peaks(h: torch.Tensor) -> torch.Tensor:
    """Argmax of each heat-map: ``(B, K, h, w) -> (B, K, 2)`` ``x, y`` pixel centres (``j + 0.5``)."""
    _, _, _, ww = h.shape
    idx = h.detach().flatten(2).argmax(2)
    return torch.stack([idx % ww, idx // ww], dim=-1).to(h.dtype) + 0.5


def heatmap_push(h_adv: torch.Tensor, peaks: torch.Tensor, normaliser: tuple[int, int], *, beta: float = PUSH_BETA, cap: float = PUSH_CAP) -> torch.Tensor:
    """How far each heat-map's mass lies from the clean landmark, in NME units.

    Args:
        h_adv: ``(B, K, h, w)`` heat-maps.
        peaks: ``(B, K, 2)`` clean landmark positions in heat-map pixels (:func:`heatmap_peaks` of
            the clean heat-maps).
        normaliser: the point indices ``(i, j)`` whose clean distance is the unit (the NME
            normaliser of the extractor's scheme, e.g. the outer eye corners of iBUG-68).
        beta: soft-max inverse temperature; cap: distances are clipped at ``cap`` units.

    Returns:
        ``(B,)`` mean over k of ``sum_p softmax(beta * h_k)_p * min(|p - peak_k| / d, cap)`` (``p``
        the pixel centres, ``d = |peak_i - peak_j|``), in ``[0, cap]``; differentiable w.r.t. ``h_adv``.
    """
    n, k, hh, ww = h_adv.shape
    if peaks.shape != (n, k, 2):
        raise ValueError(f"heatmap_push: expected peaks of shape {(n, k, 2)}, got {tuple(peaks.shape)}")
    i, j = normaliser
    unit = torch.linalg.vector_norm(peaks[:, i] - peaks[:, j], dim=-1).clamp_min(1.0)  # (B,) heat-map pixels
    xs = torch.arange(ww, device=h_adv.device, dtype=h_adv.dtype) + 0.5
    ys = torch.arange(hh, device=h_adv.device, dtype=h_adv.dtype) + 0.5
    dist = torch.hypot(xs[None, None, None, :] - peaks[..., 0, None, None], ys[None, None, :, None] - peaks[..., 1, None, None])
    dist = (dist / unit[:, None, None, None]).clamp(max=cap).flatten(2)
    p = torch.softmax(beta * h_adv.flatten(2), dim=2)
    return (p * dist).sum(2).mean(1)


#: ``(sx, sy, ox, oy)``: pixel content moved by ``u -> (sx * u_x + ox, sy * u_y + oy)``.
Affine = tuple[float, float, float, float]


def move_boxes(boxes: torch.Tensor, affine: Affine) -> torch.Tensor:
    """``(N, 4)`` boxes ``x0, y0, x1, y1`` moved by ``affine`` (see :data:`Affine`)."""
    sx, sy, ox, oy = affine
    return boxes * boxes.new_tensor([sx, sy, sx, sy]) + boxes.new_tensor([ox, oy, ox, oy])


def jitter_boxes(boxes: torch.Tensor, n: int, shift: float = 0.05, scale: float = 0.05) -> torch.Tensor:
    """Deterministic box jitter: ``(F, 4) -> (F * n, 4)``; copy 0 is the box itself, the others are
    shifted by +-``shift`` of the box size along x / y and scaled by ``1 +- scale`` (a fixed pattern,
    so results are reproducible and independent of the batch)."""
    if n <= 1:
        return boxes
    pattern = [(0, 0, 1), (1, 0, 1), (-1, 0, 1), (0, 1, 1), (0, -1, 1), (0, 0, 1 + scale), (0, 0, 1 - scale), (1, 1, 1 - scale), (-1, -1, 1 + scale)]
    p = torch.tensor([pattern[i % len(pattern)] for i in range(n)], dtype=boxes.dtype, device=boxes.device)[None]
    return _moved_copies(boxes, p[..., :2] * shift, p[..., 2:])


def _moved_copies(boxes: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``(F, 4)`` boxes -> ``(F * n, 4)`` copies, copy ``i`` of face ``f`` with its centre moved by
    ``shift[f, i]`` (``(F or 1, n, 2)``, fractions of the box size) and its size times ``scale[f, i]``
    (``(F or 1, n, 1)``)."""
    wh = (boxes[:, 2:] - boxes[:, :2])[:, None]  # (F, 1, 2)
    c = (boxes[:, :2] + boxes[:, 2:])[:, None] / 2 + shift * wh
    half = wh / 2 * scale
    return torch.cat([c - half, c + half], dim=-1).reshape(-1, 4)


JITTER_MODES = ("fixed", "random")


def random_jitter_boxes(boxes: torch.Tensor, n: int, amp: float, seeds: Sequence[int]) -> torch.Tensor:
    """Random box jitter: ``(F, 4) -> (F * n, 4)``; copy 0 is the box itself, the others are shifted
    by up to ``+-amp`` of the box size along x / y and scaled by ``1 +- amp`` (uniform), face ``f``'s
    draws coming from a generator seeded by ``seeds[f]``."""
    if n <= 1:
        return boxes
    u = torch.stack([torch.rand(n, 3, generator=torch.Generator().manual_seed(int(s))) for s in seeds]).to(boxes) * 2 - 1
    u[:, 0] = 0
    return _moved_copies(boxes, u[..., :2] * amp, 1 + amp * u[..., 2:])


class _FaceLoss(nn.Module):
    """Shared plumbing: flatten faces of all samples, jitter, re-detect, and sum per-face losses per sample."""

    def __init__(self, extractor: LandmarkExtractor, rois: Sequence, jitter: int = 1, *, jitter_mode: str = "fixed", jitter_amp: float = 0.05, seed: int = 0,
                 redetect: int = 0, canvas: Sequence[tuple[np.ndarray, tuple[int, int]]] | None = None) -> None:
        super().__init__()
        if not extractor.differentiable:
            raise ValueError(f"{extractor.name} is a {extractor.kind.value} extractor: it cannot be attacked directly (use it for evaluation/transfer)")
        if jitter_mode not in JITTER_MODES:
            raise ValueError(f"jitter_mode: expected one of {JITTER_MODES}, got {jitter_mode!r}")
        if not 0 <= jitter_amp < 0.5:
            raise ValueError(f"jitter_amp: expected a fraction of the box size in [0, 0.5), got {jitter_amp}")
        check_int(redetect, "redetect")
        self.extractor = extractor
        self.jitter = int(jitter)
        self.jitter_mode = jitter_mode
        self.jitter_amp = float(jitter_amp)
        self.seed = int(seed)
        self.redetect = redetect
        if canvas is not None and len(canvas) != len(rois):
            raise ValueError(f"canvas: expected one (image, (x0, y0)) per sample ({len(rois)}), got {len(canvas)}")
        self.canvas = canvas
        self.calls = 0
        self._observed = 0
        self.n_samples = len(rois)
        # per face (all samples flattened): its sample and its boxes, the clean one first
        self._sample: list[int] = []
        self._face_rois: list[list[np.ndarray]] = []
        for b, r in enumerate(rois):
            for box in np.asarray(r, dtype=np.float32).reshape(-1, 4):
                self._sample.append(b)
                self._face_rois.append([box])
        self._ref: torch.Tensor | None = None
        self._ref_key: tuple | None = None
        self._build()

    def _build(self) -> None:
        """(Re)build the box buffers from ``self._face_rois``. A face keeps ``jitter`` copies in all,
        shared among its boxes (each re-detected box gets ``jitter // boxes``, at least 1, the clean
        box the rest), so re-detection costs no more forward passes. Every box weighs
        ``1 / boxes of its face``, split evenly among its copies, so each face counts once in its
        sample's loss and a re-detected box (the one the detector may pick) counts as much as the
        clean one: weighed by copies, one copy in 9 was drowned by the SSIM term and the clean box."""
        n = max(self.jitter, 1)
        # random draws are keyed by the face's index within its sample: they must not depend on the batch
        local = [self._sample[:f].count(self._sample[f]) for f in range(len(self._sample))]
        flat, counts, keys, owner, weight = [], [], [], [], []
        for f, boxes in enumerate(self._face_rois):
            share = max(1, n // len(boxes))
            c = [max(1, n - share * (len(boxes) - 1))] + [share] * (len(boxes) - 1)
            for r, box in enumerate(boxes):
                flat.append(box)
                keys.append(f"{local[f]}" if r == 0 else f"{local[f]}:{r}")
            counts += c
            owner += [self._sample[f]] * sum(c)
            weight += [1.0 / (len(c) * k) for k in c for _ in range(k)]
        base = torch.from_numpy(np.stack(flat))
        self._keys, self._counts = keys, counts
        self.register_buffer("base_boxes", base)
        if self.jitter_mode == "fixed":
            boxes = torch.cat([jitter_boxes(base[i : i + 1], c, shift=self.jitter_amp, scale=self.jitter_amp) for i, c in enumerate(counts)])
        else:
            boxes = base.repeat_interleave(torch.tensor(counts), 0)
        self.register_buffer("boxes", boxes)
        self.register_buffer("owner", torch.tensor(owner, dtype=torch.long))
        self.register_buffer("weight", torch.tensor(weight, dtype=torch.float32))
        self._ref = None

    #: at most this many boxes per face: the clean one and the latest re-detected ones
    MAX_BOXES = 6
    #: a detected box is new when it overlaps every box already attacked by less than this IoU
    NEW_IOU = 0.9

    def detect_new_boxes(self, x_adv: torch.Tensor) -> int:
        """Run the extractor's own detector on each sample of ``x_adv`` ``(B, 3, H, W)`` in [0, 1]
        (rounded to 8 bits, as it would be saved) and add the boxes it now weighs for each face
        (:meth:`~faceshield.models.base.LandmarkExtractor.candidates` whose centre lies in the
        face's clean box, best first: MTCNN's pick can move by a third of the box, IoU 0.26 on the
        sample, and its runners-up keep their clean points) to the face's attacked boxes when they
        are new. A face keeps its clean box and the latest ``MAX_BOXES - 1``. With ``canvas``, each
        sample is pasted into its whole image first, since a detector sees the whole photo (MTCNN's
        pyramid grid, and so its proposals, shift with the crop). Returns the number of boxes added."""
        added = 0
        q = (x_adv.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        found = [self._candidate_rois(q[b], b) for b in range(q.shape[0])]
        changed = False
        for f, boxes in enumerate(self._face_rois):
            clean, old, latest = boxes[0], boxes[1:], []  # latest: this round's, worst first (the best is kept longest)
            for match in reversed([r for r in found[self._sample[f]] if self.extractor.same_face(r, clean)][: self.MAX_BOXES - 1]):
                if any(box_iou(match, b) >= self.NEW_IOU for b in [clean, *latest]):
                    continue
                known = next((b for b in old if box_iou(match, b) >= self.NEW_IOU), None)
                if known is None:
                    known, added = np.asarray(match, dtype=np.float32), added + 1
                old = [b for b in old if b is not known]
                latest.append(known)
            kept = [clean, *(old + latest)[-(self.MAX_BOXES - 1):]]
            if len(kept) != len(boxes) or any(a is not b for a, b in zip(kept, boxes)):
                self._face_rois[f], changed = kept, True
        if changed:
            self._build()
        return added

    def _candidate_rois(self, image: np.ndarray, b: int) -> list[np.ndarray]:
        """The ``roi`` of each of the extractor's candidates on sample ``b``'s 8-bit ``image``
        ``(h, w, 3)``, best first: on the image alone, or pasted into ``canvas[b]`` (rois moved back
        into the sample's pixels)."""
        if self.canvas is None:
            return [c.roi for c in self.extractor.candidates(np.ascontiguousarray(image))]
        full, (x0, y0) = self.canvas[b]
        full = full.copy()
        full[y0 : y0 + image.shape[0], x0 : x0 + image.shape[1]] = image
        return [c.roi - np.array([x0, y0, x0, y0]) for c in self.extractor.candidates(full)]

    def observe(self, x_adv: torch.Tensor) -> None:
        """The attack engine's current iterate ``(B, 3, H, W)`` in [0, 1], untransformed, once per
        iteration: every ``redetect``-th one goes to :meth:`detect_new_boxes`."""
        self._observed += 1
        if self.redetect and self._observed % self.redetect == 0:
            self.detect_new_boxes(x_adv)

    def reset(self) -> None:
        """Restart the random box draws and forget re-detected boxes (the attack engine calls this at
        the start of a run)."""
        self.calls = 0
        self._observed = 0
        if any(len(b) > 1 for b in self._face_rois):
            self._face_rois = [b[:1] for b in self._face_rois]
            self._build()

    def draw_boxes(self) -> torch.Tensor:
        """The boxes of this call, ``jitter`` per face (the fixed pattern, or a new random draw)."""
        if self.jitter_mode == "fixed" or self.jitter <= 1:
            return self.boxes
        t, self.calls = self.calls, self.calls + 1
        return torch.cat([random_jitter_boxes(self.base_boxes[i : i + 1], c, self.jitter_amp, [zlib.crc32(f"jitter:{self.seed}:{t}:{k}".encode())])
                          for i, (c, k) in enumerate(zip(self._counts, self._keys))])

    def reference(self, x_clean: torch.Tensor) -> torch.Tensor:
        key = (x_clean.data_ptr(), tuple(x_clean.shape), x_clean._version)
        if self._ref is None or self._ref_key != key:
            with torch.no_grad():
                self._ref = self.predict(x_clean)
            self._ref_key = key
        return self._ref

    def predict(self, x: torch.Tensor, boxes: torch.Tensor | None = None) -> torch.Tensor:
        """The extractor's differentiable output on ``x`` for ``boxes`` (default: ``self.boxes``)."""
        raise NotImplementedError

    def unmap(self, pred: torch.Tensor, affine: Affine) -> torch.Tensor:
        """Map a prediction made on a moved image back to the original frame (default: unchanged)."""
        return pred

    def per_face(self, pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x_adv: torch.Tensor, x_clean: torch.Tensor, *, affine: Affine | None = None) -> torch.Tensor:
        """Per-sample loss ``(B,)`` of ``x_adv`` ``(B, 3, H, W)`` in [0, 1] against the clean ``x_clean``
        (same shape); ``affine``: see the module docstring."""
        if x_adv.shape[0] != self.n_samples:
            raise ValueError(f"expected a batch of {self.n_samples} images (one rois entry each), got {x_adv.shape[0]}")
        boxes = self.draw_boxes()
        if boxes is self.boxes:
            ref = self.reference(x_clean)
        else:
            with torch.no_grad():
                ref = self.predict(x_clean, boxes)
        if affine is None:
            pred = self.predict(x_adv, boxes)
        else:
            pred = self.unmap(self.predict(x_adv, move_boxes(boxes, affine)), affine)
        per_face = self.per_face(pred, ref)
        per_face = per_face * self.weight.to(per_face.dtype)
        out = torch.zeros(self.n_samples, dtype=per_face.dtype, device=per_face.device)
        return out.index_add(0, self.owner, per_face)


class LandmarkDisplacementLoss(_FaceLoss):
    """``-NME(landmarks(x_adv), landmarks(x_clean))`` summed over a sample's faces (regression extractors).

    Args:
        extractor: a differentiable :class:`LandmarkExtractor`.
        rois: per sample, ``(F_b, 4)`` boxes (``Face.roi``) in pixels.
        jitter: number of box-jitter copies per face (1 = no jitter).
        jitter_mode: ``"fixed"`` pattern or ``"random"`` draws at every call (module docstring).
        jitter_amp: jitter shift and scale amplitude, a fraction of the box size (Default: 0.05).
        seed: seed of the random draws.
        redetect: every ``redetect`` iterations of the attack engine (:meth:`observe`), run the
            extractor's own detector on the current iterate, untransformed, and attack the boxes it
            now weighs for each face too (:meth:`detect_new_boxes`; 0 = off). Module docstring.
        canvas: with ``redetect``, when the samples are regions of larger images: per sample the
            whole ``(H, W, 3)`` uint8 image and the region's top-left ``(x0, y0)``; the detector
            then runs on the whole image with the iterate pasted in.
        cap: count each box copy's NME up to ``cap`` normaliser units (0 = no cap, the plain
            displacement). With several boxes per face (``redetect``, ``jitter``) the uncapped sum
            lets one box that is already far off soak up the budget while a box the detector may
            pick instead keeps its clean points; capped, the gradient goes to the boxes below it.
        hide: weight of the face-hiding term (0 = off; extractors with ``info.face_score``): adds
            ``hide * relu(logit - threshold + HIDE_MARGIN)`` per box copy, the detector's face logit
            (:meth:`~faceshield.models.base.LandmarkExtractor.landmarks_and_scores`) pushed below the
            logit at which its pipeline drops the face, with a margin: a face the forger's detector
            does not find is as protected as one it misplaces, and the detector stage is what the
            CNN face detectors have in common (a route to transfer).
    """

    #: how far below the detector's threshold the face logit is pushed (logit units)
    HIDE_MARGIN = 2.0

    def __init__(self, extractor: LandmarkExtractor, rois: Sequence, jitter: int = 1, *, cap: float = 0.0, hide: float = 0.0, **kwargs) -> None:
        self.hide = check_positive(hide, "hide", allow_zero=True)
        if self.hide and not extractor.info.face_score:
            raise ValueError(f"hide: {extractor.name} gives no differentiable face score")
        super().__init__(extractor, rois, jitter, **kwargs)
        self.cap = check_positive(cap, "cap", allow_zero=True)

    def predict(self, x: torch.Tensor, boxes: torch.Tensor | None = None):
        """``(N, K, 2)`` landmarks, or with ``hide`` ``(landmarks, (N,) face logits)``."""
        boxes = self.boxes if boxes is None else boxes
        if self.hide:
            return self.extractor.landmarks_and_scores(x, boxes, self.owner)
        return self.extractor.landmarks(x, boxes, self.owner)

    def unmap(self, pred, affine: Affine):
        if isinstance(pred, tuple):
            return self.unmap(pred[0], affine), pred[1]
        sx, sy, ox, oy = affine
        return (pred - pred.new_tensor([ox, oy])) / pred.new_tensor([sx, sy])

    def per_face(self, pred, ref):
        logit = None
        if isinstance(pred, tuple):
            (pred, logit), ref = pred, ref[0]
        d = nme(pred, ref, self.extractor.scheme)
        out = -(d.clamp(max=self.cap) if self.cap else d)
        if logit is not None:
            out = out + self.hide * torch.relu(logit - self.extractor.face_threshold + self.HIDE_MARGIN)
        return out


class HeatmapCosineLoss(_FaceLoss):
    """Landmark Breaker Eq. 1 on a heat-map extractor (see :func:`heatmap_cosine_loss`), minus
    ``push`` x :func:`heatmap_push` (0 = Eq. 1 alone, the paper's loss).

    Args:
        extractor, rois, jitter, jitter_mode, jitter_amp, seed, redetect, canvas: as :class:`LandmarkDisplacementLoss`.
        push: weight of the push term (``>= 0``; the ``quality`` preset uses 0.5).
    """

    def __init__(self, extractor: LandmarkExtractor, rois: Sequence, jitter: int = 1, *, push: float = 0.0, **kwargs) -> None:
        super().__init__(extractor, rois, jitter, **kwargs)
        if not push >= 0:
            raise ValueError(f"push: expected a weight >= 0, got {push}")
        self.push = float(push)

    def predict(self, x: torch.Tensor, boxes: torch.Tensor | None = None) -> torch.Tensor:
        # heat-maps live in the frame of their crop, which moves with the boxes: nothing to unmap
        return self.extractor.heatmaps(x, self.boxes if boxes is None else boxes, self.owner)

    def per_face(self, pred, ref):
        loss = heatmap_cosine_loss(pred, ref)
        if self.push:
            loss = loss - self.push * heatmap_push(pred, heatmap_peaks(ref), self.extractor.scheme.normaliser)
        return loss


class FeatureDistortionLoss(_FaceLoss):
    """``-||F(x_adv) - F(x_clean)||^2 / ||F(x_clean)||^2`` per box copy: the relative distortion of
    an extractor's intermediate features around the face
    (:meth:`~faceshield.models.base.LandmarkExtractor.features`, ``info.features`` extractors).
    Early convolutional features are what CNN face detectors trained on the same kind of data have
    in common, so distorting them is the transfer literature's route to models never seen (feature
    -level attacks); measured in docs/retinaface.md. Arguments as :class:`LandmarkDisplacementLoss`."""

    def __init__(self, extractor: LandmarkExtractor, rois: Sequence, jitter: int = 1, **kwargs) -> None:
        if not extractor.info.features:
            raise ValueError(f"{extractor.name} gives no differentiable features")
        super().__init__(extractor, rois, jitter, **kwargs)

    def predict(self, x: torch.Tensor, boxes: torch.Tensor | None = None) -> torch.Tensor:
        return self.extractor.features(x, self.boxes if boxes is None else boxes, self.owner)

    def per_face(self, pred, ref):
        return -((pred - ref) ** 2).flatten(1).sum(1) / (ref**2).flatten(1).sum(1).clamp(min=1e-12)


class SumLoss(nn.Module):
    """Ensemble: ``sum_i w_i * loss_i(x_adv, x_clean)``; :meth:`reset` and :meth:`observe` reach every member."""

    def __init__(self, losses: Sequence[nn.Module], weights: Sequence[float] | None = None) -> None:
        super().__init__()
        if not losses:
            raise ValueError("SumLoss: expected at least one loss, got none")
        self.losses = nn.ModuleList(losses)
        self.weights = list(weights) if weights is not None else [1.0] * len(losses)
        if len(self.weights) != len(self.losses):
            raise ValueError(f"SumLoss: expected {len(self.losses)} weights, got {len(self.weights)}")

    def reset(self) -> None:
        for f in self.losses:
            if callable(getattr(f, "reset", None)):
                f.reset()

    def observe(self, x_adv: torch.Tensor) -> None:
        for f in self.losses:
            if callable(getattr(f, "observe", None)):
                f.observe(x_adv)

    def forward(self, x_adv: torch.Tensor, x_clean: torch.Tensor, **kwargs) -> torch.Tensor:
        return sum(w * f(x_adv, x_clean, **kwargs) for w, f in zip(self.weights, self.losses))
