"""Image reading and writing: files in, ``(H, W, 3)`` uint8 RGB (+ alpha) arrays and tensors out, atomic PNG / JSON out."""
from faceshield.io.image import (
    IMAGE_EXTENSIONS,
    LoadedImage,
    list_images,
    read_image,
    to_tensor,
    to_uint8,
    write_image_atomic,
    write_json_atomic,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "LoadedImage",
    "list_images",
    "read_image",
    "to_tensor",
    "to_uint8",
    "write_image_atomic",
    "write_json_atomic",
]
