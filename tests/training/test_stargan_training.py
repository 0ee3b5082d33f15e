"""StarGAN-class editor training: other bodies and another domain set (the black-box targets of
seed 003 Table 1) train, ship and load back through the registry with their domains."""
from __future__ import annotations

import pytest
import torch

from faceshield.models import create_target
from faceshield.models.stargan import StarGANConfig
from faceshield.training.celeba import DD_DOMAINS
from faceshield.training.stargan import StarGANTrainConfig, main, train


def test_a_dd_unet_editor_trains_ships_and_loads(data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("FACESHIELD_DATA", str(data_root))
    model = StarGANConfig(c_dim=len(DD_DOMAINS), conv_dim=8, repeat_num=3, arch="unet", d_conv_dim=8).to_dict()
    out = tmp_path / "dd.pt"
    meta = train(StarGANTrainConfig(iters=2, batch=2, domains=DD_DOMAINS, model=model), out, log_every=1, save_every=1)
    assert meta["domains"] == list(DD_DOMAINS) and len(meta["history"]) == 2
    g = create_target("stargan", weights=str(out), cached=False)
    assert g.domains == DD_DOMAINS and g.g.config.arch == "unet"
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert g(x, g.condition("Eyeglasses", {})[None]).shape == x.shape


def test_unknown_domains_are_refused(capsys):
    with pytest.raises(SystemExit):
        main(["--domains", "Black_Hair,Purple_Hair", "--iters", "1"])
    assert "Purple_Hair" in capsys.readouterr().err
