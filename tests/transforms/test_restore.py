"""A forger's restorations: library calls that keep the image's shape, restore the same image the
same way, and actually remove noise; bad specs are refused with the spec quoted."""
import cv2
import numpy as np
import pytest

from faceshield.transforms import create_transform
from faceshield.transforms.restore import RESTORATIONS

DENOISERS = ["median:3", "bilateral:25", "nlmeans:8", "tv:0.08", "wavelet:0.05", "deflect:100"]


@pytest.fixture(scope="module")
def face(astronaut):
    return astronaut[20:276, 100:356]


@pytest.fixture(scope="module")
def smooth(face):
    return cv2.GaussianBlur(face, (0, 0), 2)  # a clean image with no fine texture to lose


@pytest.fixture(scope="module")
def noisy(smooth):
    rng = np.random.default_rng(0)
    return np.clip(smooth.astype(int) + rng.integers(-24, 25, smooth.shape), 0, 255).astype(np.uint8)


def _mse(a, b):
    return float(np.mean((a.astype(float) - b.astype(float)) ** 2))


@pytest.mark.parametrize("name", sorted(RESTORATIONS))
def test_every_restoration_keeps_shape_is_deterministic_and_round_trips(name, face):
    t = create_transform(RESTORATIONS[name][3])
    out = t(face)
    assert out.shape == face.shape and out.dtype == np.uint8
    assert np.array_equal(t(face), out) and create_transform(t.spec) == t


@pytest.mark.parametrize("spec", DENOISERS)
def test_denoisers_remove_noise(spec, smooth, noisy):
    assert _mse(create_transform(spec)(noisy), smooth) < 0.7 * _mse(noisy, smooth)  # measured 0.09-0.47


def test_bit_depth_and_resize_pad(face):
    assert len(np.unique(create_transform("bits:3")(face))) <= 8
    assert np.array_equal(create_transform("bits:8")(face), face)
    out = create_transform("resizepad:0.8")(face)
    assert out.shape == face.shape and not np.array_equal(out, face)


@pytest.mark.parametrize("spec, msg", [("median:4", "odd"), ("median", "missing the k"), ("bits:9", "up to 8"), ("tv:-1", "positive"), ("nlmeans:h=x", "number")])
def test_bad_specs(spec, msg):
    with pytest.raises(ValueError, match=msg):
        create_transform(spec)
