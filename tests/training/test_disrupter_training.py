"""The DeepFake Disrupter training script: runs on CelebA, ships a generator the registry's loader
reads, and a run resumed from its checkpoint ends where an uninterrupted one does."""
from __future__ import annotations

import json

import pytest
import torch

from faceshield.generators import GeneratorPerturber
from faceshield.models.zoo import GENERATOR_INFOS, load_perturbation_generator
from faceshield.training.disrupter import DisrupterTrainConfig, through_photo, train

TINY = {"size": 64, "arch": "resnet", "conv_dim": 8, "blocks": 1, "depth": 3}


def _cfg(iters):
    return DisrupterTrainConfig(iters=iters, batch=2, detector="", heldout_faces=4, train_images=32, model=TINY)


def test_train_ships_a_loadable_generator_and_resumes_exactly(data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("FACESHIELD_DATA", str(data_root))
    straight = tmp_path / "a" / "g.pt"
    meta = train(_cfg(3), straight, log_every=1, save_every=1)
    assert meta["eps_levels"] == 8.0 and meta["trained_against"] == ["stargan"] and len(meta["history"]) == 3
    assert set(meta["heldout"]["crop"]) == {"l2", "disrupted"} and meta["heldout"]["faces"] == 4
    g = load_perturbation_generator(straight, GENERATOR_INFOS["disrupter-stargan"])
    assert json.loads(straight.with_suffix(".json").read_text())["data"]["images"] == 32
    resumed = tmp_path / "b" / "g.pt"
    train(_cfg(2), resumed, log_every=1, save_every=1)
    train(_cfg(3), resumed, log_every=1, save_every=1)  # picks up at iteration 3 from g.ckpt
    a, b = torch.load(straight, weights_only=True), torch.load(resumed, weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert isinstance(GeneratorPerturber(g, torch.zeros(0, 2, 3).numpy()).history, list)


def test_through_photo_is_the_crop_when_nothing_moves():
    """At scale 1 without jitter the photo chain is the 8-bit rounding of the crop plus its perturbation."""
    torch.manual_seed(0)
    x = (torch.rand(2, 3, 64, 64) * 255).round() / 255
    d = (torch.rand_like(x) - 0.5) * 8 / 255
    xc, xp = through_photo(x, d, 1.0)
    assert torch.allclose(xc, x, atol=1e-5)
    assert torch.allclose(xp, ((x + d) * 255).round().clamp(0, 255) / 255, atol=1e-5)


def test_landmark_generator_trains_on_sharp_photos_at_several_sides(data_root, tmp_path, monkeypatch):
    """``--data landmarks68 --max-size``: a landmark-only generator trained on the aligned HELEN /
    AFW train photos at crop sides drawn per batch; it ships with its data source, and the settings
    that cannot work are refused before any training."""
    monkeypatch.setenv("FACESHIELD_DATA", str(data_root))
    model = {**TINY, "max_size": 96}
    cfg = DisrupterTrainConfig(iters=2, batch=2, manipulator="", detector="", landmarks=("mtcnn",), lm_scale=1.0, lm_images=6,
                               data="landmarks68", sides=(64, 96), scales=(1.0,), train_images=6, model=model)
    out = tmp_path / "lm.pt"
    meta = train(cfg, out, log_every=1, save_every=1)
    assert meta["data"]["source"].startswith("landmarks68/train") and meta["data"]["images"] == 6
    assert meta["trained_against"] == ["mtcnn"] and all("lm_mtcnn" in h for h in meta["history"])
    g = load_perturbation_generator(out, GENERATOR_INFOS["breaker-landmarks"])
    assert g.net.config.max_size == 96 and g.side(0.5) == 96 and g.side(1.0) == 64
    for bad, message in (({"sides": (70,)}, "sides"), ({"sides": (128,)}, "sides"), ({"manipulator": "stargan"}, "data"), ({"data": "ffhq"}, "data")):
        with pytest.raises(ValueError, match=message):
            train(DisrupterTrainConfig(**{**cfg.__dict__, **bad}), tmp_path / "bad.pt")
    assert not (tmp_path / "bad.pt").exists()
