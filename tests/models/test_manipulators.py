"""StarGAN-class editor: the reference layout loads (official checkpoint format), bad files get a
clear error, the registry lists every family."""
from __future__ import annotations

import json

import pytest
import torch

from faceshield.models import create_target, list_targets, target_info
from faceshield.models.manipulator import STARGAN_DOMAINS
from faceshield.models.stargan import OFFICIAL_CELEBA_128, StarGANConfig, StarGANDiscriminator, StarGANGenerator, official_config


def test_registry_lists_every_family():
    fams = {target_info(n).family for n in list_targets()}
    assert fams == {"landmark", "manipulator", "detector", "generator"}
    assert "stargan" in list_targets(family="manipulator")
    assert set(list_targets(family="detector")) >= {"meso4-df", "mesoinception-f2f"}
    assert target_info("stargan").domains == STARGAN_DOMAINS
    for n in list_targets():
        d = target_info(n).to_dict()
        assert d["name"] == n and d["family"] in ("landmark", "manipulator", "detector", "generator") and d["kind"]
        json.dumps(d)


def test_official_checkpoint_format_loads(tmp_path):
    """A file in the format of yunjey/stargan's 200000-G.ckpt (written by our code with the reference
    layout: conv_dim 64, 6 residual blocks, instance norms with running statistics) loads through the
    resolver with its configuration inferred from the keys, and runs at 128 px."""
    torch.manual_seed(0)
    ref = StarGANGenerator(OFFICIAL_CELEBA_128)
    sd = ref.state_dict()
    assert "main.1.running_mean" in sd and "main.3.main.0.weight" not in sd  # the reference's key names
    assert any(k.startswith("main.9.main.") for k in sd)  # residual blocks at main.9 .. main.14
    path = tmp_path / "200000-G.ckpt"
    torch.save(sd, path)
    assert official_config(sd) == OFFICIAL_CELEBA_128
    g = create_target("stargan", weights=str(path), cached=False)
    assert g.size == 128 and g.domains == STARGAN_DOMAINS
    x = torch.rand(1, 3, 128, 128) * 2 - 1
    c = torch.tensor([[0.0, 1, 0, 1, 1]])
    with torch.no_grad():
        assert torch.allclose(g(x, c), ref(x, c))
        out = g(x, c)
    assert out.shape == (1, 3, 128, 128) and out.abs().max() <= 1


def test_bad_checkpoints_name_the_file(tmp_path):
    bad = tmp_path / "wrong.ckpt"
    torch.save({"main.0.weight": torch.zeros(64, 8, 3, 3)}, bad)
    with pytest.raises(ValueError, match="wrong.ckpt.*StarGAN"):
        create_target("stargan", weights=str(bad), cached=False)
    other = tmp_path / "other.ckpt"
    sd = StarGANGenerator(StarGANConfig(c_dim=7, output="tanh", track_stats=True)).state_dict()
    torch.save(sd, other)
    with pytest.raises(ValueError, match="other.ckpt.*7 conditions"):
        create_target("stargan", weights=str(other), cached=False)
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.ckpt"):
        create_target("stargan", weights=str(junk), cached=False)


def test_generator_outputs_and_critic_shapes():
    x = torch.rand(2, 3, 64, 64) * 1.8 - 0.9
    g = StarGANGenerator(StarGANConfig(output="residual"))
    torch.nn.init.zeros_(g.main[-1].weight)  # the last layer predicts the change
    assert torch.allclose(g(x, torch.zeros(2, 5)), x, atol=1e-5)
    cfg = StarGANConfig(output="attention")  # A x + (1 - A) C
    g = StarGANGenerator(cfg)
    with torch.no_grad():
        g.main[-1].bias[3] = 50.0  # A = 1: the input itself
    assert torch.allclose(g(x, torch.zeros(2, 5)), x, atol=1e-5)
    with pytest.raises(ValueError, match="output: expected"):
        StarGANGenerator(StarGANConfig(output="sigmoid"))
    src, cls = StarGANDiscriminator(cfg)(x)
    assert src.shape == (2, 1, 4, 4) and cls.shape == (2, 5)


def test_shipped_stargan_edits_change_the_face():
    g = create_target("stargan")
    x = torch.rand(1, 3, g.size, g.size) * 2 - 1
    with torch.no_grad():
        a = g(x, g.condition("Black_Hair", {})[None])
        b = g(x, g.condition("Blond_Hair", {})[None])
    assert a.shape == x.shape and not torch.equal(a, b)  # the condition matters


def test_conditions_follow_stargan_create_labels():
    g = create_target("stargan")
    own = {"Black_Hair": 0.9, "Blond_Hair": 0.1, "Brown_Hair": 0.2, "Male": 0.8, "Young": 0.3}
    assert g.condition("Blond_Hair", own).tolist() == [0, 1, 0, 1, 0]  # hair one-hot, the rest kept
    assert g.condition("Male", own).tolist() == [1, 0, 0, 0, 0]  # Male flipped
    assert g.condition("Young", own).tolist() == [1, 0, 0, 1, 1]
    with pytest.raises(ValueError, match="unknown domain 'Bald'.*Black_Hair"):
        g.condition("Bald", own)


@pytest.mark.parametrize("arch,levels", [("conv", 2), ("unet", 4)])
def test_other_architectures_and_domain_sets_load_from_their_sidecar(tmp_path, arch, levels):
    """The black-box targets of seed 003 Table 1: a plain conv body and pix2pix's U-Net, and a
    "DD" editor on another domain set; the sidecar's architecture and domains come back through
    the registry, and the edit follows the condition."""
    from faceshield.training.celeba import DD_DOMAINS

    torch.manual_seed(0)
    cfg = StarGANConfig(c_dim=len(DD_DOMAINS), repeat_num=levels, arch=arch)
    ref = StarGANGenerator(cfg)
    path = tmp_path / f"{arch}.pt"
    torch.save(ref.state_dict(), path)
    path.with_suffix(".json").write_text(json.dumps({"model": cfg.to_dict(), "domains": list(DD_DOMAINS)}))
    g = create_target("stargan", weights=str(path), cached=False)
    assert g.domains == DD_DOMAINS and target_info("stargan").domains == STARGAN_DOMAINS  # the registry's entry is untouched
    own = {"Bangs": 0.9, "Smiling": 0.2}
    c = g.condition("Smiling", own)
    assert c.tolist() == [1, 0, 0, 0, 1]  # the edited attribute flipped, the others kept
    x = (torch.rand(2, 3, 64, 64) * 2 - 1).requires_grad_()
    out = g(x, c.expand(2, -1))
    assert out.shape == x.shape and out.abs().max() <= 1
    assert not torch.allclose(out, g(x, g.condition("Bangs", own).expand(2, -1)))
    out.sum().backward()
    assert x.grad.abs().sum() > 0  # differentiable, so attacks can be made on it
    with torch.no_grad():
        assert torch.allclose(out, ref(x, c.expand(2, -1)))


def test_unknown_architecture_is_refused():
    with pytest.raises(ValueError, match="arch: expected"):
        StarGANGenerator(StarGANConfig(arch="transformer"))
    with pytest.raises(ValueError, match="tanh"):
        StarGANGenerator(StarGANConfig(arch="unet", output="attention"))
