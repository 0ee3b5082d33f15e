"""MagDR's consistency detector: a disrupted photo's edits are unstable under small pre-processings."""
import numpy as np
import pytest

from faceshield.core.errors import NoFaceError
from faceshield.defenses.magdr import ConsistencyDetector
from faceshield.pipeline import ProtectConfig, protect_array


@pytest.fixture(scope="module")
def face(astronaut):
    return astronaut[20:276, 100:356]


def test_a_disrupted_photo_scores_far_above_its_clean_original(face):
    det = ConsistencyDetector(preprocess=("jpeg75", "blur:1.0", "median:3", "bits:5"))
    disrupted = protect_array(face, ProtectConfig(targets=("stargan",), method="base2", eps=6 / 255, alpha=2 / 255, steps=10)).rgb
    clean_d, prot_d = det.distances_per_preprocess(face), det.distances_per_preprocess(disrupted)
    assert clean_d.shape == (4,) and clean_d.max() < 0.05  # a clean photo's edits barely move
    assert det.score(disrupted) > 3 * det.score(face)
    det.fit([face, np.ascontiguousarray(face[:, ::-1])], flag_rate=0.0)  # threshold: the largest clean score
    assert det(disrupted) and not det(face)


def test_needs_a_face_and_a_threshold():
    det = ConsistencyDetector(preprocess=("jpeg75",))
    with pytest.raises(NoFaceError):
        det.score(np.full((128, 128, 3), 127, np.uint8))
    with pytest.raises(ValueError, match="threshold"):
        det(np.full((128, 128, 3), 127, np.uint8))
    with pytest.raises(ValueError, match="distance"):
        ConsistencyDetector(distance="ssim")


def test_distortion_detector_flags_a_disruption_that_spreads_outside_the_edited_region(face):
    from faceshield.defenses.magdr import DistortionDetector
    from faceshield.faces.regions import REGIONS

    det = DistortionDetector()
    disrupted = protect_array(face, ProtectConfig(targets=("stargan",), method="base2", eps=6 / 255, alpha=2 / 255, steps=10)).rgb
    d = det.region_distances(face)
    assert set(d) == set(det.g.domains) and d["Male"].shape == (1, len(REGIONS))
    assert det.score(disrupted) > det.score(face) + 0.2  # measured 0.80 vs 0.28 on the sample
    with pytest.raises(NoFaceError):
        det.score(np.full((128, 128, 3), 127, np.uint8))


@pytest.mark.slow
def test_purify_cleans_a_protected_photo_and_leaves_a_clean_one(tmp_path, face):
    """`faceshield purify`: the default protection is detected and washed out; a clean photo is copied unchanged."""
    import json

    from PIL import Image
    from typer.testing import CliRunner

    from faceshield.cli.main import app
    from faceshield.deepfake.edit import measure_disruption

    prot = protect_array(face, ProtectConfig.preset("subtle")).rgb
    assert measure_disruption(face, prot, "stargan").disrupted >= 0.6
    for name, img in (("clean", face), ("protected", prot)):
        Image.fromarray(img).save(tmp_path / f"{name}.png")
    run = lambda *a: CliRunner().invoke(app, [str(x) for x in a])  # noqa: E731
    thr = ("--threshold", 0.002, "--lambda", 0)  # measured S_cons: 0.0005 clean, 0.009 protected (the sample's face)
    res = run("purify", tmp_path / "protected.png", "-o", tmp_path / "p_out.png", *thr)
    assert res.exit_code == 0, res.output
    rec = json.loads((tmp_path / "p_out.json").read_text())
    assert rec["detected"] and rec["restorations"] and rec["s_final_after"] < rec["s_final"]
    assert {"s_dist", "s_cons", "s_final", "lambda"} <= set(rec) and all("@" in r for r in rec["restorations"])
    washed = np.asarray(Image.open(tmp_path / "p_out.png").convert("RGB"))
    assert measure_disruption(face, washed, "stargan").disrupted < measure_disruption(face, prot, "stargan").disrupted
    res = run("purify", tmp_path / "clean.png", "-o", tmp_path / "c_out.png", *thr)
    assert res.exit_code == 0 and "not disrupted" in res.output
    assert np.array_equal(np.asarray(Image.open(tmp_path / "c_out.png").convert("RGB")), face)
    res = run("purify", tmp_path / "clean.png", "-o", tmp_path / "c_out.png", *thr)
    assert res.exit_code == 1 and "exists" in res.output
    assert run("purify", tmp_path / "clean.png", "-o", tmp_path / "x.png", "--model", "nope").exit_code == 2


def test_reconstructor_leaves_a_photo_without_a_face_alone():
    from faceshield.defenses.magdr import Reconstructor

    grey = np.full((128, 128, 3), 127, np.uint8)
    from faceshield.defenses.magdr import FinalDetector

    out, rec = Reconstructor(FinalDetector(preprocess=("jpeg75",)))(grey)
    assert rec["no_face"] and not rec["detected"] and np.array_equal(out, grey)


@pytest.mark.slow
def test_evaluate_after_purification(tmp_path, face):
    """`faceshield evaluate CLEAN PROT --purify magdr --manipulate stargan`: measured after the clean-up."""
    import json

    from PIL import Image
    from typer.testing import CliRunner

    from faceshield.cli.main import app

    Image.fromarray(face).save(tmp_path / "clean.png")
    Image.fromarray(protect_array(face, ProtectConfig.preset("subtle")).rgb).save(tmp_path / "prot.png")
    run = lambda *a: CliRunner().invoke(app, [str(x) for x in a])  # noqa: E731
    args = ("evaluate", tmp_path / "clean.png", tmp_path / "prot.png", "--extractors", "mtcnn", "--manipulate", "stargan")
    before = run(*args, "--json", tmp_path / "before.json")
    after = run(*args, "--purify", "magdr", "--json", tmp_path / "after.json")
    assert before.exit_code == 0 and after.exit_code == 0, after.output
    assert "purified first" in after.output and "detected" in after.output
    b, a = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("before", "after"))
    assert a["purification"]["detected"] and b["purification"] is None
    share = lambda d: np.mean([v >= 0.05 for v in d["disruption"][0]["l2_each"]])  # noqa: E731
    assert share(a) < share(b)
    assert run(*args, "--purify", "jpeg").exit_code == 1


def test_final_score_combines_both_detectors_with_a_lambda_fitted_on_clean_photos(face):
    from faceshield.defenses.magdr import FinalDetector

    det = FinalDetector(preprocess=("jpeg75", "median:3"))
    clean = [face, np.ascontiguousarray(face[:, ::-1]), np.ascontiguousarray(face[8:, 8:])]
    comps = [det.components(p) for p in clean]
    thr = det.fit(clean, flag_rate=0.0)
    cons, dist = np.array([c["s_cons"] for c in comps]), np.array([c["s_dist"] for c in comps])
    assert det.lam == pytest.approx(cons.std() / dist.std() if dist.std() > 0 else 0.0)
    assert thr == pytest.approx(max(cons + det.lam * dist))
    c = det.components(face)
    assert c["s_final"] == pytest.approx(c["s_cons"] + det.lam * c["s_dist"])


def test_region_search_lowers_s_final_and_touches_only_the_faces_window(astronaut):
    from faceshield.defenses.magdr import FinalDetector, Reconstructor, locate

    photo = np.ascontiguousarray(astronaut[:400, 40:440])
    disrupted = protect_array(photo, ProtectConfig(targets=("stargan",), method="base2", eps=6 / 255, alpha=2 / 255, steps=10)).rgb
    det = FinalDetector(preprocess=("jpeg75", "median:3"), lam=0.0, threshold=1e-9)  # never acceptable: every region is searched
    faces = locate(disrupted, det.g)
    masks = faces.region_masks()
    assert np.allclose(masks.sum(0), 1, atol=1e-5) and masks.shape[1:] == faces.cut(disrupted).shape[:2]
    rec = Reconstructor(det, layers=({"median": ("median:3", "median:5"), "nlmeans": ("nlmeans:6", "nlmeans:10")},), top=1)
    out, r = rec(disrupted)
    assert r["detected"] and r["s_final_after"] < r["s_final"] and r["restorations"]
    assert all(x.split("@")[0] in ("median:3", "median:5", "nlmeans:6", "nlmeans:10") for x in r["restorations"])
    y0, y1, x0, x1 = faces.window
    outside = np.ones(photo.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert outside.any() and np.array_equal(out[outside], disrupted[outside])
