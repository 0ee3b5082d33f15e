"""The protection pipeline on the real MTCNN and dlib extractors, through files."""
import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image

import faceshield
from faceshield.core.errors import NoFaceError
from faceshield.models import create_extractor
from faceshield.pipeline import ProtectConfig, protect_array
from faceshield.pipeline.evaluate import evaluate_extractor


def sha(p):
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def protected(astronaut):
    return protect_array(astronaut, ProtectConfig())


def test_clean_nme_is_zero_and_attack_moves_mtcnn_landmarks(astronaut, protected):
    mtcnn = create_extractor("mtcnn")
    assert evaluate_extractor(mtcnn, astronaut, astronaut).nme == 0
    r = evaluate_extractor(mtcnn, astronaut, protected.rgb)
    assert r.faces_clean == 1
    assert r.faces_lost == 1 or r.nme > 0.05  # through the full, unmodified MTCNN pipeline on the 8-bit image
    assert np.abs(protected.rgb.astype(int) - astronaut.astype(int)).max() <= 15
    assert protected.loss_end < protected.loss_start


def test_black_box_dlib_nme_is_computed(astronaut, protected):
    dlib68 = create_extractor("dlib68")
    assert evaluate_extractor(dlib68, astronaut, astronaut).nme == 0
    r = evaluate_extractor(dlib68, astronaut, protected.rgb, [f.box for f in protected.faces["mtcnn"]])
    assert r.faces_clean == 1 and r.nme is not None and r.nme >= 0


def test_face_mask_leaves_the_background_untouched(astronaut, protected):
    changed = (protected.rgb != astronaut).any(-1)
    x0, y0, x1, y1 = protected.face_boxes[0]
    assert changed.any()
    assert not changed[:, : int(x0) - 60].any() and not changed[int(y1) + 80 :, :].any()


def test_every_face_in_an_image_is_protected(astronaut):
    face = astronaut[40:220, 140:320]
    canvas = np.full((260, 460, 3), 90, np.uint8)
    canvas[40:220, 10:190] = face
    canvas[40:220, 260:440] = face[:, ::-1]
    res = protect_array(canvas, ProtectConfig(steps=5))
    assert len(res.faces["mtcnn"]) == 2
    diff = (res.rgb != canvas).any(-1)
    assert diff[:, :230].any() and diff[:, 230:].any()


def test_no_face_is_a_clear_error():
    blank = np.full((120, 160, 3), 128, np.uint8)
    with pytest.raises(NoFaceError, match="no face found by mtcnn"):
        protect_array(blank)


def test_black_box_target_is_refused(astronaut):
    with pytest.raises(ValueError, match="'dlib68' is a black-box extractor"):
        protect_array(astronaut, ProtectConfig(targets=("dlib68",)))


def test_file_api_writes_png_and_report_and_is_reproducible(tmp_path, astronaut):
    src = tmp_path / "in" / "face.jpg"
    src.parent.mkdir()
    Image.fromarray(astronaut).save(src, quality=95)
    before = sha(src)
    cfg = ProtectConfig(method="pgd", steps=4, seed=7)
    r1 = faceshield.protect([src], tmp_path / "a", cfg, evaluate_with=["mtcnn"])
    r2 = faceshield.protect([src], tmp_path / "b", cfg, evaluate_with=["mtcnn"])
    assert r1[0].ok and r2[0].ok
    assert sha(src) == before  # original untouched
    assert (tmp_path / "a" / "face.png").read_bytes() == (tmp_path / "b" / "face.png").read_bytes()
    r3 = faceshield.protect([src], tmp_path / "c", ProtectConfig(method="pgd", steps=4, seed=8), evaluate_with=[])
    assert (tmp_path / "c" / "face.png").read_bytes() != (tmp_path / "a" / "face.png").read_bytes()
    report = json.loads((tmp_path / "a" / "face.json").read_text())
    assert report["settings"]["eps_levels"] == 15 and report["settings"]["seed"] == 7
    ev = report["evaluation"]
    assert ev["linf"] <= 15 and 0 < ev["ssim_i"] < 1 and ev["extractors"][0]["extractor"] == "mtcnn"
    assert r3[0].evaluation is None


def test_output_is_never_silently_overwritten(tmp_path, astronaut):
    src = tmp_path / "face.png"
    Image.fromarray(astronaut).save(src)
    out = tmp_path / "out"
    out.mkdir()
    (out / "face.png").write_bytes(b"keep me")
    r = faceshield.protect([src], out, ProtectConfig(steps=2), evaluate_with=[])
    assert not r[0].ok and "exists; pass --overwrite" in r[0].error
    assert (out / "face.png").read_bytes() == b"keep me" and not (out / "face.json").exists()
    r = faceshield.protect([src], out, ProtectConfig(steps=2), evaluate_with=[], overwrite=True)
    assert r[0].ok and (out / "face.png").read_bytes() != b"keep me"


def test_refuses_to_write_over_the_original(tmp_path, astronaut):
    src = tmp_path / "face.png"
    Image.fromarray(astronaut).save(src)
    before = sha(src)
    r = faceshield.protect([src], src, ProtectConfig(steps=2), evaluate_with=[], overwrite=True)
    assert not r[0].ok and "would replace the original" in r[0].error
    assert sha(src) == before


def test_perceptual_budget_keeps_flat_skin_fainter_and_still_moves_landmarks(astronaut):
    from faceshield.attacks.budget import texture_budget
    from faceshield.io import to_tensor
    from faceshield.metrics import box_mask, mask_ssim

    plain = protect_array(astronaut, ProtectConfig())
    soft = protect_array(astronaut, ProtectConfig(perceptual=True))
    w = texture_budget(to_tensor(astronaut))[0, 0].numpy()
    d = np.abs(soft.rgb.astype(int) - astronaut.astype(int)).max(-1)
    assert (d <= np.ceil(15 * w)).all()  # the per-pixel budget (w is recomputed here on the whole image: float noise)
    flat = w < 0.5
    assert flat.sum() > 100 and d[flat].max() < 15
    face = box_mask(astronaut.shape[:2], plain.face_boxes, scale=1.6)
    assert mask_ssim(astronaut, soft.rgb, face) > mask_ssim(astronaut, plain.rgb, face) + 0.01
    r = evaluate_extractor(create_extractor("mtcnn"), astronaut, soft.rgb)
    assert r.faces_lost == 1 or r.nme > 0.02


def test_presets():
    from faceshield.pipeline import PRESETS

    assert ProtectConfig.preset("paper") == ProtectConfig()
    strong = ProtectConfig.preset("strong", targets=("fan",))
    assert (strong.steps, strong.perceptual, strong.jitter_mode, strong.targets) == (60, True, "random", ("fan",))
    assert ProtectConfig.preset("smooth", steps=5).steps == 5 and ProtectConfig.preset("smooth").smooth == 2.0
    assert set(PRESETS) == {"paper", "strong", "smooth", "quality", "robust"} and ProtectConfig.preset("quality").ssim_weight > 0
    robust = ProtectConfig.preset("robust")
    assert robust.eot and all(t in robust.eot for t in ProtectConfig(eot=("default",)).eot)  # EOT_DEFAULT expanded
    with pytest.raises(ValueError, match="preset: expected one of"):
        ProtectConfig.preset("fastest")


def test_bad_jitter_mode_is_refused():
    with pytest.raises(ValueError, match="jitter_mode"):
        ProtectConfig(jitter_mode="sometimes")


def test_smooth_perturbation_keeps_more_ssim_and_still_moves_landmarks(astronaut):
    from faceshield.metrics import box_mask, mask_ssim

    plain = protect_array(astronaut, ProtectConfig())
    smooth = protect_array(astronaut, ProtectConfig(smooth=2.0, alpha=2 / 255))
    assert smooth.rgb.shape == astronaut.shape
    assert np.abs(smooth.rgb.astype(int) - astronaut.astype(int)).max() <= 15
    face = box_mask(astronaut.shape[:2], plain.face_boxes, scale=1.6)
    assert mask_ssim(astronaut, smooth.rgb, face) > mask_ssim(astronaut, plain.rgb, face) + 0.02  # 0.93 vs 0.89 when written
    r = evaluate_extractor(create_extractor("mtcnn"), astronaut, smooth.rgb)
    assert r.faces_lost == 1 or r.nme > 0.02
    with pytest.raises(ValueError, match="smooth"):
        ProtectConfig(smooth=-1)


def test_ssim_weight_keeps_more_ssim_and_still_moves_landmarks(astronaut):
    from faceshield.metrics import box_mask, mask_ssim

    plain = protect_array(astronaut, ProtectConfig())
    kind = protect_array(astronaut, ProtectConfig(ssim_weight=2.0))
    face = box_mask(astronaut.shape[:2], plain.face_boxes, scale=1.6)
    assert mask_ssim(astronaut, kind.rgb, face) > mask_ssim(astronaut, plain.rgb, face) + 0.02
    r = evaluate_extractor(create_extractor("mtcnn"), astronaut, kind.rgb)
    assert r.faces_lost == 1 or r.nme > 0.02
    with pytest.raises(ValueError, match="ssim_weight"):
        ProtectConfig(ssim_weight=-0.5)


def test_push_reaches_the_heatmap_losses_only(toy_extractor):
    from faceshield.attacks import HeatmapCosineLoss, LandmarkDisplacementLoss
    from faceshield.pipeline.image import build_loss

    rois = [np.array([[16.0, 16.0, 48.0, 48.0]])]
    loss = build_loss(toy_extractor, rois, ProtectConfig(push=0.4))
    assert isinstance(loss, HeatmapCosineLoss) and loss.push == 0.4
    assert build_loss(toy_extractor, rois, ProtectConfig()).push == 0  # the paper's Eq. 1 by default
    assert isinstance(build_loss(create_extractor("mtcnn"), rois, ProtectConfig(push=0.4)), LandmarkDisplacementLoss)
    with pytest.raises(ValueError, match="push"):
        ProtectConfig(push=-1)


def test_redetect_is_counted_in_steps_and_reaches_every_loss(toy_extractor):
    from faceshield.pipeline.image import build_loss

    rois = [np.array([[16.0, 16.0, 48.0, 48.0]])]
    assert build_loss(toy_extractor, rois, ProtectConfig()).redetect == 0  # off by default
    assert build_loss(toy_extractor, rois, ProtectConfig(redetect=10)).redetect == 10
    assert build_loss(create_extractor("mtcnn"), rois, ProtectConfig(redetect=10)).redetect == 10
    # counted in the engine's iterations (observe), whatever EOT does per step
    assert build_loss(toy_extractor, rois, ProtectConfig(redetect=10, eot=("default",), eot_samples=3)).redetect == 10
    assert ProtectConfig.preset("robust").redetect == ProtectConfig.preset("quality").redetect == 10
    with pytest.raises(ValueError, match="redetect"):
        ProtectConfig(redetect=-1)


def test_nme_cap_reaches_regression_losses(toy_extractor):
    from faceshield.pipeline.image import build_loss

    rois = [np.array([[16.0, 16.0, 48.0, 48.0]])]
    assert build_loss(create_extractor("mtcnn"), rois, ProtectConfig()).cap == 0  # off by default
    assert build_loss(create_extractor("mtcnn"), rois, ProtectConfig(nme_cap=0.8)).cap == 0.8
    with pytest.raises(ValueError, match="nme_cap"):
        ProtectConfig(nme_cap=-1)


def test_redetect_attacks_the_box_the_real_mtcnn_cascade_picks_on_the_protected_image(astronaut):
    """The premise and the mechanism, with the real cascade (the gain is measured in
    benchmarks/configs/robust.yaml): on the protected image MTCNN reads its points from another
    proposal than the one the attack was made on, and a re-detecting loss attacks exactly that box."""
    from faceshield.attacks import LandmarkDisplacementLoss
    from faceshield.faces.boxes import box_iou
    from faceshield.io.image import to_tensor
    from faceshield.metrics import nme

    mtcnn = create_extractor("mtcnn")
    (face,) = mtcnn.detect(astronaut)
    r = protect_array(astronaut, ProtectConfig(targets=("mtcnn",)), extractors={"mtcnn": mtcnn})
    (picked,) = mtcnn.detect(r.rgb)
    assert box_iou(picked.roi, face.roi) < 0.9  # the cascade picked another proposal

    loss = LandmarkDisplacementLoss(mtcnn, [face.roi[None]], jitter=1, redetect=1)
    clean, adv = to_tensor(astronaut), to_tensor(r.rgb)
    loss.observe(adv)
    value = loss(adv, clean)
    boxes = loss.base_boxes.numpy()
    # the clean box, then the cascade's other candidates on the face, its pick last (kept longest)
    assert np.allclose(boxes[0], face.roi) and np.allclose(boxes[-1], picked.roi, atol=1e-3) and len(boxes) > 2
    cands = [c.roi for c in mtcnn.candidates(r.rgb)]
    assert all(any(np.allclose(b, c, atol=1e-3) for c in cands) for b in boxes[1:])
    # the loss is now the mean over the boxes of the displacement at each box (clean and protected
    # image through the same box); at the picked box that is what the real pipeline reports
    with torch.no_grad():
        at = [float(nme(mtcnn.landmarks(adv, b[None]), mtcnn.landmarks(clean, b[None]), mtcnn.scheme)) for b in boxes]
    assert float(value.detach()) == pytest.approx(-np.mean(at), rel=1e-4)
    real = float(nme(torch.from_numpy(picked.points)[None].float(), torch.from_numpy(face.points)[None].float(), mtcnn.scheme))
    assert at[-1] == pytest.approx(real, abs=0.03)
