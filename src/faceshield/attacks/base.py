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

Starting point: at ``x_adv = x_clean`` both faceshield losses sit exactly at their optimum for the
defender (Eq. 1's cosine is 1, the landmark displacement is 0), so their gradient is exactly zero
and Alg. 1's first step would follow floating-point noise. The engine therefore starts from a
sub-level dither (uniform in +-0.5/255, ``start="dither"``, the default) or a uniform random point
of the eps-ball (``start="random"``, PGD), or exactly at the clean image (``start="clean"``).
The noise of sample ``b`` is seeded by ``(seed, its 8-bit content)``, so runs are reproducible.

Smooth perturbations (``smooth=sigma``, beyond the paper): the image receives ``G_sigma * delta``,
a Gaussian blur (sigma in pixels) of what the optimiser steps, instead of ``delta`` itself. The
gradient reaches ``delta`` through the blur, so the sign steps stay the same; the blur is a convex
combination, so the L_inf budget still holds. SSIM compares local means, contrasts and structure
in windows of sigma 1.5 px: a perturbation smooth at that scale mostly shifts local means, which
costs SSIM far less than pixel noise of the same amplitude (measured in docs/results.md).

SSIM as part of the objective (``ssim_weight=beta``, beyond the paper): every step minimises
``loss + beta * (1 - SSIM(x_adv, x))`` (:func:`~faceshield.attacks.budget.ssim_penalty`, averaged over
the perturbable region), always on the untransformed image, whatever the optimiser's ``objective``
does to its input. ``history`` keeps ``loss`` alone.

A loss with a ``reset()`` method (a stochastic loss such as :class:`~faceshield.attacks.eot.EOTLoss`)
is reset at the start of every run, so its random draws restart too. A loss with an
``observe(x_adv)`` method is shown the current iterate ``(B, 3, H, W)`` in [0, 1] (detached, before
any transform an optimiser or a wrapping loss applies) once per iteration, before it is evaluated:
re-detecting losses (``redetect``) run the real detector on it.

Every sample is optimised independently (per-sample loss, per-sample noise, per-sample
normalisation, per-sample stopping), so results do not depend on batch size. One more thing is
needed for *bitwise* invariance on CPU: oneDNN (mkldnn) chooses convolution algorithms by batch
size, which changes float rounding, and the sign of near-zero gradient components then flips. With
``batch_invariant=True`` (default) the loop runs with oneDNN disabled (PyTorch's native kernels give
identical per-sample results for any batch size); see ``benchmarks/`` for the cost.
"""
from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Callable

import kornia
import torch

from faceshield.attacks.budget import delta_e_penalty, limit_chroma, ssim_penalty
from faceshield.core.check import check_image_tensor, check_positive

# torch warns about Intel-GPU TF32 each time the oneDNN flags are toggled; irrelevant on CPU.
warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
BUDGET_RULES = ("project", "paper")
#: ``patience``: a sample stops when its last ``patience`` steps improved its best loss by less than this share of its improvement so far
PLATEAU = 0.02
STARTS = ("dither", "random", "clean")


def clamp_unit(x: torch.Tensor) -> torch.Tensor:
    """Clamp to ``[0, 1]`` in the forward pass, identity in the backward pass. For transforms inside
    the attack (resampling, codecs) whose float rounding lands just outside the image range."""
    return x + (x.clamp(0.0, 1.0) - x).detach()


def check_smooth(smooth: float) -> float:
    """Validate a perturbation-blur sigma (pixels, 0 = off, at most 20) and return it as a float."""
    if isinstance(smooth, bool) or not isinstance(smooth, (int, float)) or not 0 <= smooth <= 20:
        raise ValueError(f"smooth: expected a Gaussian sigma in pixels in [0, 20] (0 = off), got {smooth!r}")
    return float(smooth)


def per_sample_uniform(x: torch.Tensor, seed: int) -> torch.Tensor:
    """Uniform noise in [0, 1) shaped like ``x``; sample ``b``'s noise depends only on ``seed`` and
    ``x[b]``'s 8-bit content (never on the batch it is in)."""
    out = torch.empty_like(x)
    q = torch.round(x.detach() * 255).to(torch.uint8).cpu().numpy()
    for b in range(x.shape[0]):
        g = torch.Generator().manual_seed((int(seed) * 1_000_003 + zlib.crc32(q[b].tobytes())) % (2**62))
        out[b] = torch.rand(x.shape[1:], generator=g, dtype=x.dtype).to(x.device)
    return out


def quantize_to_budget(x_adv: torch.Tensor, x_clean: torch.Tensor, eps: float | torch.Tensor) -> torch.Tensor:
    """Round ``x_adv`` to the 8-bit grid and keep it within ``eps`` of the 8-bit clean image.

    Args:
        x_adv, x_clean: ``(B, 3, H, W)`` in [0, 1].
        eps: budget in [0, 1] units, a number or a per-pixel map broadcastable to ``x_adv``
            (e.g. ``(B or 1, 1, H, W)``); the 8-bit budget is ``floor(eps * 255)`` levels.

    Returns:
        ``(B, 3, H, W)`` on the grid ``k / 255`` with ``|255 * (out - round(255 * x_clean))| <= floor(255 * eps)``.
    """
    levels = torch.floor(eps * 255 + 1e-6) if isinstance(eps, torch.Tensor) else math.floor(eps * 255 + 1e-6)
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
        start: ``"dither"`` (default), ``"random"`` or ``"clean"`` (see module docstring).
        batch_invariant: run without oneDNN so results are bitwise independent of batch size.
        smooth: Gaussian sigma in pixels of the perturbation's blur (see module docstring); 0 = off.
        ssim_weight: weight of the SSIM penalty in the objective (see module docstring); 0 = off.
        chroma: fraction of the perturbation's colour kept, the rest moved into luminance
            (:func:`~faceshield.attacks.budget.limit_chroma`; 1 = plain RGB, 0 = a grey perturbation).
        delta_e_weight: weight of the mean S-CIELAB Delta E (over the perturbable region) in the
            objective (:func:`~faceshield.attacks.budget.delta_e_penalty`); 0 = off.
        patience: stop a sample early once its loss has plateaued: when the best loss of its last
            ``patience`` steps improved on the best before them by less than :data:`PLATEAU` of
            the sample's whole improvement so far (0 = off: all ``steps`` run). Per sample, so
            still batch-invariant; the sample keeps its last iterate.
    """

    name = "attack"
    #: optional progress hook, called as ``on_step(step, steps)`` after each iteration (1-based; a
    #: run that stops early ends before ``steps``); set it on an instance, it changes no result.
    on_step: Callable[[int, int], None] | None = None
    #: the optimiser settings this attack honours (keyword arguments of its constructor besides
    #: ``quantize``, ``start``, ``batch_invariant``); :func:`~faceshield.attacks.create_attack` refuses
    #: any other, so a setting is never swallowed.
    settings: tuple[str, ...] = ("eps", "alpha", "steps", "budget", "smooth", "ssim_weight", "chroma", "delta_e_weight", "patience")

    def __init__(
        self,
        loss: Loss,
        *,
        eps: float = 15 / 255,
        alpha: float = 1 / 255,
        steps: int = 20,
        budget: str = "project",
        quantize: bool = True,
        start: str = "dither",
        batch_invariant: bool = True,
        smooth: float = 0.0,
        ssim_weight: float = 0.0,
        chroma: float = 1.0,
        delta_e_weight: float = 0.0,
        patience: int = 0,
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
        if start not in STARTS:
            raise ValueError(f"start: expected one of {STARTS}, got {start!r}")
        self.start = start
        self.batch_invariant = bool(batch_invariant)
        self.smooth = check_smooth(smooth)
        self.ssim_weight = check_positive(ssim_weight, "ssim_weight", allow_zero=True)
        if isinstance(chroma, bool) or not isinstance(chroma, (int, float)) or not 0 <= chroma <= 1:
            raise ValueError(f"chroma: expected a fraction in [0, 1], got {chroma!r}")
        self.chroma = float(chroma)
        self.delta_e_weight = check_positive(delta_e_weight, "delta_e_weight", allow_zero=True)
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"patience: expected an integer >= 0 (0 = off), got {patience!r}")
        self.patience = patience
        self.stopped_at: torch.Tensor | None = None  # per sample, the steps taken in the last run
        self.history: list[torch.Tensor] = []  # per-step mean loss of the last run, (B,) each

    # -- to override ---------------------------------------------------------------------------
    def reset(self, x: torch.Tensor) -> None:
        """Clear per-run state (e.g. momentum) before optimising ``x``."""

    def init_delta(self, x: torch.Tensor, seed: int) -> torch.Tensor:
        """Initial perturbation ``(B, 3, H, W)`` according to ``self.start``."""
        if self.start == "clean":
            return torch.zeros_like(x)
        amp = self.eps if self.start == "random" else min(0.5 / 255, self.eps)
        return per_sample_uniform(x, seed).mul_(2 * amp).sub_(amp)

    def direction(self, grad: torch.Tensor) -> torch.Tensor:
        """Map the loss gradient ``(B, 3, H, W)`` to an ascent direction whose sign is stepped *against*."""
        raise NotImplementedError

    def objective(self, x_adv: torch.Tensor, x: torch.Tensor, step: int, seed: int) -> torch.Tensor:
        """The per-sample loss ``(B,)`` differentiated at iteration ``step`` (default: ``self.loss(x_adv, x)``).
        Attacks that transform their input (e.g. input diversity) override this; ``seed`` is the run's seed."""
        return self.loss(x_adv, x)

    def perturbation(self, delta: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
        """What the image receives for the optimiser's ``delta`` ``(B, 3, H, W)``: ``delta`` itself, with
        ``chroma < 1`` most of its colour moved into luminance, and with ``smooth`` its Gaussian blur
        clamped to ``[lo, hi]`` (the budget and the image range; the clamp passes gradients straight
        through). Both are convex combinations of ``delta``'s values, so the budget holds."""
        d = limit_chroma(delta, self.chroma)
        if self.smooth:
            k = 2 * math.ceil(3 * self.smooth) + 1
            d = kornia.filters.gaussian_blur2d(d, (k, k), (self.smooth, self.smooth), border_type="reflect")
        if self.smooth or self.chroma < 1:
            d = d + (torch.maximum(torch.minimum(d, hi), lo) - d).detach()
        return d

    # -- the loop ------------------------------------------------------------------------------
    def __call__(self, x: torch.Tensor, mask: torch.Tensor | None = None, *, seed: int = 0) -> torch.Tensor:
        """Perturb ``x``.

        Args:
            x: ``(B, 3, H, W)`` RGB in [0, 1] (the clean images).
            mask: optional ``(B or 1, 1, H, W)`` in [0, 1], a per-pixel budget: pixel ``p`` may move
                by at most ``eps * mask[p]`` (0: never changed; 1: the full ``eps``), e.g. a face
                mask times a perceptual weight (:func:`faceshield.attacks.budget.texture_budget`).
            seed: seed of the starting noise (same seed and images -> identical result).

        Returns:
            ``(B, 3, H, W)`` adversarial images in [0, 1] (8-bit grid if ``quantize``).
        """
        with torch.no_grad(), torch.backends.mkldnn.flags(enabled=not self.batch_invariant):
            return self._run(check_image_tensor(x).detach(), mask, seed)

    def _run(self, x: torch.Tensor, mask: torch.Tensor | None, seed: int) -> torch.Tensor:
        if mask is not None:
            if mask.ndim != 4 or mask.shape[1] != 1 or mask.shape[-2:] != x.shape[-2:] or mask.shape[0] not in (1, x.shape[0]):
                raise ValueError(f"mask: expected shape (B or 1, 1, {x.shape[2]}, {x.shape[3]}), got {tuple(mask.shape)}")
            mask = mask.to(x.dtype)
        self.reset(x)
        self.history = []
        delta = self.init_delta(x, seed)
        if mask is not None:
            delta.mul_(mask)
        delta = (x + delta).clamp_(0, 1).sub_(x)
        active = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
        tol = 1e-6
        eps = self.eps if mask is None else self.eps * mask  # a number, or a per-pixel budget
        # bounds of the perturbation the image receives (with smooth, a blur of delta): [0, 1] and the budget
        out_lo, out_hi = x.neg().clamp_(min=-eps), x.neg().add_(1).clamp_(max=eps)
        # bounds of delta, fused into one clamp per step: projecting, the same; the paper's rule only keeps [0, 1]
        lo, hi = (out_lo, out_hi) if self.budget == "project" else (x.neg(), x.neg().add_(1))
        if callable(getattr(self.loss, "reset", None)):
            self.loss.reset()  # stochastic losses (EOT) restart their draws: same seed -> same result
        observe = getattr(self.loss, "observe", None)
        best: list[torch.Tensor] = []  # per step, each sample's best loss so far
        taken = torch.full((x.shape[0],), self.steps, dtype=torch.long)
        for step in range(self.steps):
            with torch.enable_grad():
                d = delta.clone().requires_grad_(True)
                x_adv = x + self.perturbation(d, out_lo, out_hi)
                if self.smooth or self.chroma < 1:
                    x_adv = clamp_unit(x_adv)  # the blur's float rounding may land a hair outside [0, 1]
                if callable(observe):
                    observe(x_adv.detach())
                loss = self.objective(x_adv, x, step, seed)
                if loss.ndim != 1 or loss.shape[0] != x.shape[0]:
                    raise ValueError(f"loss: expected a per-sample tensor of shape ({x.shape[0]},), got {tuple(loss.shape)}")
                total = loss + self.ssim_weight * ssim_penalty(x_adv, x, mask) if self.ssim_weight else loss
                if self.delta_e_weight:
                    total = total + self.delta_e_weight * delta_e_penalty(x_adv, x, mask)
                (grad,) = torch.autograd.grad(total.sum(), d)
            self.history.append(loss.detach())
            if self.patience:
                cur = loss.detach().cpu()
                best.append(cur if not best else torch.minimum(best[-1], cur))
                if step >= self.patience:
                    gain = best[-1 - self.patience] - best[-1]
                    plateau = gain < PLATEAU * (self.history[0].cpu() - best[-1]).clamp(min=1e-12)
                    stop = plateau.to(active.device) & active
                    taken[stop.cpu()] = step
                    active &= ~stop
                    if not active.any():
                        break
            if mask is not None:
                grad.mul_(mask)
            new = delta.sub(torch.sign(self.direction(grad)), alpha=self.alpha).clamp_(lo, hi)
            if self.budget == "project":
                delta = new if self.patience == 0 else torch.where(active[:, None, None, None], new, delta)
            else:  # paper: stop a sample before it leaves the eps-ball
                ok = (new.abs() - eps).flatten(1).amax(1) <= tol
                active &= ok
                delta = torch.where(active[:, None, None, None], new, delta)
                if not active.any():
                    break
            if self.on_step is not None:
                self.on_step(step + 1, self.steps)
        self.stopped_at = taken
        out = (x + self.perturbation(delta, out_lo, out_hi)).clamp_(0, 1)
        return quantize_to_budget(out, x, eps) if self.quantize else out

    def __repr__(self) -> str:
        extra = (f", smooth={self.smooth:g}" if self.smooth else "") + (f", ssim_weight={self.ssim_weight:g}" if self.ssim_weight else "")
        extra += (f", patience={self.patience}" if self.patience else "") + (f", chroma={self.chroma:g}" if self.chroma < 1 else "") + (f", delta_e_weight={self.delta_e_weight:g}" if self.delta_e_weight else "")
        return f"{type(self).__name__}(eps={self.eps * 255:g}/255, alpha={self.alpha * 255:g}/255, steps={self.steps}, budget={self.budget!r}, start={self.start!r}{extra})"
