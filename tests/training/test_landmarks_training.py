"""The landmark training script (fast pieces) and the shipped compact FAN / HRNet weights."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from faceshield.models.heatmap import MIRROR
from faceshield.models.registry import create_extractor
from faceshield.models.weights import package_data
from faceshield.training import landmarks as tl

PTS = "version: 1\nn_points: 3\n{\n1.5 2\n3 4.25\n-1 0\n}\n"


def test_read_pts(tmp_path):
    p = tmp_path / "a.pts"
    p.write_text(PTS)
    np.testing.assert_allclose(tl.read_pts(p), [[1.5, 2], [3, 4.25], [-1, 0]])
    (tmp_path / "bad.pts").write_text("version: 1\nn_points: 4\n{\n1 2\n}\n")
    with pytest.raises(ValueError, match="expected 4 points"):
        tl.read_pts(tmp_path / "bad.pts")


def test_read_pts_real_file(data_root):
    f = tl.list_split(data_root / "landmarks68" / "train")[0]
    pts = tl.read_pts(f.with_suffix(".pts"))
    h, w = tl.load_rgb(f).shape[:2]
    assert pts.shape == (68, 2)
    assert (pts[:, 0] > -w).all() and (pts[:, 0] < 2 * w).all() and pts[36, 0] < pts[45, 0]


def test_augmented_crop_keeps_points_on_the_face(monkeypatch):
    """Scale, shift, rotation and flip in make_input move the points with the pixels: a bright dot
    drawn at a point lands where the transformed point (mirrored channel after a flip) says."""
    monkeypatch.setattr(tl, "colour_jitter", lambda crop, rng: crop)
    pts = np.random.default_rng(0).uniform([30, 30], [70, 90], size=(68, 2))
    crop = tl.crop_spec("hrnet", 64)
    mirror = np.asarray(MIRROR["ibug68"])
    rng = np.random.default_rng(1)
    for k in rng.integers(0, 68, size=8):
        img = np.zeros((120, 100, 3), np.uint8)
        x, y = int(pts[k, 0]), int(pts[k, 1])
        img[y - 1:y + 2, x - 1:x + 2] = 255
        pts_k = pts.copy()
        pts_k[k] = (x + 0.5, y + 0.5)
        c, p, _ = tl.make_input(tl.Sample("x", img, pts_k, np.array([20.0, 20.0, 80.0, 100.0])), crop, rng, mirror)
        g = c.astype(float).mean(2)
        yy, xx = np.unravel_index(np.argmax(g), g.shape)
        q = p[k] if np.hypot(*(p[k] - (xx + 0.5, yy + 0.5))) < np.hypot(*(p[mirror[k]] - (xx + 0.5, yy + 0.5))) else p[mirror[k]]
        assert np.hypot(q[0] - (xx + 0.5), q[1] - (yy + 0.5)) < 1.5


def test_tiny_training_step_decreases_loss(data_root):
    torch.manual_seed(0)
    files = tl.list_split(data_root / "landmarks68" / "train")[:3]
    cache = {"boxes": {}, "fallback": [0.0, -0.17, 0.97, 1.3]}  # landmark-box fallback: no MTCNN run
    crop = tl.crop_spec("fan", 64)
    batcher = tl.Batcher(tl.load_samples(files, cache), crop, sigma=1.0, mean_std=None)
    x, target, _ = batcher.batch([0, 1, 2], None)
    assert x.shape == (3, 3, 64, 64) and target.shape == (3, 68, 16, 16)
    args = tl.parse_args(["--model", "fan", "--out", "unused.pt", "--stacks", "1", "--features", "16", "--depth", "2"])
    net = tl.build_model(args)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(6):
        loss = tl.heatmap_loss(net(x), target, "awing")
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("name, file", [("fan", "fan68.pt"), ("hrnet", "hrnet68.pt")])
def test_shipped_weights_detect_astronaut(name, file, astronaut):
    path = package_data(file)
    if not path.is_file():
        pytest.skip(f"{file} is not shipped")
    sd = torch.load(path, map_location="cpu", weights_only=True)
    assert isinstance(sd, dict) and all(isinstance(v, torch.Tensor) for v in sd.values())
    meta = json.loads(path.with_suffix(".json").read_text())
    ext = create_extractor(name, cached=False)
    assert ext.crop.input_size == meta["input_size"]
    faces = ext.detect(astronaut)
    assert len(faces) == 1
    p = faces[0].points
    assert p.shape == (68, 2) and np.isfinite(p).all()
    x0, y0, x1, y1 = faces[0].box
    pad = 0.5 * (x1 - x0)
    assert (p[:, 0] > x0 - pad).all() and (p[:, 0] < x1 + pad).all() and (p[:, 1] > y0 - pad).all() and (p[:, 1] < y1 + pad).all()
    assert p[36, 0] < p[45, 0]
    assert p[36:48, 1].mean() < p[48:68, 1].mean()  # eyes above the mouth
    assert p[27:36, 1].mean() < p[48:68, 1].mean()  # nose above the mouth
