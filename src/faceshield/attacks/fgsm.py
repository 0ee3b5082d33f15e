"""FGSM (Goodfellow et al. 2015), Landmark Breaker's *Base1*: one sign step of size eps."""
from __future__ import annotations

import torch

from faceshield.attacks.base import Attack, Loss


class FGSM(Attack):
    """Single step ``x_adv = clip(x - eps * sign(grad L(x, x)))``. Distance measure: Linf.

    Args:
        loss: per-sample loss to minimise. eps: budget (Default: 15/255). ``alpha`` and ``steps``
            are fixed to ``eps`` and 1 (there is no ``budget`` rule: the one step is projected).
        smooth, ssim_weight, chroma, delta_e_weight: as :class:`~faceshield.attacks.base.Attack`
            (the step is blurred and its colour limited; the penalties enter the one gradient).
    """

    name = "fgsm"
    settings = ("eps", "smooth", "ssim_weight", "chroma", "delta_e_weight")

    def __init__(self, loss: Loss, *, eps: float = 15 / 255, quantize: bool = True, start: str = "dither", batch_invariant: bool = True,
                 smooth: float = 0.0, ssim_weight: float = 0.0, chroma: float = 1.0, delta_e_weight: float = 0.0) -> None:
        super().__init__(loss, eps=eps, alpha=eps, steps=1, budget="project", quantize=quantize, start=start, batch_invariant=batch_invariant,
                         smooth=smooth, ssim_weight=ssim_weight, chroma=chroma, delta_e_weight=delta_e_weight)

    def direction(self, grad: torch.Tensor) -> torch.Tensor:
        return grad
