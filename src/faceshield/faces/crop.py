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


def _grid(matrices: torch.Tensor, oh: int, ow: int, H: int, W: int, k: int, dtype, device) -> torch.Tensor:
    """Sampling grid ``(N, oh*k, ow*k, 2)`` (grid_sample units) of the crops of ``matrices``
    ``(N, 2, 3)`` (image -> crop pixels), ``k`` samples per crop pixel and axis."""
    m = matrices.to(dtype)
    a = torch.cat([m, m.new_tensor([0.0, 0.0, 1.0]).expand(m.shape[0], 1, 3)], 1)
    inv = torch.linalg.inv(a)[:, :2]  # crop -> image
    u = (torch.arange(ow * k, device=device, dtype=dtype) + 0.5) / k
    v = (torch.arange(oh * k, device=device, dtype=dtype) + 0.5) / k
    vv, uu = torch.meshgrid(v, u, indexing="ij")
    q = torch.stack([uu, vv, torch.ones_like(uu)], -1)  # (oh*k, ow*k, 3)
    p = torch.einsum("nij,hwj->nhwi", inv, q)  # image pixels
    return torch.stack([p[..., 0] * (2.0 / W) - 1, p[..., 1] * (2.0 / H) - 1], -1)


def warp_crops(x: torch.Tensor, matrices: torch.Tensor, size: int, index: torch.Tensor | None = None, *, antialias: bool = True, max_supersample: int = 4) -> torch.Tensor:
    """Aligned crops through affine maps, differentiable w.r.t. ``x`` (the manipulators' face crops).

    Same pixel convention as :func:`crop_boxes` (pixel ``i`` covers ``[i, i + 1)``); outside the
    image the crop replicates the border. With ``antialias`` a shrinking map is sampled ``k`` times
    denser and average-pooled (``k = ceil(1 / scale)``, at most ``max_supersample``).

    Args:
        x: ``(B, C, H, W)`` images.
        matrices: ``(N, 2, 3)`` affine maps from image pixels to crop pixels (``Alignment.matrix``).
        size: crop side ``S``.
        index: ``(N,)`` long, the image of each crop (default ``arange(B)``, needs N == B).

    Returns:
        ``(N, C, S, S)`` crops.
    """
    n = matrices.shape[0]
    if matrices.ndim != 3 or matrices.shape[1:] != (2, 3):
        raise ValueError(f"matrices: expected shape (N, 2, 3), got {tuple(matrices.shape)}")
    if index is None:
        if n != x.shape[0]:
            raise ValueError(f"matrices: expected one per image ({x.shape[0]}) when index is None, got {n}")
        index = torch.arange(n, device=x.device)
    k = 1
    if antialias:
        scale = torch.sqrt(torch.linalg.det(matrices[:, :, :2].double()).abs()).min().item()
        k = int(min(max_supersample, max(1, math.ceil(1.0 / max(scale, 1e-6) - 1e-6))))
    grid = _grid(matrices, size, size, x.shape[-2], x.shape[-1], k, x.dtype, x.device)
    out = F.grid_sample(x[index], grid, mode="bilinear", padding_mode="border", align_corners=False)
    return F.avg_pool2d(out, k) if k > 1 else out


def paste_crops(x: torch.Tensor, crops: torch.Tensor, masks: torch.Tensor, matrices: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
    """Paste crops back into their images through the inverse of their affine maps, blended by
    ``masks`` (e.g. feathered): ``out = x * (1 - m) + crop * m`` with ``crop`` and ``m`` warped to the
    image (zero outside the crop). Differentiable w.r.t. ``x`` and ``crops``.

    Args:
        x: ``(B, C, H, W)`` images.
        crops: ``(N, C, S, S)``; masks: ``(N, 1, S, S)`` in [0, 1].
        matrices: ``(N, 2, 3)`` image -> crop pixels, as given to :func:`warp_crops`.
        index: ``(N,)`` long, the image of each crop (default ``arange(B)``).

    Returns:
        ``(B, C, H, W)``; crops of the same image are pasted in order.
    """
    n, _, s, _ = crops.shape
    H, W = x.shape[-2:]
    index = torch.arange(n, device=x.device) if index is None else index
    m = matrices.to(x.dtype)
    u = torch.arange(W, device=x.device, dtype=x.dtype) + 0.5
    v = torch.arange(H, device=x.device, dtype=x.dtype) + 0.5
    vv, uu = torch.meshgrid(v, u, indexing="ij")
    p = torch.stack([uu, vv, torch.ones_like(uu)], -1)
    out = [x[b] for b in range(x.shape[0])]
    for i in range(n):
        q = torch.einsum("ij,hwj->hwi", m[i], p)  # crop pixels
        g = torch.stack([q[..., 0] * (2.0 / s) - 1, q[..., 1] * (2.0 / s) - 1], -1)[None]
        both = F.grid_sample(torch.cat([crops[i : i + 1], masks[i : i + 1]], 1).to(x.dtype), g, mode="bilinear", padding_mode="zeros", align_corners=False)[0]
        b = int(index[i])
        out[b] = out[b] * (1 - both[-1:]) + both[:-1] * both[-1:]
    return torch.stack(out)


def feather_mask(size: int, border: float = 0.12) -> torch.Tensor:
    """``(1, 1, S, S)`` in [0, 1]: 1 inside, a raised-cosine ramp over ``border`` x S at each edge."""
    t = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    ramp = ((torch.minimum(t, 1 - t) / border).clamp(0, 1) * math.pi).cos().mul(-0.5).add(0.5)
    return (ramp[:, None] * ramp[None, :])[None, None]
