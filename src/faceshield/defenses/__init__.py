"""Defenses a forger runs against a protection (MagDR, seed 004): the layer above
:mod:`faceshield.transforms` that needs models (the distances on a fixed network's features, and,
to come, MagDR's detector and reconstructor)."""
from faceshield.defenses.distance import DISTANCES, Distances

__all__ = ["DISTANCES", "Distances"]
