"""Perceptual budgets: where a perturbation may be strong, where it must stay faint.

SSIM (and the eye) punish noise in flat regions far more than in texture: for a patch whose
local standard deviation is ``s`` (8-bit levels) and zero-mean noise of amplitude ``a``, SSIM's
contrast term is about ``(2 s sqrt(s^2 + a^2) + C2) / (2 s^2 + a^2 + C2)`` with
``C2 = (0.03 * 255)^2`` - close to 1 when ``s >> a`` and ``~C2 / (a^2 + C2)`` (0.2 for ``a = 15``)
on a flat patch. :func:`texture_budget` turns this into a per-pixel fraction of the L_inf budget,
the ``mask`` argument of the attack engine (:class:`~faceshield.attacks.base.Attack`).
:func:`ssim_penalty` is the other route: SSIM itself as a term of the attack's objective
(the engine's ``ssim_weight``), so every step weighs landmark damage against visible change.

What the eye forgives (beyond SSIM): :func:`jnd_levels` is a just-noticeable-difference map
(luminance adaptation and texture masking, after Chou & Li 1995 and Yang et al. 2005's NAMM), the
per-pixel budget of ``jnd=True``; :func:`delta_e_penalty` a differentiable S-CIELAB colour
difference (opponent channels low-passed as the eye does, chroma far more than luminance, then
CIE76 Delta E), the engine's ``delta_e_weight``; :func:`limit_chroma` keeps most of a perturbation
in luminance (the engine's ``chroma``).
"""
from __future__ import annotations

import math

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


def jnd_levels(x: torch.Tensor) -> torch.Tensor:
    """Just-noticeable difference per pixel, in 8-bit levels of luma.

    ``JND = T_l + T_t - 0.3 min(T_l, T_t)`` (NAMM, Yang et al. 2005) with Chou & Li's (1995)
    luminance adaptation ``T_l = 17 (1 - sqrt(bg / 127)) + 3`` for a background ``bg <= 127`` and
    ``3 (bg - 127) / 128 + 3`` above, and texture masking ``T_t = mg (0.0001 bg + 0.115) + 0.5 - 0.01 bg``
    (clamped at 0), ``bg`` the 5x5 mean luma and ``mg`` the Sobel gradient magnitude (levels per
    pixel, Chou & Li's directional 5x5 operators in their role). Flat mid-grey skin gets about 3
    levels, dark regions and edges, hair and texture up to 20 and more.

    Args:
        x: ``(B, 3, H, W)`` RGB in [0, 1].

    Returns:
        ``(B, 1, H, W)`` in levels (> 0).
    """
    x = check_image_tensor(x)
    y = (x * x.new_tensor(LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True) * 255
    bg = kornia.filters.box_blur(y, (5, 5), border_type="reflect")
    t_l = torch.where(bg <= 127, 17 * (1 - torch.sqrt(bg.clamp_min(0) / 127)) + 3, 3 * (bg - 127) / 128 + 3)
    mg = kornia.filters.sobel(y, normalized=True) * 4  # |grad| in levels per pixel (the normalised kernel divides by 8)
    t_t = (mg * (0.0001 * bg + 0.115) + 0.5 - 0.01 * bg).clamp_min(0)
    return t_l + t_t - 0.3 * torch.minimum(t_l, t_t)


def jnd_budget(x: torch.Tensor, eps: float) -> torch.Tensor:
    """Per-pixel fraction of an L_inf budget ``eps`` ([0, 1] units) that keeps every pixel within its
    JND (:func:`jnd_levels`): ``min(1, JND / (255 eps))``, a ``mask`` for the attack engine.

    Returns:
        ``(B, 1, H, W)`` in (0, 1].
    """
    return (jnd_levels(x) / (255 * eps)).clamp(max=1.0)


def limit_chroma(delta: torch.Tensor, chroma: float) -> torch.Tensor:
    """Keep a fraction ``chroma`` of a perturbation's colour: ``(1 - chroma) * Y + chroma * delta``,
    ``Y`` its BT.601 luma on all three channels. A convex combination of values within the budget,
    so the L_inf budget still holds; ``chroma=0`` gives a grey perturbation (R = G = B), which keeps
    a grey image grey.

    Args:
        delta: ``(B, 3, H, W)``.
        chroma: in [0, 1] (1 = unchanged).
    """
    if chroma >= 1:
        return delta
    y = (delta * delta.new_tensor(LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)
    return y + chroma * (delta - y)


def _scielab(x: torch.Tensor) -> torch.Tensor:
    """S-CIELAB-style spatial filtering: opponent channels (luma, red-green, blue-yellow as YCbCr)
    low-passed as the eye resolves them at ~67 pixels per degree (luma sigma 0.5 px, chroma 1.5 and
    2 px), back to RGB, then CIELAB."""
    ycc = kornia.color.rgb_to_ycbcr(x)
    out = []
    for c, s in zip(ycc.split(1, dim=1), (0.5, 1.5, 2.0)):
        k = 2 * math.ceil(3 * s) + 1
        out.append(kornia.filters.gaussian_blur2d(c, (k, k), (s, s), border_type="reflect"))
    rgb = kornia.color.ycbcr_to_rgb(torch.cat(out, 1)).clamp(0, 1)
    return kornia.color.rgb_to_lab(rgb)


def delta_e_penalty(x_adv: torch.Tensor, x: torch.Tensor, region: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample mean S-CIELAB colour difference (CIE76 Delta E after :func:`_scielab`), averaged
    over ``region`` where it is positive: differentiable, 0 when ``x_adv == x``, about 1 at a
    just-noticeable colour difference.

    Args:
        x_adv, x: ``(B, 3, H, W)`` in [0, 1].
        region: optional ``(B or 1, 1, H, W)`` weights (the budget mask).

    Returns:
        ``(B,)`` >= 0.
    """
    d = (_scielab(x_adv) - _scielab(x)).pow(2).sum(1, keepdim=True).add(1e-12).sqrt()
    if region is None:
        return d.flatten(1).mean(1)
    w = (region > 0).to(d.dtype).expand_as(d)
    return (d * w).flatten(1).sum(1) / w.flatten(1).sum(1).clamp_min(1)
