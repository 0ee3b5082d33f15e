"""Defenses a forger runs against a protection (MagDR, seed 004): the layer above
:mod:`faceshield.transforms` that needs models (the distances on a fixed network's features, and,
MagDR's detectors and reconstructor in :mod:`faceshield.defenses.magdr`, MagNet's auto-encoder reformer
and reconstruction-error detector in :mod:`faceshield.defenses.reformer`)."""
from faceshield.defenses.distance import DISTANCES, Distances

__all__ = ["DISTANCES", "Distances"]
