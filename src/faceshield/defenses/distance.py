"""MagDR's distance metrics D (Sec. 3.2.2): between two batches of manipulator outputs, on the
images and on the features of a fixed network (our CelebA attribute classifier).

=============  ===============================================================  =========================
name           what                                                             identical -> different
=============  ===============================================================  =========================
``l1``         mean absolute difference, images in [-1, 1]                      0 -> up to 2
``l2``         mean squared difference, images in [-1, 1] (Ruiz et al.'s L2)    0 -> up to 4
``linf``       largest absolute difference, images in [-1, 1]                   0 -> up to 2
``ssim``       SSIM (11-px Gaussian window) on [0, 1], mean over the image      1 -> lower
``psnr``       PSNR in dB on [0, 1] (capped at 100 for identical images)        100 -> lower
``phi1``..``phi4``  mean squared difference of the classifier's block outputs   0 -> higher
``cos``        cosine similarity of the classifier's pooled penultimate vector   1 -> lower
=============  ===============================================================  =========================
"""
from __future__ import annotations

import kornia
import torch
import torch.nn.functional as F

from faceshield.core.check import check_image_tensor

DISTANCES = ("l1", "l2", "linf", "ssim", "psnr", "phi1", "phi2", "phi3", "phi4", "cos")


def pixel_distances(a: torch.Tensor, b: torch.Tensor) -> dict[str, torch.Tensor]:
    """``l1``, ``l2`` and ``linf`` of :data:`DISTANCES` between ``(B, 3, H, W)`` batches in [-1, 1]: ``{name: (B,)}``."""
    diff = (a - b).flatten(1)
    return {"l1": diff.abs().mean(1), "l2": diff.pow(2).mean(1), "linf": diff.abs().amax(1)}


class Distances:
    """Every distance of :data:`DISTANCES` between ``a`` and ``b``.

    Args:
        classifier: the feature network Φ (default: the shipped CelebA attribute classifier); inputs
            are resized to its training size.

    ``d(a, b)``: ``a``, ``b`` ``(B, 3, H, W)`` in [-1, 1] (the manipulators' output range) ->
    ``{name: (B,) tensor}``.
    """

    def __init__(self, classifier: torch.nn.Module | None = None) -> None:
        if classifier is None:
            from faceshield.models.zoo import load_attribute_classifier

            classifier = load_attribute_classifier()[0]
        self.net = classifier.eval()
        self.size = int(getattr(getattr(classifier, "config", None), "size", 64))

    @torch.no_grad()
    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> dict[str, torch.Tensor]:
        if a.shape != b.shape:
            raise ValueError(f"expected two batches of the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
        ua, ub = (check_image_tensor((t + 1) / 2, name) for t, name in ((a, "a"), (b, "b")))  # [0, 1]
        mse01 = (ua - ub).pow(2).flatten(1).mean(1)
        out = {
            **pixel_distances(a, b),
            "ssim": kornia.metrics.ssim(ua, ub, 11).flatten(1).mean(1),
            "psnr": torch.where(mse01 > 0, 10 * torch.log10(1 / mse01.clamp(min=1e-10)), torch.full_like(mse01, 100.0)),
        }
        fa, fb = (self.net.features(F.interpolate(t, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
                                    if t.shape[-1] != self.size or t.shape[-2] != self.size else t) for t in (a, b))
        for i, (x, y) in enumerate(zip(fa[:-1], fb[:-1]), 1):
            out[f"phi{i}"] = (x - y).pow(2).flatten(1).mean(1)
        out["cos"] = F.cosine_similarity(fa[-1], fb[-1], dim=1)
        return out
