"""Video compression round trips with PyAV (FFmpeg): Landmark Breaker's ``C`` and ``C2``.

Landmark Breaker Sec. IV-D: "We create a video using the adversarial images using the codec in
MPEG4 (denoted as C) and then separate the videos into frames ... We also perform double
compression to the MPEG4 videos using the codec in H264 (denoted as C2)." Here:

* ``C``  = :data:`C_DEFAULT`: MPEG-4 Part 2 (FFmpeg's ``mpeg4`` encoder) at a fixed quantiser
  ``qscale`` (1 best .. 31 worst; default 4, which on the astronaut sample gives about the quality
  OpenCV's ``VideoWriter`` with the ``mp4v`` FourCC produces at its default 1 bit per pixel);
* ``C2`` = ``C`` followed by H.264 (``libx264``) at ``crf`` 23 (FFmpeg's default), each stage a
  complete encode -> mp4 file -> decode.

Both run in memory (an ``io.BytesIO`` mp4 container), single-threaded and therefore reproducible.
Frames are converted RGB -> YUV 4:2:0 -> RGB by FFmpeg's swscale (BT.601). 4:2:0 needs even sizes:
odd heights / widths are padded by repeating the last row / column and cropped back.

A single image is coded as a clip of ``still_frames`` copies (default 1: a one-frame clip, i.e. an
intra-coded frame, which is what the first frame of any video is) and the first decoded frame is
returned. With more copies MPEG-4 gives the same first frame, but x264's macro-block tree gives the
first frame a finer quantiser because the later copies reference it.
"""
from __future__ import annotations

import io
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from faceshield.transforms.base import Transform, check_frames

CODECS = ("mpeg4", "h264")
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
_ENCODER = {"mpeg4": "mpeg4", "h264": "libx264"}
#: Default MPEG-4 quantiser of ``C`` and default x264 CRF of the second stage of ``C2``.
C_QSCALE = 4
C2_CRF = 23


def _check_int(value, name: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float)) or value != int(value):
        raise ValueError(f"{name}: expected an integer in [{lo}, {hi}], got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name}: expected an integer in [{lo}, {hi}], got {value}")
    return int(value)


def video_roundtrip(
    frames: Sequence[np.ndarray] | np.ndarray,
    codec: str = "mpeg4",
    *,
    qscale: int | None = None,
    crf: int | None = None,
    bitrate: int | None = None,
    fps: int = 25,
    preset: str = "medium",
) -> list[np.ndarray]:
    """Encode ``frames`` into an in-memory mp4 and decode them back.

    Args:
        frames: ``N`` frames ``(H, W, 3)`` uint8 RGB of one size (a list or an ``(N, H, W, 3)`` array).
        codec: ``"mpeg4"`` (MPEG-4 Part 2) or ``"h264"`` (libx264).
        qscale: MPEG-4 fixed quantiser in [1, 31] (default :data:`C_QSCALE` unless ``bitrate``).
        crf: H.264 constant rate factor in [0, 51] (default :data:`C2_CRF` unless ``bitrate``).
        bitrate: target bits per second instead of a fixed quality (either codec).
        fps: frame rate (it matters only for rate control).
        preset: x264 preset (``ultrafast`` .. ``veryslow``).

    Returns:
        ``N`` decoded frames ``(H, W, 3)`` uint8 RGB, in order.

    Raises:
        ValueError: bad frames or settings. RuntimeError: the decoder returned a different number of frames.
    """
    import av

    frames = check_frames(frames)
    if codec not in CODECS:
        raise ValueError(f"codec: expected one of {CODECS}, got {codec!r}")
    fps = _check_int(fps, "fps", 1, 240)
    h, w = frames[0].shape[:2]
    ph, pw = h % 2, w % 2
    if ph or pw:
        frames = [np.pad(f, ((0, ph), (0, pw), (0, 0)), mode="edge") for f in frames]
    options: dict[str, str] = {}
    if bitrate is not None:
        bitrate = _check_int(bitrate, "bitrate", 1000, 10**9)
    elif codec == "mpeg4":
        q = _check_int(C_QSCALE if qscale is None else qscale, "qscale", 1, 31)
        options.update(qmin=str(q), qmax=str(q))  # a fixed quantiser (what ffmpeg's -q:v asks for)
    else:
        options["crf"] = str(_check_int(C2_CRF if crf is None else crf, "crf", 0, 51))
    if codec == "h264":
        if preset not in PRESETS:
            raise ValueError(f"preset: expected one of {PRESETS}, got {preset!r}")
        options["preset"] = preset

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream(_ENCODER[codec], rate=fps)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = 1
        if bitrate is not None:
            stream.bit_rate = bitrate
        stream.options = options
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, fps)
            out.mux(stream.encode(vf))
        out.mux(stream.encode(None))
    buf.seek(0)
    with av.open(buf, "r") as inp:
        vs = inp.streams.video[0]
        vs.codec_context.thread_count = 1
        decoded = [f.to_ndarray(format="rgb24")[:h, :w] for f in inp.decode(vs)]
    if len(decoded) != len(frames):
        raise RuntimeError(f"{codec}: encoded {len(frames)} frames but decoded {len(decoded)}")
    return [np.ascontiguousarray(f) for f in decoded]


class VideoCodec(Transform):
    """A video codec round trip (``mpeg4:q=4``, ``h264:crf=23``; see :func:`video_roundtrip`).

    ``t.apply_frames(frames)``: ``N`` ``(H, W, 3)`` uint8 RGB frames -> ``N`` frames, coded as one
    clip. ``t(rgb)``: a single ``(H, W, 3)`` uint8 image is coded as a clip of ``still_frames``
    copies and the first decoded frame is returned (see the module docstring). Not differentiable.

    Args:
        codec: ``"mpeg4"`` or ``"h264"``.
        qscale: MPEG-4 quantiser in [1, 31]; crf: H.264 CRF in [0, 51]; bitrate: bits/s instead.
        fps: frame rate (Default: 25). preset: x264 preset. still_frames: copies for a single image.
    """

    name = "video"

    def __init__(
        self,
        codec: str = "mpeg4",
        *,
        qscale: int | None = None,
        crf: int | None = None,
        bitrate: int | None = None,
        fps: int = 25,
        preset: str = "medium",
        still_frames: int = 1,
    ) -> None:
        if codec not in CODECS:
            raise ValueError(f"codec: expected one of {CODECS}, got {codec!r}")
        if codec == "mpeg4" and crf is not None:
            raise ValueError("crf: only for codec='h264' (MPEG-4 takes qscale)")
        if codec == "h264" and qscale is not None:
            raise ValueError("qscale: only for codec='mpeg4' (H.264 takes crf)")
        self.codec = codec
        self.qscale = None if qscale is None else _check_int(qscale, "qscale", 1, 31)
        self.crf = None if crf is None else _check_int(crf, "crf", 0, 51)
        if self.qscale is None and self.crf is None and bitrate is None:
            if codec == "mpeg4":
                self.qscale = C_QSCALE
            else:
                self.crf = C2_CRF
        self.bitrate = None if bitrate is None else _check_int(bitrate, "bitrate", 1000, 10**9)
        self.fps = _check_int(fps, "fps", 1, 240)
        if preset not in PRESETS:
            raise ValueError(f"preset: expected one of {PRESETS}, got {preset!r}")
        self.preset = preset
        self.still_frames = _check_int(still_frames, "still_frames", 1, 1000)

    def apply_frames(self, frames) -> list[np.ndarray]:
        return video_roundtrip(frames, self.codec, qscale=self.qscale, crf=self.crf, bitrate=self.bitrate, fps=self.fps, preset=self.preset)

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        return self.apply_frames([rgb] * self.still_frames)[0]

    @property
    def spec(self) -> str:
        if self.bitrate is not None:
            quality = f"bitrate={self.bitrate}"
        else:
            quality = f"q={self.qscale}" if self.codec == "mpeg4" else f"crf={self.crf}"
        defaults = (("fps", self.fps, 25), ("frames", self.still_frames, 1), ("preset", self.preset, "medium" if self.codec == "h264" else self.preset))
        extra = "".join(f",{k}={v}" for k, v, d in defaults if v != d)
        return f"{self.codec}:{quality}{extra}"


__all__ = ["C2_CRF", "CODECS", "C_QSCALE", "VideoCodec", "video_roundtrip"]
