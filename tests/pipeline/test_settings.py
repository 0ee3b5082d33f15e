"""One checked settings schema: ProtectConfig checks every field when built, speaks the user's units
through from_user, and refuses settings its method or targets would ignore."""
import dataclasses

import pytest
import torch

from faceshield.attacks import FGSM, HeatmapCosineLoss, attack_settings, create_attack
from faceshield.pipeline import PRESETS, ProtectConfig
from faceshield.pipeline.config import unused_setting


@pytest.mark.parametrize("field, value, message", [
    ("method", "lbb", "method: expected one of base1, base2, lb"),
    ("targets", (), "targets: expected at least one target"),
    ("targets", ("nonesuch",), "unknown target 'nonesuch'"),
    ("targets", ("mtcnn", "mtcnn"), "appears twice"),
    ("eps", -3 / 255, "eps: expected 1/255..1 ([0, 1] units"),
    ("eps", 0.5 / 255, "eps: expected 1/255..1"),
    ("eps", 2.0, "eps: expected 1/255..1"),
    ("alpha", 0, "alpha: expected a number in (0, 1]"),
    ("steps", 0, "steps: expected an integer in 1..100000"),
    ("steps", 2.5, "steps: expected an integer, got 2.5"),
    ("decay", -0.1, "decay: expected a number >= 0"),
    ("budget", "loose", "budget: expected one of project, paper"),
    ("mask", "everywhere", "mask: expected one of face, none"),
    ("mask_scale", 0, "mask_scale: expected a number in (0, 10]"),
    ("jitter", 0, "jitter: expected an integer in 1..1000"),
    ("jitter_mode", "sometimes", "jitter_mode: expected one of fixed, random"),
    ("seed", -1, "seed: expected an integer >= 0"),
    ("seed", True, "seed: expected an integer, got True"),
    ("eot", ("jpeg75",), "eot: EOT: 'jpeg:q=75' is not differentiable"),
    ("eot", ("blurry",), "eot: "),
    ("perceptual", 1, "perceptual: expected true or false, got 1"),
    ("jnd", "yes", "jnd: expected true or false"),
    ("chroma", 1.5, "chroma: expected 0..1 (the fraction of the perturbation's colour kept"),
    ("delta_e_weight", -1, "delta_e_weight: expected a number >= 0"),
    ("smooth", 25, "smooth: expected 0..20 pixels"),
    ("ssim_weight", float("nan"), "ssim_weight: expected a number"),
    ("push", -1, "push: expected a number >= 0"),
    ("redetect", -2, "redetect: expected an integer >= 0"),
    ("nme_cap", "far", "nme_cap: expected a number"),
])
def test_every_field_is_checked_when_the_config_is_built(field, value, message):
    with pytest.raises(ValueError) as e:
        ProtectConfig(**{field: value})
    assert message in str(e.value)


def test_every_field_has_a_check():
    for f in dataclasses.fields(ProtectConfig):
        assert "setting" in f.metadata, f.name
    with pytest.raises(dataclasses.FrozenInstanceError):
        ProtectConfig().eps = -1  # built once, checked once: no unchecked mutation afterwards


def test_user_units_are_checked_in_the_units_typed():
    flag = lambda k: "--" + k.replace("_", "-")  # noqa: E731
    with pytest.raises(ValueError, match=r"^--eps: expected 1\.\.255 levels, got -3$"):
        ProtectConfig.from_user({"eps": -3}, name=flag)
    with pytest.raises(ValueError, match=r"^attack\.alpha: expected a number in \(0, 255\] levels, got 0$"):
        ProtectConfig.from_user({"alpha": 0}, name=lambda k: f"attack.{k}")
    c = ProtectConfig.from_user({"eps": 8, "alpha": 0.5, "targets": ["fan"], "eot": ["default"]})
    assert c.eps == 8 / 255 and c.alpha == 0.5 / 255 and c.targets == ("fan",) and len(c.eot) > 1  # "default" expanded
    assert ProtectConfig.from_user({}, preset="paper") == ProtectConfig()


def test_a_setting_the_method_or_targets_would_ignore_is_refused_not_swallowed():
    for kw, why in [
        ({"method": "base1", "steps": 40}, "method base1 takes one step of eps"),
        ({"method": "base1", "alpha": 2 / 255}, "method base1 takes one step of eps"),
        ({"method": "base2", "decay": 1.0}, "has no momentum"),
        ({"method": "pgd", "budget": "paper"}, "always projects"),
        ({"push": 0.5}, "only heat-map targets use it"),
        ({"targets": ("fan",), "nme_cap": 0.5}, "only regression targets use it"),
        ({"eot_samples": 4}, "eot is off"),
        ({"mask": "none", "mask_scale": 2.0}, "mask is none"),
    ]:
        with pytest.raises(ValueError, match=why):
            ProtectConfig(**kw)
    # at their defaults they are harmless, and the report leaves out what the run did not use
    d = ProtectConfig(method="base1").to_dict()
    assert not {"alpha", "steps", "decay", "budget", "push", "eot_samples", "alpha_levels"} & set(d) and d["eps_levels"] == 15
    assert {"push", "nme_cap"} <= set(ProtectConfig(targets=("mtcnn", "fan")).to_dict())
    assert unused_setting("steps", method="lb") is None and unused_setting("push", targets=("mtcnn", "hrnet")) is None


def test_presets_only_offer_values_explicit_ones_win():
    q = ProtectConfig.preset("quality")  # push is for heat-map targets: dropped on MTCNN alone
    assert q.push == 0 and q.steps == 100 and ProtectConfig.preset("quality", targets=("fan",)).push == PRESETS["quality"]["push"]
    assert ProtectConfig.preset("strong", method="base1").perceptual  # strong's 60 steps mean nothing for FGSM: dropped
    with pytest.raises(ValueError, match="steps: method base1"):
        ProtectConfig.preset("strong", method="base1", steps=60)
    for name in PRESETS:  # every preset builds on every white-box target
        for t in ("mtcnn", "fan", "hrnet", "facemesh"):
            ProtectConfig.preset(name, targets=(t,))
    with pytest.raises(ValueError, match="--preset: expected one of subtle, paper"):
        ProtectConfig.from_user({}, preset="fastest", name=lambda k: f"--{k}")


def test_the_optimisers_honour_what_they_are_given(toy_extractor, images):
    loss = HeatmapCosineLoss(toy_extractor, [[0, 0, images.shape[-1], images.shape[-2]]] * len(images))
    for name in ("base1", "base2", "lb", "pgd", "lb_trans", "lb_mix"):
        kw = ProtectConfig(method=name).attack_kwargs()
        assert set(kw) == set(attack_settings(name)) - {"ratio_range", "prob"}  # DI's own, at the paper's values
        create_attack(name, loss, **kw)
    with pytest.raises(TypeError, match="does not use decay"):
        create_attack("base2", loss, decay=0.5)
    with pytest.raises(TypeError, match="does not use steps"):
        create_attack("base1", loss, steps=20)
    plain = FGSM(loss)(images, seed=0)
    assert not torch.equal(plain, FGSM(loss, smooth=2.0)(images, seed=0))  # FGSM blurs its step now
    assert not torch.equal(plain, FGSM(loss, ssim_weight=50.0)(images, seed=0))  # and weighs SSIM in its gradient
