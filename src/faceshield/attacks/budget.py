"""Perceptual budgets: where a perturbation may be strong, where it must stay faint.

SSIM (and the eye) punish noise in flat regions far more than in texture: for a patch whose
local standard deviation is ``s`` (8-bit levels) and zero-mean noise of amplitude ``a``, SSIM's
contrast term is about ``(2 s sqrt(s^2 + a^2) + C2) / (2 s^2 + a^2 + C2)`` with
``C2 = (0.03 * 255)^2`` - close to 1 when ``s >> a`` and ``~C2 / (a^2 + C2)`` (0.2 for ``a = 15``)
on a flat patch. :func:`texture_budget` turns this into a per-pixel fraction of the L_inf budget,
the ``mask`` argument of the attack engine (:class:`~faceshield.attacks.base.Attack`).
:func:`ssim_penalty` is the other route: SSIM itself as a term of the attack's objective
(the engine's ``ssim_weight``), so every step weighs landmark damage against visible change.
"""
from __future__ import annotations

import kornia
import torch

from faceshield.core.check import check_image_tensor

#: ITU-R BT.601 luma weights (what SSIM on grey images and JPEG use).
LUMA = (0.299, 0.587, 0.114)


def local_std(x: torch.Tensor, sigma: float = 1.5) -> torch.Tensor:
    """Gaussian-weighted local standard deviation of the luma of ``x``.

    Args:
        x: ``(B, 3, H, W)`` RGB in [0, 1].
        sigma: Gaussian window (pixels); 1.5 is SSIM's window (scikit-image ``gaussian_weights``).

    Returns:
        ``(B, 1, H, W)`` standard deviation in 8-bit levels (>= 0).
    """
    x = check_image_tensor(x)
    y = (x * x.new_tensor(LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True) * 255
    y = y - y.mean(dim=(2, 3), keepdim=True)  # centred: E[y^2] - E[y]^2 without float32 cancellation
    k = 2 * int(3.5 * sigma + 0.5) + 1
    blur = lambda t: kornia.filters.gaussian_blur2d(t, (k, k), (sigma, sigma), border_type="reflect")  # noqa: E731
    mu = blur(y)
    return (blur(y * y) - mu * mu).clamp_min(0).sqrt()


def texture_budget(x: torch.Tensor, floor: float = 0.33, full_at: float = 12.0, sigma: float = 1.5, spread: float = 2.0) -> torch.Tensor:
    """Per-pixel fraction of the L_inf budget that follows local texture.

    ``w = clip(s / full_at, floor, 1)`` where ``s`` is :func:`local_std` (8-bit levels) after a
    max-filter of ``spread`` window sigmas (an edge lends its budget to the pixels next to it, which
    the SSIM window sees together).

    Args:
        x: ``(B, 3, H, W)`` clean RGB in [0, 1].
        floor: budget fraction of perfectly flat regions (0.33 = 5 of 15 levels).
        full_at: local standard deviation (8-bit levels) from which the full budget is allowed.
        sigma: window of :func:`local_std`.
        spread: max-filter radius in units of ``sigma`` (0 = none).

    Returns:
        ``(B, 1, H, W)`` in ``[floor, 1]``.
    """
    if not 0 <= floor <= 1:
        raise ValueError(f"floor: expected a fraction in [0, 1], got {floor}")
    if full_at <= 0:
        raise ValueError(f"full_at: expected > 0 (8-bit levels), got {full_at}")
    s = local_std(x, sigma)
    r = int(round(spread * sigma))
    if r > 0:
        s = torch.nn.functional.max_pool2d(s, 2 * r + 1, stride=1, padding=r)
    return (s / full_at).clamp(floor, 1.0)


def ssim_penalty(x_adv: torch.Tensor, x: torch.Tensor, region: torch.Tensor | None = None, window: int = 11) -> torch.Tensor:
    """Per-sample ``1 - SSIM`` (kornia's Gaussian-window SSIM, sigma 1.5, averaged over channels),
    averaged over ``region``: differentiable, 0 when ``x_adv == x``.

    Args:
        x_adv, x: ``(B, 3, H, W)`` in [0, 1].
        region: optional ``(B or 1, 1, H, W)`` weights (e.g. the perturbation budget mask); the mean is
            taken where they are positive, so the penalty does not shrink with the size of the margin
            around the face.
        window: SSIM window size (pixels, odd).

    Returns:
        ``(B,)`` in [0, 2].
    """
    d = 1 - kornia.metrics.ssim(x_adv, x, window).mean(1, keepdim=True)
    if region is None:
        return d.flatten(1).mean(1)
    w = (region > 0).to(d.dtype).expand_as(d)
    return (d * w).flatten(1).sum(1) / w.flatten(1).sum(1).clamp_min(1)
