"""Input diversity (DI-FGSM, Xie et al. 2019) on MI-FGSM: Landmark Breaker's LB_trans (Sec. IV-C).

"Input transformation [32]: we randomly resize the input image and then padding around with zero
at each iteration (denoted as LB_trans)." The extractors crop faces at given boxes, so the boxes
must follow the image: the loss is evaluated with ``affine=`` (see :mod:`faceshield.attacks.losses`),
which moves the boxes (and maps regression landmarks back) by the same resize and offset.
"""
from __future__ import annotations

import inspect
import zlib

import torch
import torch.nn.functional as F

from faceshield.attacks.base import Loss, clamp_unit
from faceshield.attacks.losses import Affine
from faceshield.attacks.mifgsm import MIFGSM


def resize_pad(x: torch.Tensor, ratio: float, offset: tuple[int, int]) -> tuple[torch.Tensor, Affine]:
    """Resize ``x`` by ``ratio`` and place it at ``offset`` on a zero canvas of the original size.

    Args:
        x: ``(B, C, H, W)``.
        ratio: scale factor (> 1 crops what leaves the canvas).
        offset: ``(ox, oy)`` integer position of the resized image's top-left corner on the canvas
            (negative when ``ratio > 1``).

    Returns:
        ``(B, C, H, W)`` (differentiable bilinear resize + zero padding) and the :data:`Affine`
        ``(sx, sy, ox, oy)`` that maps pixel coordinates of ``x`` onto the result.
    """
    h, w = x.shape[-2:]
    nh, nw = max(1, round(h * ratio)), max(1, round(w * ratio))
    y = x if (nh, nw) == (h, w) else F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False)
    ox, oy = offset
    y = F.pad(y, (ox, w - nw - ox, oy, h - nh - oy))  # negative padding crops
    return y, (nw / w, nh / h, float(ox), float(oy))


class DIMIFGSM(MIFGSM):
    """MI-FGSM with input diversity (LB_trans). Distance measure: Linf.

    At every iteration, with probability ``prob``, the loss is evaluated on the adversarial image
    resized by a random ratio in ``ratio_range`` and placed at a random integer offset on a zero
    canvas of the same size (cropped when the ratio is > 1); the face boxes move with it. The draw of
    iteration ``t`` is seeded by ``(seed, t)`` and shared by the whole batch.

    Args:
        loss: per-sample loss accepting ``affine=`` (the faceshield losses, :class:`SumLoss`, :class:`EOTLoss` do).
        ratio_range: ``(low, high)`` resize ratios (Default: (0.9, 1.1)).
        prob: probability of transforming at an iteration (Default: 1.0, the paper's "at each
            iteration"; Xie et al. use 0.5).
        decay, eps, alpha, steps, budget, ...: as :class:`MIFGSM`.
    """

    name = "dimifgsm"
    settings = (*MIFGSM.settings, "ratio_range", "prob")

    def __init__(self, loss: Loss, *, ratio_range: tuple[float, float] = (0.9, 1.1), prob: float = 1.0, **kwargs) -> None:
        super().__init__(loss, **kwargs)
        lo, hi = (float(v) for v in ratio_range)
        if not 0 < lo <= hi:
            raise ValueError(f"ratio_range: expected 0 < low <= high, got {ratio_range}")
        if not 0 <= prob <= 1:
            raise ValueError(f"prob: expected a probability in [0, 1], got {prob}")
        params = inspect.signature(loss).parameters if not isinstance(loss, torch.nn.Module) else inspect.signature(loss.forward).parameters
        if "affine" not in params and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            raise TypeError(f"loss: input diversity needs a loss accepting affine= (to move the face boxes); {type(loss).__name__} does not")
        self.ratio_range, self.prob = (lo, hi), float(prob)

    def draw(self, step: int, seed: int, size: tuple[int, int]) -> tuple[float, tuple[int, int]] | None:
        """Ratio and offset of iteration ``step`` (None: no transform this time)."""
        g = torch.Generator().manual_seed(zlib.crc32(f"di:{seed}:{step}".encode()))
        u = torch.rand(4, generator=g, dtype=torch.float64).tolist()
        if u[0] >= self.prob:
            return None
        lo, hi = self.ratio_range
        ratio = lo + (hi - lo) * u[1]
        h, w = size
        nh, nw = max(1, round(h * ratio)), max(1, round(w * ratio))
        # offsets span [min(0, W - nw), max(0, W - nw)]: padding when smaller, cropping when larger
        ox = min(0, w - nw) + int(u[2] * (abs(w - nw) + 1))
        oy = min(0, h - nh) + int(u[3] * (abs(h - nh) + 1))
        return ratio, (ox, oy)

    def objective(self, x_adv: torch.Tensor, x: torch.Tensor, step: int, seed: int) -> torch.Tensor:
        d = self.draw(step, seed, tuple(x.shape[-2:]))
        if d is None:
            return self.loss(x_adv, x)
        x_t, affine = resize_pad(x_adv, *d)
        return self.loss(clamp_unit(x_t), x, affine=affine)
