"""Attack engine: optimisers (FGSM, I-FGSM, MI-FGSM, PGD, DI-MI-FGSM, mixed) x pluggable per-sample losses.

Names follow Landmark Breaker: ``base1`` = FGSM, ``base2`` = I-FGSM, ``lb`` = MI-FGSM with the
heat-map / landmark loss; the transfer variants of its Table III are ``lb_trans`` = MI-FGSM with
input diversity (DI-MI-FGSM) and ``lb_mix`` = alternating Base2 / LB steps. Robustness to
re-compression comes from wrapping the loss in :class:`EOTLoss`; a smooth perturbation (every
optimiser's ``smooth=sigma``) trades pixel noise for SSIM.
"""
from __future__ import annotations

from faceshield.attacks.base import Attack, check_smooth, quantize_to_budget
from faceshield.attacks.cw import CW
from faceshield.attacks.budget import delta_e_penalty, jnd_budget, jnd_levels, limit_chroma, texture_budget
from faceshield.attacks.difgsm import DIMIFGSM, resize_pad
from faceshield.attacks.eot import EOT_DEFAULT, EOTLoss, eot_pool
from faceshield.attacks.fgsm import FGSM
from faceshield.attacks.ifgsm import IFGSM
from faceshield.attacks.losses import JITTER_MODES, FeatureDistortionLoss, HeatmapCosineLoss, LandmarkDisplacementLoss, SumLoss, heatmap_cosine_loss, heatmap_push, move_boxes
from faceshield.attacks.mifgsm import MIFGSM
from faceshield.attacks.mixed import MixedFGSM
from faceshield.attacks.pgd import PGD

ATTACKS: dict[str, type[Attack]] = {"fgsm": FGSM, "ifgsm": IFGSM, "mifgsm": MIFGSM, "pgd": PGD, "dimifgsm": DIMIFGSM, "mixed": MixedFGSM, "cw": CW}
ALIASES = {"base1": "fgsm", "base2": "ifgsm", "lb": "mifgsm", "bim": "ifgsm", "lb_trans": "dimifgsm", "lb_mix": "mixed"}


def attack_names() -> list[str]:
    return sorted(ATTACKS) + sorted(ALIASES)


def canonical_attack(name: str) -> str:
    """``"lb"`` -> ``"mifgsm"``: the optimiser a name or alias stands for.

    Raises:
        ValueError: unknown name (the message lists the known ones).
    """
    key = ALIASES.get(str(name).lower(), str(name).lower())
    if key not in ATTACKS:
        raise ValueError(f"unknown attack {name!r}; expected one of {', '.join(attack_names())}")
    return key


def attack_settings(name: str) -> tuple[str, ...]:
    """The settings the optimiser ``name`` honours (e.g. ``fgsm``: eps, smooth, ssim_weight; the
    momentum attacks add ``decay``)."""
    return ATTACKS[canonical_attack(name)].settings


def create_attack(name: str, loss, **kwargs) -> Attack:
    """Build an optimiser by name (``fgsm``/``base1``, ``ifgsm``/``base2``, ``mifgsm``/``lb``, ``pgd``,
    ``dimifgsm``/``lb_trans``, ``mixed``/``lb_mix``) with the settings it honours
    (:func:`attack_settings`) and ``quantize`` / ``start`` / ``batch_invariant``.

    Raises:
        ValueError: unknown name.
        TypeError: a setting this optimiser does not use (e.g. ``decay`` for ``base2``): refused,
            never swallowed.
    """
    cls = ATTACKS[canonical_attack(name)]
    extra = sorted(set(kwargs) - set(cls.settings) - {"quantize", "start", "batch_invariant"})
    if extra:
        raise TypeError(f"{name}: does not use {', '.join(extra)} (it takes {', '.join(cls.settings)})")
    return cls(loss, **kwargs)


__all__ = [
    "ATTACKS", "CW", "JITTER_MODES", "Attack", "DIMIFGSM", "EOTLoss", "EOT_DEFAULT", "FGSM", "HeatmapCosineLoss", "IFGSM", "FeatureDistortionLoss", "LandmarkDisplacementLoss",
    "MIFGSM", "MixedFGSM", "PGD", "SumLoss", "attack_names", "delta_e_penalty", "jnd_budget", "jnd_levels", "limit_chroma", "attack_settings", "canonical_attack", "check_smooth", "create_attack", "eot_pool", "heatmap_cosine_loss", "heatmap_push", "move_boxes",
    "quantize_to_budget", "resize_pad", "texture_budget",
]
