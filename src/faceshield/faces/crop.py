"""Differentiable crops of face boxes out of full images (gradients reach the image pixels)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def crop_boxes(
    x: torch.Tensor,
    boxes: torch.Tensor,
    size: int | tuple[int, int],
    index: torch.Tensor | None = None,
    *,
    antialias: bool = True,
    max_supersample: int = 4,
) -> torch.Tensor:
    """Crop and resize boxes with bilinear sampling, zero outside the image.

    Pixel convention: pixel ``i`` covers ``[i, i + 1)``, so box ``(0, 0, W, H)`` is the whole image and
    output pixel ``j`` samples the box at ``x0 + (j + 0.5) * (x1 - x0) / out_w``. With ``antialias``
    the box is sampled ``k`` times denser and average-pooled (``k = ceil(box / out)``, at most
    ``max_supersample``), which approximates the area interpolation detectors use when shrinking.

    Args:
        x: ``(B, C, H, W)`` images.
        boxes: ``(N, 4)`` ``x0, y0, x1, y1`` in pixels of ``x``.
        size: output ``(h, w)`` (or one int).
        index: ``(N,)`` long, the image of each box (default: box ``n`` is in image ``n``; needs N == B).

    Returns:
        ``(N, C, h, w)`` crops, differentiable w.r.t. ``x`` (and ``boxes``).
    """
    oh, ow = (size, size) if isinstance(size, int) else size
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes: expected shape (N, 4), got {tuple(boxes.shape)}")
    n = boxes.shape[0]
    if index is None:
        if n != x.shape[0]:
            raise ValueError(f"boxes: expected one box per image ({x.shape[0]}) when index is None, got {n}")
        index = torch.arange(n, device=x.device)
    if n == 0:
        return x.new_zeros((0, x.shape[1], oh, ow))
    boxes = boxes.to(x.dtype)
    k = 1
    if antialias:
        span = torch.maximum((boxes[:, 2] - boxes[:, 0]) / ow, (boxes[:, 3] - boxes[:, 1]) / oh).max().item()
        k = int(min(max_supersample, max(1, math.ceil(span - 1e-6))))
    sh, sw = oh * k, ow * k
    H, W = x.shape[-2:]
    t = (torch.arange(sw, device=x.device, dtype=x.dtype) + 0.5) / sw
    s = (torch.arange(sh, device=x.device, dtype=x.dtype) + 0.5) / sh
    gx = boxes[:, 0:1] + t[None] * (boxes[:, 2:3] - boxes[:, 0:1])  # (N, sw)
    gy = boxes[:, 1:2] + s[None] * (boxes[:, 3:4] - boxes[:, 1:2])  # (N, sh)
    gx = gx * (2.0 / W) - 1
    gy = gy * (2.0 / H) - 1
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)  # (N, sh, sw, 2)
    pieces = []
    for b in torch.unique(index).tolist():
        sel = (index == b).nonzero().flatten()
        g = grid[sel].reshape(1, len(sel) * sh, sw, 2)  # stack this image's boxes vertically: no image copy
        c = F.grid_sample(x[b : b + 1], g, mode="bilinear", padding_mode="zeros", align_corners=False)
        c = c.reshape(x.shape[1], len(sel), sh, sw).transpose(0, 1)
        pieces.append((sel, c))
    if len(pieces) == 1 and torch.equal(pieces[0][0], torch.arange(n, device=x.device)):
        out = pieces[0][1]
    else:
        order = torch.cat([p[0] for p in pieces]).argsort()
        out = torch.cat([p[1] for p in pieces])[order]
    if k > 1:
        out = F.avg_pool2d(out, k)
    return out
