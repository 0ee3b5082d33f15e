"""The attack engine: L_inf-bounded sign-gradient optimisers that *minimise* any per-sample loss.

Losses follow Landmark Breaker's sign convention (Eq. 1 is a similarity to be minimised):
``loss(x_adv, x_clean) -> (B,)``, lower = more damage. Optimisers and losses are independent.

Budget rules (``budget=``):

* ``"project"`` (default, the usual one): after every step the perturbation is clipped to the
  eps-ball and the image to [0, 1]; all ``steps`` iterations run.
* ``"paper"``: Landmark Breaker Alg. 1 line 2, ``while t <= T and ||I_{t+1} - I||_inf <= eps``:
  no projection; a sample stops (keeping its last in-budget iterate) as soon as its next step
  would leave the eps-ball. With eps=15, alpha=1 (8-bit levels) this ends after at most
  ``min(T, ~eps/alpha + a few)`` steps, so fewer updates are taken than with projection.

Every sample is optimised independently (per-sample loss, per-sample normalisation, per-sample
stopping), so results do not depend on batch size.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch

from faceshield.core.check import check_image_tensor, check_positive

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
BUDGET_RULES = ("project", "paper")


def quantize_to_budget(x_adv: torch.Tensor, x_clean: torch.Tensor, eps: float) -> torch.Tensor:
    """Round ``x_adv`` to the 8-bit grid and keep it within ``eps`` of the 8-bit clean image.

    Args:
        x_adv, x_clean: ``(B, 3, H, W)`` in [0, 1].
        eps: budget in [0, 1] units; the 8-bit budget is ``floor(eps * 255)`` levels.

    Returns:
        ``(B, 3, H, W)`` on the grid ``k / 255`` with ``|255 * (out - round(255 * x_clean))| <= floor(255 * eps)``.
    """
    levels = math.floor(eps * 255 + 1e-6)
    q_clean = torch.round(x_clean * 255)
    d = (torch.round(x_adv * 255) - q_clean).clamp_(-levels, levels)
    return (q_clean + d).clamp_(0, 255) / 255


class Attack:
    """Base class of the optimisers. Subclasses implement :meth:`direction` (and may override
    :meth:`init_delta` / :meth:`reset`).

    Args:
        loss: ``loss(x_adv, x_clean) -> (B,)`` to minimise.
        eps: L_inf budget in [0, 1] units (Default: 15/255, Landmark Breaker).
        alpha: step size in [0, 1] units (Default: 1/255).
        steps: maximum number of iterations T (Default: 20).
        budget: ``"project"`` or ``"paper"`` (see module docstring).
        quantize: round the result to 8 bits within the budget (what a saved PNG holds).
    """

    name = "attack"

    def __init__(
        self,
        loss: Loss,
        *,
        eps: float = 15 / 255,
        alpha: float = 1 / 255,
        steps: int = 20,
        budget: str = "project",
        quantize: bool = True,
    ) -> None:
        if not callable(loss):
            raise TypeError(f"loss: expected a callable loss(x_adv, x_clean) -> (B,), got {type(loss).__name__}")
        self.loss = loss
        self.eps = check_positive(eps, "eps")
        self.alpha = check_positive(alpha, "alpha")
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps: expected an integer >= 1, got {steps!r}")
        self.steps = steps
        if budget not in BUDGET_RULES:
            raise ValueError(f"budget: expected one of {BUDGET_RULES}, got {budget!r}")
        self.budget = budget
        self.quantize = quantize
        self.history: list[torch.Tensor] = []  # per-step mean loss of the last run, (B,) each

    # -- to override ---------------------------------------------------------------------------
    def reset(self, x: torch.Tensor) -> None:
        """Clear per-run state (e.g. momentum) before optimising ``x``."""

    def init_delta(self, x: torch.Tensor, mask: torch.Tensor | None, generator: torch.Generator | None) -> torch.Tensor:
        """Initial perturbation ``(B, 3, H, W)`` (zero: start from the clean image)."""
        return torch.zeros_like(x)

    def direction(self, grad: torch.Tensor) -> torch.Tensor:
        """Map the loss gradient ``(B, 3, H, W)`` to an ascent direction whose sign is stepped *against*."""
        raise NotImplementedError

    # -- the loop ------------------------------------------------------------------------------
    @torch.no_grad()
    def __call__(self, x: torch.Tensor, mask: torch.Tensor | None = None, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Perturb ``x``.

        Args:
            x: ``(B, 3, H, W)`` RGB in [0, 1] (the clean images).
            mask: optional ``(B or 1, 1, H, W)`` in [0, 1]; pixels where it is 0 are never changed.
            generator: random generator for random starts (seeded runs are reproducible).

        Returns:
            ``(B, 3, H, W)`` adversarial images in [0, 1] (8-bit grid if ``quantize``).
        """
        x = check_image_tensor(x).detach()
        if mask is not None:
            if mask.ndim != 4 or mask.shape[1] != 1 or mask.shape[-2:] != x.shape[-2:] or mask.shape[0] not in (1, x.shape[0]):
                raise ValueError(f"mask: expected shape (B or 1, 1, {x.shape[2]}, {x.shape[3]}), got {tuple(mask.shape)}")
            mask = mask.to(x.dtype)
        self.reset(x)
        self.history = []
        delta = self.init_delta(x, mask, generator)
        if mask is not None:
            delta.mul_(mask)
        delta = (x + delta).clamp_(0, 1).sub_(x)
        active = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
        tol = 1e-6
        for _ in range(self.steps):
            with torch.enable_grad():
                x_adv = (x + delta).requires_grad_(True)
                loss = self.loss(x_adv, x)
                if loss.ndim != 1 or loss.shape[0] != x.shape[0]:
                    raise ValueError(f"loss: expected a per-sample tensor of shape ({x.shape[0]},), got {tuple(loss.shape)}")
                (grad,) = torch.autograd.grad(loss.sum(), x_adv)
            self.history.append(loss.detach())
            if mask is not None:
                grad.mul_(mask)
            step = torch.sign(self.direction(grad)).mul_(-self.alpha)
            new = (x + delta).add_(step).clamp_(0, 1).sub_(x)
            if self.budget == "project":
                delta = new.clamp_(-self.eps, self.eps)
            else:  # paper: stop a sample before it leaves the eps-ball
                ok = new.flatten(1).abs().amax(1) <= self.eps + tol
                active &= ok
                delta = torch.where(active[:, None, None, None], new, delta)
                if not active.any():
                    break
        out = x + delta
        return quantize_to_budget(out, x, self.eps) if self.quantize else out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(eps={self.eps * 255:g}/255, alpha={self.alpha * 255:g}/255, steps={self.steps}, budget={self.budget!r})"
