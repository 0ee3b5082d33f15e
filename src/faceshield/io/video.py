"""Reading and writing videos with PyAV: frames are ``(H, W, 3)`` ``uint8`` RGB, streamed one at a time.

* :func:`probe_video` reads a video's metadata (:class:`VideoInfo`) and checks that its first frame decodes.
* :func:`read_video` returns that metadata plus an iterator over the frames (decoded lazily, so a long
  video is never held in memory). Display rotation (phone videos) is applied, like EXIF orientation
  for images.
* :func:`write_video` encodes frames at an exact constant frame rate (frame ``i`` has timestamp
  ``i / fps``), copies the audio of a source file into the output (remuxed when the container can
  hold its codec, otherwise re-encoded) and writes atomically: a temp file next to the target is
  moved into place at the end, and a failure leaves nothing behind.

Every error a user can cause raises :class:`~faceshield.core.errors.VideoReadError` or
:class:`~faceshield.core.errors.VideoWriteError` with a one-line message that names the file.
"""
from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from faceshield.core.errors import OutputExistsError, VideoReadError, VideoWriteError
from faceshield.io.image import _one_line, _os_reason, atomic_output

log = logging.getLogger(__name__)

#: File name endings treated as videos (compared case-insensitively), and the muxer each one uses.
VIDEO_MUXERS: dict[str, str] = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}
VIDEO_EXTENSIONS: tuple[str, ...] = tuple(VIDEO_MUXERS)

#: Friendly codec names -> FFmpeg encoder. Any other FFmpeg video encoder name is accepted as is.
CODEC_ALIASES: dict[str, str] = {
    "h264": "libx264", "avc": "libx264", "h265": "libx265", "hevc": "libx265",
    "vp8": "libvpx", "vp9": "libvpx-vp9", "av1": "libsvtav1",
}

#: Quality setting per encoder: ``(kind, lowest, highest, default)``. ``crf`` / ``qscale``: lower is
#: better quality; ``lossless`` encoders take no setting.
_QUALITY: dict[str, tuple[str, int, int, int | None]] = {
    "libx264": ("crf", 0, 51, 18),
    "libx264rgb": ("crf", 0, 51, 18),
    "libx265": ("crf", 0, 51, 20),
    "libvpx-vp9": ("crf", 0, 63, 30),
    "libvpx": ("crf", 4, 63, 10),
    "libsvtav1": ("crf", 1, 63, 30),
    "mpeg4": ("qscale", 1, 31, 2),
    "msmpeg4": ("qscale", 1, 31, 2),
    "mjpeg": ("qscale", 1, 31, 2),
    "ffv1": ("lossless", 0, 0, None),
    "huffyuv": ("lossless", 0, 0, None),
    "utvideo": ("lossless", 0, 0, None),
    "png": ("lossless", 0, 0, None),
}
_FF_QP2LAMBDA = 118

#: Audio codecs each container can take by copying packets; others are re-encoded to the default.
_AUDIO_COPY: dict[str, frozenset[str]] = {
    "mp4": frozenset({"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"}),
    "mov": frozenset({"aac", "mp3", "alac", "ac3", "eac3", "pcm_s16le", "pcm_s24le"}),
    "matroska": frozenset({"aac", "mp3", "alac", "ac3", "eac3", "opus", "vorbis", "flac", "pcm_s16le", "pcm_s24le"}),
    "webm": frozenset({"opus", "vorbis"}),
    "avi": frozenset({"mp3", "ac3", "pcm_s16le"}),
}
_AUDIO_ENCODER: dict[str, str] = {"mp4": "aac", "mov": "aac", "matroska": "aac", "webm": "libopus", "avi": "libmp3lame"}


@dataclass(frozen=True)
class VideoInfo:
    """Metadata of a video file.

    Attributes:
        path: the file.
        width, height: frame size in pixels, upright (after ``rotation``).
        fps: frame rate as an exact fraction (e.g. ``25``, ``30000/1001``); the stream's average rate.
        frames: number of video frames (from the header, else by counting packets).
        duration: video duration in seconds (``frames / fps``).
        codec: the video codec, e.g. ``"h264"``.
        pix_fmt: the decoded pixel format, e.g. ``"yuv420p"``.
        rotation: degrees (counter-clockwise) applied to the decoded frames to make them upright.
        audio_codec: codec of the first audio stream, or None when there is none.
        audio_duration: its duration in seconds (None when unknown or no audio).
        audio_sample_rate: its sample rate in Hz.
        container: FFmpeg's name of the container format.
    """

    path: Path
    width: int
    height: int
    fps: Fraction
    frames: int
    duration: float
    codec: str
    pix_fmt: str
    rotation: int = 0
    audio_codec: str | None = None
    audio_duration: float | None = None
    audio_sample_rate: int | None = None
    container: str = ""

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)`` in pixels, like :attr:`~faceshield.io.image.LoadedImage.size`."""
        return self.height, self.width

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path), "width": self.width, "height": self.height,
            "fps": float(self.fps), "fps_fraction": f"{self.fps.numerator}/{self.fps.denominator}",
            "frames": self.frames, "duration": round(self.duration, 6), "codec": self.codec, "pix_fmt": self.pix_fmt,
            "rotation": self.rotation, "has_audio": self.has_audio, "audio_codec": self.audio_codec,
            "audio_duration": None if self.audio_duration is None else round(self.audio_duration, 6),
            "audio_sample_rate": self.audio_sample_rate, "container": self.container,
        }


@dataclass
class LoadedVideo:
    """A video opened by :func:`read_video`: its metadata and a single-pass iterator over its frames.

    Attributes:
        info: :class:`VideoInfo`.
        frames: yields ``(H, W, 3)`` ``uint8`` RGB frames, upright, decoded one at a time; the file is
            closed when the iterator is exhausted or closed. Decoding errors raise ``VideoReadError``.
    """

    info: VideoInfo
    frames: Iterator[np.ndarray] = field(repr=False)

    def __iter__(self) -> Iterator[np.ndarray]:
        return self.frames

    def array(self) -> np.ndarray:
        """All (remaining) frames as one ``(N, H, W, 3)`` ``uint8`` array (short clips only)."""
        frames = list(self.frames)
        return np.stack(frames) if frames else np.zeros((0, self.info.height, self.info.width, 3), np.uint8)


# --------------------------------------------------------------------------------------------- reading


def is_video_path(path: str | os.PathLike[str]) -> bool:
    """True when ``path``'s name ends in one of :data:`VIDEO_EXTENSIONS` (case-insensitively)."""
    return Path(path).suffix.lower() in VIDEO_MUXERS


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """Read a video's metadata and check that its first frame decodes.

    Raises:
        VideoReadError: the file is missing, a directory, empty, not a video (or a still image), has no
            video stream, or its first frame cannot be decoded.
    """
    path = Path(path)
    _check_file(path)
    with _open_input(path) as container:
        return _info(path, container)


def read_video(path: str | os.PathLike[str], *, max_frames: int | None = None) -> LoadedVideo:
    """Open a video: its metadata now, its frames as a lazy iterator of upright RGB arrays.

    Args:
        path: a video file (anything FFmpeg reads: MP4, MOV, MKV, WebM, AVI, ...).
        max_frames: stop after this many frames (None: all).

    Returns:
        :class:`LoadedVideo`; ``np.stack(list(v.frames))`` or ``v.array()`` for an ``(N, H, W, 3)`` array.

    Raises:
        VideoReadError: as :func:`probe_video` (immediately), or later from the iterator when the data
            is corrupt further in.
        ValueError: ``max_frames`` is not a positive integer.
    """
    if max_frames is not None and (isinstance(max_frames, bool) or not isinstance(max_frames, (int, np.integer)) or max_frames <= 0):
        raise ValueError(f"max_frames: expected a positive integer or None, got {max_frames!r}")
    info = probe_video(path)
    return LoadedVideo(info=info, frames=_iter_frames(info, max_frames))


def _check_file(path: Path) -> None:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise VideoReadError(f"cannot read {path}: no such file") from None
    except OSError as e:
        raise VideoReadError(f"cannot read {path}: {_os_reason(e)}") from None
    if path.is_dir():
        raise VideoReadError(f"cannot read {path}: expected a video file, got a directory")
    if not path.is_file():
        raise VideoReadError(f"cannot read {path}: expected a video file, got a special file")
    if st.st_size == 0:
        raise VideoReadError(f"cannot read {path}: the file is empty (0 bytes)")


def _av_open(path: Path) -> Any:
    try:
        return av.open(str(path), "r", metadata_errors="replace")
    except av.error.InvalidDataError:
        raise VideoReadError(f"cannot read {path}: not a video (unrecognised or corrupt data)") from None
    except av.error.FFmpegError as e:
        raise VideoReadError(f"cannot read {path}: {_one_line(e)}") from None


@contextlib.contextmanager
def _open_input(path: Path) -> Iterator[Any]:
    container = _av_open(path)
    try:
        yield container
    finally:
        container.close()


def _info(path: Path, container: Any) -> VideoInfo:
    fmt = container.format.name
    if fmt.startswith("image2") or fmt.endswith("_pipe"):
        raise VideoReadError(f"cannot read {path}: expected a video, got a still image ({fmt.replace('_pipe', '').upper()})")
    if not container.streams.video:
        found = ", ".join(sorted({s.type for s in container.streams})) or "nothing"
        raise VideoReadError(f"cannot read {path}: no video stream (found: {found})")
    vs = container.streams.video[0]
    fps = vs.average_rate or vs.guessed_rate or vs.base_rate
    if not fps or fps <= 0:
        raise VideoReadError(f"cannot read {path}: the video stream has no frame rate")
    fps = Fraction(fps.numerator, fps.denominator)
    try:
        first = next(container.decode(vs), None)
    except av.error.FFmpegError as e:
        raise VideoReadError(f"cannot read {path}: video data is truncated or corrupt ({_one_line(e)})") from None
    if first is None:
        raise VideoReadError(f"cannot read {path}: the video stream has no frames")
    rotation = _rotation(first)
    width, height = (first.height, first.width) if rotation % 180 else (first.width, first.height)
    frames = int(vs.frames or 0)
    if frames <= 0:
        frames = _count_packets(path)
    audio = container.streams.audio[0] if container.streams.audio else None
    audio_duration = None
    if audio is not None:
        if audio.duration and audio.time_base:
            audio_duration = float(audio.duration * audio.time_base)
        elif container.duration:
            audio_duration = container.duration / 1e6
    return VideoInfo(
        path=path, width=int(width), height=int(height), fps=fps, frames=frames, duration=float(frames / fps),
        codec=vs.codec_context.name, pix_fmt=first.format.name, rotation=rotation,
        audio_codec=None if audio is None else audio.codec_context.name,
        audio_duration=audio_duration,
        audio_sample_rate=None if audio is None else int(audio.codec_context.sample_rate or 0) or None,
        container=fmt,
    )


def _rotation(frame: Any) -> int:
    """The counter-clockwise rotation (0, 90, 180, 270) that makes a decoded frame upright."""
    try:
        deg = float(getattr(frame, "rotation", 0) or 0)
    except (TypeError, ValueError):
        return 0
    return int(round(deg / 90)) % 4 * 90


def _count_packets(path: Path) -> int:
    """Frame count of containers without one in the header (MKV, WebM): count video packets."""
    with _open_input(path) as c:
        return sum(1 for p in c.demux(c.streams.video[0]) if p.size)


def _iter_frames(info: VideoInfo, max_frames: int | None) -> Iterator[np.ndarray]:
    n = 0
    with _open_input(info.path) as container:
        vs = container.streams.video[0]
        vs.thread_type = "AUTO"
        try:
            for frame in container.decode(vs):
                rgb = frame.to_ndarray(format="rgb24")
                if info.rotation:
                    rgb = np.ascontiguousarray(np.rot90(rgb, info.rotation // 90))
                yield rgb
                n += 1
                if max_frames is not None and n >= max_frames:
                    return
        except av.error.FFmpegError as e:
            raise VideoReadError(f"cannot read {info.path}: video data is truncated or corrupt at frame {n} ({_one_line(e)})") from None


# --------------------------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class EncoderSettings:
    """What :func:`resolve_codec` chose: FFmpeg encoder name, its options, pixel format, MPEG-style qscale."""

    name: str
    options: dict[str, str]
    pix_fmt: str
    qscale: int | None = None


def resolve_codec(codec: str, crf: int | None = None, pix_fmt: str | None = None) -> EncoderSettings:
    """The FFmpeg encoder, options and pixel format for ``codec`` at quality ``crf``.

    Raises:
        VideoWriteError: unknown codec, not a video encoder, or an encoder this FFmpeg build lacks.
        ValueError: ``crf`` out of the encoder's range, or given for a lossless encoder.
    """
    if not isinstance(codec, str) or not codec.strip():
        raise VideoWriteError(f"codec: expected an encoder name such as {', '.join(sorted(CODEC_ALIASES))}, got {codec!r}")
    name = CODEC_ALIASES.get(codec.strip().lower(), codec.strip())
    try:
        c = av.codec.Codec(name, "w")
    except (av.codec.codec.UnknownCodecError, ValueError):
        raise VideoWriteError(f"unknown or unavailable video codec {codec!r} (expected one of {', '.join(available_codecs())})") from None
    if c.type != "video":
        raise VideoWriteError(f"codec {codec!r} is an {c.type} encoder; expected a video codec such as h264")
    kind, lo, hi, default = _QUALITY.get(c.name, ("crf", 0, 63, None))
    options: dict[str, str] = {}
    qscale = None
    if crf is not None:
        if isinstance(crf, bool) or not isinstance(crf, (int, np.integer)):
            raise ValueError(f"crf: expected an integer, got {crf!r}")
        if kind == "lossless":
            raise ValueError(f"crf: {c.name} is lossless and takes no quality setting, got {crf}")
        if not lo <= crf <= hi:
            raise ValueError(f"crf: expected {lo}..{hi} for {c.name} (lower is better), got {crf}")
    value = default if crf is None else int(crf)
    if value is not None:
        if kind == "crf":
            options["crf"] = str(value)
        else:
            qscale = value
    if c.name == "libvpx-vp9":
        options["b"] = "0"  # constant quality
    elif c.name == "libvpx":
        options["b"] = "20M"  # VP8's crf needs a bit-rate ceiling
    elif c.name == "libx265":
        options["x265-params"] = "log-level=error"
    formats = [f.name for f in (c.video_formats or [])]
    if pix_fmt is None:
        if kind == "lossless":
            pix_fmt = next((f for f in ("gbrp", "bgr0", "rgb24", "bgra") if f in formats), formats[0] if formats else "yuv420p")
        elif c.name == "mjpeg":
            pix_fmt = "yuvj420p"  # JPEG's full-range YUV
        else:
            pix_fmt = "yuv420p" if not formats or "yuv420p" in formats else formats[0]
    elif formats and pix_fmt not in formats:
        raise ValueError(f"pix_fmt: expected one of {', '.join(formats)} for {c.name}, got {pix_fmt!r}")
    return EncoderSettings(name=c.name, options=options, pix_fmt=pix_fmt, qscale=qscale)


def available_codecs() -> list[str]:
    """The common codec names (see :data:`CODEC_ALIASES`) whose encoder this FFmpeg build has."""
    names = []
    for n in ("h264", "hevc", "mpeg4", "vp9", "vp8", "av1", "ffv1", "mjpeg"):
        try:
            av.codec.Codec(CODEC_ALIASES.get(n, n), "w")
            names.append(n)
        except (av.codec.codec.UnknownCodecError, ValueError):
            pass
    return names


def write_video(
    path: str | os.PathLike[str],
    frames: Iterable[np.ndarray],
    fps: float | Fraction,
    *,
    codec: str | None = None,
    crf: int | None = None,
    pix_fmt: str | None = None,
    audio_from: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Encode RGB frames into a video file, atomically, keeping the audio of ``audio_from``.

    Frame ``i`` gets the timestamp ``i / fps`` exactly (constant frame rate). Frames of odd width or
    height are padded by one pixel (edge copy, right / bottom) for chroma-subsampled pixel formats
    such as ``yuv420p``. The audio stream of ``audio_from`` is copied packet by packet when the
    container can hold its codec (AAC in MP4 / MOV / MKV), otherwise re-encoded (AAC, Opus for WebM,
    MP3 for AVI); it is aligned to the source's first video frame and cut where the new video ends.

    Args:
        path: output file; its extension picks the container (:data:`VIDEO_EXTENSIONS`).
        frames: ``(H, W, 3)`` ``uint8`` RGB arrays, all the same size; consumed once, lazily.
        fps: frame rate (a :class:`~fractions.Fraction` keeps e.g. 30000/1001 exact).
        codec: ``h264``, ``hevc``, ``mpeg4``, ``vp9``, ``vp8``, ``av1``, ``ffv1`` (lossless) or any FFmpeg
            video encoder name; None: :func:`default_codec` (``h264``, ``vp9`` for WebM).
        crf: quality, lower is better: CRF for x264 / x265 (0-51, default 18 / 20), VP9 / AV1 (default
            30); qscale 1-31 for MPEG-4 / MJPEG (default 2). None: the default.
        pix_fmt: encoder pixel format (default ``yuv420p``; RGB for lossless codecs).
        audio_from: a video or audio file whose first audio stream goes into the output (None: no audio).
        overwrite: replace an existing ``path``.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        VideoWriteError: unsupported extension, unknown / unavailable codec, a codec the container
            cannot hold, no frames, or an encoder / muxer failure (no file is left behind).
        VideoReadError: ``audio_from`` cannot be read.
        OutputExistsError: ``path`` exists and ``overwrite`` is False, or ``path`` is ``audio_from``.
        TypeError, ValueError: bad frames, ``fps`` or ``crf``.
    """
    path = Path(path)
    muxer = VIDEO_MUXERS.get(path.suffix.lower())
    if muxer is None:
        raise VideoWriteError(f"cannot write {path}: expected a video extension ({', '.join(VIDEO_EXTENSIONS)}), got {path.suffix or 'none'!r}")
    rate = _check_fps(fps)
    codec = default_codec(path) if codec is None else codec
    enc = resolve_codec(codec, crf, pix_fmt)
    with _probe_output(muxer) as supported:
        if enc.name not in supported:
            raise VideoWriteError(f"cannot write {path}: a {path.suffix} file cannot hold {codec!r} video (try .mkv or another codec)")
    source = None
    if audio_from is not None:
        source = Path(audio_from)
        if same_file(source, path):
            raise OutputExistsError(f"{path}: output would replace the original; choose another output")
        _check_file(source)
    with atomic_output(path, overwrite=overwrite, suffix=".tmp" + path.suffix.lower()) as tmp:
        _encode(tmp, path, muxer, iter(frames), rate, enc, codec, source)
    return path


def default_codec(path: str | os.PathLike[str]) -> str:
    """The codec :func:`write_video` uses for ``path`` when none is given: ``vp9`` for WebM, else ``h264``."""
    return "vp9" if VIDEO_MUXERS.get(Path(path).suffix.lower()) == "webm" else "h264"


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """True when ``a`` and ``b`` name the same file (or would, once created)."""
    a, b = Path(a), Path(b)
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def _check_fps(fps: float | Fraction) -> Fraction:
    if isinstance(fps, bool) or not isinstance(fps, (int, float, Fraction, np.integer, np.floating)):
        raise TypeError(f"fps: expected a number or Fraction, got {type(fps).__name__}")
    if not np.isfinite(float(fps)) or float(fps) <= 0:
        raise ValueError(f"fps: expected a positive frame rate, got {fps!r}")
    return Fraction(fps).limit_denominator(1_001_000) if not isinstance(fps, Fraction) else fps


@contextlib.contextmanager
def _probe_output(muxer: str) -> Iterator[set[str]]:
    """The codec names a muxer accepts (PyAV needs an output context to ask)."""
    import io

    c = av.open(io.BytesIO(), "w", format=muxer)
    try:
        yield set(c.supported_codecs)
    finally:
        with contextlib.suppress(Exception):
            c.close()


def _needs_even(pix_fmt: str) -> bool:
    return any(s in pix_fmt for s in ("420", "422", "411", "410")) or pix_fmt in ("nv12", "nv21", "nv16")


def _check_frame(rgb: Any, i: int, shape: tuple[int, ...] | None) -> np.ndarray:
    if not isinstance(rgb, np.ndarray):
        raise TypeError(f"frame {i}: expected a numpy uint8 array of shape (H, W, 3), got {type(rgb).__name__}")
    if rgb.dtype != np.uint8:
        raise TypeError(f"frame {i}: expected dtype uint8, got {rgb.dtype}")
    if rgb.ndim != 3 or rgb.shape[2] != 3 or 0 in rgb.shape:
        raise ValueError(f"frame {i}: expected shape (H, W, 3), got {rgb.shape}")
    if shape is not None and rgb.shape != shape:
        raise ValueError(f"frame {i}: expected shape {shape} like the first frame, got {rgb.shape}")
    return rgb


def _encode(tmp: Path, path: Path, muxer: str, frames: Iterator[np.ndarray], fps: Fraction, enc: EncoderSettings, codec: str, source: Path | None) -> None:
    first = next(frames, None)
    if first is None:
        raise VideoWriteError(f"cannot write {path}: no frames to write")
    shape = _check_frame(first, 0, None).shape
    h, w = shape[:2]
    pad = (h % 2, w % 2) if _needs_even(enc.pix_fmt) else (0, 0)
    if any(pad):
        log.info("%s: padding %dx%d frames to %dx%d for %s", path, w, h, w + pad[1], h + pad[0], enc.pix_fmt)

    def fail(what: str, e: BaseException) -> VideoWriteError:
        return VideoWriteError(f"cannot write {path}: {what} ({_one_line(e)})")

    try:
        out = av.open(str(tmp), "w", format=muxer)
    except av.error.FFmpegError as e:
        raise fail(f"cannot create a {muxer} file", e) from None
    audio = None
    failed = True
    try:
        try:
            vs = out.add_stream(enc.name, rate=fps, options=dict(enc.options))
            vs.width, vs.height, vs.pix_fmt = w + pad[1], h + pad[0], enc.pix_fmt
            vs.codec_context.time_base = 1 / fps
            if enc.qscale is not None:
                vs.codec_context.qscale = True
                vs.codec_context.global_quality = enc.qscale * _FF_QP2LAMBDA
        except (av.error.FFmpegError, ValueError) as e:
            raise fail(f"cannot set up the {codec!r} encoder", e) from None
        if source is not None:
            audio = _AudioCopy(source, out, muxer, path)
        n = 0
        rgb = first
        while rgb is not None:
            rgb = _check_frame(rgb, n, shape)
            if any(pad):
                rgb = np.pad(rgb, ((0, pad[0]), (0, pad[1]), (0, 0)), mode="edge")
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts, frame.time_base = n, 1 / fps
            try:
                packets = vs.encode(frame)
                for p in packets:
                    out.mux(p)
            except av.error.FFmpegError as e:
                raise fail(f"the {codec!r} encoder failed at frame {n}", e) from None
            n += 1
            if audio is not None:
                audio.mux_until(n / fps)
            rgb = next(frames, None)
        try:
            for p in vs.encode(None):
                out.mux(p)
        except av.error.FFmpegError as e:
            raise fail(f"the {codec!r} encoder failed while flushing", e) from None
        if audio is not None:
            audio.finish(n / fps)
        failed = False
    finally:
        if audio is not None:
            audio.close()
        try:
            out.close()
        except av.error.FFmpegError as e:
            if not failed:
                raise fail("cannot finish the file", e) from None


class _AudioCopy:
    """Copies (or, when the container cannot hold the codec, re-encodes) the first audio stream of
    ``source`` into ``out``, interleaved with the video: :meth:`mux_until` writes the audio up to a time.

    Times are shifted so the source's first video frame is at 0 (the new video starts at 0), and audio
    starting after the end of the new video is dropped.
    """

    def __init__(self, source: Path, out: Any, muxer: str, path: Path) -> None:
        self.out, self.path = out, path
        self.src = _av_open(source)
        self.packets: Iterator[tuple[float, Any]] = iter(())
        self.pending: tuple[float, Any] | None = None
        self.encoder: str | None = None
        self.end = float("inf")
        if not self.src.streams.audio:
            log.info("%s: no audio stream to copy", source)
            return
        ain = self.src.streams.audio[0]
        video = self.src.streams.video[0] if self.src.streams.video else None
        self.offset = float(video.start_time * video.time_base) if video is not None and video.start_time is not None else 0.0
        name = ain.codec_context.name
        try:
            if name in _AUDIO_COPY.get(muxer, frozenset()):
                self.stream = out.add_stream_from_template(ain)
                self.packets = self._copied(ain)
            else:
                enc = _AUDIO_ENCODER[muxer]
                rate = ain.codec_context.sample_rate or 48000
                if enc == "libopus" and rate not in (8000, 12000, 16000, 24000, 48000):
                    rate = 48000
                self.stream = out.add_stream(enc, rate=rate)
                self.encoder = enc
                self.packets = self._encoded(ain)
                log.info("%s: re-encoding %s audio as %s for %s", path, name, enc, muxer)
        except (av.error.FFmpegError, ValueError) as e:
            raise VideoWriteError(f"cannot write {path}: cannot add the audio of {source} ({_one_line(e)})") from None

    def _copied(self, ain: Any) -> Iterator[tuple[float, Any]]:
        shift = round(self.offset / ain.time_base) if self.offset else 0
        for p in self.src.demux(ain):
            if p.dts is None or p.pts is None:
                continue
            if shift:
                p.pts, p.dts = p.pts - shift, p.dts - shift
                if (p.pts + (p.duration or 0)) <= 0:
                    continue
            t = float(p.pts * p.time_base)
            if t >= self.end:
                return
            p.stream = self.stream
            yield t, p

    def _encoded(self, ain: Any) -> Iterator[tuple[float, Any]]:
        t = 0.0
        for frame in self.src.decode(ain):
            t = (frame.time or 0.0) - self.offset
            if t + frame.samples / frame.sample_rate <= 0:
                continue
            if t >= self.end:
                break
            frame.pts = None
            for p in self.stream.encode(frame):
                yield t, p
        for p in self.stream.encode(None):
            yield t, p

    def mux_until(self, t: float) -> None:
        """Mux the audio packets that start before ``t`` seconds."""
        try:
            while True:
                if self.pending is None:
                    self.pending = next(self.packets, None)
                    if self.pending is None:
                        return
                if self.pending[0] >= t:
                    return
                self.out.mux(self.pending[1])
                self.pending = None
        except av.error.FFmpegError as e:
            raise VideoWriteError(f"cannot write {self.path}: audio failed ({_one_line(e)})") from None

    def finish(self, end: float) -> None:
        """Write the rest of the audio that starts before the video's ``end`` (the rest is dropped)."""
        self.end = end
        if self.pending is not None and self.pending[0] >= end:
            self.pending = None
        self.mux_until(float("inf"))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.src.close()
