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


def check_same_shape(a: torch.Tensor, b: torch.Tensor, names: str = "a, b") -> None:
    if a.shape != b.shape:
        raise ValueError(f"{names}: expected the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
