"""The command line: bad inputs get one clear line each, leave no file, and do not stop the others."""
import json

import cv2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from faceshield.cli.main import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def face(astronaut):
    return astronaut[20:276, 100:356]  # 256x256 around the face


@pytest.fixture
def inputs(tmp_path, face):
    d = tmp_path / "in"
    d.mkdir()
    Image.fromarray(face).save(d / "good.jpg", quality=95)
    data = (d / "good.jpg").read_bytes()
    (d / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (d / "empty.png").write_bytes(b"")
    (d / "notes.jpg").write_text("not an image")
    Image.fromarray(np.full((200, 200, 3), 127, np.uint8)).save(d / "noface.png")
    Image.fromarray(face).convert("CMYK").save(d / "cmyk.jpg", quality=95)
    cv2.imwrite(str(d / "deep16.png"), (face[:, :, ::-1].astype(np.uint16) * 257))
    Image.fromarray(np.dstack([face, np.full(face.shape[:2], 200, np.uint8)])).save(d / "rgba.png")
    Image.fromarray(face).convert("L").save(d / "gray.png")
    rotated = Image.fromarray(np.ascontiguousarray(np.rot90(face, 1)))  # stored sideways...
    exif = Image.Exif()
    exif[0x0112] = 6  # ...with the tag that turns it upright
    rotated.save(d / "exif.jpg", quality=95, exif=exif)
    return d


BAD = {
    "truncated.jpg": "truncated or corrupt",
    "empty.png": "the file is empty",
    "notes.jpg": "not an image",
    "noface.png": "no face found",
}
GOOD = ["good", "cmyk", "deep16", "rgba", "gray", "exif"]


def test_protect_directory_with_bad_items(tmp_path, inputs):
    before = {p.name: p.read_bytes() for p in inputs.iterdir()}
    out = tmp_path / "out"
    res = run("protect", inputs, "-o", out, "--steps", "2", "--evaluate-with", "none")
    assert res.exit_code == 1, res.output
    for name, msg in BAD.items():
        lines = [l for l in res.output.splitlines() if name in l and l.startswith("error")]
        assert len(lines) == 1 and msg in lines[0], (name, res.output)
        assert not (out / (name.rsplit(".", 1)[0] + ".png")).exists()
    for stem in GOOD:
        assert (out / f"{stem}.png").is_file() and (out / f"{stem}.json").is_file(), res.output
    batch = ["faceshield-journal.jsonl", "faceshield-summary.csv", "faceshield-summary.json"]  # the run's journal and summary
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{s}.png" for s in GOOD] + [f"{s}.json" for s in GOOD] + batch)  # no temp files
    summary = json.loads((out / "faceshield-summary.json").read_text())["totals"]
    assert (summary["done"], summary["failed"]) == (len(GOOD), len(BAD))
    assert {p.name: p.read_bytes() for p in inputs.iterdir()} == before  # originals untouched
    assert "6 protected, 4 failed" in res.output
    assert Image.open(out / "rgba.png").mode == "RGBA"
    assert Image.open(out / "exif.png").size == (256, 256)
    assert "applied EXIF orientation 6" in json.loads((out / "exif.json").read_text())["input_notes"]


def test_exif_rotated_face_is_found_upright(tmp_path, inputs):
    res = run("protect", inputs / "exif.jpg", "-o", tmp_path / "o.png", "--steps", "2", "--evaluate-with", "none")
    assert res.exit_code == 0, res.output
    faces = json.loads((tmp_path / "o.json").read_text())["faces"]["mtcnn"]
    pts = np.array(faces[0]["points"])
    assert pts[0, 1] < pts[3, 1] and pts[0, 0] < pts[1, 0]  # eyes above the mouth, left eye on the left


def test_too_large_image_is_refused(tmp_path, inputs):
    res = run("protect", inputs / "good.jpg", "-o", tmp_path / "o", "--max-pixels", "1000")
    assert res.exit_code == 1 and "image too large" in res.output
    assert not (tmp_path / "o" / "good.png").exists()


def test_missing_input_and_overwrite(tmp_path, inputs):
    out = tmp_path / "o"
    res = run("protect", tmp_path / "nope.jpg", inputs / "good.jpg", "-o", out, "--steps", "2", "--evaluate-with", "mtcnn")
    assert res.exit_code == 1 and "no such file" in res.output and (out / "good.png").exists()
    first = (out / "good.png").read_bytes()
    res = run("protect", inputs / "good.jpg", "-o", out, "--steps", "2")
    assert res.exit_code == 1 and "exists; pass --overwrite" in res.output
    assert (out / "good.png").read_bytes() == first


def test_bad_options_are_reported(tmp_path, inputs):
    res = run("protect", inputs / "good.jpg", "-o", tmp_path / "o", "--mask", "everywhere")
    assert res.exit_code == 2 and "mask: expected one of" in res.output
    res = run("protect", inputs / "good.jpg", "-o", tmp_path / "o", "--targets", "nonesuch")
    assert res.exit_code == 2 and "unknown target 'nonesuch'" in res.output
    res = run("protect", inputs / "good.jpg", "-o", tmp_path / "o", "--smooth", "-1")
    assert res.exit_code == 2 and "--smooth: expected 0..20 pixels" in res.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args, message", [
    (["--eps", "-3"], "--eps: expected 1..255 levels, got -3"),
    (["--eps", "300"], "--eps: expected 1..255 levels, got 300"),
    (["--alpha", "0"], "--alpha: expected a number in (0, 255] levels, got 0"),
    (["--method", "lbb"], "--method: expected one of base1, base2, lb,"),
    (["--steps", "0"], "--steps: expected an integer in 1..100000, got 0"),
    (["--method", "base1", "--steps", "40"], "--steps: method base1 takes one step of eps"),
    (["--method", "base2", "--decay", "0.9"], "--decay: method base2 has no momentum"),
    (["--push", "0.5"], "--push: only heat-map targets use it, and the targets are mtcnn"),
    (["--eot-samples", "4"], "--eot-samples: it is the number of EOT transforms per step, and eot is off"),
    (["--targets", "dlib68"], "--targets: 'dlib68' is a black-box extractor"),
    (["--evaluate-with", "mtcnn,nonesuch"], "--evaluate-with: unknown extractor 'nonesuch'"),
])
def test_a_bad_option_exits_2_with_one_line_in_the_units_typed_and_writes_nothing(tmp_path, inputs, args, message, monkeypatch):
    import torch

    def no_loading(*a, **k):
        raise AssertionError("a model was loaded before the options were checked")

    monkeypatch.setattr(torch, "load", no_loading)  # every weight file loads through torch.load
    res = run("protect", inputs / "good.jpg", "-o", tmp_path / "o", *args)
    assert res.exit_code == 2 and message in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1, res.output
    assert not (tmp_path / "o").exists()


def test_smooth_and_ssim_weight_reach_the_report(tmp_path, inputs):
    res = run("protect", inputs / "good.jpg", "-o", tmp_path / "o.png", "--targets", "mtcnn,fan", "--steps", "2", "--smooth", "1.5", "--ssim-weight", "2", "--push", "0.4",
              "--redetect", "1", "--nme-cap", "0.7", "--evaluate-with", "none")
    assert res.exit_code == 0, res.output
    s = json.loads((tmp_path / "o.json").read_text())["settings"]
    assert s["smooth"] == 1.5 and s["ssim_weight"] == 2 and s["push"] == 0.4 and s["redetect"] == 1 and s["nme_cap"] == 0.7


def test_preset_gives_its_settings_and_explicit_options_win(tmp_path, inputs):
    res = run("protect", inputs / "good.jpg", "-o", tmp_path / "o.png", "--preset", "smooth", "--steps", "2", "--evaluate-with", "none")
    assert res.exit_code == 0, res.output
    s = json.loads((tmp_path / "o.json").read_text())["settings"]
    assert (s["smooth"], s["alpha_levels"], s["steps"], s["perceptual"]) == (2.0, 2.0, 2, False)  # --steps given: kept
    res = run("protect", inputs / "good.jpg", "-o", tmp_path / "p", "--preset", "fastest")
    assert res.exit_code == 2 and "--preset: expected one of subtle, paper, strong, smooth, quality, robust" in res.output


def test_evaluate_and_models(tmp_path, inputs):
    out = tmp_path / "o.png"
    assert run("protect", inputs / "good.jpg", "-o", out, "--evaluate-with", "none").exit_code == 0
    res = run("evaluate", inputs / "good.jpg", out, "--json", tmp_path / "ev.json")
    assert res.exit_code == 0, res.output
    assert "mtcnn" in res.output and "dlib68" in res.output and "SSIM_I" in res.output
    ev = json.loads((tmp_path / "ev.json").read_text())
    assert ev["linf"] <= 15 and {e["extractor"] for e in ev["extractors"]} >= {"mtcnn", "dlib68"}
    res = run("evaluate", inputs / "good.jpg", inputs / "gray.png")
    assert res.exit_code == 0  # same size: a valid (if odd) comparison
    res = run("evaluate", inputs / "good.jpg", inputs / "notes.jpg")
    assert res.exit_code == 1 and "not an image" in res.output
    res = run("models")
    assert res.exit_code == 0 and "mtcnn" in res.output and "black-box" in res.output


def test_default_is_the_subtle_preset_and_disrupts_the_editor(tmp_path, face):
    """No options: the `subtle` preset (MTCNN + StarGAN, 6 levels, JND, 30 % colour); the photo stays
    within 6 levels and StarGAN's edits of it come out disrupted (Ruiz et al.'s L2 >= 0.05)."""
    from faceshield.deepfake.edit import measure_disruption

    src = tmp_path / "face.png"
    Image.fromarray(face).save(src)
    res = run("protect", src, "-o", tmp_path / "out", "--evaluate-with", "none")
    assert res.exit_code == 0, res.output
    s = json.loads((tmp_path / "out" / "face.json").read_text())["settings"]
    assert (s["targets"], s["eps_levels"], s["jnd"], s["chroma"]) == (["mtcnn", "stargan"], 6, True, 0.3)
    prot = np.asarray(Image.open(tmp_path / "out" / "face.png").convert("RGB"))
    assert 0 < np.abs(prot.astype(int) - face.astype(int)).max() <= 6
    assert measure_disruption(face, prot, "stargan").disrupted >= 0.6  # 5 domains; 0.95 measured on 8 held-out photos


def test_demo_protects_the_sample(tmp_path):
    res = run("demo", "-o", tmp_path / "demo", "--no-swap")
    assert res.exit_code == 0, res.output
    assert "1 protected, 0 failed" in res.output and (tmp_path / "demo" / "astronaut.png").is_file()
    assert json.loads((tmp_path / "demo" / "astronaut.json").read_text())["settings"]["eps_levels"] == 6  # the default preset
