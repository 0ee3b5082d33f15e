"""Re-detection inside the loss (``redetect=k``): the boxes the detector weighs on the protected image
(the attack engine's iterate, shown to the loss by ``observe``) are attacked too, at the same number
of forward passes."""
import numpy as np
import pytest
import torch

from faceshield.attacks import MIFGSM, EOTLoss, HeatmapCosineLoss, LandmarkDisplacementLoss, SumLoss
from faceshield.core.types import Face

ROI = [16.0, 16.0, 48.0, 48.0]
MOVED = [20.0, 18.0, 52.0, 50.0]  # IoU 0.70 with ROI: the same face, a new box


@pytest.fixture
def moving(toy_extractor):
    """``moving(found)``: the toy extractor, but its detector returns the boxes ``found`` on any
    image and counts its calls (``.detections``)."""

    class MovingDetector(type(toy_extractor)):
        def __init__(self, found):
            super().__init__()
            self.found = found
            self.detections = 0

        def detect(self, image):
            self.detections += 1
            return [Face(box=np.array(b), points=np.zeros((5, 2)), scheme=self.scheme) for b in self.found]

    return MovingDetector


def per_sample_weight(loss):
    return torch.zeros(loss.n_samples).index_add(0, loss.owner, loss.weight)


@pytest.mark.parametrize("mode", ["fixed", "random"])
def test_redetect_adds_the_detected_box_at_the_same_cost(moving, images, mode):
    ext = moving([MOVED])
    loss = LandmarkDisplacementLoss(ext, [[ROI]] * 2, jitter=5, jitter_mode=mode, redetect=2)
    x = images[:2].clone()
    loss.observe(x)
    assert ext.detections == 0 and loss.base_boxes.shape == (2, 4)
    loss.observe(x)  # the 2nd iterate is re-detected
    assert ext.detections == 2  # once per sample
    assert loss.base_boxes.tolist() == [ROI, MOVED, ROI, MOVED]
    assert loss.draw_boxes().shape == (10, 4)  # still 5 copies per face, shared by its 2 boxes
    assert torch.allclose(per_sample_weight(loss), torch.ones(2))  # each face still counts once
    box_of_copy = torch.arange(4).repeat_interleave(torch.tensor(loss._counts))
    per_box = torch.zeros(4).index_add(0, box_of_copy, loss.weight)
    assert torch.allclose(per_box, torch.full((4,), 0.5))  # and each of its boxes weighs the same
    assert loss(x, images[:2]).shape == (2,)
    loss.reset()
    assert loss.base_boxes.tolist() == [ROI, ROI]


def test_redetect_on_observed_iterates_only_and_only_new_boxes_of_the_same_face(moving, images):
    ext = moving([[0.0, 0.0, 10.0, 10.0], [16.5, 16.0, 48.5, 48.0]])  # another face; the same box
    loss = HeatmapCosineLoss(ext, [[ROI]], jitter=3, redetect=1)
    loss(images[:1].clone().requires_grad_(True), images[:1])  # evaluating the loss never detects
    assert ext.detections == 0
    loss.observe(images[:1])
    assert ext.detections == 1 and loss.base_boxes.tolist() == [ROI]


def test_redetect_on_a_region_detects_on_the_whole_image(moving, images):
    """With ``canvas`` the iterate (a region of a photo) is pasted into the photo before detection,
    and the boxes come back in the region's pixels."""
    photo = np.zeros((100, 120, 3), np.uint8)
    seen = []
    ext = moving([[30.0, 26.0, 62.0, 58.0]])  # in the photo's pixels: MOVED shifted by (10, 8)
    detect = ext.detect
    ext.detect = lambda image: seen.append(image) or detect(image)
    loss = LandmarkDisplacementLoss(ext, [[ROI]], jitter=3, redetect=1, canvas=[(photo, (10, 8))])
    loss.observe(images[:1])
    (full,) = seen
    assert full.shape == photo.shape and not photo.any()  # the photo itself is left alone
    assert np.array_equal(full[8:72, 10:74], np.round(images[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8))
    assert full[:8].sum() == 0 and full[:, 74:].sum() == 0
    assert loss.base_boxes.tolist() == [ROI, MOVED]
    with pytest.raises(ValueError, match="canvas"):
        LandmarkDisplacementLoss(ext, [[ROI]] * 2, canvas=[(photo, (0, 0))])


def test_redetect_keeps_the_clean_box_and_the_latest(moving, images):
    boxes = [[16.0 + 2 * i, 16.0, 48.0 + 2 * i, 48.0] for i in range(1, 7)]  # each new, all the same face
    ext = moving([])
    loss = LandmarkDisplacementLoss(ext, [[ROI]], jitter=9, redetect=1)
    for b in boxes:
        ext.found = [b]
        loss.observe(images[:1])
    kept = loss.base_boxes.tolist()
    assert len(kept) == loss.MAX_BOXES and kept[0] == ROI and kept[1:] == boxes[-(loss.MAX_BOXES - 1):]


def test_redetect_attacks_every_candidate_of_the_face(moving, images):
    """All the boxes the detector weighs (``candidates``, best first) join; the best is kept longest."""
    cands = [[16.0 + 2 * i, 16.0, 48.0 + 2 * i, 48.0] for i in range(1, 8)]  # best first, all new
    ext = moving([])
    ext.candidates = lambda image: [Face(box=np.array(b), points=np.zeros((5, 2)), scheme=ext.scheme) for b in ext.found]
    loss = LandmarkDisplacementLoss(ext, [[ROI]], jitter=9, redetect=1)
    ext.found = cands[:2]
    loss.observe(images[:1])
    assert loss.base_boxes.tolist() == [ROI, cands[1], cands[0]]
    assert torch.allclose(per_sample_weight(loss), torch.ones(1))
    ext.found = cands
    loss.observe(images[:1])
    kept = loss.base_boxes.tolist()
    assert len(kept) == loss.MAX_BOXES and kept[0] == ROI and kept[-1] == cands[0]  # the best survives
    assert set(map(tuple, kept[1:])) == set(map(tuple, cands[: loss.MAX_BOXES - 1]))


def test_nme_cap_moves_the_budget_to_the_boxes_below_it(moving, images):
    far, near = [0.0, 0.0, 32.0, 32.0], [16.0, 16.0, 48.0, 48.0]
    ext = moving([])
    x = images[:1].clone()
    pert = x.clone()
    pert[..., :14, :14] = 1 - pert[..., :14, :14]  # content only the far box sees
    pert[..., 34:46, 34:46] *= 0.95  # a little change only the near box sees
    plain = LandmarkDisplacementLoss(ext, [[far, near]])
    capped = LandmarkDisplacementLoss(ext, [[far, near]], cap=0.05)
    with torch.no_grad():
        d = -plain.per_face(plain.predict(pert), plain.reference(x))
        assert d[0] > 0.05 > d[1] > 0  # the far box moved past the cap, the near one did not
        assert float(capped(pert, x)) == pytest.approx(-(0.05 + float(d[1])), rel=1e-5)  # faces are summed
    p = pert.clone().requires_grad_(True)
    capped(p, x).sum().backward()
    assert p.grad[..., :12, :12].abs().sum() == 0  # no gradient from the box beyond the cap
    assert p.grad[..., 16:48, 16:48].abs().sum() > 0  # the near box still pulls
    for bad in (-0.1, "1"):
        with pytest.raises((ValueError, TypeError), match="cap"):
            LandmarkDisplacementLoss(ext, [[ROI]], cap=bad)


def test_redetect_off_by_default_and_validated(moving, images):
    ext = moving([MOVED])
    MIFGSM(LandmarkDisplacementLoss(ext, [[ROI]], jitter=3), steps=3)(images[:1])
    assert ext.detections == 0
    attack = MIFGSM(LandmarkDisplacementLoss(ext, [[ROI]], jitter=3, redetect=1), steps=3)
    attack(images[:1])
    assert ext.detections == 3  # once per iteration
    # wrapped in EOT (3 draws per iteration) and an ensemble: still once per iteration, on the
    # untransformed iterate (after 1 step from the sub-level dither: the clean image +- 1 level)
    seen = []
    ext.detect = lambda image: seen.append(image) or []
    eot = EOTLoss(LandmarkDisplacementLoss(ext, [[ROI]], jitter=3, redetect=1), ["resize:0.5"], samples=3)
    MIFGSM(SumLoss([eot]), steps=1)(images[:1])
    clean = np.round(images[0].permute(1, 2, 0).numpy() * 255)
    assert len(seen) == 1 and np.abs(seen[0] - clean).max() <= 1
    resized = np.round(eot.pool[0].forward(images[:1])[0].permute(1, 2, 0).numpy() * 255)
    assert np.abs(resized - clean).max() > 1  # what a detection after the transform would have seen
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="redetect"):
            LandmarkDisplacementLoss(ext, [[ROI]], redetect=bad)
