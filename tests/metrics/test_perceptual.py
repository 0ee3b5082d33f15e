"""Visibility measures order known cases the way people see them."""
import cv2
import numpy as np
import pytest

from faceshield.metrics.perceptual import FACE_SCALE, butteraugli_available, face_crops, flip, ssimulacra2, visibility

FACE = np.array([181.0, 62.0, 268.0, 172.0])  # the astronaut's face box (MTCNN's, rounded)


def _cases(astronaut):
    """identical, +-2 noise, +-8 noise and a blotch pattern (+-8 colour cells of 6 px, as an attack
    without a perceptual budget leaves), each only around the face, as the attacks perturb."""
    rng = np.random.default_rng(0)
    a = astronaut
    region = np.zeros(a.shape[:2], bool)
    region[40:200, 150:300] = True

    def put(d):
        return np.clip(a.astype(int) + d * region[..., None], 0, 255).astype(np.uint8)

    cells = rng.choice([-1.0, 1.0], size=(a.shape[0] // 6 + 1, a.shape[1] // 6 + 1, 3)).astype(np.float32)
    blotch = cv2.resize(cells, None, fx=6, fy=6, interpolation=cv2.INTER_CUBIC)[: a.shape[0], : a.shape[1]]
    return {
        "identical": a.copy(),
        "noise2": put(rng.integers(-2, 3, a.shape)),
        "noise8": put(rng.integers(-8, 9, a.shape)),
        "blotch8": put(np.round(np.clip(blotch, -1, 1) * 8).astype(int)),
    }


@pytest.mark.slow
def test_measures_order_identical_faint_noise_strong_noise_and_blotches(astronaut):
    cases = _cases(astronaut)
    v = {k: visibility(astronaut, b, [FACE]) for k, b in cases.items()}
    order = ["identical", "noise2", "noise8", "blotch8"]
    for key in ("ssimulacra2", "ssimulacra2_face"):
        s = [v[k][key] for k in order]
        assert s[0] == 100 and s[0] > s[1] > s[2] > s[3], (key, s)
    keys = ["flip", "flip_face"] + (["butteraugli", "butteraugli_face"] if butteraugli_available() else [])
    for key in keys:
        s = [v[k][key] for k in order]
        assert s[0] == 0 and s[0] < s[1] < s[2] < s[3], (key, s)
    # +-2 levels of noise are invisible by SSIMULACRA 2's own scale (> 90), the blotches visibly degrade (< 70)
    assert v["noise2"]["ssimulacra2_face"] > 90 and v["blotch8"]["ssimulacra2_face"] < 70
    if not butteraugli_available():
        assert v["noise2"]["butteraugli"] is None and v["noise2"]["butteraugli_face"] is None


def test_face_region_and_bad_input(astronaut):
    (x0, y0, x1, y1), = face_crops(astronaut.shape[:2], [FACE])
    assert x1 - x0 == pytest.approx((FACE[2] - FACE[0]) * FACE_SCALE, abs=2) and y1 - y0 == pytest.approx((FACE[3] - FACE[1]) * FACE_SCALE, abs=2)
    (x0, y0, x1, y1), = face_crops(astronaut.shape[:2], [FACE], min_side=256)  # grown for SSIMULACRA 2's six scales
    assert (x1 - x0, y1 - y0) == (256, 256) and x0 <= FACE[0] and x1 >= FACE[2] and y0 <= FACE[1] and y1 >= FACE[3]
    assert face_crops((100, 100), [np.array([0, 0, 300, 300])], min_side=256) == [(0, 0, 100, 100)]  # clipped to the image
    v = visibility(astronaut, astronaut, [], measures=["flip"])
    assert v == {"flip": 0.0, "flip_face": None}
    with pytest.raises(ValueError, match="uint8"):
        ssimulacra2(astronaut, astronaut.astype(np.float32))
    with pytest.raises(ValueError, match="same shape"):
        flip(astronaut, astronaut[:100])
