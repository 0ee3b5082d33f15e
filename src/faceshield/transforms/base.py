"""The :class:`Transform` interface shared by every real-world transformation.

A transform is used in two places:

* **evaluation** - ``t(rgb)`` / ``t.apply(rgb)`` on an ``(H, W, 3)`` uint8 RGB image returns an
  ``(H, W, 3)`` uint8 RGB image (what happens to a protected photo when it is re-saved, resized,
  blurred or put into a video); ``t.apply_frames(frames)`` does the same for a clip;
* **inside the attack** (only if ``t.differentiable``) - ``t(x)`` / ``t.forward(x)`` on a float
  tensor ``(B, 3, H, W)`` RGB in [0, 1] returns a tensor of the same shape and range through which
  gradients flow (expectation over transformations, see :mod:`faceshield.attacks.eot`).

Geometry: every transform here keeps the image size and the position of every pixel (resizing goes
down *and back up*), so face boxes and landmarks of the input stay valid on the output.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from faceshield.core.check import check_image_tensor, check_rgb_uint8


def rgb_to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 RGB -> ``(1, 3, H, W)`` float32 in [0, 1] (a copy)."""
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].to(torch.float32).div_(255.0)


def tensor_to_rgb(x: torch.Tensor) -> np.ndarray:
    """``(1, 3, H, W)`` float in [0, 1] -> ``(H, W, 3)`` uint8 RGB (clamped, ``round(255 x)``)."""
    return x.detach()[0].clamp(0, 1).mul(255).round_().to(torch.uint8).permute(1, 2, 0).cpu().numpy().copy()


def check_frames(frames: object, name: str = "frames") -> list[np.ndarray]:
    """Check a clip: a non-empty sequence of ``(H, W, 3)`` uint8 RGB frames of one size, or an
    ``(N, H, W, 3)`` uint8 array. Returns a list of frames."""
    if isinstance(frames, np.ndarray):
        if frames.ndim != 4:
            raise ValueError(f"{name}: expected an (N, H, W, 3) uint8 array or a list of (H, W, 3) frames, got shape {frames.shape}")
        frames = list(frames)
    if not isinstance(frames, Sequence) or len(frames) == 0:
        raise ValueError(f"{name}: expected a non-empty sequence of (H, W, 3) uint8 frames, got {type(frames).__name__} of length {len(frames) if isinstance(frames, Sequence) else '?'}")
    out = [check_rgb_uint8(f, f"{name}[{i}]") for i, f in enumerate(frames)]
    shapes = {f.shape for f in out}
    if len(shapes) != 1:
        raise ValueError(f"{name}: expected frames of one size, got {sorted(shapes)}")
    return out


class Transform:
    """Base class. Subclasses implement :meth:`apply` (uint8) and, if ``differentiable``,
    :meth:`forward` (tensors); a differentiable transform without its own :meth:`apply` runs
    :meth:`forward` on the image and rounds to 8 bits.

    Attributes:
        name: registry name (see :func:`~faceshield.transforms.list_transforms`).
        differentiable: whether :meth:`forward` exists (usable inside an attack).
    """

    name = "transform"
    differentiable = False

    # -- uint8 ---------------------------------------------------------------------------------
    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """``(H, W, 3)`` uint8 RGB -> ``(H, W, 3)`` uint8 RGB."""
        if not self.differentiable:
            raise NotImplementedError
        with torch.no_grad():
            return tensor_to_rgb(self.forward(rgb_to_tensor(rgb)))

    def apply_frames(self, frames: Sequence[np.ndarray] | np.ndarray) -> list[np.ndarray]:
        """A clip: ``N`` frames ``(H, W, 3)`` uint8 RGB -> ``N`` frames of the same size (each frame
        independently, unless the transform is a video codec)."""
        return [self.apply(f) for f in check_frames(frames)]

    # -- tensors -------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` RGB in [0, 1] -> ``(B, 3, H, W)`` RGB in [0, 1], differentiable."""
        raise TypeError(f"{self.spec!r} is not differentiable: it works on (H, W, 3) uint8 images only (use it for evaluation)")

    # -- both ----------------------------------------------------------------------------------
    def __call__(self, image):
        """Dispatch on the input: a tensor goes to :meth:`forward`, an array to :meth:`apply`."""
        if isinstance(image, torch.Tensor):
            return self.forward(check_image_tensor(image))
        return self.apply(check_rgb_uint8(image))

    def sample(self, generator: torch.Generator | None = None) -> Transform:
        """A concrete transform drawn from this one (a fixed transform returns itself; a
        :class:`~faceshield.transforms.random.RandomTransform` draws its parameters)."""
        return self

    @property
    def spec(self) -> str:
        """The spec string :func:`~faceshield.transforms.create_transform` rebuilds this transform from."""
        return self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Transform) and type(other) is type(self) and other.spec == self.spec

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.spec))


class Identity(Transform):
    """No change (``identity``); the copy returned for arrays is never the input object."""

    name = "identity"
    differentiable = True

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        return np.array(rgb, copy=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Compose(Transform):
    """Apply transforms one after another (e.g. ``C2`` = MPEG-4 then H.264). Differentiable if all are.

    Args:
        transforms: the transforms, in order.
        name: optional spec to report (default: the parts' specs joined by ``+``).
    """

    name = "compose"

    def __init__(self, transforms: Sequence[Transform], name: str | None = None) -> None:
        if not transforms or not all(isinstance(t, Transform) for t in transforms):
            raise ValueError(f"Compose: expected a non-empty sequence of Transform, got {transforms!r}")
        self.transforms = list(transforms)
        self.differentiable = all(t.differentiable for t in self.transforms)
        self._name = name

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        for t in self.transforms:
            rgb = t.apply(rgb)
        return rgb

    def apply_frames(self, frames):
        frames = check_frames(frames)
        for t in self.transforms:
            frames = t.apply_frames(frames)
        return frames

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.differentiable:
            return super().forward(x)
        for t in self.transforms:
            x = t.forward(x)
        return x

    def sample(self, generator=None) -> Transform:
        parts = [t.sample(generator) for t in self.transforms]
        same = all(p is t for p, t in zip(parts, self.transforms))
        return self if same else Compose(parts)

    @property
    def spec(self) -> str:
        return self._name or "+".join(t.spec for t in self.transforms)
