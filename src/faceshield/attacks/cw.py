"""Carlini-Wagner-style attack (Carlini & Wagner 2017, as seed 004 / MagDR and Ruiz et al. use it
against manipulators), adapted to faceshield's L_inf budget.

C&W minimise ``||delta||_2^2 + c * f(x + delta)`` with Adam on a tanh change of variables. Here the
perturbation is ``delta = eps * mask * tanh(w)`` (bounded by the budget by construction, so C&W
results sit on the same L_inf bound as every other protection), the distance is normalised to the
budget, ``mean((delta / eps)^2)`` in [0, 1], and ``f`` is the engine's per-sample loss (lower =
more damage). Adam's learning rate ``lr`` acts on ``w``; ``steps`` iterations. Distance measure:
L2 inside an L_inf box.
"""
from __future__ import annotations

import torch

from faceshield.attacks.base import Attack, clamp_unit, quantize_to_budget
from faceshield.attacks.budget import delta_e_penalty, limit_chroma, ssim_penalty
from faceshield.core.check import check_positive


class CW(Attack):
    """C&W L2 objective with Adam, inside the eps-box.

    Args:
        loss, eps, steps, quantize, chroma, ssim_weight, delta_e_weight: as :class:`Attack`.
        c: weight of the loss against the distance (Default: 1000: Ruiz et al.'s distortion, an
            MSE on [-1, 1], is about 1e-3 for the first steps, and with c = 10 the distance term
            held the perturbation under one 8-bit level on the sample).
        lr: Adam learning rate on the tanh-logit ``w`` (Default: 0.1).

    The start is a seeded uniform point of half the box (``tanh(w) ~ U(-0.5, 0.5)``).
    """

    name = "cw"
    settings = ("eps", "steps", "chroma", "ssim_weight", "delta_e_weight", "c", "lr")

    def __init__(self, loss, *, c: float = 1000.0, lr: float = 0.1, **kwargs) -> None:
        for k in ("budget", "smooth", "alpha", "start"):
            if k in kwargs:
                raise TypeError(f"{k}: the C&W attack optimises with Adam inside the eps-box; it takes no {k}")
        super().__init__(loss, **kwargs)
        self.c = check_positive(c, "c")
        self.lr = check_positive(lr, "lr")

    def _run(self, x: torch.Tensor, mask: torch.Tensor | None, seed: int) -> torch.Tensor:
        if mask is not None:
            if mask.ndim != 4 or mask.shape[1] != 1 or mask.shape[-2:] != x.shape[-2:] or mask.shape[0] not in (1, x.shape[0]):
                raise ValueError(f"mask: expected shape (B or 1, 1, {x.shape[2]}, {x.shape[3]}), got {tuple(mask.shape)}")
            mask = mask.to(x.dtype)
        eps = self.eps if mask is None else self.eps * mask
        self.history = []
        if callable(getattr(self.loss, "reset", None)):
            self.loss.reset()
        observe = getattr(self.loss, "observe", None)
        # a random start inside half the box: at the clean image the disruption and landmark losses
        # have no gradient, and the distance term would hold w at 0
        from faceshield.attacks.base import per_sample_uniform

        w = torch.atanh(per_sample_uniform(x, seed).sub_(0.5)).requires_grad_(True)
        opt = torch.optim.Adam([w], lr=self.lr)
        lo, hi = x.neg().clamp(min=-eps), x.neg().add(1).clamp(max=eps)

        def image(w_: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            d = limit_chroma(eps * torch.tanh(w_), self.chroma)
            d = d + (torch.maximum(torch.minimum(d, hi), lo) - d).detach()  # stays in [0, 1] and the box
            return clamp_unit(x + d), d  # x + (-x) can round a hair below 0

        for step in range(self.steps):
            with torch.enable_grad():
                x_adv, d = image(w)
                if callable(observe):
                    observe(x_adv.detach())
                loss = self.loss(x_adv, x)
                dist = (d / self.eps).pow(2).flatten(1).mean(1)
                total = self.c * loss + dist
                if self.ssim_weight:
                    total = total + self.ssim_weight * ssim_penalty(x_adv, x, mask)
                if self.delta_e_weight:
                    total = total + self.delta_e_weight * delta_e_penalty(x_adv, x, mask)
                opt.zero_grad(set_to_none=True)
                total.sum().backward()
            opt.step()
            self.history.append(loss.detach())
            if self.on_step is not None:
                self.on_step(step + 1, self.steps)
        with torch.no_grad():
            out = image(w)[0].clamp(0, 1)
        return quantize_to_budget(out, x, eps) if self.quantize else out

    def __repr__(self) -> str:
        return f"CW(eps={self.eps * 255:g}/255, steps={self.steps}, c={self.c:g}, lr={self.lr:g})"
