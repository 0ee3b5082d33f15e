"""Central input checks with messages that show the bad value ("expected ..., got ...")."""
from __future__ import annotations

import torch


def check_image_tensor(x: object, name: str = "x") -> torch.Tensor:
    """Check ``x`` is a float tensor of shape ``(B, 3, H, W)`` with values in ``[0, 1]``.

    Raises:
        TypeError: ``x`` is not a floating-point tensor.
        ValueError: wrong shape or values outside ``[0, 1]``.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor in [0, 1], got dtype {x.dtype}")
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"{name}: expected shape (B, 3, H, W), got {tuple(x.shape)}")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"{name}: expected values in [0, 1], got [{float(x.min()):.3g}, {float(x.max()):.3g}]")
    return x


def check_positive(value: float, name: str, *, allow_zero: bool = False) -> float:
    """Check a number is > 0 (or >= 0 with ``allow_zero``)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name}: expected {'>= 0' if allow_zero else '> 0'}, got {value}")
    return float(value)


def check_int(value: object, name: str, *, minimum: int = 0) -> int:
    """Check a value is an integer (not a bool) >= ``minimum``; raises ``ValueError`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return value


def check_same_shape(a: torch.Tensor, b: torch.Tensor, names: str = "a, b") -> None:
    if a.shape != b.shape:
        raise ValueError(f"{names}: expected the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")


def check_rois(x: torch.Tensor, rois, index: torch.Tensor | None = None, name: str = "rois") -> tuple[torch.Tensor, torch.Tensor]:
    """Check the image batch and the face boxes an extractor's differentiable stage receives.

    Args:
        x: ``(B, 3, H, W)`` in ``[0, 1]``.
        rois: ``(N, 4)`` boxes (tensor or array-like) in pixels of ``x``.
        index: ``(N,)`` image of each box; default ``arange(B)`` (then N must equal B).

    Returns:
        ``rois`` as a float tensor on ``x``'s device and ``index`` as a long tensor.
    """
    check_image_tensor(x)
    rois = torch.as_tensor(rois, device=x.device)
    rois = rois.to(x.dtype) if rois.is_floating_point() else rois.to(torch.float32)
    if rois.ndim != 2 or rois.shape[1] != 4:
        raise ValueError(f"{name}: expected shape (N, 4), got {tuple(rois.shape)}")
    if index is None:
        if rois.shape[0] != x.shape[0]:
            raise ValueError(f"{name}: expected shape ({x.shape[0]}, 4) (one roi per image) when index is None, got {tuple(rois.shape)}")
        return rois, torch.arange(x.shape[0], device=x.device)
    index = torch.as_tensor(index, device=x.device).long()
    if index.shape != (rois.shape[0],) or (index.numel() and (index.min() < 0 or index.max() >= x.shape[0])):
        raise ValueError(f"index: expected {rois.shape[0]} image indices in [0, {x.shape[0]}), got {index.tolist()}")
    return rois, index


def check_rgb_uint8(image: object, name: str = "image"):
    """Check ``image`` is an ``(H, W, 3)`` uint8 RGB array (what every ``detect`` takes); returns it as ndarray.

    Raises:
        ValueError: wrong dtype or shape.
    """
    import numpy as np

    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name}: expected (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
    return image
