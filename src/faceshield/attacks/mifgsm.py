"""MI-FGSM (Dong et al. 2018) as used by Landmark Breaker (Sun et al. 2020, Alg. 1 / Eq. 2)."""
from __future__ import annotations

import torch

from faceshield.attacks.base import Attack, Loss


class MIFGSM(Attack):
    """Momentum iterative FGSM. Distance measure: Linf.

    ``m_{t+1} = decay * m_t + g_t / ||g_t||_1``, ``x_{t+1} = clip(x_t - alpha * sign(m_{t+1}))``, the
    L1 norm taken per sample (so results do not depend on batch size).

    Args:
        loss: per-sample loss to minimise.
        eps: budget (Default: 15/255). alpha: step (Default: 1/255). steps: T (Default: 20).
        decay: momentum decay lambda (Default: 0.5, Landmark Breaker; torchattacks uses 1.0).
        budget: ``"project"`` or ``"paper"`` (Alg. 1's stopping rule).
    """

    name = "mifgsm"
    settings = (*Attack.settings, "decay")

    def __init__(self, loss: Loss, *, decay: float = 0.5, **kwargs) -> None:
        super().__init__(loss, **kwargs)
        if decay < 0:
            raise ValueError(f"decay: expected >= 0, got {decay}")
        self.decay = float(decay)
        self._m: torch.Tensor | None = None

    def reset(self, x: torch.Tensor) -> None:
        self._m = torch.zeros_like(x)

    def direction(self, grad: torch.Tensor) -> torch.Tensor:
        l1 = torch.linalg.vector_norm(grad, ord=1, dim=(1, 2, 3), keepdim=True).clamp_min_(1e-12)
        return self._m.mul_(self.decay).addcdiv_(grad, l1)
