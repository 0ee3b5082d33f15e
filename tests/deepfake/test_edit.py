"""Photos in, photos out: a manipulator edits the face of a whole photo through a differentiable
aligned crop; Ruiz et al.'s disruption through the same crop distorts the edit."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from faceshield.attacks import IFGSM, resize_pad
from faceshield.attacks.disruption import DisruptionLoss
from faceshield.core.errors import NoFaceError
from faceshield.deepfake.edit import DISRUPTED_L2, crop_matrix, find_faces, manipulate, measure_disruption
from faceshield.faces.crop import feather_mask, paste_crops, warp_crops
from faceshield.io import to_tensor, to_uint8
from faceshield.models import create_target
from faceshield.pipeline import ProtectConfig
from faceshield.pipeline.image import crop_extent, protect_array


def test_warp_and_paste_are_inverse():
    x = torch.rand(1, 3, 40, 50)
    m = torch.tensor([[[1.0, 0.0, -12.0], [0.0, 1.0, -7.0]]])
    c = warp_crops(x, m, 16)
    assert torch.allclose(c[0], x[0, :, 7:23, 12:28], atol=1e-4)
    back = paste_crops(torch.zeros_like(x), c, torch.ones(1, 1, 16, 16), m)
    assert torch.allclose(back[0, :, 7:23, 12:28], x[0, :, 7:23, 12:28], atol=1e-4)
    assert back[0, :, :6].abs().max() < 1e-6 and back[0, :, :, 29:].abs().max() < 1e-6
    f = feather_mask(32)
    assert f.shape == (1, 1, 32, 32) and f.max() == 1 and f[0, 0, 0, 0] < 0.05
    # the warp is differentiable w.r.t. the image
    x.requires_grad_(True)
    warp_crops(x, m * torch.tensor([[[0.5], [0.5]]]), 16).sum().backward()
    assert x.grad.abs().sum() > 0


def test_manipulate_edits_only_the_face_region(astronaut):
    g = create_target("stargan")
    out = manipulate(astronaut, g, "Blond_Hair")
    assert out.shape == astronaut.shape and out.dtype == np.uint8
    faces = find_faces(astronaut, g)
    assert len(faces) == 1
    x0, y0, x1, y1 = crop_extent(faces[0].matrix, g.size)
    changed = np.argwhere((out != astronaut).any(-1))
    assert len(changed) > 0.02 * (x1 - x0) * (y1 - y0)  # the edit shows
    assert changed[:, 1].min() >= x0 - 1 and changed[:, 1].max() <= x1 + 1 and changed[:, 0].min() >= y0 - 1 and changed[:, 0].max() <= y1 + 1
    assert not np.shares_memory(out, astronaut)


def test_manipulate_refuses_photos_without_a_face_and_unknown_domains(astronaut):
    with pytest.raises(NoFaceError):
        manipulate(np.full((120, 120, 3), 128, np.uint8), "stargan", "Male")
    with pytest.raises(ValueError, match="unknown domain 'Green_Hair'"):
        manipulate(astronaut, "stargan", "Green_Hair")


def test_crop_matrix_puts_the_points_on_the_template():
    tmpl = np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.75], [0.65, 0.75]])
    pts = tmpl * 100 + np.array([30.0, 20.0])
    m = crop_matrix(pts, 64, tmpl)
    assert np.allclose(pts @ m[:, :2].T + m[:, 2], tmpl * 64, atol=1e-3)


def test_disruption_loss_follows_the_content_under_input_diversity(astronaut):
    """resize_pad moves the image content; the loss moves the crop with it: on the moved clean image
    the edit stays close to the clean edit (resampling only), while the same crop without the move
    sees another part of the photo."""
    g = create_target("stargan")
    f = find_faces(astronaut, g)[0]
    c = torch.stack([g.condition(d, f.attrs) for d in g.domains])[None]
    loss = DisruptionLoss(g, [f.matrix[None]], [c])
    x = to_tensor(astronaut)
    moved, affine = resize_pad(x, 0.9, (20, 10))
    followed = -float(loss(moved, x, affine=affine))
    ignored = -float(loss(moved, x))
    assert 0 <= followed < 0.2 * ignored, (followed, ignored)


def _noise_l2(g, rgb, eps_levels, seed):
    rng = np.random.default_rng(seed)
    noisy = np.clip(rgb.astype(int) + rng.choice([-eps_levels, eps_levels], rgb.shape), 0, 255).astype(np.uint8)
    return np.mean(list(measure_disruption(rgb, noisy, g).l2.values()))


def test_ruiz_disruption_distorts_the_edit_far_more_than_noise(astronaut):
    """I-FGSM at Ruiz et al.'s settings (eps 0.05 on [-1, 1] = 6.4/255 -> 6 levels, 10 steps) on the
    whole photo: the edit of the saved protected photo moves far more than under random +-6-level
    sign noise on the same pixels."""
    g = create_target("stargan")
    cfg = ProtectConfig(targets=("stargan",), method="base2", eps=6 / 255, alpha=1 / 255, steps=10)
    prot = protect_array(astronaut, cfg).rgb
    assert np.abs(prot.astype(int) - astronaut).max() <= 6
    m = measure_disruption(astronaut, prot, g)
    floor = max(_noise_l2(g, astronaut, 6, s) for s in range(2))
    l2 = np.mean(list(m.l2.values()))
    assert l2 > 3 * floor, (l2, floor)
    assert m.faces == 1 and m.faces_lost == 0


def test_settings_for_manipulators_are_checked():
    with pytest.raises(ValueError, match="domains: only manipulator targets use it"):
        ProtectConfig(domains=("Male",))
    with pytest.raises(ValueError, match="unknown domain 'Bald'"):
        ProtectConfig(targets=("stargan",), domains=("Bald",))
    with pytest.raises(ValueError, match="detector target scores a manipulator"):
        ProtectConfig(targets=("meso4-df",))
    with pytest.raises(ValueError, match="jitter: only landmark targets use it"):
        ProtectConfig(targets=("stargan",), jitter=3)
    cfg = ProtectConfig.preset("quality", targets=("stargan",))  # landmark-only preset values are dropped
    assert cfg.redetect == 0 and cfg.smooth == 1.0
    assert "jitter" not in cfg.to_dict() and cfg.to_dict()["domain_mode"] == "all"


def test_cw_stays_in_the_budget_and_distorts_the_edit(astronaut):
    """The C&W objective (Adam inside the eps-box) keeps the L_inf budget after 8-bit rounding and
    distorts the edit more than sign noise of the same amplitude."""
    g = create_target("stargan")
    cfg = ProtectConfig(targets=("stargan",), method="cw", eps=6 / 255, steps=15)
    prot = protect_array(astronaut, cfg).rgb
    assert np.abs(prot.astype(int) - astronaut).max() <= 6
    l2 = np.mean(list(measure_disruption(astronaut, prot, g).l2.values()))
    assert l2 > 2 * max(_noise_l2(g, astronaut, 6, s) for s in range(2))
    with pytest.raises(ValueError, match="alpha: method cw optimises with Adam"):
        ProtectConfig(method="cw", alpha=2 / 255)


def test_a_detector_target_makes_the_edits_of_the_protected_photo_look_fake(astronaut, data_root, monkeypatch):
    """--targets stargan,meso4-df: the detector's real-logit on the edits joins the distortion, so
    MesoNet calls the edits of the protected photo fake more often than after the distortion alone."""
    monkeypatch.setenv("FACESHIELD_MESONET_DIR", str(data_root / "weights" / "mesonet"))
    g = create_target("stargan")
    base = dict(method="base2", eps=6 / 255, alpha=1 / 255, steps=10)
    alone = protect_array(astronaut, ProtectConfig(targets=("stargan",), **base)).rgb
    both = protect_array(astronaut, ProtectConfig(targets=("stargan", "meso4-df"), **base)).rgb
    p_alone = measure_disruption(astronaut, alone, g, judges=["meso4-df"]).judges["meso4-df"]["protected_edit"]
    p_both = measure_disruption(astronaut, both, g, judges=["meso4-df"]).judges["meso4-df"]["protected_edit"]
    assert p_both < p_alone - 0.1, (p_both, p_alone)
