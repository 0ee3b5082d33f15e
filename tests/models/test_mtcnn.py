"""MTCNN: weights, the real cascade, agreement with facenet-pytorch, the differentiable stages."""
from __future__ import annotations

import importlib
import importlib.machinery
import shutil
import sys
import types

import numpy as np
import pytest
import torch
from PIL import Image

from faceshield.core.errors import WeightsNotFoundError
from faceshield.core.types import MTCNN5
from faceshield.models import registry
from faceshield.models.mtcnn import WEIGHTS_ENV, MTCNNExtractor, ONet, PNet, RNet, load_mtcnn_nets, nms
from faceshield.models.weights import installed_package_file, load_state_dict, package_data


@pytest.fixture(scope="module")
def ext() -> MTCNNExtractor:
    return MTCNNExtractor()


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return np.asarray(Image.open(package_data("astronaut.png")).convert("RGB")).copy()


def _variants(img: np.ndarray) -> dict[str, np.ndarray]:
    pil = Image.fromarray(img)
    mirrored = np.asarray(pil.resize((400, 400), Image.BILINEAR))[:, ::-1]
    return {
        "original": img,
        "flipped": img[:, ::-1].copy(),
        "small": np.asarray(pil.resize((320, 320), Image.BILINEAR)),
        "large": np.asarray(pil.resize((640, 600), Image.BILINEAR)),
        # two faces: the original next to a smaller mirrored copy
        "pair": np.concatenate([img, np.pad(mirrored, ((0, 112), (0, 0), (0, 0)))], axis=1),
    }


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img.copy()).permute(2, 0, 1)[None].float() / 255


# ---------------------------------------------------------------------------- weights


def test_weights_load_with_matching_keys_and_shapes():
    for net, name in ((PNet(), "pnet"), (RNet(), "rnet"), (ONet(), "onet")):
        sd = load_state_dict(package_data(f"mtcnn_{name}.pt"))  # weights_only=True inside
        ours = net.state_dict()
        assert sd.keys() == ours.keys(), name
        assert all(sd[k].shape == ours[k].shape for k in sd), name
    nets = load_mtcnn_nets()
    assert all(not p.requires_grad for n in nets for p in n.parameters())
    assert not any(n.training for n in nets)


def test_weights_from_directory(tmp_path):
    for name in ("pnet", "rnet", "onet"):  # facenet-pytorch's file names
        shutil.copy(package_data(f"mtcnn_{name}.pt"), tmp_path / f"{name}.pt")
    a, b = MTCNNExtractor(weights=tmp_path), MTCNNExtractor()
    assert torch.equal(a.onet.dense6_3.weight, b.onet.dense6_3.weight)


def test_missing_weights_error(tmp_path, monkeypatch):
    with pytest.raises(WeightsNotFoundError, match="does-not-exist"):
        MTCNNExtractor(weights=tmp_path / "does-not-exist")
    with pytest.raises(WeightsNotFoundError, match="pnet.pt"):
        MTCNNExtractor(weights=tmp_path)  # exists, but empty
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(WeightsNotFoundError, match=WEIGHTS_ENV):
        MTCNNExtractor()


def test_registered():
    entry = registry._EXTRACTORS["mtcnn"]
    assert entry.factory is MTCNNExtractor
    assert entry.info.scheme is MTCNN5 and entry.info.kind.value == "regression"


# ---------------------------------------------------------------------------- real pipeline


def test_nms():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [2, 2, 6, 6]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.95, 0.5, 0.8])
    assert nms(boxes, scores, 0.5).tolist() == [1, 3, 2]  # box 0 overlaps box 1 (IoU 0.68)
    assert nms(boxes, scores, 0.7, mode="min").tolist() == [1, 2]  # box 3 lies inside box 1
    assert nms(boxes[:0], scores[:0], 0.5).numel() == 0


def test_detect_astronaut(ext, astronaut):
    faces = ext.detect(astronaut)
    assert len(faces) == 1
    f = faces[0]
    assert f.scheme is MTCNN5 and f.score > 0.99
    x0, y0, x1, y1 = f.box
    assert 165 < x0 < 200 and 250 < x1 < 285 and 50 < y0 < 80 and 155 < y1 < 190
    (lex, ley), (rex, rey), (nx, ny), (lmx, lmy), (rmx, rmy) = f.points
    assert lex < nx < rex and lmx < rmx
    assert max(ley, rey) < ny < min(lmy, rmy)
    assert np.all((f.points >= f.box[:2]) & (f.points <= f.box[2:]))
    assert f.roi[2] - f.roi[0] == pytest.approx(f.roi[3] - f.roi[1], abs=1e-3)  # RNet input is square


def test_candidates_are_what_the_last_nms_picks_from(ext, astronaut):
    (face,) = ext.detect(astronaut)
    cands = ext.candidates(astronaut)
    assert len(cands) > 1  # several ONet-accepted boxes on the one face
    scores = [c.score for c in cands]
    assert scores == sorted(scores, reverse=True)
    best = cands[0]  # the pick is the best-scoring candidate
    assert best.score == face.score and np.allclose(best.roi, face.roi) and np.allclose(best.points, face.points)
    assert all(c.score > ext.thresholds[2] for c in cands)
    assert ext.candidates(np.full((200, 240, 3), 128, np.uint8)) == []


def test_detect_no_face(ext):
    assert ext.detect(np.full((200, 240, 3), 128, np.uint8)) == []
    assert ext.detect(np.zeros((10, 10, 3), np.uint8)) == []  # too small for any pyramid level
    with pytest.raises(ValueError, match="uint8"):
        ext.detect(np.zeros((64, 64, 3), np.float32))


@pytest.fixture(scope="module")
def facenet_reference():
    """facenet-pytorch's own nets and ``detect_face``, imported with a stub torchvision (only
    ``batched_nms`` is used) and without running the package ``__init__`` (which needs requests)."""
    root = installed_package_file("facenet_pytorch", "models", "utils", "detect_face.py")
    if root is None:
        pytest.skip("facenet_pytorch is not installed: nothing to cross-check against")
    pkg = root.parents[2]

    def batched_nms(boxes, scores, idxs, threshold):
        if boxes.numel() == 0:
            return torch.empty(0, dtype=torch.long)
        offset = idxs.to(boxes) * (boxes.max() + 1)
        return nms(boxes + offset[:, None], scores, threshold)

    before = set(sys.modules)
    tv = ("", ".ops", ".ops.boxes", ".transforms", ".transforms.functional")
    stubs = {f"torchvision{n}": types.ModuleType(f"torchvision{n}") for n in tv}
    stubs["torchvision.ops.boxes"].batched_nms = batched_nms
    for name, path in (
        ("facenet_pytorch", pkg),
        ("facenet_pytorch.models", pkg / "models"),
        ("facenet_pytorch.models.utils", pkg / "models" / "utils"),
    ):
        m = types.ModuleType(name)
        m.__path__ = [str(path)]
        m.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
        m.__spec__.submodule_search_locations = [str(path)]
        stubs[name] = m
    with pytest.MonkeyPatch.context() as mp:
        for name, module in stubs.items():
            mp.setitem(sys.modules, name, module)
        fm = importlib.import_module("facenet_pytorch.models.mtcnn")
        nets = []
        for cls, name in ((fm.PNet, "pnet"), (fm.RNet, "rnet"), (fm.ONet, "onet")):
            net = cls(pretrained=False)
            net.load_state_dict(load_state_dict(pkg / "data" / f"{name}.pt"))
            nets.append(net.eval())
    for name in set(sys.modules) - before:  # the reference stays usable through `fm`
        if name.startswith(("facenet_pytorch", "torchvision")):
            del sys.modules[name]

    def detect(img):
        with torch.no_grad():
            boxes, points = fm.detect_face(img, 20, *nets, [0.6, 0.7, 0.7], 0.709, "cpu")
        return np.asarray(boxes[0], np.float64).reshape(-1, 5), np.asarray(points[0], np.float64).reshape(-1, 5, 2)

    return detect


@pytest.mark.parametrize("variant", ["original", "flipped", "small", "large", "pair"])
def test_matches_facenet_pytorch(ext, astronaut, facenet_reference, variant):
    img = _variants(astronaut)[variant]
    ref_boxes, ref_points = facenet_reference(img)
    faces = ext.detect(img)
    assert len(faces) == len(ref_boxes) == (2 if variant == "pair" else 1)
    boxes = np.array([np.r_[f.box, f.score] for f in faces])
    points = np.array([f.points for f in faces])
    # measured: <= 3.1e-5 px (float32 rounding at coordinates ~300)
    assert np.abs(boxes - ref_boxes).max() < 1e-3
    assert np.abs(points - ref_points).max() < 1e-3


# ---------------------------------------------------------------------------- differentiable stages


@pytest.mark.parametrize("variant", ["original", "flipped", "small", "large"])
def test_differentiable_stages_match_detect(ext, astronaut, variant):
    img = _variants(astronaut)[variant]
    (f,) = ext.detect(img)
    x = _to_tensor(img)
    exact = ext.stages(x, f.roi[None])
    # the exact crops reproduce the real pipeline (measured <= 3e-5 px)
    assert np.abs(exact.points[0].numpy() - f.points).max() < 1e-3
    assert np.abs(exact.box[0].numpy() - f.box).max() < 1e-3
    assert float(exact.onet_prob[0]) == pytest.approx(f.score, abs=1e-5)
    assert 0.5 < float(exact.rnet_prob[0]) <= 1
    # the smooth crops move the points by a fraction of a pixel (measured 0.6-0.8 px max)
    soft = ext.landmarks(x, torch.tensor(f.roi[None]), crop="soft")
    assert np.abs(soft[0].numpy() - f.points).max() < 1.5
    onet = ext.onet_landmarks(x, exact.onet_input)
    assert torch.allclose(onet, exact.points)


@pytest.mark.parametrize("crop", ["exact", "soft"])
def test_gradients_reach_the_face_only(ext, astronaut, crop):
    (f,) = ext.detect(astronaut)
    x = _to_tensor(astronaut).requires_grad_(True)
    st = ext.stages(x, torch.tensor(f.roi[None]), crop=crop)
    (st.points.sum() + st.onet_prob.sum() + st.rnet_prob.sum()).backward()
    g = x.grad[0].abs().sum(0)
    assert torch.isfinite(x.grad).all() and g.max() > 0
    # everything comes from the two crops: the RNet roi and the ONet box (+ 2 px for rounding)
    boxes = np.stack([f.roi, st.onet_input[0].detach().numpy()])
    c0, r0 = np.floor(boxes[:, :2].min(0)) - 3
    c1, r1 = np.ceil(boxes[:, 2:].max(0)) + 2
    outside = torch.ones_like(g, dtype=torch.bool)
    outside[max(int(r0), 0) : int(r1), max(int(c0), 0) : int(c1)] = False
    assert g[outside].max() == 0
    assert g[:, :100].max() == 0 and g[300:].max() == 0  # far away: zero
    inner = g[int(f.box[1]) + 10 : int(f.box[3]) - 10, int(f.box[0]) + 10 : int(f.box[2]) - 10]
    assert (inner > 0).float().mean() > 0.5


def test_batch_of_faces(ext, astronaut):
    imgs = [astronaut, astronaut[:, ::-1].copy()]
    rois = np.stack([ext.detect(i)[0].roi for i in imgs])
    x = torch.cat([_to_tensor(i) for i in imgs])
    both = ext.landmarks(x, rois)
    assert both.shape == (2, 5, 2)
    for k in range(2):
        assert torch.allclose(both[k], ext.landmarks(x[k : k + 1], rois[k : k + 1])[0], atol=1e-3)
    with pytest.raises(ValueError, match="rois"):
        ext.landmarks(x, rois[:1])
