"""Expectation over transformations: the loss wrapper, and robustness to real JPEG on FAN."""
import numpy as np
import pytest
import torch

from faceshield.attacks import MIFGSM, EOTLoss, HeatmapCosineLoss
from faceshield.metrics import nme
from faceshield.transforms import jpeg, rgb_to_tensor

ROIS = [[[16.0, 16.0, 48.0, 48.0]]]


def test_eot_with_only_identity_equals_the_wrapped_loss(toy_extractor, images):
    loss = HeatmapCosineLoss(toy_extractor, ROIS * 3)
    eot = EOTLoss(loss, ["identity"], samples=3)
    x = (images + 0.05 * torch.randn(images.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    assert torch.allclose(eot(x, images), loss(x, images), atol=1e-6)
    atk = dict(eps=8 / 255, steps=4)
    assert torch.equal(MIFGSM(eot, **atk)(images, seed=2), MIFGSM(loss, **atk)(images, seed=2))


def test_eot_is_the_mean_over_its_draws(toy_extractor, images):
    loss = HeatmapCosineLoss(toy_extractor, ROIS * 3)
    eot = EOTLoss(loss, ["diffjpeg:q=30..90", "resize:0.5..0.9", "blur:0.5..1.5", "identity"], samples=3, seed=5)
    v = eot(images, images)
    expected = torch.stack([loss(t.forward(images), images) for t in eot.last]).mean(0)
    assert torch.allclose(v, expected, atol=1e-6)
    assert eot.last == eot.draw(0) and eot.draw(1) != eot.draw(0)  # a new draw every call
    eot.reset()
    eot(images, images)
    assert eot.last == eot.draw(0)


def test_eot_gradient_reaches_the_image_through_diffjpeg(toy_extractor, images):
    loss = EOTLoss(HeatmapCosineLoss(toy_extractor, ROIS * 3), ["diffjpeg:q=50"], samples=1)
    x = (images * 0.9 + 0.05).requires_grad_(True)
    (g,) = torch.autograd.grad(loss(x, images).sum(), x)
    assert torch.isfinite(g).all() and g.abs().sum() > 0


def test_eot_attack_is_reproducible_and_batch_invariant(toy_extractor, images):
    kw = dict(eps=8 / 255, steps=3)
    pool = ["diffjpeg:q=40..90", "blur:0.3..1.2"]
    batch = MIFGSM(EOTLoss(HeatmapCosineLoss(toy_extractor, ROIS * 3), pool, samples=2), **kw)
    a = batch(images, seed=1)
    assert torch.equal(a, batch(images, seed=1))  # the engine resets the draws
    one = MIFGSM(EOTLoss(HeatmapCosineLoss(toy_extractor, ROIS), pool, samples=2), **kw)(images[1:2], seed=1)
    assert torch.equal(one[0], a[1])


def test_eot_bad_arguments(toy_extractor):
    loss = HeatmapCosineLoss(toy_extractor, ROIS)
    with pytest.raises(ValueError, match="EOT: 'jpeg:q=75' is not differentiable; use its differentiable twin"):
        EOTLoss(loss, ["jpeg75"])
    with pytest.raises(ValueError, match="samples: expected an integer >= 1, got 0"):
        EOTLoss(loss, samples=0)
    with pytest.raises(ValueError, match="EOT: expected at least one transform"):
        EOTLoss(loss, [])
    with pytest.raises(ValueError, match="unknown transform 'jpg'"):
        EOTLoss(loss, ["jpg:50"])


# --- real JPEG Q50 on the shipped FAN, astronaut sample -----------------------------------------
#
# NME is measured on the clean face box (FAN's landmarks at the clean MTCNN box, library decode),
# so that it isolates what JPEG does to the perturbation from where MTCNN puts the box on the
# protected image (at a 4-level budget that box moves by 2-4 px, which alone changes the NME by
# more than JPEG does). Settings: eps 4/255, alpha 1/255, 20 MI-FGSM steps, jitter 1, seed 0,
# face mask; EOT = default pool, 2 samples per step. Measured (seeds 0, 1, 2):
#   plain LB   NME 0.135 / 0.083 / 0.205, after JPEG Q50 0.068 / 0.046 / 0.058
#   LB + EOT   NME 0.116 / 0.215 / 0.140, after JPEG Q50 0.104 / 0.108 / 0.105

SETTINGS = dict(targets=("fan",), eps=4 / 255, steps=20, jitter=1, seed=0)
SEEDS = (0, 2)


@pytest.fixture(scope="module")
def fan_runs(astronaut):
    from faceshield.models import create_extractor
    from faceshield.pipeline import ProtectConfig, protect_array

    fan = create_extractor("fan")
    ref = fan.detect(astronaut)[0]
    roi = torch.tensor(ref.roi[None], dtype=torch.float32)

    def fixed_box_nme(img):
        with torch.no_grad():
            p = fan.landmarks(rgb_to_tensor(img), roi, decode="library")[0].double().numpy()
        return float(nme(p, ref.points, fan.scheme))

    runs = {}
    for seed in SEEDS:
        s = {**SETTINGS, "seed": seed}
        runs[seed] = (protect_array(astronaut, ProtectConfig(**s), extractors={"fan": fan}).rgb,
                      protect_array(astronaut, ProtectConfig(**s, eot=("default",), eot_samples=2), extractors={"fan": fan}).rgb)
    return fixed_box_nme, runs


def test_jpeg_q50_removes_most_of_a_fragile_perturbation(astronaut, fan_runs):
    score, runs = fan_runs
    plain = runs[SEEDS[0]][0]
    assert score(jpeg(astronaut, 50)) < 0.02  # JPEG alone barely moves FAN's landmarks
    before, after = score(plain), score(jpeg(plain, 50))
    assert before > 0.08 and after < 0.7 * before


def test_eot_perturbation_keeps_more_nme_after_jpeg_q50_than_plain_lb(astronaut, fan_runs):
    """One seed is a coin with a bias: the float path (CPU, threads) decides which sign steps flip,
    and on seed 0 alone the ratio was 1.47 with 2 threads but 1.27 with 1. The property is about the
    expectation, so it is asserted on the mean over two seeds (0.105 vs 0.063 when measured, ratio
    1.66; the three seeds above give 1.85), with a margin of 1.2: well below what EOT buys, well
    above a tie."""
    score, runs = fan_runs
    eot = np.mean([score(jpeg(e, 50)) for _, e in runs.values()])
    plain = np.mean([score(jpeg(p, 50)) for p, _ in runs.values()])
    assert eot > 1.2 * plain, (eot, plain)
    assert all(np.abs(e.astype(int) - astronaut).max() <= 4 for _, e in runs.values())  # the same budget


def test_eot_keeps_transformed_inputs_in_range():
    import torch

    from faceshield.attacks import EOTLoss
    from faceshield.transforms import Identity

    class Overshoot(Identity):  # float rounding in a codec can land just outside [0, 1]
        def forward(self, x):
            return x * (1 + 1e-6) - 1e-7

    seen = []

    class Probe(torch.nn.Module):
        def forward(self, x, x_clean):
            seen.append((float(x.detach().min()), float(x.detach().max())))
            return (x - x_clean).abs().flatten(1).mean(1)

    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    x[..., 0, 0] = 1.0
    x[..., 0, 1] = 0.0
    x.requires_grad_(True)
    EOTLoss(Probe(), transforms=[Overshoot()], samples=2, seed=0)(x, x.detach() * 0.5).sum().backward()
    assert seen and all(0.0 <= lo and hi <= 1.0 for lo, hi in seen)
    assert x.grad is not None and x.grad.abs().sum() > 0  # straight through: the gradient survives
