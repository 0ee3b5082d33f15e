"""Disruption losses for face manipulators (Ruiz et al., "Disrupting Deepfakes", 2020), in the
engine's convention ``loss(x_adv, x_clean) -> (B,)``, lower = more damage.

* untargeted (Ruiz Eq. 2): ``-MSE(G(crop(x_adv), c), G(crop(x_clean), c))``, the distortion of the
  edit against the clean edit, on the manipulator's output crop in [-1, 1];
* targeted (Ruiz Eq. 1): ``MSE(G(crop(x_adv), c), r)`` towards a chosen image ``r`` (e.g. a grey
  crop: the editor outputs grey);
* class-transferable (Ruiz Sec. 3.2): ``domain_mode="all"`` sums the distortion over every
  condition each step; ``"random"`` draws one condition per face per step (seeded);
* with ``detectors`` (DeepFake detectors), ``+ detector_weight * logit_real(D(G(...)))``: the edit of
  the protected face should also be caught as a fake.

``crop`` is :func:`~faceshield.faces.crop.warp_crops` of each face's CelebA alignment, so the loss
sees what the forger's pipeline feeds the editor. Faces: one ``(F_b, 2, 3)`` array of crop matrices
per sample; a sample's loss is the sum over its faces of the mean over the conditions used.

Geometry: ``affine=(sx, sy, ox, oy)`` (input diversity, :mod:`faceshield.attacks.difgsm`): the image
content was moved by ``u -> (sx u_x + ox, sy u_y + oy)``; the crop matrices are moved with it.
"""
from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from faceshield.faces.crop import warp_crops

DOMAIN_MODES = ("all", "random")


def moved_matrices(m: torch.Tensor, affine) -> torch.Tensor:
    """``(N, 2, 3)`` image->crop maps of an image whose content moved by ``affine`` (``M A^-1``)."""
    sx, sy, ox, oy = affine
    lin = m[:, :, :2] / m.new_tensor([sx, sy])
    t = m[:, :, 2] - (lin @ m.new_tensor([ox, oy]))
    return torch.cat([lin, t[:, :, None]], 2)


class DisruptionLoss(nn.Module):
    """Ruiz et al.'s distortion of a manipulator's edits.

    Args:
        manipulator: a :class:`~faceshield.models.Manipulator` (frozen).
        matrices: per sample, ``(F_b, 2, 3)`` crop maps (image pixels of the attacked tensor ->
            crop pixels).
        conditions: per sample, ``(F_b, D, c_dim)``: the D conditions each face is edited with.
        domain_mode: ``"all"`` (every condition each call) or ``"random"`` (one per face per call).
        target: per sample ``(F_b, D, 3, S, S)`` in [-1, 1], or one ``(3, S, S)`` image for all:
            targeted disruption (minimise the MSE to it) instead of the untargeted distortion.
        detectors: DeepFake detectors (:class:`~faceshield.models.DeepfakeDetector`) whose
            real-logit on the edits is added with ``detector_weight``.
        seed: seed of the random condition draws.
    """

    def __init__(self, manipulator: nn.Module, matrices: Sequence[np.ndarray], conditions: Sequence[np.ndarray | torch.Tensor], *,
                 domain_mode: str = "all", target: torch.Tensor | Sequence | None = None, detectors: Sequence[nn.Module] = (),
                 detector_weight: float = 1.0, seed: int = 0) -> None:
        super().__init__()
        if domain_mode not in DOMAIN_MODES:
            raise ValueError(f"domain_mode: expected one of {DOMAIN_MODES}, got {domain_mode!r}")
        if len(matrices) != len(conditions):
            raise ValueError(f"matrices and conditions: expected one entry per sample each, got {len(matrices)} and {len(conditions)}")
        self.g = manipulator
        self.n_samples = len(matrices)
        owner, mats, conds = [], [], []
        for b, (m, c) in enumerate(zip(matrices, conditions)):
            m = torch.as_tensor(np.asarray(m, dtype=np.float32)).reshape(-1, 2, 3)
            c = torch.as_tensor(c, dtype=torch.float32)
            c = c.reshape(m.shape[0], -1, c.shape[-1])
            owner += [b] * m.shape[0]
            mats.append(m), conds.append(c)
        self.register_buffer("owner", torch.tensor(owner, dtype=torch.long))
        self.register_buffer("matrices", torch.cat(mats))
        self.register_buffer("conditions", torch.cat(conds))  # (N, D, c_dim)
        self.domain_mode = domain_mode
        self.seed = int(seed)
        self.calls = 0
        self.detectors = list(detectors)
        self.detector_weight = float(detector_weight)
        if target is not None:
            t = torch.as_tensor(target, dtype=torch.float32) if not isinstance(target, (list, tuple)) else torch.cat([torch.as_tensor(v, dtype=torch.float32) for v in target])
            if t.ndim == 3:
                t = t.expand(*self.conditions.shape[:2], *t.shape)
            target = t
        self.target = target
        self._ref: torch.Tensor | None = None
        self._ref_key: tuple | None = None

    @property
    def n_faces(self) -> int:
        return self.matrices.shape[0]

    def reset(self) -> None:
        self.calls = 0

    def _pick(self) -> torch.Tensor:
        """``(N, d)`` indices of the conditions used this call."""
        n, d = self.conditions.shape[:2]
        if self.domain_mode == "all" or d == 1:
            return torch.arange(d).expand(n, d)
        t, self.calls = self.calls, self.calls + 1
        return torch.tensor([[zlib.crc32(f"domain:{self.seed}:{t}:{f}".encode()) % d] for f in range(n)])

    def edits(self, x: torch.Tensor, pick: torch.Tensor, matrices: torch.Tensor | None = None) -> torch.Tensor:
        """``(N, d, 3, S, S)`` edits in [-1, 1] of the faces of ``x`` ``(B, 3, H, W)`` in [0, 1]."""
        m = self.matrices if matrices is None else matrices
        crops = warp_crops(x, m.to(x.dtype), self.g.size, self.owner) * 2 - 1  # (N, 3, S, S)
        n, d = pick.shape
        c = torch.gather(self.conditions, 1, pick[:, :, None].expand(n, d, self.conditions.shape[-1]))
        out = self.g(crops.repeat_interleave(d, 0), c.reshape(n * d, -1).to(x.dtype))
        return out.reshape(n, d, *out.shape[1:])

    def reference(self, x_clean: torch.Tensor) -> torch.Tensor:
        """Clean edits for every condition, ``(N, D, 3, S, S)`` (cached per clean tensor)."""
        key = (x_clean.data_ptr(), tuple(x_clean.shape), x_clean._version)
        if self._ref is None or self._ref_key != key:
            with torch.no_grad():
                self._ref = self.edits(x_clean, torch.arange(self.conditions.shape[1]).expand(self.n_faces, -1))
            self._ref_key = key
        return self._ref

    def forward(self, x_adv: torch.Tensor, x_clean: torch.Tensor, *, affine=None) -> torch.Tensor:
        if x_adv.shape[0] != self.n_samples:
            raise ValueError(f"expected a batch of {self.n_samples} images (one matrices entry each), got {x_adv.shape[0]}")
        pick = self._pick()
        m = None if affine is None else moved_matrices(self.matrices, affine)
        out = self.edits(x_adv, pick, m)
        n, d = pick.shape
        idx = pick[:, :, None, None, None].expand(n, d, *out.shape[2:])
        if self.target is not None:
            per = (out - torch.gather(self.target.to(out), 1, idx)).pow(2).flatten(2).mean(2)  # (N, d)
        else:
            per = -(out - torch.gather(self.reference(x_clean), 1, idx)).pow(2).flatten(2).mean(2)
        per_face = per.mean(1)
        if self.detectors:
            flat = (out.flatten(0, 1) + 1) / 2
            per_face = per_face + self.detector_weight * sum(det(flat).reshape(n, d).mean(1) for det in self.detectors)
        res = torch.zeros(self.n_samples, dtype=per_face.dtype, device=per_face.device)
        return res.index_add(0, self.owner, per_face)
