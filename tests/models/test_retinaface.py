"""The RetinaFace family (biubug6/Face-Detector-1MB-with-landmark): the original state dicts load
as they are, the pipeline's points agree with HELEN's ground truth, the differentiable stage agrees
with the pipeline, and a white-box attack on it moves its points or loses the face."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from faceshield.core.errors import WeightsNotFoundError
from faceshield.io import read_image, to_tensor
from faceshield.models import create_extractor, extractor_info, list_extractors
from faceshield.models.retinaface import (
    ARCHS,
    EXTRACTORS,
    WEIGHTS_ENV,
    arch_config,
    build_retinaface,
    decode_landmarks,
    face_window,
    load_retinaface,
    priors,
    resize_bilinear,
    resize_factor,
)
from faceshield.training.landmarks import read_pts

DATA_ROOT = Path(os.environ.get("FACESHIELD_DATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "data"))
WEIGHTS = DATA_ROOT / "weights" / "retinaface"


@pytest.fixture(scope="module")
def weights_dir() -> Path:
    if not all((WEIGHTS / arch_config(a).weight_file).is_file() for a in ARCHS):
        pytest.skip(f"RetinaFace weights not found in {WEIGHTS} (set FACESHIELD_DATA)")
    return WEIGHTS


@pytest.fixture(scope="module")
def extractors(weights_dir):
    return {n: create_extractor(n, weights=str(weights_dir / arch_config(a).weight_file), cached=False) for n, a in EXTRACTORS.items()}


def _helen(data_root, n):
    out = []
    for pts in sorted((data_root / "landmarks68" / "test").glob("*.pts"))[:n]:
        gt = read_pts(pts)
        five = np.stack([gt[36:42].mean(0), gt[42:48].mean(0), gt[30], gt[48], gt[54]])  # eyes, nose tip, mouth corners
        out.append((read_image(pts.with_suffix(".jpg")).rgb, five))
    return out


def test_registered_as_regression_extractors_on_five_points():
    assert set(EXTRACTORS) <= set(list_extractors(white_box=True))
    for n in EXTRACTORS:
        info = extractor_info(n)
        assert info.kind.value == "regression" and info.scheme.n_points == 5 and WEIGHTS_ENV in info.weights


def test_missing_weights_name_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))
    with pytest.raises(WeightsNotFoundError, match=WEIGHTS_ENV):
        load_retinaface("slim")
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        create_extractor("retinaface-mnet", weights=str(tmp_path / "none.pth"), cached=False)


def test_weights_load_with_the_original_keys(weights_dir):
    for a in ARCHS:
        sd = torch.load(weights_dir / arch_config(a).weight_file, map_location="cpu", weights_only=True)
        ours = build_retinaface(a).state_dict()
        assert set(sd) == set(ours) and all(sd[k].shape == ours[k].shape for k in sd)
        net = load_retinaface(a, weights_dir)  # a directory holding the file works too
        x = torch.zeros(1, 3, 96, 128)
        loc, conf, landm = net(x)
        assert loc.shape[1] == conf.shape[1] == landm.shape[1] == priors(a, 96, 128).shape[0]


def test_resize_matches_opencv():
    img = np.random.default_rng(0).uniform(0, 255, (37, 53, 3)).astype(np.float32)
    for f in (0.37, 0.5, 1.7):
        ref = cv2.resize(img, None, None, fx=f, fy=f, interpolation=cv2.INTER_LINEAR)
        ours = resize_bilinear(torch.from_numpy(img).permute(2, 0, 1)[None], f)[0].permute(1, 2, 0).numpy()
        assert ours.shape == ref.shape and np.abs(ours - ref).max() < 0.05
    assert resize_factor(400, 3000) == 640 / 3000 and resize_factor(200, 100, upscale=False) == 1.0


def test_points_agree_with_helen_ground_truth(extractors, data_root):
    faces = _helen(data_root, 10)
    for n, ext in extractors.items():
        errs = []
        for rgb, five in faces:
            found = ext.detect(rgb)
            assert found, f"{n} finds no face on a HELEN test photo"
            f = min(found, key=lambda f: np.abs(f.points - five).mean())  # some photos show a second face
            errs.append(np.linalg.norm(f.points - five, axis=1).mean() / np.linalg.norm(five[0] - five[1]))
        assert np.mean(errs) <= 0.10, (n, np.round(errs, 3))
        assert (f.points[0, 0] < f.points[1, 0]) and f.points[2, 1] < f.points[3, 1]  # image-left eye first, nose above the mouth


def test_differentiable_stage_agrees_with_the_pipeline(extractors, astronaut):
    x = to_tensor(astronaut).requires_grad_(True)
    for n, ext in extractors.items():
        f = max(ext.detect(astronaut), key=lambda f: f.score)
        assert np.allclose(f.roi[2] - f.roi[0], 512) and np.allclose((f.roi[:2] + f.roi[2:]) / 2, (f.box[:2] + f.box[2:]) / 2)
        pts = ext.landmarks(x, torch.tensor(f.roi[None], dtype=torch.float32))
        assert pts.shape == (1, 5, 2)
        assert np.linalg.norm(pts[0].detach().numpy() - f.points, axis=1).max() < 0.1 * f.interocular, n
        x.grad = None
        pts.sum().backward()
        g = x.grad[0].abs().sum(0)
        bx = f.box.astype(int)
        inside = torch.zeros_like(g, dtype=torch.bool)
        inside[bx[1]:bx[3], bx[0]:bx[2]] = True
        assert g[inside].mean() > 3 * g[~inside].mean()  # the gradient is on the face


def test_same_face_is_the_window_centre(extractors):
    ext = extractors["retinaface-mnet"]
    roi = face_window(np.array([100.0, 100, 160, 180]), 400, 600)
    assert ext.same_face(roi + 10, roi) and not ext.same_face(roi + 80, roi)


def test_decode_landmarks_at_the_anchor():
    p = priors("slim", 64, 64)
    pts = decode_landmarks(torch.zeros(1, p.shape[0], 10), p)
    assert torch.allclose(pts[0, :, 0], p[:, :2])


def test_white_box_attack_moves_points_or_loses_the_face(extractors, data_root):
    from faceshield.pipeline import ProtectConfig, protect_array
    from faceshield.pipeline.evaluate import evaluate_extractor

    rgb, _ = _helen(data_root, 1)[0]
    ext = extractors["retinaface-slim"]
    out = protect_array(rgb, ProtectConfig(targets=("retinaface-slim",), steps=10, jitter=3), extractors={"retinaface-slim": ext})
    assert np.abs(out.rgb.astype(int) - rgb).max() <= 15  # the paper's eps
    r = evaluate_extractor(ext, rgb, out.rgb)
    assert all(v is None or v >= 0.4 for v in r.nme_per_face), r.nme_per_face


def test_hide_pushes_the_face_score_down(extractors, data_root):
    from faceshield.pipeline import ProtectConfig, protect_array

    rgb, _ = _helen(data_root, 2)[1]
    ext = extractors["retinaface-mnet"]
    f = max(ext.detect(rgb), key=lambda f: f.score)
    roi = torch.tensor(f.roi[None], dtype=torch.float32)
    out = protect_array(rgb, ProtectConfig(targets=("retinaface-mnet",), hide=1.0, steps=10, jitter=1), extractors={"retinaface-mnet": ext})
    with torch.no_grad():
        clean = float(ext.landmarks_and_scores(to_tensor(rgb), roi)[1])
        prot = float(ext.landmarks_and_scores(to_tensor(out.rgb), roi)[1])
    assert clean > ext.face_threshold and prot < clean - 2.0, (clean, prot)


def test_hide_needs_a_target_with_a_face_score():
    from faceshield.pipeline import ProtectConfig

    with pytest.raises(ValueError, match="face score"):
        ProtectConfig(targets=("fan",), hide=1.0)
    assert ProtectConfig(targets=("fan", "retinaface-slim"), hide=1.0).hide == 1.0


def test_feature_distortion_is_zero_on_the_clean_photo_and_grows(extractors, astronaut):
    from faceshield.attacks import FeatureDistortionLoss

    ext = extractors["retinaface-rfb"]
    f = max(ext.detect(astronaut), key=lambda f: f.score)
    x = to_tensor(astronaut)
    feats = ext.features(x, torch.tensor(f.roi[None], dtype=torch.float32))
    assert feats.shape[:2] == (1, 64) and feats.shape[-1] == 512 // 8 // 2  # central half of the stride-8 map
    loss = FeatureDistortionLoss(ext, [f.roi[None]], jitter=3)
    assert float(loss(x, x).abs().max()) < 1e-6
    noisy = (x + 0.03 * torch.randn_like(x)).clamp(0, 1)
    assert float(loss(noisy, x)[0]) < -1e-3


def test_feature_weight_needs_a_target_with_features():
    from faceshield.pipeline import ProtectConfig

    with pytest.raises(ValueError, match="features"):
        ProtectConfig(targets=("mtcnn", "fan"), feature_weight=1.0)
    assert ProtectConfig(targets=("mtcnn", "retinaface-mnet"), feature_weight=1.0).feature_weight == 1.0
