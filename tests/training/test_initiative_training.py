"""Initiative Defense training (seed 003, Alg. 1): runs on CelebA with its surrogate, ships a
generator the registry's loader reads within its budget, and resumes to the same result."""
from __future__ import annotations

import torch

from faceshield.models.manipulator import stargan_condition
from faceshield.models.zoo import GENERATOR_INFOS, load_perturbation_generator
from faceshield.training.initiative import InitiativeTrainConfig, domain_conditions, train

SM = {"size": 64, "c_dim": 5, "conv_dim": 8, "repeat_num": 1, "output": "tanh", "track_stats": False, "d_conv_dim": 8, "d_repeat_num": 4}
PG = {"size": 64, "arch": "unet", "conv_dim": 8, "blocks": 1, "depth": 2}


def _cfg(iters, **kw):
    return InitiativeTrainConfig(iters=iters, batch=2, eval_every=1, eval_faces=4, heldout_faces=4, train_images=32, sm=SM, model=PG, **kw)


def test_train_ships_a_loadable_generator_and_resumes_exactly(data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("FACESHIELD_DATA", str(data_root))
    straight = tmp_path / "a" / "pg.pt"
    meta = train(_cfg(3), straight, log_every=1, save_every=1)
    assert meta["trained_against"] == ["surrogate"] and meta["eps_levels"] == 8.0 and len(meta["history"]) == 3
    assert meta["heldout"]["faces"] == 4 and meta["heldout"]["psnr_db"] > 30  # 8 levels at most: >= 30.1 dB
    assert abs(meta["best_distortion"] - max(r["dist"] for r in meta["history"])) < 1e-5  # PG_best: the largest held-out distortion
    g = load_perturbation_generator(straight, GENERATOR_INFOS["disrupter-stargan"])
    x = torch.rand(2, 3, 64, 64)
    assert float(g(x).abs().max()) <= 8 / 255 + 1e-6
    resumed = tmp_path / "b" / "pg.pt"
    train(_cfg(2), resumed, log_every=1, save_every=1)
    train(_cfg(3), resumed, log_every=1, save_every=1)
    a, b = torch.load(straight, weights_only=True), torch.load(resumed, weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_domain_conditions_follow_stargan():
    labels = torch.tensor([[1.0, 0, 0, 1, 0], [0, 0, 1, 0, 1]])
    c = domain_conditions(labels, ["Blond_Hair", "Male"])
    assert c.shape == (2, 2, 5)
    assert c[0, 0].tolist() == [0, 1, 0, 1, 0] and c[1, 1].tolist() == [0, 0, 1, 1, 1]
    assert torch.equal(c[1, 0], stargan_condition("Male", {"Black_Hair": 1.0, "Male": 1.0}))
