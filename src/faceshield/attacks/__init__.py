"""Attack engine: optimisers (FGSM, I-FGSM, MI-FGSM, PGD) x pluggable per-sample losses.

Names follow Landmark Breaker: ``base1`` = FGSM, ``base2`` = I-FGSM, ``lb`` = MI-FGSM with the
heat-map / landmark loss.
"""
from __future__ import annotations

from faceshield.attacks.base import Attack, quantize_to_budget
from faceshield.attacks.fgsm import FGSM
from faceshield.attacks.ifgsm import IFGSM
from faceshield.attacks.losses import HeatmapCosineLoss, LandmarkDisplacementLoss, SumLoss, heatmap_cosine_loss
from faceshield.attacks.mifgsm import MIFGSM
from faceshield.attacks.pgd import PGD

ATTACKS: dict[str, type[Attack]] = {"fgsm": FGSM, "ifgsm": IFGSM, "mifgsm": MIFGSM, "pgd": PGD}
ALIASES = {"base1": "fgsm", "base2": "ifgsm", "lb": "mifgsm", "bim": "ifgsm"}


def attack_names() -> list[str]:
    return sorted(ATTACKS) + sorted(ALIASES)


def create_attack(name: str, loss, **kwargs) -> Attack:
    """Build an optimiser by name (``fgsm``/``base1``, ``ifgsm``/``base2``, ``mifgsm``/``lb``, ``pgd``).
    ``decay`` is only passed to MI-FGSM."""
    key = ALIASES.get(name.lower(), name.lower())
    if key not in ATTACKS:
        raise ValueError(f"unknown attack {name!r}; expected one of {', '.join(attack_names())}")
    if key != "mifgsm":
        kwargs.pop("decay", None)
    if key == "pgd":
        kwargs.pop("budget", None)
        kwargs.pop("start", None)
    return ATTACKS[key](loss, **kwargs)


__all__ = [
    "ATTACKS", "Attack", "FGSM", "HeatmapCosineLoss", "IFGSM", "LandmarkDisplacementLoss", "MIFGSM", "PGD",
    "SumLoss", "attack_names", "create_attack", "heatmap_cosine_loss", "quantize_to_budget",
]
