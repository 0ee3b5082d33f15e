"""Purifiers by spec: what a forger runs on a protected photo before using it.

``create_purifier(spec)`` gives an object with ``spec`` and ``apply(rgb) -> rgb`` (``(H, W, 3)``
uint8 in, the same shape out), so a bench ``transforms:`` list, ``faceshield evaluate --purify`` and
scripts name purifiers as they name transforms:

* ``magdr`` / ``magdr:MODEL``: MagDR's detect-and-reconstruct (:class:`~faceshield.defenses.magdr.Reconstructor`
  with the shipped :class:`~faceshield.defenses.magdr.FinalDetector` fit), watching ``MODEL``'s
  edits (default ``stargan``); ``last_record`` keeps the record of the last photo;
* any transform spec of :func:`faceshield.transforms.create_transform` (``jpeg75``, ``nlmeans:5``,
  ``median:3`` ...): the restoration alone, always applied.
"""
from __future__ import annotations

import numpy as np

from faceshield.core.check import check_rgb_uint8
from faceshield.transforms import Transform, create_transform

PURIFIERS = ("magdr",)


class MagDRPurifier:
    """MagDR as a purifier (see the module docstring); built on first use (it loads models)."""

    name = "magdr"

    def __init__(self, model: str = "stargan", detector: str = "mtcnn") -> None:
        from faceshield.models import list_targets

        manipulators = list_targets(family="manipulator")
        if model not in manipulators:
            raise ValueError(f"purifier spec 'magdr:{model}': unknown manipulator; expected one of {', '.join(manipulators)}")
        self.model, self.detector = model, detector
        self.spec = "magdr" if model == "stargan" else f"magdr:{model}"
        self._rec = None
        self.last_record: dict | None = None

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        from faceshield.defenses.magdr import FinalDetector, Reconstructor

        if self._rec is None:
            self._rec = Reconstructor(FinalDetector(self.model, detector=self.detector))
        out, self.last_record = self._rec(check_rgb_uint8(rgb))
        return out

    __call__ = apply

    def __repr__(self) -> str:
        return f"MagDRPurifier({self.spec!r})"


def create_purifier(spec: str, *, detector: str = "mtcnn") -> MagDRPurifier | Transform:
    """A purifier from its spec (module docstring); ``detector``: the forger's face detector for MagDR.

    Raises:
        ValueError: an unknown purifier or a bad transform spec (the message quotes it).
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"purifier: expected a spec such as 'magdr' or 'jpeg75', got {spec!r}")
    name, _, arg = spec.strip().partition(":")
    if name == "magdr":
        return MagDRPurifier(arg or "stargan", detector=detector)
    return create_transform(spec)
