"""PGD with random start (Madry et al. 2018). Distance measure: Linf."""
from __future__ import annotations

import torch

from faceshield.attacks.base import Attack


class PGD(Attack):
    """I-FGSM from a uniform random start in the eps-ball, always projected.

    Defaults: eps=15/255, alpha=1/255, steps=20. Pass ``generator`` to the call for reproducibility.
    """

    name = "pgd"

    def __init__(self, loss, **kwargs) -> None:
        kwargs.setdefault("budget", "project")
        super().__init__(loss, **kwargs)

    def init_delta(self, x, mask, generator):
        return torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device).mul_(2 * self.eps).sub_(self.eps)

    def direction(self, grad: torch.Tensor) -> torch.Tensor:
        return grad
