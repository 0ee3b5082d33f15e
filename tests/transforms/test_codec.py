"""Video codec round trips (PyAV): the paper's C (MPEG-4) and C2 (MPEG-4, then H.264)."""
import numpy as np
import pytest

from faceshield.transforms import VideoCodec, create_transform, video_roundtrip


def clip(astronaut, n, h, w):
    return [np.ascontiguousarray(astronaut[3 * i : 3 * i + h, 2 * i : 2 * i + w]) for i in range(n)]


def psnr(a, b):
    return 10 * np.log10(255**2 / np.mean((a.astype(float) - b) ** 2))


@pytest.mark.parametrize("size", [(64, 48), (37, 51)])
@pytest.mark.parametrize("spec", ["c", "h264:crf=23", "c2"])
def test_roundtrip_keeps_frame_count_and_size(astronaut, size, spec):
    frames = clip(astronaut, 6, *size)
    out = create_transform(spec).apply_frames(frames)
    assert len(out) == 6
    assert all(f.shape == (*size, 3) and f.dtype == np.uint8 for f in out)
    assert np.mean([psnr(a, b) for a, b in zip(out, frames)]) > 24  # the same pictures, in order
    assert psnr(out[3], frames[3]) > psnr(out[3], frames[0])


def test_single_image_is_a_one_frame_clip(astronaut):
    img = np.ascontiguousarray(astronaut[:101, :99])
    c = create_transform("c")
    out = c(img)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.array_equal(out, video_roundtrip([img], "mpeg4", qscale=4)[0])
    assert np.array_equal(c(img), out)  # reproducible
    # MPEG-4 codes the first frame of a longer clip of copies identically
    assert np.array_equal(VideoCodec("mpeg4", qscale=4, still_frames=3)(img), out)


def test_quality_settings_matter(astronaut):
    img = np.ascontiguousarray(astronaut[100:228, 150:278])
    fine, coarse = VideoCodec("mpeg4", qscale=2)(img), VideoCodec("mpeg4", qscale=20)(img)
    assert psnr(fine, img) > psnr(coarse, img) + 3
    c2 = create_transform("c2")(img)
    assert psnr(c2, img) < psnr(VideoCodec("mpeg4", qscale=4)(img), img)  # double compression loses more
    assert create_transform("h264:bitrate=200000")(img).shape == img.shape


def test_bad_clips_and_settings(astronaut):
    with pytest.raises(ValueError, match="expected frames of one size"):
        video_roundtrip([astronaut[:32, :32], astronaut[:34, :32]])
    with pytest.raises(ValueError, match="expected a non-empty sequence"):
        video_roundtrip([])
    with pytest.raises(ValueError, match=r"codec: expected one of \('mpeg4', 'h264'\), got 'vp9'"):
        VideoCodec("vp9")
    with pytest.raises(ValueError, match=r"qscale: expected an integer in \[1, 31\], got 40"):
        VideoCodec("mpeg4", qscale=40)
    with pytest.raises(ValueError, match="crf: only for codec='h264'"):
        VideoCodec("mpeg4", crf=20)
    with pytest.raises(TypeError, match="is not differentiable"):
        import torch

        VideoCodec()(torch.rand(1, 3, 8, 8))
