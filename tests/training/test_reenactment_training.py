"""Initiative Defense against face reenactment (seed 003, Eq. 11): the forger's data from a real
video, the translator's input and mask, and a PG trained through the temporary model that ships
within its budget."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from faceshield.models import create_extractor
from faceshield.training.reenactment import (OUTSIDE, ReenactmentTrainConfig, draw_landmarks, face_mask, load_pg, poison, train,
                                             video_faces)

TINY = {"size": 64, "arch": "unet", "conv_dim": 4, "blocks": 1, "depth": 2}


@pytest.fixture(scope="module")
def clip_faces(tmp_path_factory, make_clip):
    d = tmp_path_factory.mktemp("reen")
    src = d / "person.mp4"
    make_clip(src, n=12, size=256, audio=False)
    return src, video_faces(src, cache=d / "cache")


def test_video_faces_are_aligned_crops_with_drawings_and_masks(clip_faces, tmp_path):
    src, vf = clip_faces
    assert len(vf) >= 10 and vf.crops.shape[1:] == (64, 64, 3) and vf.drawings.shape == vf.crops.shape
    assert vf.points.shape == (len(vf), 468, 2) and set(np.unique(vf.masks)) == {np.float32(OUTSIDE), np.float32(1.0)}
    c = vf.masks[:, 24:40, 24:40]  # the crop's centre is face
    assert (c == 1.0).all() and (vf.masks[:, :4, :4] == OUTSIDE).all()
    again = video_faces(src, cache=src.parent / "cache")  # from the cache: the same data
    assert np.array_equal(again.crops, vf.crops) and again.digest == vf.digest
    tr, te = vf.split(0.2)
    assert tr.max() < te.min() and len(tr) + len(te) == len(vf)  # held out in time


def test_a_video_without_faces_is_refused(tmp_path, make_clip):
    src = tmp_path / "grey.mp4"
    make_clip(src, n=12, size=128, audio=False, faces=False)
    with pytest.raises(ValueError, match="at least 10"):
        video_faces(src, cache=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()  # nothing cached for a refused video


def test_drawing_follows_the_contours(astronaut):
    from faceshield.faces.regions import region_labels

    f = create_extractor("facemesh").detect(astronaut)[0]
    s = 256 / max(f.box[2] - f.box[0], f.box[3] - f.box[1]) / 2
    p = (f.points - f.box[:2]) * s + 64  # the face in the middle of a 256 px canvas
    z = draw_landmarks(p, 256)
    assert z.shape == (256, 256, 3) and z.dtype == np.uint8
    ink = z.max(2) > 64
    assert 0.01 < ink.mean() < 0.2  # lines, not fills
    lab = region_labels(p, (256, 256))
    near = cv2.dilate((lab > 0).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    assert ink[near].sum() >= 0.98 * ink.sum()  # every line is on the face or its outline
    m = face_mask(p, 256)
    assert np.array_equal(m == 1.0, lab > 0)


def test_train_reaches_pg_through_the_temporary_model_and_ships_within_budget(clip_faces, tmp_path, monkeypatch):
    src, _ = clip_faces
    monkeypatch.chdir(tmp_path)  # the data cache goes under out/
    cfg = ReenactmentTrainConfig(video=str(src), iters=6, batch=2, sm_pretrain=2, eval_every=2, probe_steps=2, model=TINY, sm=TINY)
    out = tmp_path / "pg.pt"
    meta = train(cfg, out, log_every=1)
    assert meta["trained_against"] == ["reenactment-surrogate"] and meta["data"]["video"] == "person.mp4" and meta["data"]["digest"]
    probes = [r["probe"] for r in meta["history"] if "probe" in r]
    assert len(probes) == 2 and meta["best_probe"] == pytest.approx(max(probes), abs=1e-5)  # PG_best: the best probe
    assert all(np.isfinite(r["influence"]) for r in meta["history"] if "influence" in r)
    g = load_pg(str(out))
    x = torch.rand(3, 3, 64, 64) * 2 - 1
    xp = poison(g.net, x, g.eps)
    assert float(((xp - x) * 127.5).abs().max()) <= 8 + 0.5 + 1e-4  # 8 levels, after 8-bit rounding of a non-8-bit x
    # the PG moved: Eq. 11's gradient reached it through TM's step
    torch.manual_seed(cfg.seed)
    from faceshield.models.perturber import PerturbationNet, PerturberConfig

    fresh = PerturbationNet(PerturberConfig(**TINY))
    assert any(not torch.allclose(a.float(), b.half().float()) for a, b in zip(g.net.state_dict().values(), fresh.state_dict().values()))


def test_the_influence_loss_reaches_pg_through_the_temporary_model(clip_faces):
    """Eq. 11's only path to PG is TM's step: its gradient must not vanish (an L1 step's would)."""
    from faceshield.models.perturber import PerturbationNet, PerturberConfig
    from faceshield.training.reenactment import influence, translator

    _, vf = clip_faces
    x, z, m = vf.tensors(np.arange(4))
    sm, mp = translator(PerturberConfig(**TINY), 0), translator(PerturberConfig(**TINY), 1)
    pg = PerturbationNet(PerturberConfig(**TINY))
    xp = ((x + 1) / 2 + 8 / 255 * pg((x + 1) / 2)).clamp(0, 1) * 2 - 1
    grads = torch.autograd.grad(influence(sm, mp, x, xp, z, m, 1.0), list(pg.parameters()))
    assert sum(float(g.abs().sum()) for g in grads) > 0
    assert all(p.grad is None for p in mp.parameters())  # TM is functional: M' is left alone


def test_dagger_mode_needs_no_infected_model_updates(clip_faces, tmp_path, monkeypatch):
    src, _ = clip_faces
    monkeypatch.chdir(tmp_path)
    cfg = ReenactmentTrainConfig(video=str(src), iters=4, batch=2, sm_pretrain=2, eval_every=4, probe_steps=1, alternate=False, model=TINY, sm=TINY)
    meta = train(cfg, tmp_path / "dagger.pt", log_every=1)
    rows = [r for r in meta["history"] if "influence" in r]
    assert rows and all("mp_l1" not in r and "sm_l1" not in r for r in rows)  # SM frozen, M' never moves
