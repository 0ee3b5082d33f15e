"""Transforms with random parameters, for expectation over transformations (EOT)."""
from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

from faceshield.transforms.base import Transform


class RandomTransform(Transform):
    """A family of transforms whose parameters are drawn uniformly from ranges
    (``diffjpeg:q=50..90``, ``resize:0.6..0.95``, ``blur:0.3..1.2``).

    :meth:`sample` draws one concrete transform from a ``torch.Generator`` (reproducible); calling
    the random transform itself draws from torch's global generator.

    Args:
        factory: builds the concrete transform from keyword parameters (e.g. :class:`DiffJPEG`).
        ranges: parameter -> ``(low, high)``, drawn uniformly in ``[low, high]``.
        spec: the spec string this family was parsed from.
        integer: parameters rounded to integers after drawing (e.g. a real JPEG quality).
        differentiable: whether the concrete transforms are.
    """

    name = "random"

    def __init__(
        self,
        factory: Callable[..., Transform],
        ranges: Mapping[str, tuple[float, float]],
        spec: str,
        *,
        integer: tuple[str, ...] = (),
        differentiable: bool = False,
    ) -> None:
        for k, (lo, hi) in ranges.items():
            if not lo <= hi:
                raise ValueError(f"{k}: expected a range low..high with low <= high, got {lo:g}..{hi:g}")
        self.factory = factory
        self.ranges = {k: (float(lo), float(hi)) for k, (lo, hi) in ranges.items()}
        self.integer = tuple(integer)
        self.differentiable = differentiable
        self._spec = spec

    def sample(self, generator: torch.Generator | None = None) -> Transform:
        params = {}
        for k, (lo, hi) in self.ranges.items():
            v = lo + (hi - lo) * float(torch.rand((), generator=generator, dtype=torch.float64))
            params[k] = int(round(v)) if k in self.integer else v
        return self.factory(**params)

    def apply(self, rgb):
        return self.sample().apply(rgb)

    def forward(self, x):
        return self.sample().forward(x)

    @property
    def spec(self) -> str:
        return self._spec


__all__ = ["RandomTransform"]
