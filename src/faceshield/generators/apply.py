"""A trained :class:`~faceshield.models.perturber.PerturbationGenerator` as a perturber.

The perturber interface is the attacks' call: ``perturber(x, mask=None, *, seed=0) -> x_adv`` with
``x`` ``(1, 3, H, W)`` in [0, 1] and ``mask`` a per-pixel budget in [0, 1] (``(1, 1 | 3, H, W)``),
so :func:`~faceshield.pipeline.image.protect_array` does not care which it runs. A generator needs
no loss, steps or step size: each face's CelebA-aligned crop (from the detector's five points,
:func:`~faceshield.deepfake.edit.crop_matrix`) goes through the network once, and the crop's
perturbation is pasted back into the photo through the inverse warp with a feathered border
(:func:`~faceshield.faces.crop.paste_crops`). A generator trained at several crop sides
(``PerturberConfig.max_size``) gets each face at its own resolution, one crop pixel per photo pixel
(:meth:`~faceshield.models.perturber.PerturbationGenerator.side`), so its pattern is not enlarged
and blurred on a large face. Pasting and feathering are convex combinations with
zero and the mask multiplies by at most 1, so ``|x_adv - x| <= eps`` at every pixel by construction;
for an 8-bit photo the 8-bit rounding keeps it (``|round(255 x + d) - 255 x| <= k`` for ``|d| <= k``).
"""
from __future__ import annotations

import numpy as np
import torch

from faceshield.attacks.budget import limit_chroma
from faceshield.faces.crop import feather_mask, paste_crops, warp_crops
from faceshield.models import create_target
from faceshield.models.perturber import PerturbationGenerator


def create_generator(name: str, *, weights: str | None = None, cached: bool = True) -> PerturbationGenerator:
    """A registered generator by name (``faceshield models``); ``weights``: a file instead of the
    resolver's (package data or the entry's environment variable).

    Raises:
        ValueError: unknown name or not a generator.
    """
    g = create_target(name, weights=weights, cached=cached)
    if not isinstance(g, PerturbationGenerator):
        raise ValueError(f"{name!r} is not a perturbation generator; generators: see `faceshield models`")
    return g


class GeneratorPerturber:
    """Protect the faces of one image with a generator.

    Args:
        generator: a :class:`~faceshield.models.perturber.PerturbationGenerator`.
        matrices: ``(N, 2, 3)`` maps from pixels of the tensor perturbed to each face's crop.
        eps: budget in [0, 1] units, at most the generator's (default: its own); the output is scaled.
        chroma: fraction of the perturbation's colour kept (:func:`~faceshield.attacks.budget.limit_chroma`).

    Raises:
        ValueError: ``eps`` above the budget the generator was trained for.
    """

    def __init__(self, generator: PerturbationGenerator, matrices: np.ndarray, *, eps: float | None = None, chroma: float = 1.0) -> None:
        self.g = generator
        self.matrices = torch.as_tensor(np.asarray(matrices, dtype=np.float32)).reshape(-1, 2, 3)
        self.eps = generator.eps if eps is None else float(eps)
        if self.eps > generator.eps * (1 + 1e-6):
            raise ValueError(f"eps: {generator.name} was trained for at most {generator.eps * 255:g} levels; got {self.eps * 255:g} (a generator's output can be scaled down, not up)")
        self.chroma = float(chroma)
        self.history: list[torch.Tensor] = []  # no loss is optimised (the attacks' interface)

    def __repr__(self) -> str:
        return f"GeneratorPerturber({self.g.name}, faces={self.matrices.shape[0]}, eps={self.eps * 255:g}/255)"

    def perturbation(self, x: torch.Tensor) -> torch.Tensor:
        """``(1, 3, H, W)`` perturbation within ``[-eps, eps]`` for ``x`` ``(1, 3, H, W)`` in [0, 1]."""
        if x.ndim != 4 or x.shape[0] != 1:
            raise ValueError(f"x: expected one image (1, 3, H, W), got {tuple(x.shape)}")
        n = self.matrices.shape[0]
        if n == 0:
            return torch.zeros_like(x)
        mats = self.matrices.to(x.dtype)
        scales = mats[:, :, :2].det().abs().sqrt().tolist()  # crop pixels per photo pixel at the generator's size
        sides = [self.g.side(s) for s in scales]
        delta = torch.zeros_like(x)
        with torch.no_grad():
            for side in sorted(set(sides)):  # faces of one crop side go through in one batch
                pick = [i for i, s in enumerate(sides) if s == side]
                m_side = mats[pick] * (side / self.g.size)
                idx = torch.zeros(len(pick), dtype=torch.long)
                d = self.g(warp_crops(x, m_side, side, idx), self.eps)
                delta = paste_crops(delta, d, feather_mask(side).expand(len(pick), 1, -1, -1), m_side, idx)
        return limit_chroma(delta, self.chroma).clamp(-self.eps, self.eps)

    def __call__(self, x: torch.Tensor, mask: torch.Tensor | None = None, *, seed: int = 0) -> torch.Tensor:
        """``x_adv`` ``(1, 3, H, W)`` in [0, 1]; ``mask`` scales the budget per pixel; ``seed`` is
        accepted for the interface (a generator is deterministic)."""
        delta = self.perturbation(x)
        if mask is not None:
            delta = delta * mask.to(delta.dtype)
        return (x + delta).clamp(0.0, 1.0)
