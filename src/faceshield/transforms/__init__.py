"""Real-world transformations of protected images: JPEG, resizing, blur, video codecs.

Each is a :class:`Transform`: ``t(rgb)`` on an ``(H, W, 3)`` uint8 RGB image for evaluation, and
(if ``t.differentiable``) ``t(x)`` on ``(B, 3, H, W)`` RGB tensors in [0, 1] inside an attack.
Build them from specs with :func:`create_transform` (``"jpeg75"``, ``"diffjpeg:q=50"``,
``"resize:0.5"``, ``"blur:1.0"``, ``"c"``, ``"c2"``, ``"identity"``; see
:mod:`faceshield.transforms.factory`). ``"bpda:<spec>"`` (:class:`BPDA`) makes any of them usable
inside an attack: the real transform forward, the identity backward.

A low layer: imports only :mod:`faceshield.core` (and torch, numpy, OpenCV, kornia, PyAV).
"""
from faceshield.transforms.base import Compose, Identity, Transform, check_frames, rgb_to_tensor, tensor_to_rgb
from faceshield.transforms.blur import GaussianBlur, gaussian_blur, gaussian_blur_uint8
from faceshield.transforms.bpda import BPDA
from faceshield.transforms.codec import VideoCodec, video_roundtrip
from faceshield.transforms.factory import create_transform, describe_transforms, list_transforms
from faceshield.transforms.jpeg import JPEG, DiffJPEG, diff_jpeg, jpeg
from faceshield.transforms.random import RandomTransform
from faceshield.transforms.resize import Resize, resize_down_up, resize_down_up_uint8

__all__ = [
    "BPDA", "Compose", "DiffJPEG", "GaussianBlur", "Identity", "JPEG", "RandomTransform", "Resize", "Transform", "VideoCodec",
    "check_frames", "create_transform", "describe_transforms", "diff_jpeg", "gaussian_blur", "gaussian_blur_uint8",
    "jpeg", "list_transforms", "resize_down_up", "resize_down_up_uint8", "rgb_to_tensor", "tensor_to_rgb",
    "video_roundtrip",
]
