"""The OTD training script: crop-level PGD stays in its budget on the 8-bit grid, and a tiny run ships
weights :func:`load_otd` reads, the same from the edits' cache as from scratch."""
from __future__ import annotations

import json

import torch

from faceshield.defenses.otd import load_otd
from faceshield.models import create_target
from faceshield.training.otd import OTDTrainConfig, crop_pgd, settings, train


def test_crop_pgd_disrupts_inside_its_budget_on_the_8bit_grid():
    g = create_target("stargan")
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(2, 3, 64, 64, generator=gen) * 255).round() / 127.5 - 1
    c = torch.tensor([[1.0, 0, 0, 0, 1], [0, 1.0, 0, 1, 0]])
    name, eps, step, steps = settings(0)
    assert name == "ruiz" and (eps, step, steps) == (0.05, 0.01, 10)
    xa, ref = crop_pgd(g, x, c, eps, 0.02, 3, gen)
    levels = (xa - x) * 127.5
    assert levels.abs().max() <= 6 + 1e-3 and torch.allclose(levels, levels.round(), atol=1e-3)
    with torch.no_grad():
        assert (g(xa, c) - ref).pow(2).mean() > 0.01


def test_train_ships_loadable_weights_and_the_cache_gives_the_same_run(data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("FACESHIELD_DATA", str(data_root))
    cfg = OTDTrainConfig(train_faces=8, test_faces=8, attack_batch=4, epochs=1, batch=8)
    a = train(cfg, tmp_path / "a" / "otd.pt", cache=tmp_path / "edits.pt")
    b = train(cfg, tmp_path / "b" / "otd.pt", cache=tmp_path / "edits.pt")
    assert not a["edits"]["from_cache"] and b["edits"]["from_cache"] and a["edits"]["train"]["digest"] == b["edits"]["train"]["digest"]
    assert a["heldout"]["images"] == 16 and set(a["heldout"]["recall"]) == {"ruiz", "weak2x3"}
    sa, sb = (torch.load(tmp_path / d / "otd.pt", weights_only=True) for d in ("a", "b"))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert json.loads((tmp_path / "a" / "otd.json").read_text())["data"]["images"] == 8
    load_otd(str(tmp_path / "a" / "otd.pt"))
