"""I-FGSM / BIM (Kurakin et al. 2017), Landmark Breaker's *Base2*: repeated sign steps of size alpha."""
from __future__ import annotations

import torch

from faceshield.attacks.base import Attack


class IFGSM(Attack):
    """``x_{t+1} = clip(x_t - alpha * sign(grad L(x_t, x)))``. Distance measure: Linf.
    Defaults: eps=15/255, alpha=1/255, steps=20."""

    name = "ifgsm"

    def direction(self, grad: torch.Tensor) -> torch.Tensor:
        return grad
