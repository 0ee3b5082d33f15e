"""`faceshield protect clip.mp4 -o out.mp4`: videos are routed to the video pipeline; the original is never
touched, nothing is overwritten without --overwrite and a failure leaves no output."""
import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from faceshield.cli.main import app
from faceshield.io.video import probe_video

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def clip(tmp_path_factory, make_clip):
    path = tmp_path_factory.mktemp("in") / "clip.mp4"
    make_clip(path, n=8, size=144)
    return path


def test_protect_video(tmp_path, clip):
    before = clip.read_bytes()
    out = tmp_path / "out.mp4"
    res = run("protect", clip, "-o", out, "--steps", "2", "--jitter", "3", "--keyframe-interval", "3", "--crf", "20")
    assert res.exit_code == 0, res.output
    assert "8 frames at 25 fps, 3 attacked, faces in 8" in res.output and "audio kept" in res.output and "frames/s" in res.output
    info = probe_video(out)
    assert (info.frames, info.fps, info.codec, info.audio_codec) == (8, 25, "h264", "aac")
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["key_frames"] == 3 and report["settings"]["crf"] == 20 and report["source"]["frames"] == 8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json", "out.mp4"]  # no temp files
    res = run("protect", clip, "-o", out, "--steps", "2")
    assert res.exit_code == 1 and "exists; pass --overwrite" in res.output
    res = run("protect", clip, "-o", tmp_path / "dir", "--steps", "2", "--jitter", "3", "--keyframe-interval", "8", "--codec", "mpeg4")
    assert res.exit_code == 0, res.output
    assert probe_video(tmp_path / "dir" / "clip.mp4").codec == "mpeg4" and (tmp_path / "dir" / "clip.json").is_file()
    assert clip.read_bytes() == before


def test_protect_video_errors(tmp_path, clip, astronaut):
    out = tmp_path / "o"
    (tmp_path / "junk.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    res = run("protect", tmp_path / "junk.mp4", "-o", out / "a.mp4", "--steps", "2")
    assert res.exit_code == 1 and "junk.mp4: not a video" in res.output
    res = run("protect", clip, "-o", out / "a.mp4", "--codec", "nonesuch")
    assert res.exit_code == 2 and "unknown or unavailable video codec 'nonesuch'" in res.output
    res = run("protect", clip, "-o", out / "a.mp4", "--steps", "2", "--codec", "h264_nvenc")
    assert res.exit_code == 1 and "h264_nvenc" in res.output
    res = run("protect", clip, "-o", out / "a.webm", "--steps", "2", "--codec", "h264")
    assert res.exit_code == 1 and "cannot hold 'h264' video" in res.output
    res = run("protect", clip, "-o", out / "a.mp4", "--crf", "99")
    assert res.exit_code == 2 and "crf: expected 0..51" in res.output
    res = run("protect", clip, "-o", out / "a.mp4", "--keyframe-interval", "0")
    assert res.exit_code == 2 and "--keyframe-interval" in res.output
    res = run("protect", clip, "-o", clip, "--overwrite")
    assert res.exit_code == 1 and "would replace the original" in res.output
    Image.fromarray(astronaut).save(tmp_path / "a.png")
    res = run("protect", clip, tmp_path / "a.png", "-o", out)
    assert res.exit_code == 2 and "only videos or only images" in res.output
    assert not out.exists() or list(out.iterdir()) == []
