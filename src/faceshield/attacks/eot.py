"""Expectation over transformations (EOT, Athalye et al. 2018) for robustness to re-compression.

The protected image is usually re-encoded before a DeepFake tool sees it (Landmark Breaker
Sec. IV-D: JPEG Q75 / Q50, MPEG-4 and H.264). :class:`EOTLoss` minimises the *expected* loss over
random differentiable transforms of the adversarial image instead of the loss on the image itself
(differentiable twins such as ``diffjpeg``, or the real transform through BPDA, ``bpda:jpeg75``)::

    L_EOT(x_adv, x) = 1/n * sum_i  L(T_i(x_adv), x),   T_i ~ pool

so the perturbation survives the transforms. The reference stays the clean image ``x`` (the
landmarks the attack must move away from). All transforms of the pool keep the geometry (size
and pixel positions), so the face boxes the wrapped loss uses stay valid.
"""
from __future__ import annotations

import zlib
from collections.abc import Sequence

import torch
from torch import nn

from faceshield.attacks.base import clamp_unit
from faceshield.core.check import check_int
from faceshield.transforms import Transform, create_transform

#: Default EOT pool: differentiable JPEG with a random quality, down-up resizing, blur and the image
#: itself (specs of :func:`faceshield.transforms.create_transform`). JPEG, the usual re-encoding,
#: appears twice so that half of the draws are JPEG.
EOT_DEFAULT: tuple[str, ...] = ("diffjpeg:q=40..90", "diffjpeg:q=40..90", "resize:0.6..0.95", "blur:0.3..1.2", "identity")


def eot_pool(specs: Sequence[str | Transform]) -> list[Transform]:
    """Build the pool and check every member is differentiable: a differentiable transform, or any
    transform wrapped in BPDA (``bpda:nlmeans:5``: the real transform forward, identity backward;
    :mod:`faceshield.transforms.bpda`)."""
    if isinstance(specs, (str, Transform)):
        specs = [specs]
    pool = [create_transform(s) for s in specs]
    if not pool:
        raise ValueError("EOT: expected at least one transform, got none")
    for t in pool:
        if not t.differentiable:
            raise ValueError(f"EOT: {t.spec!r} is not differentiable; use its differentiable twin (e.g. diffjpeg instead of jpeg) "
                             f"or its BPDA wrapper (bpda:{t.spec}: real forward, identity backward)")
    return pool


class EOTLoss(nn.Module):
    """Average of a per-sample loss over ``samples`` random transforms of ``x_adv``.

    Draw ``t`` (the ``t``-th call since :meth:`reset`, i.e. the attack's iteration) uses a
    ``torch.Generator`` seeded by ``(seed, t)``: it picks ``samples`` members of the pool uniformly
    (with replacement) and draws their parameters. The same transforms are applied to every image of
    the batch, so a sample's result does not depend on the batch it is in.

    Args:
        loss: ``loss(x_adv, x_clean, **kwargs) -> (B,)`` to wrap.
        transforms: pool of differentiable transform specs or :class:`Transform` objects
            (Default: :data:`EOT_DEFAULT`).
        samples: transforms per call n (Default: 2; on the astronaut sample 2, 4 and 8 protect
            equally well against JPEG Q50, since MI-FGSM's momentum also averages over iterations).
        seed: seed of the draws.

    ``forward(x_adv, x_clean, **kwargs)``: ``x_adv``, ``x_clean`` ``(B, 3, H, W)`` RGB in [0, 1] ->
    ``(B,)``, the mean over the draws of ``loss(T_i(x_adv), x_clean, **kwargs)``.
    """

    def __init__(self, loss: nn.Module, transforms: Sequence[str | Transform] = EOT_DEFAULT, samples: int = 2, seed: int = 0) -> None:
        super().__init__()
        if not callable(loss):
            raise TypeError(f"loss: expected a callable loss(x_adv, x_clean) -> (B,), got {type(loss).__name__}")
        check_int(samples, "samples", minimum=1)
        self.loss = loss
        self.pool = eot_pool(transforms)
        self.samples = samples
        self.seed = int(seed)
        self.calls = 0
        self.last: list[Transform] = []  # the transforms of the last call

    def reset(self) -> None:
        """Restart the sequence of draws, the wrapped loss's too (the attack engine calls this at the
        start of a run)."""
        self.calls = 0
        if callable(getattr(self.loss, "reset", None)):
            self.loss.reset()

    def observe(self, x_adv: torch.Tensor) -> None:
        """Pass the engine's untransformed iterate on to the wrapped loss (see :mod:`faceshield.attacks.base`)."""
        if callable(getattr(self.loss, "observe", None)):
            self.loss.observe(x_adv)

    def draw(self, t: int) -> list[Transform]:
        """The ``samples`` concrete transforms of draw ``t``."""
        g = torch.Generator().manual_seed(zlib.crc32(f"eot:{self.seed}:{t}".encode()))
        picks = torch.randint(len(self.pool), (self.samples,), generator=g).tolist()
        return [self.pool[i].sample(g) for i in picks]

    def forward(self, x_adv: torch.Tensor, x_clean: torch.Tensor, **kwargs) -> torch.Tensor:
        self.last = self.draw(self.calls)
        self.calls += 1
        total = None
        for t in self.last:
            v = self.loss(clamp_unit(t.forward(x_adv)), x_clean, **kwargs)
            total = v if total is None else total + v
        return total / len(self.last)

    def extra_repr(self) -> str:
        return f"transforms={[t.spec for t in self.pool]}, samples={self.samples}, seed={self.seed}"


__all__ = ["EOT_DEFAULT", "EOTLoss", "eot_pool"]
