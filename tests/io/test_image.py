"""faceshield.io.image: reading awkward files, atomic writes, listing inputs, tensor conversion.

Every bad input is generated in ``tmp_path`` by the test itself.
"""
from __future__ import annotations

import io
import json
import os
import re
import stat
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageFile, ImageOps

from faceshield.core.errors import ImageReadError, OutputExistsError
from faceshield.io import (
    LoadedImage,
    list_images,
    read_image,
    to_tensor,
    to_uint8,
    write_image_atomic,
    write_json_atomic,
)


def _pattern(path: Path, rest: str) -> str:
    """Regex for ``cannot read <path>: <rest>`` with ``rest`` a regex."""
    return "^" + re.escape(f"cannot read {path}: ") + rest


def _noise(h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _save(path: Path, im: Image.Image, **kw) -> Path:
    im.save(path, **kw)
    return path


def _temp_leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.name.endswith(".tmp"))


# ------------------------------------------------------------------------------------------ bad inputs


def test_missing_file(tmp_path):
    p = tmp_path / "nope.jpg"
    with pytest.raises(ImageReadError, match=_pattern(p, r"no such file$")):
        read_image(p)


def test_directory_given_as_file(tmp_path):
    d = tmp_path / "photos.jpg"
    d.mkdir()
    with pytest.raises(ImageReadError, match=_pattern(d, r"expected an image file, got a directory$")):
        read_image(d)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    with pytest.raises(ImageReadError, match=_pattern(p, re.escape("the file is empty (0 bytes)") + "$")):
        read_image(p)


def test_text_file_named_jpg(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("this is not a picture\n")
    msg = re.escape("not an image (expected JPEG, PNG, WebP, BMP or TIFF, got unrecognised data)") + "$"
    with pytest.raises(ImageReadError, match=_pattern(p, msg)):
        read_image(p)


@pytest.mark.parametrize("keep", [0.5, 30], ids=["half", "header-only"])
@pytest.mark.parametrize("fmt, ext", [("JPEG", "jpg"), ("PNG", "png")])
def test_truncated_image(tmp_path, fmt, ext, keep):
    good = io.BytesIO()
    Image.fromarray(_noise(96, 128)).save(good, format=fmt)
    data = good.getvalue()
    p = tmp_path / f"cut.{ext}"
    p.write_bytes(data[: int(len(data) * keep) if keep < 1 else keep])
    with pytest.raises(ImageReadError, match=_pattern(p, rf"{fmt} data is truncated or corrupt \(.+\)$")):
        read_image(p)


def test_truncated_even_if_pil_is_told_to_pad(tmp_path, monkeypatch):
    """Someone else setting LOAD_TRUNCATED_IMAGES must not make a truncated file load as padded pixels."""
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    good = io.BytesIO()
    Image.fromarray(_noise(96, 128)).save(good, format="JPEG")
    p = tmp_path / "cut.jpg"
    p.write_bytes(good.getvalue()[:-400])
    with pytest.raises(ImageReadError, match="truncated or corrupt"):
        read_image(p)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored


def test_corrupt_header(tmp_path):
    p = tmp_path / "bad.png"
    good = io.BytesIO()
    Image.fromarray(_noise()).save(good, format="PNG")
    data = bytearray(good.getvalue())
    data[16:24] = b"\xff" * 8  # absurd width/height in IHDR
    p.write_bytes(bytes(data))
    msg = re.escape("PNG data is truncated or corrupt (header not readable)") + "$"
    with pytest.raises(ImageReadError, match=_pattern(p, msg)):
        read_image(p)


def test_too_large(tmp_path):
    p = _save(tmp_path / "big.png", Image.fromarray(_noise(10, 20)))
    msg = re.escape("image too large (expected at most 199 pixels, got 20x10 = 200); --max-pixels raises the limit") + "$"
    with pytest.raises(ImageReadError, match=_pattern(p, msg)):
        read_image(p, max_pixels=199)
    assert read_image(p, max_pixels=200).rgb.shape == (10, 20, 3)


def test_limit_above_pil_default_is_ours_not_pils(tmp_path, monkeypatch):
    """PIL's own bomb limit would refuse this image; an explicit max_pixels above it lets it through."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)  # PIL errors above 2 * 50 pixels
    p = _save(tmp_path / "big.png", Image.fromarray(_noise(10, 20)))
    assert read_image(p, max_pixels=1000).rgb.shape == (10, 20, 3)
    assert Image.MAX_IMAGE_PIXELS == 50  # restored


@pytest.mark.parametrize("bad", [0, -5, 1.5, True])
def test_max_pixels_checked(tmp_path, bad):
    p = _save(tmp_path / "a.png", Image.fromarray(_noise(4, 4)))
    with pytest.raises(ValueError, match=r"^max_pixels: expected a positive integer, got"):
        read_image(p, max_pixels=bad)


def test_unsupported_mode(tmp_path):
    p = _save(tmp_path / "float.tif", Image.fromarray(np.zeros((4, 5), np.float32)))
    msg = re.escape("unsupported pixel mode 'F' (expected RGB, RGBA, grayscale, palette, CMYK or 16-bit integer samples)") + "$"
    with pytest.raises(ImageReadError, match=_pattern(p, msg)):
        read_image(p)


def test_read_error_is_a_value_error(tmp_path):
    with pytest.raises(ValueError):
        read_image(tmp_path / "nope.png")


# ------------------------------------------------------------------------------------------ conversions


@pytest.mark.parametrize("fmt, ext, kw", [
    ("PNG", "png", {}), ("BMP", "bmp", {}), ("TIFF", "tif", {}), ("WEBP", "webp", {"lossless": True}),
])
def test_lossless_formats_read_exactly(tmp_path, fmt, ext, kw):
    rgb = _noise()
    p = _save(tmp_path / f"a.{ext}", Image.fromarray(rgb), format=fmt, **kw)
    img = read_image(p)
    assert isinstance(img, LoadedImage)
    assert img.rgb.dtype == np.uint8 and img.rgb.shape == (48, 64, 3)
    np.testing.assert_array_equal(img.rgb, rgb)
    assert img.alpha is None and img.notes == [] and img.format == fmt and img.path == p
    assert img.size == (48, 64)


def test_cmyk_jpeg(tmp_path):
    p = _save(tmp_path / "cmyk.jpg", Image.new("CMYK", (16, 8), (0, 255, 0, 0)), quality=95)  # pure magenta
    with Image.open(p) as im:
        assert im.mode == "CMYK"
    img = read_image(p)
    assert img.rgb.shape == (8, 16, 3)
    assert np.abs(img.rgb.astype(int) - [255, 0, 255]).max() <= 3
    assert "converted CMYK to RGB" in img.notes


def test_16bit_grayscale_png(tmp_path):
    values = np.array([[0, 255, 257, 32896, 65535]], np.uint16)
    p = tmp_path / "g16.png"
    assert cv2.imwrite(str(p), values)
    img = read_image(p)
    expected = np.array([0, 1, 1, 128, 255], np.uint8)
    np.testing.assert_array_equal(img.rgb[0], np.repeat(expected[:, None], 3, axis=1))
    assert "reduced 16-bit to 8-bit" in img.notes and "grayscale expanded to RGB" in img.notes


def _rgb16() -> tuple[np.ndarray, np.ndarray]:
    """A 2x3 16-bit RGB image and its expected 8-bit version. 255 -> 1 tells scaling from dropping the low byte."""
    rgb = np.zeros((2, 3, 3), np.uint16)
    rgb[0, 0] = [65535, 255, 257]
    rgb[0, 1] = [0, 32896, 0]
    rgb[0, 2] = [65535, 0, 0]
    rgb[1, 0] = [0, 0, 65535]
    expected = np.zeros((2, 3, 3), np.uint8)
    expected[0, 0] = [255, 1, 1]
    expected[0, 1] = [0, 128, 0]
    expected[0, 2] = [255, 0, 0]
    expected[1, 0] = [0, 0, 255]
    return rgb, expected


@pytest.mark.parametrize("ext", ["png", "tif"])
def test_16bit_rgb(tmp_path, ext):
    rgb, expected = _rgb16()
    p = tmp_path / f"c16.{ext}"
    assert cv2.imwrite(str(p), rgb[:, :, ::-1])  # cv2 writes BGR
    img = read_image(p)
    np.testing.assert_array_equal(img.rgb, expected)
    assert img.alpha is None
    assert "reduced 16-bit to 8-bit" in img.notes


def test_16bit_rgba_png(tmp_path):
    rgb, expected = _rgb16()
    alpha = np.full((2, 3), 32896, np.uint16)
    alpha[1, 2] = 65535
    p = tmp_path / "c16a.png"
    assert cv2.imwrite(str(p), np.dstack([rgb[:, :, ::-1], alpha]))
    img = read_image(p)
    np.testing.assert_array_equal(img.rgb, expected)
    np.testing.assert_array_equal(img.alpha, [[128, 128, 128], [128, 128, 255]])
    assert "alpha channel kept separately" in img.notes


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_16bit_png_with_exif_orientation(tmp_path):
    """The OpenCV path for 16-bit data still gets the EXIF orientation applied (exactly once)."""
    rgb, expected = _rgb16()
    ok, buf = cv2.imencode(".png", rgb[:, :, ::-1])
    assert ok
    exif = Image.Exif()
    exif[0x0112] = 6
    data = buf.tobytes()
    p = tmp_path / "c16_rot.png"
    p.write_bytes(data[:33] + _png_chunk(b"eXIf", exif.tobytes()[6:]) + data[33:])  # after IHDR; strip "Exif\0\0"
    img = read_image(p)
    np.testing.assert_array_equal(img.rgb, np.rot90(expected, -1))
    assert "applied EXIF orientation 6" in img.notes


def test_rgba_png_alpha_kept_and_written_back(tmp_path):
    rgb = _noise(8, 12)
    alpha = np.random.default_rng(1).integers(0, 256, (8, 12), dtype=np.uint8)
    p = _save(tmp_path / "rgba.png", Image.fromarray(np.dstack([rgb, alpha])))
    img = read_image(p)
    np.testing.assert_array_equal(img.rgb, rgb)
    np.testing.assert_array_equal(img.alpha, alpha)
    assert "alpha channel kept separately" in img.notes

    out = write_image_atomic(tmp_path / "out" / "rgba_copy.png", img.rgb, img.alpha)
    with Image.open(out) as back:
        assert back.mode == "RGBA"
        np.testing.assert_array_equal(np.array(back), np.dstack([rgb, alpha]))


def test_grayscale(tmp_path):
    gray = _noise(6, 7)[:, :, 0]
    p = _save(tmp_path / "gray.png", Image.fromarray(gray))
    img = read_image(p)
    assert img.rgb.shape == (6, 7, 3)
    for c in range(3):
        np.testing.assert_array_equal(img.rgb[:, :, c], gray)
    assert img.notes == ["grayscale expanded to RGB"] and img.alpha is None


def test_grayscale_with_alpha(tmp_path):
    la = np.stack([_noise(6, 7)[:, :, 0], np.full((6, 7), 200, np.uint8)], axis=2)
    p = _save(tmp_path / "la.png", Image.merge("LA", [Image.fromarray(la[:, :, 0]), Image.fromarray(la[:, :, 1])]))
    img = read_image(p)
    np.testing.assert_array_equal(img.rgb[:, :, 1], la[:, :, 0])
    np.testing.assert_array_equal(img.alpha, la[:, :, 1])


def test_one_bit(tmp_path):
    bits = (np.arange(20).reshape(4, 5) % 2 * 255).astype(np.uint8)
    p = _save(tmp_path / "bw.png", Image.fromarray(bits).convert("1"))
    img = read_image(p)
    np.testing.assert_array_equal(img.rgb[:, :, 0], bits)


def test_palette(tmp_path):
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[:, :3] = [200, 10, 30]
    rgb[:, 3:] = [5, 90, 250]
    p = _save(tmp_path / "pal.png", Image.fromarray(rgb).quantize(colors=4))
    img = read_image(p)
    np.testing.assert_array_equal(img.rgb, rgb)
    assert img.alpha is None and "palette expanded to RGB" in img.notes


def test_palette_with_transparency(tmp_path):
    idx = np.array([[0, 1, 1], [1, 0, 0]], np.uint8)
    im = Image.frombytes("P", (3, 2), idx.tobytes())
    im.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    p = _save(tmp_path / "palt.png", im, transparency=0)  # index 0 fully transparent
    img = read_image(p)
    np.testing.assert_array_equal(img.alpha, np.where(idx == 0, 0, 255))
    np.testing.assert_array_equal(img.rgb[0, 1], [0, 0, 255])
    assert "alpha channel kept separately" in img.notes


def test_animated_gif_first_frame(tmp_path):
    frames = [Image.new("RGB", (5, 4), c) for c in [(255, 0, 0), (0, 255, 0)]]
    p = tmp_path / "anim.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:])
    img = read_image(p)
    np.testing.assert_array_equal(img.rgb[0, 0], [255, 0, 0])
    assert "read the first of 2 frames" in img.notes


def test_exif_rotated_jpeg(tmp_path):
    """Stored landscape 64x32 with orientation 6 (rotate 90 deg clockwise to view) comes out 32 wide, 64 tall."""
    stored = np.full((32, 64, 3), 128, np.uint8)
    stored[:12, :12] = [255, 0, 0]  # red marks the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6
    p = _save(tmp_path / "rot.jpg", Image.fromarray(stored), exif=exif, quality=95)
    img = read_image(p)
    assert img.rgb.shape == (64, 32, 3)
    assert "applied EXIF orientation 6" in img.notes
    # rotating clockwise moves the top-left corner to the top-right
    assert np.abs(img.rgb[4, 32 - 5].astype(int) - [255, 0, 0]).max() < 40
    assert np.abs(img.rgb[4, 4].astype(int) - [128, 128, 128]).max() < 40


@pytest.mark.parametrize("orientation", range(1, 9))
def test_all_orientations_match_pil(tmp_path, orientation):
    rgb = _noise(5, 7)
    exif = Image.Exif()
    exif[0x0112] = orientation
    p = _save(tmp_path / f"o{orientation}.png", Image.fromarray(rgb), exif=exif)
    img = read_image(p)
    with Image.open(p) as im:
        np.testing.assert_array_equal(img.rgb, np.array(ImageOps.exif_transpose(im)))


def test_invalid_orientation_ignored(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 42
    p = _save(tmp_path / "o42.png", Image.fromarray(_noise(5, 7)), exif=exif)
    img = read_image(p)
    assert img.rgb.shape == (5, 7, 3) and "ignored invalid EXIF orientation 42" in img.notes


# ------------------------------------------------------------------------------------------ writing


def test_write_refuses_to_overwrite(tmp_path):
    p = tmp_path / "out.png"
    p.write_bytes(b"precious")
    with pytest.raises(OutputExistsError, match="^" + re.escape(f"{p} exists; pass --overwrite to replace it") + "$"):
        write_image_atomic(p, _noise(4, 4))
    assert p.read_bytes() == b"precious"
    assert _temp_leftovers(tmp_path) == []

    write_image_atomic(p, _noise(4, 4), overwrite=True)
    np.testing.assert_array_equal(read_image(p).rgb, _noise(4, 4))


def test_write_creates_parents_and_normal_permissions(tmp_path):
    p = write_image_atomic(tmp_path / "a" / "b" / "c.PNG", _noise(3, 5))
    assert p == tmp_path / "a" / "b" / "c.PNG" and p.is_file()
    if os.name == "posix":
        assert stat.S_IMODE(p.stat().st_mode) != 0o600  # not mkstemp's private mode
    assert _temp_leftovers(p.parent) == []


def test_write_failure_leaves_nothing(tmp_path, monkeypatch):
    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG half a file")
        raise RuntimeError("encoder exploded")

    p = tmp_path / "new.png"
    old = tmp_path / "old.png"
    old.write_bytes(b"previous result")
    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(RuntimeError, match="encoder exploded"):
        write_image_atomic(p, _noise(4, 4))
    with pytest.raises(RuntimeError, match="encoder exploded"):
        write_image_atomic(old, _noise(4, 4), overwrite=True)
    assert not p.exists()
    assert old.read_bytes() == b"previous result"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["old.png"]


def test_write_no_clobber_race(tmp_path, monkeypatch):
    """A file appearing between the early check and the final move is still not overwritten."""
    p = tmp_path / "race.png"

    def save_then_someone_else_writes(self, fp, *args, **kwargs):
        fp.write(b"ours")
        p.write_bytes(b"theirs")

    monkeypatch.setattr(Image.Image, "save", save_then_someone_else_writes)
    with pytest.raises(OutputExistsError, match="exists; pass --overwrite"):
        write_image_atomic(p, _noise(4, 4))
    assert p.read_bytes() == b"theirs"
    assert _temp_leftovers(tmp_path) == []


def test_write_checks_arguments(tmp_path):
    with pytest.raises(TypeError, match=r"^rgb: expected dtype uint8, got float32$"):
        write_image_atomic(tmp_path / "a.png", np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match=re.escape("rgb: expected shape (H, W, 3), got (4, 4)")):
        write_image_atomic(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match=re.escape("alpha: expected shape (4, 4) to match rgb, got (4, 5)")):
        write_image_atomic(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5), np.uint8))
    with pytest.raises(ValueError, match=re.escape("expected a .png output path (images are written as lossless PNG), got '.jpg'")):
        write_image_atomic(tmp_path / "a.jpg", np.zeros((4, 4, 3), np.uint8))
    d = tmp_path / "dir.png"
    d.mkdir()
    with pytest.raises(OutputExistsError, match=re.escape(f"{d} is a directory; expected an output file path")):
        write_image_atomic(d, np.zeros((4, 4, 3), np.uint8), overwrite=True)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["dir.png"]


def test_write_json(tmp_path):
    p = tmp_path / "r" / "report.json"
    obj = {"nme": np.float32(0.25), "n": np.int64(3), "pts": np.array([[1.5, 2.0]]), "t": torch.tensor([1, 2]),
           "file": tmp_path / "x.png", "ok": np.bool_(True), "name": "café"}
    assert write_json_atomic(p, obj) == p
    text = p.read_text(encoding="utf-8")
    assert text.endswith("\n") and '\n  "nme": 0.25' in text
    assert json.loads(text) == {"nme": 0.25, "n": 3, "pts": [[1.5, 2.0]], "t": [1, 2],
                                "file": str(tmp_path / "x.png"), "ok": True, "name": "café"}

    with pytest.raises(OutputExistsError, match=re.escape(f"{p} exists; pass --overwrite to replace it")):
        write_json_atomic(p, {"other": 1})
    assert json.loads(p.read_text())["n"] == 3
    write_json_atomic(p, {"other": 1}, overwrite=True)
    assert json.loads(p.read_text()) == {"other": 1}


def test_write_json_unserialisable_leaves_nothing(tmp_path):
    with pytest.raises(TypeError, match="^write_json_atomic: expected JSON-serialisable values, got object$"):
        write_json_atomic(tmp_path / "bad.json", {"x": object()})
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------ listing


def test_list_images(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    for name in ["b.JPG", "a.png", "c.WebP", "d.tiff", "notes.txt", ".hidden.jpg"]:
        (d / name).write_bytes(b"x")
    (d / "sub.png").mkdir()  # a directory with an image-like name is skipped
    (d / "sub.png" / "deep.jpg").write_bytes(b"x")
    explicit = tmp_path / "odd.dat"
    explicit.write_bytes(b"x")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    missing = tmp_path / "missing.jpg"

    images, problems = list_images([d, str(explicit), empty, missing, d / "a.png"])
    assert images == [d / "a.png", d / "b.JPG", d / "c.WebP", d / "d.tiff", explicit]
    assert problems == [
        (empty, f"{empty}: no images found (expected files ending in .jpg, .jpeg, .png, .webp, .bmp, .tif, .tiff)"),
        (missing, f"{missing}: no such file or directory"),
    ]


def test_list_images_keeps_explicit_bad_file_for_a_read_error(tmp_path):
    p = tmp_path / "fake.jpg"
    p.write_text("hello")
    images, problems = list_images([p])
    assert images == [p] and problems == []
    with pytest.raises(ImageReadError, match="not an image"):
        read_image(images[0])


# ------------------------------------------------------------------------------------------ tensors


def test_tensor_round_trip():
    rgb = _noise(5, 7)
    t = to_tensor(rgb)
    assert t.shape == (1, 3, 5, 7) and t.dtype == torch.float32 and t.is_contiguous()
    assert 0.0 <= float(t.min()) and float(t.max()) <= 1.0
    assert float(t[0, 1, 2, 3]) == pytest.approx(rgb[2, 3, 1] / 255.0)
    np.testing.assert_array_equal(to_uint8(t), rgb)
    np.testing.assert_array_equal(to_uint8(t[0]), rgb)


def test_to_tensor_read_only_input_and_copy():
    rgb = _noise(3, 4)
    rgb.setflags(write=False)
    t = to_tensor(rgb)
    t.zero_()
    assert rgb.any()


def test_to_uint8_clamps_and_rounds():
    x = torch.tensor([-0.5, 0.0, 0.5 / 255, 1.5 / 255, 0.5, 1.0, 2.0]).view(1, 1, 7).expand(3, 1, 7)
    np.testing.assert_array_equal(to_uint8(x)[0, :, 0], [0, 0, 0, 2, 128, 255, 255])


def test_tensor_argument_checks():
    with pytest.raises(TypeError, match=r"^rgb: expected dtype uint8, got float64$"):
        to_tensor(np.zeros((2, 2, 3)))
    with pytest.raises(ValueError, match=re.escape("rgb: expected shape (H, W, 3), got (2, 2, 4)")):
        to_tensor(np.zeros((2, 2, 4), np.uint8))
    with pytest.raises(ValueError, match=re.escape("x: expected shape (1, 3, H, W) or (3, H, W), got (2, 3, 4, 4)")):
        to_uint8(torch.zeros(2, 3, 4, 4))
    with pytest.raises(TypeError, match=re.escape("x: expected a floating-point tensor in [0, 1], got dtype torch.uint8")):
        to_uint8(torch.zeros(3, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match=re.escape("x: expected values in [0, 1], got NaN")):
        to_uint8(torch.full((3, 2, 2), float("nan")))
