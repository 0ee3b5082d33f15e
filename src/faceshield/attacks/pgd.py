"""PGD with random start (Madry et al. 2018). Distance measure: Linf."""
from __future__ import annotations

import torch

from faceshield.attacks.base import Attack


class PGD(Attack):
    """I-FGSM from a uniform random start in the eps-ball, always projected.

    Defaults: eps=15/255, alpha=1/255, steps=20. The call's ``seed`` fixes the random start.
    """

    name = "pgd"
    settings = ("eps", "alpha", "steps", "smooth", "ssim_weight", "chroma", "delta_e_weight", "patience")

    def __init__(self, loss, **kwargs) -> None:
        for k in ("budget", "start"):
            if k in kwargs:
                raise TypeError(f"{k}: PGD always starts at a random point of the eps-ball and projects every step; it takes no {k}")
        super().__init__(loss, budget="project", start="random", **kwargs)

    def direction(self, grad: torch.Tensor) -> torch.Tensor:
        return grad
