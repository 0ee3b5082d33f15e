"""Image reading and writing: files in, ``(H, W, 3)`` uint8 RGB (+ alpha) arrays and tensors out, atomic PNG / JSON out.

Videos (:mod:`faceshield.io.video`, PyAV): :func:`read_video`, :func:`probe_video`, :func:`write_video`, imported on first use.
"""
from faceshield.io.image import (
    IMAGE_EXTENSIONS,
    LoadedImage,
    atomic_output,
    list_images,
    read_image,
    to_tensor,
    to_uint8,
    write_image_atomic,
    write_json_atomic,
)

_VIDEO_NAMES = ("VIDEO_EXTENSIONS", "LoadedVideo", "VideoInfo", "is_video_path", "probe_video", "read_video", "write_video")

__all__ = [
    "IMAGE_EXTENSIONS",
    "LoadedImage",
    "atomic_output",
    *_VIDEO_NAMES,
    "list_images",
    "read_image",
    "to_tensor",
    "to_uint8",
    "write_image_atomic",
    "write_json_atomic",
]


def __getattr__(name):  # lazy: importing PyAV costs ~0.15 s, only video users pay it
    if name in _VIDEO_NAMES:
        from faceshield.io import video

        return getattr(video, name)
    raise AttributeError(f"module 'faceshield.io' has no attribute {name!r}")
