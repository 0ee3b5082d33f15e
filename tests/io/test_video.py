"""Video reading and writing: frame count, exact frame rate and audio survive; bad files and codecs
get one clear error and leave nothing behind."""
import os
import re
from fractions import Fraction

import av
import numpy as np
import pytest

from faceshield.core.errors import OutputExistsError, VideoReadError, VideoWriteError
from faceshield.io import read_video as lazy_read_video
from faceshield.io.video import default_codec, is_video_path, probe_video, read_video, resolve_codec, write_video


@pytest.fixture(scope="module")
def clip(tmp_path_factory, make_clip):
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    frames = make_clip(path, n=10, size=160)
    return path, np.stack(frames)


def listing(d):
    return sorted(p.name for p in d.iterdir())


def test_probe_and_read(clip):
    path, frames = clip
    info = probe_video(path)
    assert (info.width, info.height, info.frames, info.fps) == (160, 160, 10, Fraction(25))
    assert info.codec == "h264" and info.has_audio and info.audio_codec == "aac"
    assert info.duration == pytest.approx(0.4) and info.audio_duration == pytest.approx(0.4, abs=0.05)
    assert info.to_dict()["fps_fraction"] == "25/1"
    video = read_video(path)
    assert video.info == info
    got = video.array()
    assert got.shape == frames.shape and got.dtype == np.uint8
    assert np.abs(got.astype(int) - frames).mean() < 6  # H.264 at its default quality
    assert len(list(read_video(path, max_frames=3).frames)) == 3
    assert lazy_read_video is read_video


def test_round_trip_keeps_frames_rate_and_audio(tmp_path, clip):
    src, _ = clip
    frames = read_video(src).array()
    out = write_video(tmp_path / "out.mp4", iter(frames), probe_video(src).fps, audio_from=src)
    info = probe_video(out)
    assert (info.frames, info.fps, info.codec, info.size) == (10, Fraction(25), "h264", (160, 160))
    assert info.audio_codec == "aac" and info.audio_duration == pytest.approx(probe_video(src).audio_duration, abs=0.05)
    with av.open(str(out)) as c:  # audio copied packet for packet, not re-encoded
        with av.open(str(src)) as s:
            assert bytes(next(c.demux(audio=0))) == bytes(next(s.demux(audio=0)))
    assert np.abs(read_video(out).array().astype(int) - frames).mean() < 4  # CRF 18
    assert listing(tmp_path) == ["out.mp4"]


@pytest.mark.parametrize("name, codec, audio", [("o.mkv", "ffv1", "aac"), ("o.webm", None, "opus"), ("o.mov", "mpeg4", "aac"), ("o.avi", "h264", "mp3")])
def test_containers_and_codecs(tmp_path, clip, name, codec, audio):
    src, _ = clip
    frames = read_video(src).array()
    write_video(tmp_path / name, frames, 25, codec=codec, audio_from=src)
    info = probe_video(tmp_path / name)
    assert info.frames == 10 and info.fps == 25 and info.audio_codec.startswith(audio)
    assert info.codec == {"ffv1": "ffv1", None: "vp9", "mpeg4": "mpeg4", "h264": "h264"}[codec]
    if codec == "ffv1":  # lossless: exactly the frames that went in
        assert np.array_equal(read_video(tmp_path / name).array(), frames)


def test_exact_ntsc_rate_and_odd_size(tmp_path):
    frames = [np.full((75, 91, 3), 40 * i, np.uint8) for i in range(5)]
    write_video(tmp_path / "a.mkv", frames, 30000 / 1001, codec="ffv1")
    info = probe_video(tmp_path / "a.mkv")
    assert info.fps == Fraction(30000, 1001) and info.size == (75, 91) and not info.has_audio
    assert np.array_equal(read_video(tmp_path / "a.mkv").array(), np.stack(frames))
    write_video(tmp_path / "b.mp4", frames, Fraction(30000, 1001))  # yuv420p needs even sizes: padded
    info = probe_video(tmp_path / "b.mp4")
    assert info.fps == Fraction(30000, 1001) and info.size == (76, 92) and info.frames == 5


def test_display_rotation_is_applied(tmp_path, clip):
    upright = read_video(clip[0]).array()[0][:, :120]  # 160 high, 120 wide
    stored = np.ascontiguousarray(np.rot90(upright, 1))  # as a phone stores a portrait video
    with av.open(str(tmp_path / "r.mp4"), "w") as c:
        v = c.add_stream("libx264", rate=25, options={"crf": "10"})
        v.width, v.height, v.pix_fmt = stored.shape[1], stored.shape[0], "yuv420p"
        v.set_display_rotation(-90)
        for p in [*v.encode(av.VideoFrame.from_ndarray(stored, format="rgb24")), *v.encode(None)]:
            c.mux(p)
    video = read_video(tmp_path / "r.mp4")
    assert video.info.rotation == 270 and video.info.size == (160, 120)
    got = video.array()[0]
    assert np.abs(got.astype(int) - upright).mean() < 3


def test_bad_inputs(tmp_path, clip, astronaut):
    from PIL import Image

    (tmp_path / "random.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    (tmp_path / "notes.mp4").write_text("not a video\n")
    (tmp_path / "empty.mp4").write_bytes(b"")
    Image.fromarray(astronaut).save(tmp_path / "photo.mp4", format="PNG")
    with av.open(str(tmp_path / "sound.m4a"), "w") as c:
        a = c.add_stream("aac", rate=16000)
        f = av.AudioFrame.from_ndarray(np.zeros((1, 4096), np.float32), format="flt", layout="mono")
        f.sample_rate = 16000
        for p in [*a.encode(f), *a.encode(None)]:
            c.mux(p)
    cases = {
        "missing.mp4": "no such file", "random.mp4": "not a video", "notes.mp4": "not a video", "empty.mp4": "the file is empty",
        "photo.mp4": r"expected a video, got a still image \(PNG\)", "sound.m4a": r"no video stream \(found: audio\)",
    }
    for name, msg in cases.items():
        with pytest.raises(VideoReadError, match=re.escape(f"cannot read {tmp_path / name}: ") + msg):
            read_video(tmp_path / name)
    with pytest.raises(VideoReadError, match="expected a video file, got a directory"):
        probe_video(tmp_path)
    with pytest.raises(ValueError, match="max_frames"):
        read_video(clip[0], max_frames=0)


def test_codec_errors_leave_nothing(tmp_path, clip):
    src, frames = clip
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(VideoWriteError, match="unknown or unavailable video codec 'nonesuch'"):
        write_video(out / "a.mp4", frames, 25, codec="nonesuch", audio_from=src)
    with pytest.raises(VideoWriteError, match="'aac' is an audio encoder"):
        write_video(out / "a.mp4", frames, 25, codec="aac")
    with pytest.raises(VideoWriteError, match=r"a \.webm file cannot hold 'h264' video"):
        write_video(out / "a.webm", frames, 25, codec="h264")
    with pytest.raises(VideoWriteError, match="expected a video extension"):
        write_video(out / "a.png", frames, 25)
    with pytest.raises(ValueError, match=r"crf: expected 0\.\.51 for libx264"):
        write_video(out / "a.mp4", frames, 25, crf=60)
    with pytest.raises(ValueError, match="ffv1 is lossless"):
        write_video(out / "a.mkv", frames, 25, codec="ffv1", crf=10)
    with pytest.raises(VideoWriteError, match="no frames to write"):
        write_video(out / "a.mp4", [], 25)
    # an encoder FFmpeg knows but cannot start here (no GPU) fails when it opens, mid-write
    with pytest.raises(VideoWriteError, match=r"cannot write .*a\.mp4: .*h264_nvenc"):
        write_video(out / "a.mp4", frames, 25, codec="h264_nvenc", audio_from=src)
    with pytest.raises(ValueError, match=r"frame 1: expected shape \(160, 160, 3\)"):
        write_video(out / "a.mp4", [frames[0], frames[1][:80]], 25)
    with pytest.raises(VideoReadError, match="not a video"):
        (tmp_path / "junk.mp4").write_text("junk")
        write_video(out / "a.mp4", frames, 25, audio_from=tmp_path / "junk.mp4")

    def failing():
        yield frames[0]
        yield frames[1]
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_video(out / "a.mp4", failing(), 25, audio_from=src)
    assert listing(out) == []  # no partial output, no temp file


def test_existing_output_and_source_protected(tmp_path, clip):
    src, frames = clip
    before = src.read_bytes()
    with pytest.raises(OutputExistsError, match="output would replace the original"):
        write_video(src, frames, 25, audio_from=src, overwrite=True)
    with pytest.raises(OutputExistsError, match="exists; pass --overwrite"):
        write_video(src, frames, 25)
    assert src.read_bytes() == before
    (tmp_path / "o.mp4").write_bytes(b"old")
    with pytest.raises(OutputExistsError, match="exists; pass --overwrite"):
        write_video(tmp_path / "o.mp4", frames, 25)
    write_video(tmp_path / "o.mp4", frames, 25, overwrite=True)
    assert probe_video(tmp_path / "o.mp4").frames == 10
    assert oct(os.stat(tmp_path / "o.mp4").st_mode & 0o777) != "0o600"  # normal permissions, not mkstemp's


def test_helpers():
    assert is_video_path("a/B.MP4") and is_video_path("x.webm") and not is_video_path("x.png")
    assert default_codec("x.webm") == "vp9" and default_codec("x.mp4") == "h264"
    assert resolve_codec("h264").options["crf"] == "18" and resolve_codec("mpeg4", 4).qscale == 4
    assert resolve_codec("ffv1").pix_fmt in ("gbrp", "bgr0")
