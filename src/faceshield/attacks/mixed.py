"""Attacking mixture: Landmark Breaker's LB_mix (Sec. IV-C), alternating Base2 and LB steps."""
from __future__ import annotations

import torch

from faceshield.attacks.mifgsm import MIFGSM


class MixedFGSM(MIFGSM):
    """Alternate I-FGSM (Base2) and MI-FGSM (LB) steps. Distance measure: Linf.

    "Attacking mixture: we alternatively use Base2 and Landmark Breaker to increase the diversity
    in optimization (denoted as LB_mix)." Iterations 0, 2, 4, ... step along ``sign(grad)`` (Base2);
    iterations 1, 3, 5, ... along ``sign(m)`` with LB's momentum ``m <- decay * m + g / ||g||_1``,
    which accumulates the gradients of the LB iterations only.

    Args: as :class:`MIFGSM` (decay Default: 0.5).
    """

    name = "mixed"

    def reset(self, x: torch.Tensor) -> None:
        super().reset(x)
        self._t = 0

    def direction(self, grad: torch.Tensor) -> torch.Tensor:
        t, self._t = self._t, self._t + 1
        return grad if t % 2 == 0 else super().direction(grad)
