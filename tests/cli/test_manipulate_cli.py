"""`faceshield manipulate`, `models --json`, `evaluate --manipulate`: one clear line per bad input,
nothing written."""
import json

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from faceshield.cli.main import app
from faceshield.models import list_targets

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_models_json_lists_every_target():
    res = run("models", "--json")
    assert res.exit_code == 0
    rows = json.loads(res.output)
    assert [r["name"] for r in rows] == list_targets()
    kinds = {r["name"]: (r["family"], r["kind"]) for r in rows}
    assert kinds["mtcnn"] == ("landmark", "regression") and kinds["fan"] == ("landmark", "heat-map") and kinds["dlib68"] == ("landmark", "black-box")
    assert kinds["stargan"] == ("manipulator", "manipulator") and kinds["meso4-df"] == ("detector", "detector")
    assert all(r["weights"] and r["inputs"] for r in rows)


def test_manipulate_writes_an_edit_and_refuses_bad_input(tmp_path, astronaut):
    src = tmp_path / "a.png"
    Image.fromarray(astronaut).save(src)
    out = tmp_path / "edit.png"
    res = run("manipulate", src, "-o", out, "--model", "stargan", "--domain", "Blond_Hair")
    assert res.exit_code == 0, res.output
    edited = np.array(Image.open(out))
    assert edited.shape == astronaut.shape and (edited != astronaut).any()
    for args, code, msg in ((["--model", "nope"], 2, "--model: unknown manipulator 'nope'; expected one of"),
                            (["--domain", "Bald"], 2, "--domain: unknown domain 'Bald' for stargan; expected one of Black_Hair"),
                            (["--detector", "x"], 2, "--detector: unknown extractor 'x'")):
        o = tmp_path / "never.png"
        res = run("manipulate", src, "-o", o, *args)
        assert res.exit_code == code and msg in res.output and not o.exists(), res.output
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((200, 200, 3), 120, np.uint8)).save(blank)
    res = run("manipulate", blank, "-o", tmp_path / "b.png")
    assert res.exit_code == 1 and "no face" in res.output and not (tmp_path / "b.png").exists()
    res = run("manipulate", src, "-o", out)  # exists
    assert res.exit_code == 2 and "exists" in res.output


def test_evaluate_manipulate_reports_the_disruption(tmp_path, astronaut):
    src, prot = tmp_path / "a.png", tmp_path / "p.png"
    Image.fromarray(astronaut).save(src)
    noisy = np.clip(astronaut.astype(int) + np.random.default_rng(0).integers(-3, 4, astronaut.shape), 0, 255).astype(np.uint8)
    Image.fromarray(noisy).save(prot)
    js = tmp_path / "r.json"
    res = run("evaluate", src, prot, "--extractors", "mtcnn", "--manipulate", "stargan", "--json", js, "--sheet", tmp_path / "s.png")
    assert res.exit_code == 0, res.output
    assert "share of edits disrupted" in res.output and (tmp_path / "s.png").is_file()
    d = json.loads(js.read_text())["disruption"][0]
    assert d["model"] == "stargan" and set(d["l2"]) == set(d["domains"]) and 0 <= d["disrupted"] <= 1
