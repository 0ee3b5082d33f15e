"""Perturbations shaped by what the eye forgives: JND budget, colour kept in luminance, S-CIELAB penalty."""
import numpy as np
import torch

from faceshield.attacks import MIFGSM, HeatmapCosineLoss, delta_e_penalty, jnd_budget, jnd_levels, limit_chroma
from faceshield.io import to_tensor
from faceshield.pipeline import ProtectConfig, protect_array

ROIS = [[[16.0, 16.0, 48.0, 48.0]]]


def test_jnd_is_small_on_flat_mid_grey_and_large_on_texture_and_in_the_dark():
    flat = torch.full((1, 3, 32, 32), 128 / 255)
    dark = torch.full((1, 3, 32, 32), 10 / 255)
    g = torch.Generator().manual_seed(0)
    texture = (torch.rand(1, 1, 32, 32, generator=g).repeat(1, 3, 1, 1) * 0.6 + 0.2)
    j_flat, j_dark, j_tex = (float(jnd_levels(x)[..., 8:-8, 8:-8].mean()) for x in (flat, dark, texture))
    assert 2.5 < j_flat < 4  # Chou & Li: 3 levels at mid-grey
    assert j_dark > 2 * j_flat and j_tex > 2 * j_flat
    w = jnd_budget(flat, 15 / 255)
    assert torch.allclose(w, jnd_levels(flat) / 15) and float(w.max()) <= 1


def test_limit_chroma_keeps_the_budget_and_greys_the_perturbation(images):
    g = torch.Generator().manual_seed(0)
    d = (torch.rand(images.shape, generator=g) * 2 - 1) * 8 / 255
    for c in (0.0, 0.3, 1.0):
        out = limit_chroma(d, c)
        assert out.abs().max() <= d.abs().max() + 1e-7  # a convex combination: L_inf holds
    grey = limit_chroma(d, 0.0)
    assert torch.equal(grey[:, 0], grey[:, 1]) and torch.equal(grey[:, 1], grey[:, 2])
    assert torch.equal(limit_chroma(d, 1.0), d)


def test_scielab_penalises_low_frequency_colour_blotches_more_than_fine_colour_noise():
    x = torch.full((1, 3, 64, 64), 0.5)
    g = torch.Generator().manual_seed(0)
    fine = (torch.rand(1, 1, 64, 64, generator=g) > 0.5).float() * 2 - 1  # +-1 per pixel
    blotch = torch.nn.functional.interpolate((torch.rand(1, 1, 4, 4, generator=g) > 0.5).float() * 2 - 1, size=64, mode="nearest")
    red_green = torch.tensor([1.0, -1.0, 0.0]).view(1, 3, 1, 1) * 8 / 255
    assert float(delta_e_penalty(x, x)) < 1e-4
    assert float(delta_e_penalty(x + blotch * red_green, x)) > 2 * float(delta_e_penalty(x + fine * red_green, x))
    xa = (x + fine * red_green).requires_grad_(True)
    (gr,) = torch.autograd.grad(delta_e_penalty(xa, x).sum(), xa)
    assert torch.isfinite(gr).all() and gr.abs().sum() > 0


def test_engine_honours_chroma_and_delta_e(toy_extractor, images):
    loss = HeatmapCosineLoss(toy_extractor, ROIS * len(images))
    grey = MIFGSM(loss, steps=3, chroma=0.0)(images, seed=0)
    d = torch.round(grey * 255) - torch.round(images * 255)
    assert (d[:, 0] - d[:, 1]).abs().max() <= 1 and (d[:, 1] - d[:, 2]).abs().max() <= 1  # grey up to clamping at 0 / 255
    plain = MIFGSM(loss, steps=3)(images, seed=0)
    assert not torch.equal(plain, MIFGSM(loss, steps=3, delta_e_weight=5.0)(images, seed=0))


def test_a_grey_photo_stays_grey_and_jnd_keeps_each_pixel_within_its_budget(astronaut):
    grey = np.repeat(astronaut.mean(-1, keepdims=True).round().astype(np.uint8), 3, -1)
    out = protect_array(grey, ProtectConfig(steps=3, jitter=1)).rgb
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all() and not np.array_equal(out, grey)
    res = protect_array(astronaut, ProtectConfig(steps=3, jitter=1, jnd=True))
    diff = np.abs(res.rgb.astype(int) - astronaut.astype(int)).max(-1)
    jnd = jnd_levels(to_tensor(astronaut))[0, 0].numpy()
    assert (diff <= np.floor(np.minimum(jnd, 15) + 1e-3) + 1).all()  # within the JND (+1: the map is recomputed on the whole image here)
    assert diff.max() > 0
