"""`faceshield evaluate --swap --sheet`: SSIM_W through the face swap and a before/after PNG."""
import json

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from faceshield.cli.main import app

runner = CliRunner()


def test_evaluate_swap_writes_sheet_and_json(tmp_path, astronaut):
    clean = tmp_path / "clean.png"
    Image.fromarray(astronaut).save(clean)
    noisy = astronaut.astype(np.int16) + np.random.default_rng(0).integers(-6, 7, astronaut.shape)
    prot = tmp_path / "prot.png"
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(prot)
    sheet, js = tmp_path / "sheet.png", tmp_path / "ev.json"
    r = runner.invoke(app, ["evaluate", str(clean), str(prot), "--extractors", "mtcnn", "--swap", "--aligner", "mtcnn", "--sheet", str(sheet), "--json", str(js)])
    assert r.exit_code == 0, r.output
    assert "SSIM_W" in r.output
    assert Image.open(sheet).size[0] == 640
    rec = json.loads(js.read_text())
    assert rec["swap"]["aligner"] == "mtcnn" and 0 < rec["swap"]["ssim_w"] < 1


def test_evaluate_swap_bad_model_is_a_clear_error(tmp_path, astronaut):
    clean = tmp_path / "clean.png"
    Image.fromarray(astronaut).save(clean)
    r = runner.invoke(app, ["evaluate", str(clean), str(clean), "--extractors", "mtcnn", "--swap", "--swap-model", str(tmp_path / "missing.pt")])
    assert r.exit_code == 1
    assert "error" in r.output and "missing.pt" in r.output
    assert len(r.output.strip().splitlines()) <= 2
