"""BPDA (Athalye et al. 2018, backward pass differentiable approximation): any transform, made usable
inside an attack.

``bpda:<spec>`` wraps a transform that has no gradient (real JPEG through OpenCV, the restorations
of :mod:`faceshield.transforms.restore`: median, NL-means, wavelet, bit depth, bilateral ...):

* forward: the real transform, on each image of the batch rounded to 8 bits
  (``round(255 x)``, what the forger's tool receives), back to [0, 1];
* backward: the identity, ``x + (f(x) - x).detach()``, i.e. ``df(x)/dx ~ I``.

So an attack whose loss is averaged over ``bpda:nlmeans:5`` (an EOT pool, :mod:`faceshield.attacks.eot`)
sees the loss *at* the restored image, with the gradient of the loss at that point passed straight
through to ``x``. This is the usual approximation for restorations that are close to the identity
on natural images (a denoiser, a quantiser, a codec). It is an approximation: where the
restoration removes the perturbation the gradient still claims it does not.

The wrapped transform's geometry is kept, so only transforms that keep the size (all of
:mod:`faceshield.transforms`) can be wrapped. A random inner transform (``bpda:jpeg:q=50..90``)
draws its parameters in :meth:`BPDA.sample`, as EOT expects.
"""
from __future__ import annotations

import torch

from faceshield.transforms.base import Transform, rgb_to_tensor, tensor_to_rgb


class BPDA(Transform):
    """``bpda:<spec>``: ``inner`` forward (on 8-bit images), identity backward.

    Args:
        inner: a non-differentiable :class:`Transform` (a differentiable one has its own gradient
            and is refused: use it directly).

    ``t(x)``: ``(B, 3, H, W)`` RGB in [0, 1] -> ``(B, 3, H, W)`` RGB in [0, 1], equal (up to float
    rounding, below 1e-6) to ``inner`` applied to each ``round(255 x[b])`` and divided by 255;
    ``d t(x) / dx`` = identity. ``t(rgb)``: ``(H, W, 3)`` uint8 -> ``inner(rgb)``, unchanged.
    """

    name = "bpda"
    differentiable = True  # in the BPDA sense: forward() exists and passes gradients (identity)

    def __init__(self, inner: Transform) -> None:
        if not isinstance(inner, Transform):
            raise TypeError(f"bpda: expected a Transform to wrap, got {type(inner).__name__}")
        if inner.differentiable:
            raise ValueError(f"bpda: {inner.spec!r} is differentiable already; use it without bpda")
        self.inner = inner

    def apply(self, rgb):
        return self.inner.apply(rgb)

    def apply_frames(self, frames):
        return self.inner.apply_frames(frames)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            y = torch.cat([rgb_to_tensor(self.inner.apply(tensor_to_rgb(x[b : b + 1]))) for b in range(x.shape[0])])
            y = y.to(device=x.device, dtype=x.dtype)
        return x + (y - x).detach()

    def sample(self, generator: torch.Generator | None = None) -> Transform:
        inner = self.inner.sample(generator)
        return self if inner is self.inner else BPDA(inner)

    @property
    def spec(self) -> str:
        return f"bpda:{self.inner.spec}"


__all__ = ["BPDA"]
