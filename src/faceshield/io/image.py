"""Reading images into RGB (+ alpha) arrays, atomic writing of PNG and JSON, and array <-> tensor helpers.

Conventions:
    * In memory an image is ``rgb``: ``(H, W, 3)`` ``uint8`` and optionally ``alpha``: ``(H, W)`` ``uint8``.
    * Inside the models an image is a float32 tensor ``(1, 3, H, W)`` in ``[0, 1]`` (:func:`to_tensor`).
    * Every error a user can cause (bad path, bad file, existing output) raises a faceshield error with a
      one-line message that names the file.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from PIL import Image, ImageFile, UnidentifiedImageError

from faceshield.core.errors import ImageReadError, OutputExistsError

log = logging.getLogger(__name__)

#: File name endings :func:`list_images` picks up when it expands a directory (compared case-insensitively).
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")

#: PIL plugins :func:`read_image` lets open a file. Restricting them keeps PIL from handing a file to a
#: plugin with surprising behaviour (EPS runs Ghostscript). MPO is how PIL opens many camera JPEGs.
_PIL_FORMATS: tuple[str, ...] = ("JPEG", "MPO", "PNG", "WEBP", "BMP", "TIFF", "GIF")
_EXPECTED_FORMATS = "JPEG, PNG, WebP, BMP or TIFF"

_ORIENTATION_TAG = 0x0112
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_GRAY16_MODES = ("I;16", "I;16L", "I;16B", "I;16N")

# PIL's truncation and size limits are module globals; read_image sets them for the duration of a decode.
_PIL_GLOBALS_LOCK = threading.Lock()


@dataclass
class LoadedImage:
    """An image read from disk.

    Attributes:
        rgb: ``(H, W, 3)`` ``uint8`` RGB, upright (EXIF orientation applied).
        alpha: ``(H, W)`` ``uint8`` opacity (255 = opaque) when the file had transparency, else ``None``.
        path: the file it was read from.
        notes: human-readable conversions applied on the way, e.g. ``"applied EXIF orientation 6"``.
        format: PIL's name for the file format, e.g. ``"JPEG"``, ``"PNG"``.
    """

    rgb: np.ndarray
    alpha: np.ndarray | None
    path: Path
    notes: list[str] = field(default_factory=list)
    format: str = ""

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)`` in pixels."""
        return int(self.rgb.shape[0]), int(self.rgb.shape[1])


# --------------------------------------------------------------------------------------------- reading


def read_image(path: str | os.PathLike[str], *, max_pixels: int = 50_000_000) -> LoadedImage:
    """Read an image file into an upright ``(H, W, 3)`` ``uint8`` RGB array plus an optional alpha.

    Conversions (each recorded in ``LoadedImage.notes``): EXIF orientation is applied; CMYK / YCbCr become
    RGB; grayscale, 1-bit and palette images are expanded to RGB; 16-bit PNG / TIFF samples are scaled
    to 8 bits with rounding (``v * 255 / 65535``); transparency (RGBA, LA, palette or colour-key
    transparency) is returned separately as ``alpha``. Of an animated or multi-page file the first frame
    is read.

    Args:
        path: the image file (JPEG, PNG, WebP, BMP, TIFF; also GIF).
        max_pixels: refuse images with more than this many pixels (W * H), checked before decoding.

    Raises:
        ImageReadError: the file is missing, a directory, empty, not an image, truncated or corrupt,
            larger than ``max_pixels``, or in a pixel mode faceshield does not handle.
        ValueError: ``max_pixels`` is not a positive integer.
    """
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)) or max_pixels <= 0:
        raise ValueError(f"max_pixels: expected a positive integer, got {max_pixels!r}")
    path = Path(path)
    _check_readable_file(path)
    notes: list[str] = []

    with _strict_pil():
        try:
            im = Image.open(path, formats=_pil_formats())
        except UnidentifiedImageError:
            sniffed = _sniff_format(path)
            if sniffed:  # PIL swallows the parse error of a damaged header and reports "cannot identify"
                raise ImageReadError(_corrupt_message(path, sniffed, "header not readable")) from None
            raise ImageReadError(
                f"cannot read {path}: not an image (expected {_EXPECTED_FORMATS}, got unrecognised data)"
            ) from None
        except Image.DecompressionBombError as e:
            raise ImageReadError(_too_large_message(path, None, max_pixels)) from e
        except OSError as e:
            if e.errno is not None:  # a real I/O error such as permission denied
                raise ImageReadError(f"cannot read {path}: {_os_reason(e)}") from None
            raise ImageReadError(_corrupt_message(path, _sniff_format(path), e)) from e  # PIL's "Truncated File Read"
        except Exception as e:  # corrupt headers surface as SyntaxError, ValueError, struct.error, ...
            raise ImageReadError(_corrupt_message(path, _sniff_format(path), e)) from e

        with im:
            fmt = im.format or "image"
            width, height = im.size
            if width * height > max_pixels:
                raise ImageReadError(_too_large_message(path, (width, height), max_pixels))
            if width <= 0 or height <= 0:
                raise ImageReadError(f"cannot read {path}: expected a non-empty image, got {width}x{height} pixels")

            n_frames = int(getattr(im, "n_frames", 1) or 1)
            # TIFF: libtiff's load() drops the tags getexif() reads, so fetch the orientation before it.
            orientation = _exif_orientation(im, notes) if fmt == "TIFF" else None
            try:
                im.load()
            except Image.DecompressionBombError as e:
                raise ImageReadError(_too_large_message(path, (width, height), max_pixels)) from e
            except MemoryError:
                raise
            except Exception as e:
                raise ImageReadError(_corrupt_message(path, fmt, e)) from e
            if orientation is None:
                orientation = _exif_orientation(im, notes)
            if n_frames > 1:
                notes.append(f"read the first of {n_frames} frames")

            bits = _bits_per_sample(path, im)
            deep = None
            if bits == 16 and im.mode not in _GRAY16_MODES:
                # PIL reads 48/64-bit PNG and TIFF as 8-bit RGB(A) by dropping the low byte; decode with cv2.
                deep = _read_16bit_cv2(path, (height, width))
                if deep is None:
                    notes.append("reduced 16-bit to 8-bit by dropping the low byte (OpenCV could not decode it)")
            if deep is not None:
                rgb, alpha = deep
                notes.append("reduced 16-bit to 8-bit")
                if alpha is not None:
                    notes.append("alpha channel kept separately")
            else:
                rgb, alpha = _pil_to_rgb_alpha(im, path, notes)

    if orientation is not None and orientation != 1:
        rgb = _orient(rgb, orientation)
        alpha = None if alpha is None else _orient(alpha, orientation)
        notes.append(f"applied EXIF orientation {orientation}")

    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    alpha = None if alpha is None else np.ascontiguousarray(alpha, dtype=np.uint8)
    if notes:
        log.debug("%s: %s", path, "; ".join(notes))
    return LoadedImage(rgb=rgb, alpha=alpha, path=path, notes=notes, format=fmt)


def _pil_formats() -> list[str]:
    """The formats of :data:`_PIL_FORMATS` this PIL build can open (loading all plugins the first time)."""
    Image.init()  # Image.open(formats=...) raises KeyError for a plugin not loaded yet
    return [f for f in _PIL_FORMATS if f in Image.OPEN]


def _check_readable_file(path: Path) -> None:
    """Raise ImageReadError for a missing path, a directory, a special file or an empty file."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ImageReadError(f"cannot read {path}: no such file") from None
    except OSError as e:
        raise ImageReadError(f"cannot read {path}: {_os_reason(e)}") from None
    if path.is_dir():
        raise ImageReadError(f"cannot read {path}: expected an image file, got a directory")
    if not path.is_file():
        raise ImageReadError(f"cannot read {path}: expected an image file, got a special file")
    if st.st_size == 0:
        raise ImageReadError(f"cannot read {path}: the file is empty (0 bytes)")


@contextlib.contextmanager
def _strict_pil() -> Iterator[None]:
    """Make PIL fail on truncated data and leave the size limit to us, for the duration of one read.

    ``ImageFile.LOAD_TRUNCATED_IMAGES`` would otherwise let PIL pad a truncated file silently if anyone set
    it; ``Image.MAX_IMAGE_PIXELS`` is disabled because :func:`read_image` checks ``max_pixels`` itself
    before decoding (so the limit can be raised past PIL's default). Both are PIL module globals, so a
    lock serialises the reads that change them.
    """
    with _PIL_GLOBALS_LOCK:
        old_truncated, old_max = ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        Image.MAX_IMAGE_PIXELS = None
        try:
            yield
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS = old_truncated, old_max


def _sniff_format(path: Path) -> str | None:
    """The format a file's first bytes announce (PNG, JPEG, GIF, BMP, WEBP, TIFF), or None."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return None
    if head.startswith(_PNG_SIGNATURE):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head.startswith(b"BM"):
        return "BMP"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    return None


def _exif_orientation(im: Image.Image, notes: list[str]) -> int | None:
    """The EXIF (or XMP) orientation 1..8, or None when absent or invalid (noted)."""
    try:
        value = im.getexif().get(_ORIENTATION_TAG)
    except Exception as e:  # malformed EXIF should not make the pixels unreadable
        notes.append(f"ignored unreadable EXIF data ({_one_line(e)})")
        return None
    if value is None:
        return None
    try:
        value = int(value)
    except (TypeError, ValueError):
        notes.append(f"ignored invalid EXIF orientation {value!r}")
        return None
    if not 1 <= value <= 8:
        notes.append(f"ignored invalid EXIF orientation {value}")
        return None
    return value


def _orient(a: np.ndarray, orientation: int) -> np.ndarray:
    """Apply EXIF ``orientation`` (2..8) to an ``(H, W, ...)`` array, as ``ImageOps.exif_transpose`` does."""
    if orientation == 2:
        return a[:, ::-1]
    if orientation == 3:
        return a[::-1, ::-1]
    if orientation == 4:
        return a[::-1]
    if orientation == 5:
        return a.swapaxes(0, 1)
    if orientation == 6:
        return np.rot90(a, -1)  # 90 degrees clockwise
    if orientation == 7:
        return np.rot90(a, 2).swapaxes(0, 1)
    if orientation == 8:
        return np.rot90(a, 1)  # 90 degrees anticlockwise
    return a


def _bits_per_sample(path: Path, im: Image.Image) -> int:
    """Bits per sample of a PNG (IHDR) or TIFF (tag 258); 8 for everything else or when unknown."""
    if im.format == "PNG":
        try:
            with open(path, "rb") as f:
                head = f.read(25)
        except OSError:
            return 8
        if len(head) == 25 and head[:8] == _PNG_SIGNATURE and head[12:16] == b"IHDR":
            return int(head[24])
        return 8
    if im.format == "TIFF":
        bps = getattr(im, "tag_v2", {}).get(258)
        try:
            return int(max(bps)) if isinstance(bps, (tuple, list)) else int(bps or 8)
        except (TypeError, ValueError):
            return 8
    return 8


def _scale16(a: np.ndarray) -> np.ndarray:
    """``uint16`` samples to ``uint8`` with rounding: ``round(v * 255 / 65535)`` (0 -> 0, 32896 -> 128, 65535 -> 255)."""
    a = np.asarray(a).astype(np.uint32)
    return ((a * 255 + 32767) // 65535).astype(np.uint8)


def _read_16bit_cv2(path: Path, hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray | None] | None:
    """Decode a 16-bit PNG / TIFF with OpenCV (which keeps all 16 bits) into 8-bit ``rgb, alpha``.

    Returns None when OpenCV cannot decode it or disagrees about the size. ``IMREAD_UNCHANGED`` does not
    apply EXIF orientation, so the caller still applies it. OpenCV's channel order is BGR(A).
    """
    import cv2

    try:
        data = np.fromfile(path, dtype=np.uint8)  # imdecode, unlike imread, copes with non-ASCII paths
        a = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except Exception as e:
        log.debug("%s: OpenCV failed on 16-bit data: %s", path, e)
        return None
    if a is None or a.shape[:2] != hw:
        return None
    if a.dtype == np.uint16:
        a = _scale16(a)
    elif a.dtype != np.uint8:
        return None
    if a.ndim == 2:
        return np.repeat(a[:, :, None], 3, axis=2), None
    channels = a.shape[2]
    if channels == 1:
        return np.repeat(a, 3, axis=2), None
    if channels == 2:
        return np.repeat(a[:, :, :1], 3, axis=2), a[:, :, 1]
    if channels == 3:
        return a[:, :, ::-1], None
    if channels == 4:
        return a[:, :, 2::-1], a[:, :, 3]
    return None


def _pil_to_rgb_alpha(im: Image.Image, path: Path, notes: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """Turn a loaded 8-bit (or 16-bit grayscale) PIL image into ``rgb (H, W, 3)``, ``alpha (H, W) | None``."""
    mode = im.mode
    has_key = "transparency" in im.info

    if mode in _GRAY16_MODES or (mode == "I" and im.format == "PNG"):  # older Pillow opens 16-bit PNG as "I"
        gray = np.array(im)
        if gray.dtype == np.int32 and (gray.min() < 0 or gray.max() > 65535):
            raise ImageReadError(
                f"cannot read {path}: expected 16-bit samples in [0, 65535], got [{gray.min()}, {gray.max()}]"
            )
        notes += ["reduced 16-bit to 8-bit", "grayscale expanded to RGB"]
        return np.repeat(_scale16(gray)[:, :, None], 3, axis=2), None

    if mode == "P":
        palette_alpha = im.palette is not None and im.palette.mode == "RGBA"
        notes.append("palette expanded to RGB")
        if has_key or palette_alpha:
            notes.append("alpha channel kept separately")
            return _split_rgba(np.array(im.convert("RGBA")))
        return np.array(im.convert("RGB")), None
    if mode == "PA":
        notes += ["palette expanded to RGB", "alpha channel kept separately"]
        return _split_rgba(np.array(im.convert("RGBA")))

    if mode in ("1", "L"):
        notes.append("1-bit black-and-white expanded to RGB" if mode == "1" else "grayscale expanded to RGB")
        if has_key:
            notes.append("alpha channel kept separately")
            return _split_rgba(np.array(im.convert("RGBA")))
        gray = np.array(im.convert("L"))
        return np.repeat(gray[:, :, None], 3, axis=2), None
    if mode in ("LA", "La"):
        la = np.array(im.convert("LA") if mode != "LA" else im)
        notes += ["grayscale expanded to RGB", "alpha channel kept separately"]
        return np.repeat(la[:, :, :1], 3, axis=2), la[:, :, 1]

    if mode == "RGB":
        if has_key:
            notes.append("alpha channel kept separately")
            return _split_rgba(np.array(im.convert("RGBA")))
        return np.array(im), None
    if mode in ("RGBA", "RGBa"):
        notes.append("alpha channel kept separately")
        return _split_rgba(np.array(im if mode == "RGBA" else im.convert("RGBA")))

    if mode in ("CMYK", "YCbCr", "RGBX"):
        if mode != "RGBX":
            notes.append(f"converted {mode} to RGB")
        return np.array(im.convert("RGB")), None

    raise ImageReadError(
        f"cannot read {path}: unsupported pixel mode {mode!r} "
        "(expected RGB, RGBA, grayscale, palette, CMYK or 16-bit integer samples)"
    )


def _split_rgba(rgba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return rgba[:, :, :3], rgba[:, :, 3]


def _too_large_message(path: Path, size: tuple[int, int] | None, max_pixels: int) -> str:
    got = "more than PIL allows" if size is None else f"{size[0]}x{size[1]} = {size[0] * size[1]:,}"
    return (
        f"cannot read {path}: image too large (expected at most {max_pixels:,} pixels, got {got}); "
        "--max-pixels raises the limit"
    )


def _corrupt_message(path: Path, fmt: str | None, e: BaseException | str) -> str:
    what = f"{fmt} data" if fmt else "the file"
    reason = e if isinstance(e, str) else _one_line(e)
    return f"cannot read {path}: {what} is truncated or corrupt ({reason})"


def _os_reason(e: OSError) -> str:
    return e.strerror.lower() if e.strerror else _one_line(e)


def _one_line(e: BaseException) -> str:
    text = re.sub(r"\s+", " ", str(e)).strip()
    return text or type(e).__name__


# --------------------------------------------------------------------------------------------- writing


def write_image_atomic(
    path: str | os.PathLike[str],
    rgb: np.ndarray,
    alpha: np.ndarray | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write ``rgb`` (and ``alpha``) as a lossless PNG, atomically.

    The PNG goes to a temporary file in the target's directory which then replaces the target in one
    step, so a reader never sees a half-written file and a failure leaves no partial or temporary file.
    Missing parent directories are created.

    Args:
        path: the output file; must end in ``.png``.
        rgb: ``(H, W, 3)`` ``uint8``.
        alpha: ``(H, W)`` ``uint8`` or None; when given the PNG is RGBA.
        overwrite: replace an existing file instead of raising.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
        TypeError, ValueError: ``rgb`` / ``alpha`` have the wrong dtype or shape, or ``path`` is not a .png.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"{path}: expected a .png output path (images are written as lossless PNG), got {path.suffix or 'no suffix'!r}")
    _check_uint8(rgb, "rgb", "(H, W, 3)", ndim=3, channels=3)
    if alpha is not None:
        _check_uint8(alpha, "alpha", "(H, W)", ndim=2)
        if alpha.shape != rgb.shape[:2]:
            raise ValueError(f"alpha: expected shape {rgb.shape[:2]} to match rgb, got {alpha.shape}")
        pixels = np.ascontiguousarray(np.dstack([rgb, alpha]))
    else:
        pixels = np.ascontiguousarray(rgb)

    def write(f: IO[bytes]) -> None:
        Image.fromarray(pixels).save(f, format="PNG")

    _atomic_write(path, write, overwrite=overwrite)
    return path


def write_json_atomic(path: str | os.PathLike[str], obj: Any, *, overwrite: bool = False) -> Path:
    """Write ``obj`` as UTF-8 JSON (indent 2, trailing newline), atomically, like :func:`write_image_atomic`.

    numpy scalars become Python numbers, numpy arrays and torch tensors nested lists, paths strings.
    Non-finite floats (e.g. the PSNR of identical images) become ``null``, so the file is strict JSON.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
        TypeError: ``obj`` holds something JSON cannot represent (nothing is written).
    """
    path = Path(path)
    text = json.dumps(_strict(obj), indent=2, ensure_ascii=False, default=_json_default, allow_nan=False) + "\n"
    data = text.encode("utf-8")
    _atomic_write(path, lambda f: f.write(data), overwrite=overwrite)
    return path


def _strict(o: Any) -> Any:
    """Replace non-finite floats by None, recursively (JSON has no NaN / Infinity)."""
    if isinstance(o, (float, np.floating)):
        return float(o) if np.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _strict(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_strict(v) for v in o]
    return o


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return _strict(o.tolist())
    if isinstance(o, torch.Tensor):
        return _strict(o.detach().cpu().tolist())
    if isinstance(o, os.PathLike):
        return os.fspath(o)
    if isinstance(o, (set, frozenset)):
        return sorted(o, key=repr)
    raise TypeError(f"write_json_atomic: expected JSON-serialisable values, got {type(o).__name__}")


def _check_uint8(a: object, name: str, shape: str, *, ndim: int, channels: int | None = None) -> None:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: expected a numpy uint8 array of shape {shape}, got {type(a).__name__}")
    if a.dtype != np.uint8:
        raise TypeError(f"{name}: expected dtype uint8, got {a.dtype}")
    if a.ndim != ndim or (channels is not None and a.shape[-1] != channels) or 0 in a.shape:
        raise ValueError(f"{name}: expected shape {shape}, got {a.shape}")


def _atomic_write(path: Path, write: Callable[[IO[bytes]], Any], *, overwrite: bool) -> None:
    """Run ``write`` on a temp file next to ``path``, then move it into place; clean up on any failure."""
    with atomic_output(path, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as f:
            write(f)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], *, overwrite: bool = False, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path next to ``path`` to write to; on success move it into place in one step.

    For writers that need a file name rather than a file object (e.g. a video muxer). The temp file
    (``.<name>.<random><suffix>`` in the target's directory, created empty) is fsynced, given normal
    permissions and renamed to ``path``; on any exception it is removed and nothing is left behind.
    Missing parent directories are created.

    Raises:
        OutputExistsError: ``path`` is a directory, or exists and ``overwrite`` is False (checked
            before yielding and again, atomically, when moving into place).
    """
    path = Path(path)
    if path.is_dir():
        raise OutputExistsError(f"{path} is a directory; expected an output file path")
    if not overwrite and path.exists():
        raise OutputExistsError(f"{path} exists; pass --overwrite to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        _chmod_default(tmp)
        if overwrite:
            os.replace(tmp, path)
        else:
            _move_no_clobber(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    log.debug("wrote %s", path)


def _move_no_clobber(tmp: Path, path: Path) -> None:
    """Move ``tmp`` to ``path`` unless ``path`` exists; a hard link makes the check and the move one step."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise OutputExistsError(f"{path} exists; pass --overwrite to replace it") from None
    except OSError:  # file system without hard links: check, then replace
        if path.exists():
            raise OutputExistsError(f"{path} exists; pass --overwrite to replace it") from None
        os.replace(tmp, path)
        return
    tmp.unlink()


_umask: int | None = None


def _chmod_default(p: Path) -> None:
    """Give a temp file (created 0600 by mkstemp) the permissions a normally created file would have."""
    global _umask
    if os.name != "posix":
        return
    if _umask is None:
        _umask = _read_umask()
    os.chmod(p, 0o666 & ~_umask)


def _read_umask() -> int:
    try:  # Linux >= 4.7: read it without changing it
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (briefly process-wide, once per process)
    os.umask(mask)
    return mask


# --------------------------------------------------------------------------------------------- listing


def list_images(inputs: Sequence[str | os.PathLike[str]]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Expand command-line inputs into image files.

    A directory contributes its files (not sub-directories, not hidden files) whose names end in one of
    :data:`IMAGE_EXTENSIONS`, case-insensitively, sorted by name. A file named explicitly is kept whatever
    its extension, so a bad file gets its read error later. Duplicates (same resolved path) are kept once,
    first occurrence first.

    Returns:
        ``(images, problems)``: ``problems`` holds ``(path, message)`` for inputs that do not exist,
        directories without images and directories that cannot be listed.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    images: list[Path] = []
    problems: list[tuple[Path, str]] = []
    seen: set[Path] = set()

    def add(p: Path) -> None:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            images.append(p)

    for item in inputs:
        p = Path(item)
        if p.is_dir():
            try:
                found = sorted(
                    c for c in p.iterdir()
                    if c.suffix.lower() in IMAGE_EXTENSIONS and not c.name.startswith(".") and c.is_file()
                )
            except OSError as e:
                problems.append((p, f"{p}: cannot list directory ({_os_reason(e)})"))
                continue
            if not found:
                problems.append((p, f"{p}: no images found (expected files ending in {', '.join(IMAGE_EXTENSIONS)})"))
            for c in found:
                add(c)
        elif p.exists():
            add(p)
        else:
            problems.append((p, f"{p}: no such file or directory"))
    return images, problems


# --------------------------------------------------------------------------------------------- tensors


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` ``uint8`` RGB -> ``(1, 3, H, W)`` float32 tensor in ``[0, 1]`` (a copy, on the CPU)."""
    _check_uint8(rgb, "rgb", "(H, W, 3)", ndim=3, channels=3)
    t = torch.from_numpy(np.array(rgb, dtype=np.uint8, copy=True))
    return t.permute(2, 0, 1).unsqueeze(0).contiguous().to(torch.float32).div_(255.0)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """``(1, 3, H, W)`` or ``(3, H, W)`` float tensor in ``[0, 1]`` -> ``(H, W, 3)`` ``uint8`` array.

    Values are clamped to ``[0, 1]`` and rounded as ``round(x * 255)`` (halves to even).

    Raises:
        TypeError: ``x`` is not a floating-point tensor.
        ValueError: wrong shape, or NaN values.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x: expected a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"x: expected a floating-point tensor in [0, 1], got dtype {x.dtype}")
    if x.ndim == 4 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 3 or x.shape[0] != 3:
        raise ValueError(f"x: expected shape (1, 3, H, W) or (3, H, W), got {tuple(x.shape)}")
    x = x.detach().to("cpu", torch.float32)
    if torch.isnan(x).any():
        raise ValueError("x: expected values in [0, 1], got NaN")
    u8 = torch.round(x.clamp(0.0, 1.0) * 255.0).to(torch.uint8)
    return np.ascontiguousarray(u8.permute(1, 2, 0).numpy())
