"""Perturbation generators: bounded by construction, loaded with a clear error for bad files, one
forward pass through the same call as the attacks, and (the shipped DeepFake Disrupter) a
protection that distorts StarGAN's edits far more than noise of the same budget."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from faceshield.deepfake.edit import crop_matrix, five_points, measure_disruption
from faceshield.generators import GeneratorPerturber, create_generator
from faceshield.io import to_tensor, to_uint8
from faceshield.models import create_extractor, list_targets, target_info
from faceshield.models.perturber import ARCHS, PerturbationNet, PerturberConfig
from faceshield.models.zoo import GENERATOR_INFOS, load_perturbation_generator
from faceshield.pipeline import ProtectConfig, protect_array
from faceshield.pipeline.config import DEFAULT_GENERATOR

TINY = PerturberConfig(conv_dim=8, blocks=1, depth=2)


def _write(tmp_path, cfg=TINY, eps=8.0, seed=0, name="g.pt"):
    torch.manual_seed(seed)
    net = PerturbationNet(cfg)
    p = tmp_path / name
    torch.save({k: v.half() for k, v in net.state_dict().items()}, p)
    p.with_suffix(".json").write_text(json.dumps({"model": cfg.to_dict(), "eps_levels": eps}))
    return p


@pytest.mark.parametrize("arch", ARCHS)
def test_net_is_bounded_and_per_sample(arch):
    torch.manual_seed(0)
    net = PerturbationNet(PerturberConfig(arch=arch, conv_dim=8, blocks=1, depth=2)).eval()
    x = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        y, y0 = net(x), net(x[:1])
    assert y.shape == x.shape and y.abs().max() <= 1
    assert torch.allclose(y[:1], y0, atol=1e-5)  # instance norm: a face's perturbation depends on that face only


def test_generator_file_roundtrip_and_bad_files(tmp_path):
    info = GENERATOR_INFOS[DEFAULT_GENERATOR]
    g = load_perturbation_generator(_write(tmp_path), info)
    assert g.eps == pytest.approx(8 / 255) and g.size == 64
    bad = _write(tmp_path, name="bad.pt")
    bad.with_suffix(".json").write_text(json.dumps({"model": {**TINY.to_dict(), "conv_dim": 16}, "eps_levels": 8}))
    with pytest.raises(ValueError, match="bad.pt.*does not fit"):
        load_perturbation_generator(bad, info)
    bad.with_suffix(".json").unlink()
    with pytest.raises(ValueError, match="sidecar"):
        load_perturbation_generator(bad, info)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a state dict")
    with pytest.raises(ValueError, match="junk.pt"):
        load_perturbation_generator(junk, info)


def test_perturber_stays_within_eps_after_rounding_and_touches_only_the_faces(astronaut, tmp_path):
    g = load_perturbation_generator(_write(tmp_path), GENERATOR_INFOS[DEFAULT_GENERATOR])
    faces = create_extractor("mtcnn").detect(astronaut)
    mats = np.stack([crop_matrix(five_points(f), g.size, g.template) for f in faces])
    x = to_tensor(astronaut)
    out = to_uint8(GeneratorPerturber(g, mats)(x))
    d = np.abs(out.astype(int) - astronaut.astype(int))
    assert d.max() <= 8 and d.max() >= 4  # the bound by construction, and it is used
    far = np.ones(d.shape[:2], bool)
    for f in faces:  # the crop covers about 2.5x the eye distance around the face
        cx, cy = f.points.mean(0)
        r = int(4 * f.interocular)
        far[max(0, int(cy) - r):int(cy) + r, max(0, int(cx) - r):int(cx) + r] = False
    assert d[far].max() == 0
    half = to_uint8(GeneratorPerturber(g, mats, eps=4 / 255)(x))
    assert np.abs(half.astype(int) - astronaut.astype(int)).max() <= 4
    with pytest.raises(ValueError, match="trained for at most 8"):
        GeneratorPerturber(g, mats, eps=10 / 255)


def test_native_resolution_generator_runs_each_face_at_its_own_side(astronaut, tmp_path):
    """A generator with ``max_size`` runs each face at one crop pixel per photo pixel (clamped to
    [size, max_size], a multiple of the net's down-sampling), still within eps after rounding."""
    cfg = PerturberConfig(size=64, conv_dim=8, blocks=1, depth=2, max_size=256)
    g = load_perturbation_generator(_write(tmp_path, cfg=cfg), GENERATOR_INFOS["breaker-landmarks"])
    faces = create_extractor("mtcnn").detect(astronaut)
    mats = np.stack([crop_matrix(five_points(f), g.size, g.template) for f in faces])
    native = g.size / np.sqrt(abs(np.linalg.det(mats[0, :, :2])))  # the face's crop side in photo pixels
    seen = []
    g.net.register_forward_pre_hook(lambda m, a: seen.append(a[0].shape[-1]))
    out = to_uint8(GeneratorPerturber(g, mats)(to_tensor(astronaut)))
    assert seen == [g.side(64 / native)] and seen[0] % 4 == 0 and abs(seen[0] - min(max(native, 64), 256)) <= 2
    assert 64 < seen[0] <= 256  # the astronaut's face is larger than the 64 px crop
    assert np.abs(out.astype(int) - astronaut.astype(int)).max() <= 8
    assert g.side(10.0) == 64 and g.side(0.01) == 256
    with pytest.raises(ValueError, match="max_size"):
        PerturberConfig(size=64, max_size=32)


def test_generators_are_listed_and_never_targets():
    gens = list_targets(family="generator")
    assert DEFAULT_GENERATOR in gens and not set(gens) & set(list_targets(white_box=True))
    info = target_info(DEFAULT_GENERATOR)
    assert info.family == "generator" and "stargan" in info.trained_against
    with pytest.raises(ValueError, match="perturbation generator.*method generator:"):
        ProtectConfig(targets=(DEFAULT_GENERATOR,))


def test_generator_settings_are_refused_not_ignored():
    c = ProtectConfig.from_user({"method": "generator", "jnd": True, "chroma": 0.5, "eps": 6})
    assert c.to_dict()["eps_levels"] == 6 and "steps" not in c.to_dict() and "targets" not in c.to_dict()
    for key, value in (("steps", 40), ("alpha", 2), ("targets", ["stargan"]), ("eot", ["default"]), ("smooth", 1.0), ("push", 0.5)):
        with pytest.raises(ValueError, match=f"{key}: method generator is a trained perturbation generator"):
            ProtectConfig.from_user({"method": "generator", key: value})
    assert ProtectConfig.preset("quality", method=f"generator:{DEFAULT_GENERATOR}").steps == 20  # a preset only offers: dropped


@pytest.fixture(scope="module", params=[DEFAULT_GENERATOR, "disrupter-stargan", "initiative"])
def shipped(request, astronaut):
    g = create_generator(request.param)
    res = protect_array(astronaut, ProtectConfig(method=f"generator:{request.param}"))
    return g, res


def _sign_noise_like(clean: np.ndarray, protected: np.ndarray, levels: int) -> np.ndarray:
    """Random +-``levels`` sign noise on the pixels the protection changed."""
    rng = np.random.default_rng(0)
    noise = np.where(protected != clean, rng.choice([-levels, levels], clean.shape), 0)
    return np.clip(clean.astype(int) + noise, 0, 255).astype(np.uint8)


def test_shipped_generator_disrupts_stargan_far_more_than_noise(astronaut, shipped):
    """The trained generators against StarGAN (what they were trained for), measured like Ruiz et
    al. on the saved 8-bit photo, against random +-eps sign noise on the same pixels: a property of
    training, not of one machine's run (noise of this size barely moves the edit)."""
    g, res = shipped
    levels = round(g.eps * 255)
    assert np.abs(res.rgb.astype(int) - astronaut.astype(int)).max() <= levels
    assert res.config.eps == pytest.approx(g.eps) and res.loss_start is None
    ours = measure_disruption(astronaut, res.rgb, "stargan")
    base = measure_disruption(astronaut, _sign_noise_like(astronaut, res.rgb, levels), "stargan")
    l2, l2_noise = np.mean(ours.l2_each), np.mean(base.l2_each)
    assert l2 > 3 * l2_noise, (l2, l2_noise)


@pytest.mark.parametrize("name", ["breaker-landmarks", DEFAULT_GENERATOR])
def test_landmark_generators_move_fan_heatmaps_more_than_noise(astronaut, name):
    """Trained against FAN's heat-maps: Eq. 1's cosine at the clean box on the protected photo falls
    further below 1 than with sign noise of the same budget on the same pixels."""
    from faceshield.attacks import HeatmapCosineLoss

    g = create_generator(name)
    prot = protect_array(astronaut, ProtectConfig(method=f"generator:{name}")).rgb
    fan = create_extractor("fan")
    rois = [np.array([f.roi for f in fan.detect(astronaut)])]
    loss = HeatmapCosineLoss(fan, rois)
    x = to_tensor(astronaut)
    with torch.no_grad():
        ours = float(loss(to_tensor(prot), x))
        noise = float(loss(to_tensor(_sign_noise_like(astronaut, prot, round(g.eps * 255))), x))
    assert 1 - ours > 3 * (1 - noise), (ours, noise)


def test_landmark_generator_moves_mtcnn_landmarks_more_than_noise(astronaut):
    """``breaker-landmarks`` (trained at the face's own resolution against MTCNN's landmarks):
    the O-Net points at the clean box move, in eye distances, more than with sign noise of the same
    budget on the same pixels (which barely moves them), and the full pipeline's too."""
    from faceshield.attacks import LandmarkDisplacementLoss
    from faceshield.core.types import MTCNN5
    from faceshield.metrics.nme import nme

    g = create_generator("breaker-landmarks")
    assert g.net.config.max_size > g.size  # runs each face at its own resolution
    prot = protect_array(astronaut, ProtectConfig(method="generator:breaker-landmarks")).rgb
    noise = _sign_noise_like(astronaut, prot, round(g.eps * 255))
    mtcnn = create_extractor("mtcnn")
    face = max(mtcnn.detect(astronaut), key=lambda f: f.area)
    loss = LandmarkDisplacementLoss(mtcnn, [face.roi[None]])  # minus the NME at the clean box
    x = to_tensor(astronaut)
    with torch.no_grad():
        ours, base = -float(loss(to_tensor(prot), x)), -float(loss(to_tensor(noise), x))
    assert ours > 3 * base, (ours, base)

    def moved(img):  # full pipeline, detector included: a lost face counts as moved
        found = mtcnn.detect(img)
        return np.inf if not found else nme(max(found, key=lambda f: f.area).points, face.points, MTCNN5)

    assert moved(prot) > 2 * moved(noise)


def test_shipped_generator_keeps_a_grey_photo_grey(astronaut):
    grey = np.repeat(astronaut.mean(2, keepdims=True).astype(np.uint8), 3, 2)
    out = protect_array(grey, ProtectConfig(method="generator")).rgb
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all() and (out != grey).any()


def test_video_with_a_generator_protects_every_frame_in_one_pass(tmp_path, make_clip):
    from faceshield.pipeline.video import protect_video

    src = tmp_path / "clip.mp4"
    make_clip(src, n=6, size=160, audio=False)
    cfg = ProtectConfig(method="generator")
    s = protect_video(src, tmp_path / "out.mp4", cfg, crf=10, measure=False)
    with_face = sum(1 for c in s.faces_per_frame if c)
    assert with_face >= 4 and s.key_frames == with_face  # one forward pass per frame, nothing carried
    assert s.settings["eps_levels"] == pytest.approx(create_generator(DEFAULT_GENERATOR).eps * 255, abs=1e-3) and s.linf <= round(s.settings["eps_levels"])
    with pytest.raises(ValueError, match="keyframe_interval"):
        protect_video(src, tmp_path / "out2.mp4", cfg, keyframe_interval=2)
    assert not (tmp_path / "out2.mp4").exists()


def test_cli_protect_with_the_generator(tmp_path, astronaut):
    from PIL import Image
    from typer.testing import CliRunner

    from faceshield.cli.main import app

    src = tmp_path / "a.png"
    Image.fromarray(astronaut).save(src)
    r = CliRunner().invoke(app, ["protect", str(src), "-o", str(tmp_path / "out"), "--method", "generator", "--evaluate-with", "mtcnn"])
    assert r.exit_code == 0, r.output
    rep = json.loads((tmp_path / "out" / "a.json").read_text())
    assert rep["settings"]["method"] == "generator" and "targets" not in rep["settings"] and rep["loss"] == {"start": None, "end": None}
    assert rep["evaluation"]["linf"] <= round(rep["settings"]["eps_levels"])
    r = CliRunner().invoke(app, ["protect", str(src), "-o", str(tmp_path / "out2"), "--method", "generator", "--steps", "40"])
    assert r.exit_code == 2 and "--steps" in r.output and not (tmp_path / "out2").exists()


def test_reenactment_generator_poisons_every_frame_of_a_video_within_its_budget(tmp_path, make_clip):
    """`--method generator:reenactment`: one forward pass a frame, at most its 8 levels, and a
    record of the video it was trained on (what it protects against is measured by
    benchmarks/initiative_reenactment.py: it needs a forger trained on the poisoned frames)."""
    from faceshield.pipeline.video import protect_video

    g = create_generator("reenactment")
    assert target_info("reenactment").trained_against == ("reenactment-surrogate",) and g.record["data"]["video"].endswith(".mp4")
    src = tmp_path / "clip.mp4"
    make_clip(src, n=6, size=160, audio=False)
    s = protect_video(src, tmp_path / "out.mp4", ProtectConfig(method="generator:reenactment"), crf=10, measure=False)
    with_face = sum(1 for c in s.faces_per_frame if c)
    assert with_face >= 4 and s.key_frames == with_face
    assert s.settings["eps_levels"] == pytest.approx(8.0, abs=1e-3) and 0 < s.linf <= 8
