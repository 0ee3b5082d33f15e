"""The face swap: deterministic, confined to the face, drops implausible faces, measures SSIM_W."""
from __future__ import annotations

import json

import numpy as np
import pytest

from faceshield.deepfake import FaceSwapper, SwapAutoEncoder, SwapModelConfig, load_swap_model
from faceshield.faces.plausibility import PlausibilityFilter
from faceshield.pipeline import ProtectConfig, protect_array
from faceshield.pipeline.swap import before_after_sheet, evaluate_swap


@pytest.fixture(scope="module")
def model():
    return load_swap_model()


def test_shipped_model_loads_with_its_config(model):
    assert model.config.size in (64, 128, 256)
    assert len(model.config.identities) == 2
    x = np.random.default_rng(0).random((1, 3, model.config.size, model.config.size), dtype=np.float32)
    import torch

    with torch.no_grad():
        y = model(torch.from_numpy(x), model.config.identities[1])
    assert y.shape == (1, 3, model.config.size, model.config.size) and 0 <= float(y.min()) and float(y.max()) <= 1


def test_swap_is_deterministic_and_confined_to_the_face(model, astronaut):
    sw = FaceSwapper(model, extractor="mtcnn")
    a, b = sw.swap(astronaut), sw.swap(astronaut)
    assert np.array_equal(a.image, b.image)
    assert len(a.faces) == 1 and a.faces[0].swapped
    changed = np.abs(a.image.astype(int) - astronaut).max(-1) > 0
    assert changed.sum() > 2000  # the face was replaced
    assert not changed[a.mask == 0].any()  # nothing outside the blend mask
    x0, y0, x1, y1 = a.faces[0].face.box
    ys, xs = np.nonzero(a.mask > 0.5)
    assert x0 - 20 <= xs.mean() <= x1 + 20 and y0 - 20 <= ys.mean() <= y1 + 20


def test_filtered_face_is_left_alone(model, astronaut):
    strict = FaceSwapper(model, extractor="mtcnn", plausibility=PlausibilityFilter(distance=1e-6))
    res = strict.swap(astronaut)
    assert res.dropped == 1 and np.array_equal(res.image, astronaut)
    ev, _, _ = evaluate_swap(astronaut, astronaut, strict)
    assert ev.dropped_clean and ev.dropped_protected and ev.failed


def test_ssim_w_is_one_for_identical_inputs_and_lower_when_protected(model, astronaut):
    sw = FaceSwapper(model, extractor="fan")
    same, _, _ = evaluate_swap(astronaut, astronaut.copy(), sw)
    assert same.ssim_w == pytest.approx(1.0) and same.nme == 0.0 and not same.failed
    prot = protect_array(astronaut, ProtectConfig(method="lb", targets=("fan",), steps=6, jitter=3)).rgb
    ev, sc, sp = evaluate_swap(astronaut, prot, sw)
    assert ev.nme is None or ev.nme > 0.01
    assert ev.ssim_w < 0.98
    sheet = before_after_sheet(astronaut, prot, sc, sp, ev)
    assert sheet.dtype == np.uint8 and sheet.shape[1] == 640 and sheet.shape[0] > 600


def test_swap_video_smooths_tracks(model, astronaut):
    import cv2

    rng = np.random.default_rng(0)
    frames = [np.ascontiguousarray(np.roll(astronaut, (int(d[0]), int(d[1])), (0, 1))) for d in rng.normal(0, 1.5, (4, 2))]
    sw = FaceSwapper(model, extractor="mtcnn")
    out = sw.swap_video(frames)
    assert len(out) == 4 and all(r.faces and r.faces[0].swapped for r in out)
    raw = sw.swap_video(frames, smooth=False)
    assert any(not np.array_equal(a.image, b.image) for a, b in zip(out, raw))
    del cv2


def test_loader_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="sidecar"):
        m = SwapAutoEncoder(SwapModelConfig(size=32, identities=["x", "y"]))
        import torch

        torch.save(m.state_dict(), tmp_path / "m.pt")
        load_swap_model(tmp_path / "m.pt")
    (tmp_path / "m.json").write_text(json.dumps({"model": {"size": 64, "identities": ["x", "y"]}}))
    with pytest.raises(RuntimeError):  # weights of a 32-px model under a 64-px config
        load_swap_model(tmp_path / "m.pt")
    with pytest.raises(ValueError, match="identity"):
        FaceSwapper(SwapAutoEncoder(SwapModelConfig(size=32, identities=["x", "y"])), extractor="mtcnn", identity="z")
