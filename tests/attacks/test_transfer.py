"""Landmark Breaker's transfer variants (Table III): LB_trans (input diversity) and LB_mix."""
import pytest
import torch

from faceshield.attacks import DIMIFGSM, IFGSM, MIFGSM, EOTLoss, HeatmapCosineLoss, LandmarkDisplacementLoss, MixedFGSM, SumLoss, create_attack, move_boxes, resize_pad

ROIS = [[[16.0, 16.0, 48.0, 48.0]]]


def rois(n):
    return ROIS * n


def test_resize_pad_geometry_matches_the_moved_boxes():
    x = torch.zeros(1, 1, 40, 60)
    x[..., 10:20, 30:44] = 1  # a bright block: pixels [30, 44) x [10, 20)
    y, affine = resize_pad(x, 0.5, (3, 5))
    assert y.shape == x.shape and affine == (0.5, 0.5, 3.0, 5.0)
    box = move_boxes(torch.tensor([[30.0, 10.0, 44.0, 20.0]]), affine)[0]
    assert box.tolist() == [18.0, 10.0, 25.0, 15.0]
    inside = y[0, 0, 10:15, 18:25]
    assert inside.min() > 0.99 and y.sum() == pytest.approx(inside.sum())
    big, affine = resize_pad(x, 1.5, (-10, -4))  # larger than the canvas: cropped
    assert big.shape == x.shape and affine == (1.5, 1.5, -10.0, -4.0)


@pytest.mark.parametrize("cls", [HeatmapCosineLoss, LandmarkDisplacementLoss])
def test_losses_follow_an_integer_shift_exactly(cls, toy_extractor, images):
    loss = cls(toy_extractor, rois(3))
    shifted, affine = resize_pad(images, 1.0, (5, -3))
    plain = loss(images, images)
    moved = loss(shifted, images, affine=affine)  # boxes moved with the content: nothing changed
    assert torch.allclose(moved, plain, atol=1e-5)
    assert not torch.allclose(loss(shifted, images), plain, atol=1e-3)  # boxes left behind: it differs


def test_losses_follow_a_resize_approximately(toy_extractor, images):
    loss = HeatmapCosineLoss(toy_extractor, rois(3))
    small, affine = resize_pad(images, 0.9, (2, 4))
    follow = loss(small, images, affine=affine)
    stay = loss(small, images)
    assert (follow > 0.9).all() and (follow > stay).all()
    s = SumLoss([loss, LandmarkDisplacementLoss(toy_extractor, rois(3))])
    assert s(small, images, affine=affine).shape == (3,)


def test_lb_trans_lowers_the_loss_keeps_the_budget_and_is_reproducible(toy_extractor, images):
    loss = HeatmapCosineLoss(toy_extractor, rois(3))
    atk = create_attack("lb_trans", loss, eps=15 / 255, steps=10, decay=0.5)
    assert isinstance(atk, DIMIFGSM) and atk.decay == 0.5
    adv = atk(images, seed=4)
    assert (loss(adv, images) < 0.99).all()
    assert (torch.round(adv * 255) - torch.round(images * 255)).abs().max() <= 15
    assert torch.equal(adv, atk(images, seed=4))
    assert not torch.equal(adv, atk(images, seed=5))
    assert not torch.equal(adv, MIFGSM(loss, eps=15 / 255, steps=10)(images, seed=4))
    draws = {atk.draw(t, 4, (64, 64)) for t in range(10)}
    assert len(draws) == 10 and all(0.9 <= r <= 1.1 for r, _ in draws)


def test_lb_trans_without_diversity_is_lb(toy_extractor, images):
    loss = HeatmapCosineLoss(toy_extractor, rois(3))
    kw = dict(eps=15 / 255, steps=5)
    assert torch.equal(DIMIFGSM(loss, prob=0.0, **kw)(images), MIFGSM(loss, **kw)(images))


def test_lb_trans_is_batch_invariant_and_works_with_eot(toy_extractor, images):
    kw = dict(eps=15 / 255, steps=4)
    batch = DIMIFGSM(EOTLoss(HeatmapCosineLoss(toy_extractor, rois(3)), ["diffjpeg:q=50..90"], samples=1), **kw)(images, seed=2)
    one = DIMIFGSM(EOTLoss(HeatmapCosineLoss(toy_extractor, rois(1)), ["diffjpeg:q=50..90"], samples=1), **kw)(images[2:], seed=2)
    assert torch.equal(one[0], batch[2])


def test_lb_trans_needs_a_loss_that_can_move_its_boxes(images):
    with pytest.raises(TypeError, match="input diversity needs a loss accepting affine="):
        DIMIFGSM(lambda a, b: (a - b).flatten(1).sum(1))
    with pytest.raises(ValueError, match="ratio_range: expected 0 < low <= high"):
        DIMIFGSM(lambda a, b, **k: a.sum(), ratio_range=(1.1, 0.9))


def test_lb_mix_alternates_base2_and_lb(toy_extractor, images):
    loss = HeatmapCosineLoss(toy_extractor, rois(3))
    kw = dict(eps=15 / 255, steps=6)
    atk = create_attack("lb_mix", loss, **kw)
    assert isinstance(atk, MixedFGSM)
    mix = atk(images)
    assert (loss(mix, images) < 0.99).all()
    assert not torch.equal(mix, IFGSM(loss, **kw)(images)) and not torch.equal(mix, MIFGSM(loss, **kw)(images))
    one = dict(eps=15 / 255, steps=1)
    assert torch.equal(MixedFGSM(loss, **one)(images), IFGSM(loss, **one)(images))  # step 0 is Base2
    assert torch.equal(MixedFGSM(loss, decay=0.0, **kw)(images), IFGSM(loss, **kw)(images))  # no momentum: all Base2


def test_attack_names_include_the_transfer_variants():
    from faceshield.attacks import attack_names

    assert {"lb_trans", "lb_mix", "dimifgsm", "mixed"} <= set(attack_names())


def test_input_diversity_keeps_inputs_in_range():
    """Resampling rounds just outside [0, 1]; the extractors' range check must never see that."""
    import torch

    from faceshield.attacks import create_attack

    seen = []

    def probe(x_adv, x_clean, affine=None):
        seen.append((float(x_adv.detach().min()), float(x_adv.detach().max())))
        return (x_adv.mean((1, 2, 3)) - x_clean.mean((1, 2, 3))) ** 2

    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    x = torch.where(x > 0.5, torch.ones_like(x), x)  # bilinear weights of saturated pixels sum to 1 + 1e-7
    attack = create_attack("lb_trans", probe, eps=4 / 255, alpha=1 / 255, steps=2, prob=1.0)
    for ratio in (0.9, 0.93, 1.0, 1.07):
        attack.draw = lambda step, seed, size, r=ratio: (r, (0, 0))  # 0.9 and 0.93 overshoot by 1.2e-7 here
        attack.objective(x, x, 0, seed=0)
    assert len(seen) == 4 and all(0.0 <= lo and hi <= 1.0 for lo, hi in seen)
