"""Alignment geometry: Umeyama recovers known similarities, warp-back inverts the crop, the
FaceMesh -> iBUG mapping agrees with ground truth, the plausibility filter rejects broken faces."""
from __future__ import annotations

import math

import numpy as np
import pytest

from faceshield.core.types import FACEMESH468, IBUG68, MTCNN5
from faceshield.faces.align import FACEMESH_TO_IBUG68, align, correspondences, mean_face, to_ibug68, umeyama, warp_from_crop, warp_to_crop
from faceshield.faces.plausibility import PlausibilityFilter


def _similar(pts, deg, scale, shift):
    a = math.radians(deg)
    r = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]) * scale
    return pts @ r.T + shift, r


def test_umeyama_recovers_a_known_similarity():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (51, 2))
    dst, r = _similar(src, 23.0, 1.7, np.array([12.0, -40.0]))
    m = umeyama(src, dst + rng.normal(0, 1e-9, dst.shape))
    np.testing.assert_allclose(m[:2, :2], r, atol=1e-8)
    np.testing.assert_allclose(m[:2, 2], [12.0, -40.0], atol=1e-6)
    with pytest.raises(ValueError):
        umeyama(np.zeros((5, 2)), np.zeros((5, 2)))
    with pytest.raises(ValueError):
        umeyama(src, dst[:10])


@pytest.mark.parametrize("scheme", [IBUG68, MTCNN5])
def test_alignment_maps_a_transformed_mean_face_onto_the_template(scheme):
    mf = mean_face()
    pts68, _ = _similar(mf * 90.0, -15.0, 1.0, np.array([160.0, 120.0]))
    five = np.stack([pts68[36:42].mean(0), pts68[42:48].mean(0), pts68[30], pts68[48], pts68[54]])
    pts = pts68 if scheme == IBUG68 else five
    al = align(pts, scheme, size=128, padding=0.25)
    assert al.roll == pytest.approx(-15.0, abs=1e-6)
    src, dst = correspondences(pts, scheme)
    np.testing.assert_allclose(al.to_template(src), dst, atol=1e-9)
    np.testing.assert_allclose(al.to_image(al.to_crop(pts)), pts, atol=1e-9)


def test_warp_back_returns_the_original_region(astronaut):
    from faceshield.models import create_extractor

    face = create_extractor("mtcnn").detect(astronaut)[0]
    al = align(face.points, face.scheme, size=128, padding=0.25)
    assert al.scale < 1.0  # the face is larger than the crop: warp-back upsamples
    crop = warp_to_crop(astronaut, al)
    back = warp_from_crop(crop, al, astronaut.shape[:2])
    cover = warp_from_crop(np.ones((128, 128), np.float32), al, astronaut.shape[:2])
    inner = cover > 0.999
    assert inner.sum() > 5000
    err = np.abs(back[inner] - astronaut[inner].astype(np.float32))
    assert err.mean() < 6.0  # only resampling blur (the crop has fewer pixels than the face)
    assert (back[cover == 0] == 0).all()
    # at 1:1 scale the round trip is nearly exact
    al1 = align(face.points, face.scheme, size=512, padding=0.25)
    al1 = type(al1)(matrix=al1.matrix / al1.scale * np.array([[1], [1]]) * 1.0, size=512, padding=0.25)
    back1 = warp_from_crop(warp_to_crop(astronaut, al1), al1, astronaut.shape[:2])
    c1 = warp_from_crop(np.ones((512, 512), np.float32), al1, astronaut.shape[:2]) > 0.999
    assert np.abs(back1[c1] - astronaut[c1]).mean() < 3.0


def test_facemesh_mapping_matches_ground_truth(data_root):
    from faceshield.io import read_image
    from faceshield.models import create_extractor

    assert len(FACEMESH_TO_IBUG68) == 68 and len(set(FACEMESH_TO_IBUG68)) == 68
    fm = create_extractor("facemesh")
    errs = []
    for pts_file in sorted((data_root / "landmarks68" / "test").glob("*.pts"))[:8]:
        lines = pts_file.read_text().splitlines()
        gt = np.array([[float(v) for v in ln.split()] for ln in lines[lines.index("{") + 1:][:68]])
        faces = fm.detect(read_image(pts_file.with_suffix(".jpg")).rgb)
        f = max(faces, key=lambda f: f.box[2] - f.box[0])
        errs.append(np.linalg.norm(to_ibug68(f.points, FACEMESH468) - gt, axis=1) / np.linalg.norm(gt[36] - gt[45]))
    e = np.array(errs)
    assert e[:, 17:].mean() < 0.07
    assert e[:, :17].mean() < 0.16


def test_plausibility_filter_keeps_real_faces_and_drops_broken_ones():
    mf = mean_face()
    pts, _ = _similar(mf * 100.0, 10.0, 1.0, np.array([150.0, 150.0]))
    flt = PlausibilityFilter()
    ok = flt.check(pts, IBUG68, (400, 400))
    assert not ok.dropped and ok.distance < 0.01 and ok.eye_mouth > 0.3
    flipped = pts.copy()
    flipped[36:48], flipped[48:60] = pts[48:60], pts[36:48]  # eyes where the mouth was
    assert "features" in flt.check(flipped, IBUG68, (400, 400)).reasons or "distance" in flt.check(flipped, IBUG68, (400, 400)).reasons
    rolled, _ = _similar(mf * 100.0, 70.0, 1.0, np.array([150.0, 150.0]))
    assert flt.check(rolled, IBUG68, (400, 400)).reasons == ["roll"]
    assert "min_scale" in flt.check(mf * 5.0, IBUG68, (2000, 2000)).reasons
    rng = np.random.default_rng(0)
    noisy = pts + rng.normal(0, 60.0, pts.shape)
    r = flt.check(noisy, IBUG68, (400, 400))
    assert r.dropped and "distance" in r.reasons
