"""Uploads for the web page: a streaming multipart reader that caps every file while it arrives,
what a file is judged by its content (never its name or declared type), and names safe to show.

Nothing the request says is ever used as a path: each file lands in the job's directory as
``<index>.upload``; the name the browser sent is kept only to be shown (:func:`display_name`) and,
sanitised, in the download's ``Content-Disposition`` (:func:`download_stem`).
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart.multipart import MultipartParser, parse_options_header

IMAGE_FORMATS = "JPEG, PNG, WebP, BMP, TIFF, GIF"
VIDEO_FORMATS = "MP4, MOV, MKV, WebM, AVI"
#: form fields read as short text (at most this many bytes each); any other field is ignored
TEXT_FIELDS = ("preset", "checks")
_TEXT_LIMIT = 200


def sniff_kind(head: bytes) -> str | None:
    """``"image"`` or ``"video"`` from a file's first bytes (at least 12), or None: only the formats
    faceshield reads. Videos are restricted to real containers (MP4 / MOV, Matroska / WebM, AVI), so
    FFmpeg never opens a playlist or another format that reads further files."""
    if head.startswith(b"\x89PNG\r\n\x1a\n") or head.startswith(b"\xff\xd8\xff") or head[:6] in (b"GIF87a", b"GIF89a"):
        return "image"
    if head.startswith(b"BM") or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return "image"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "image"
    if head[4:8] == b"ftyp" or head.startswith(b"\x1a\x45\xdf\xa3") or (head[:4] == b"RIFF" and head[8:12] == b"AVI "):
        return "video"
    return None


#: FFmpeg's container names accepted after :func:`sniff_kind` (a second check on what PyAV opened)
VIDEO_CONTAINERS = ("mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "avi")


def display_name(filename: str | None, index: int) -> str:
    """The name shown for upload ``index``: the last component of what the browser sent, without
    control characters, at most 80 characters (``file <index + 1>`` when nothing is left)."""
    name = re.split(r"[\\/]", filename or "")[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    if len(name) > 80:
        name = name[:38] + "..." + name[-39:]
    return name or f"file {index + 1}"


def download_stem(filename: str | None, index: int) -> str:
    """A file-name stem made only of ``A-Z a-z 0-9 _ -`` (at most 50), from the browser's name
    without its extension; ``<index + 1>`` when nothing is left."""
    name = re.split(r"[\\/]", filename or "")[-1].rsplit(".", 1)[0]
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_-")[:50]
    return stem or str(index + 1)


class UploadTooLarge(Exception):
    """The request body exceeds its overall limit (the reader stops at once)."""


class BadForm(Exception):
    """The request is not a readable ``multipart/form-data`` body; the message says why."""


@dataclass
class ReceivedFile:
    """One file part: where its bytes are (``path``, None once dropped), how many arrived, and
    whether it went over the per-file limit (then ``path`` is None and the bytes are gone)."""

    index: int
    filename: str
    path: Path | None
    size: int = 0
    too_large: bool = False


@dataclass
class ReceivedForm:
    files: list[ReceivedFile] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)
    too_many: int = 0  # file parts beyond ``max_files``, dropped


async def read_multipart(
    content_type: str | None,
    body: AsyncIterator[bytes],
    directory: Path,
    *,
    max_file_bytes: int,
    max_total_bytes: int,
    max_files: int,
    file_field: str = "files",
) -> ReceivedForm:
    """Stream a ``multipart/form-data`` body: parts of ``file_field`` go to ``directory/<n>.upload``
    (``n`` = 0, 1, ... in order), each cut off and deleted once over ``max_file_bytes`` (the rest
    of it is read and discarded); :data:`TEXT_FIELDS` are kept as text; anything else is dropped.

    Raises:
        BadForm: not multipart, no boundary, or a malformed body.
        UploadTooLarge: more than ``max_total_bytes`` in all (what was written is left for the caller to delete).
    """
    ctype, params = parse_options_header(content_type)
    if ctype != b"multipart/form-data" or not params.get(b"boundary"):
        raise BadForm(f"expected a multipart/form-data upload, got {ctype.decode('latin-1') or 'no content type'}")
    form = ReceivedForm()
    state: dict = {"headers": {}, "field": b"", "value": b"", "part": None, "text": None, "fh": None}

    def on_header_field(data, start, end):
        state["field"] += data[start:end]

    def on_header_value(data, start, end):
        state["value"] += data[start:end]

    def on_header_end():
        state["headers"][state["field"].lower()] = state["value"]
        state["field"], state["value"] = b"", b""

    def on_headers_finished():
        _, disp = parse_options_header(state["headers"].get(b"content-disposition", b""))
        name = disp.get(b"name", b"").decode("utf-8", "replace")
        filename = disp.get(b"filename")
        state["part"] = state["text"] = state["fh"] = None
        if name == file_field and filename is not None:
            if len(form.files) >= max_files:
                form.too_many += 1
                return
            i = len(form.files)
            path = directory / f"{i}.upload"
            f = ReceivedFile(i, filename.decode("utf-8", "replace"), path)
            form.files.append(f)
            state["part"], state["fh"] = f, open(path, "wb")
        elif name in TEXT_FIELDS and filename is None:
            state["text"] = (name, bytearray())

    def on_part_data(data, start, end):
        n = end - start
        f: ReceivedFile | None = state["part"]
        if f is not None:
            f.size += n
            if f.too_large:
                return
            if f.size > max_file_bytes:
                _drop(f, state)
                return
            state["fh"].write(data[start:end])
        elif state["text"] is not None:
            buf = state["text"][1]
            buf += data[start:end][: max(0, _TEXT_LIMIT - len(buf))]

    def on_part_end():
        if state["fh"] is not None:
            state["fh"].close()
        if state["text"] is not None:
            form.fields[state["text"][0]] = state["text"][1].decode("utf-8", "replace").strip()
        state.update(headers={}, part=None, text=None, fh=None)

    parser = MultipartParser(params[b"boundary"], {
        "on_header_field": on_header_field, "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished, "on_part_data": on_part_data, "on_part_end": on_part_end,
    })
    total = 0
    try:
        async for chunk in body:
            total += len(chunk)
            if total > max_total_bytes:
                raise UploadTooLarge(f"upload too large (more than {max_total_bytes / 1e6:.0f} MB in all)")
            try:
                parser.write(chunk)
            except Exception as e:  # python-multipart's parse errors
                raise BadForm(f"malformed multipart body ({e})") from None
        try:
            parser.finalize()
        except Exception as e:
            raise BadForm(f"malformed multipart body ({e})") from None
    finally:
        if state["fh"] is not None and not state["fh"].closed:
            state["fh"].close()
    return form


def _drop(f: ReceivedFile, state: dict) -> None:
    f.too_large = True
    state["fh"].close()
    if f.path is not None:
        f.path.unlink(missing_ok=True)
    f.path = None
