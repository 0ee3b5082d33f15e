"""The DeepFake Disrupter training script: runs on CelebA, ships a generator the registry's loader
reads, and a run resumed from its checkpoint ends where an uninterrupted one does."""
from __future__ import annotations

import json

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
