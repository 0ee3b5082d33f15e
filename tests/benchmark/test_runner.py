"""`faceshield bench`: the smoke config end to end on the built-in sample (2 attack steps), and
clear errors before anything runs."""
import csv
import json
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from faceshield.benchmark import RUNNERS, TABLE_KEYS, run_benchmark
from faceshield.benchmark.progress import BenchProgress
from faceshield.cli.main import app
from faceshield.deepfake import SwapAutoEncoder, SwapModelConfig

CONFIGS = Path(__file__).resolve().parents[2] / "benchmarks" / "configs"
TABLES = ["table2", "table3", "table4", "ablation", "swap"]


def tiny_swap_model(d: Path) -> Path:
    cfg = SwapModelConfig(size=32, identities=["a", "b"])
    torch.manual_seed(0)
    path = d / "swap.pt"
    torch.save(SwapAutoEncoder(cfg).state_dict(), path)
    path.with_suffix(".json").write_text(json.dumps({"model": cfg.to_dict()}))
    return path


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """The shipped smoke config with a tiny random swap model (the shipped one may not exist yet), run by the CLI."""
    d = tmp_path_factory.mktemp("bench")
    cfg = yaml.safe_load((CONFIGS / "smoke.yaml").read_text())
    cfg["tables"]["swap"]["swap_model"] = str(tiny_swap_model(d))
    (d / "smoke.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    res = CliRunner().invoke(app, ["bench", str(d / "smoke.yaml"), "--out", str(d / "out")])
    assert res.exit_code == 0, res.output
    return d / "out", res


def test_every_table_has_markdown_csv_json(smoke):
    out, res = smoke
    assert "5 table(s)" in res.output
    for t in TABLES:
        md = (out / f"{t}.md").read_text()
        assert md.startswith("## ") and "Settings: eps 15" in md and ("| perturbation |" in md or "| transform |" in md or "| alpha |" in md)
        rec = json.loads((out / f"{t}.json").read_text())
        rows = list(csv.DictReader((out / f"{t}.csv").open()))
        assert rec["rows"] and len(rows) == len(rec["rows"]) and list(rows[0]) == rec["columns"]
        assert rec["images"] == ["astronaut"] and rec["env"]["versions"]["torch"] == torch.__version__
    assert "rows LB+EOT = eot default; LB smooth = alpha 2 smooth 2" in (out / "table4.md").read_text()  # what each row changed
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp file left


def test_tables_measure_what_they_say(smoke):
    out, _ = smoke
    t2 = json.loads((out / "table2.json").read_text())
    assert [r["perturbation"] for r in t2["rows"]] == ["Base1 (FGSM)", "Base2 (I-FGSM)", "LB (MI-FGSM)"]
    for r in t2["rows"]:
        assert {"nme_mtcnn", "nme_fan", "nme_dlib68"} <= set(r) and r["faces_mtcnn"] == 1 and 0 < r["ssim_i"] <= 1
    lb = t2["rows"][2]
    t3 = json.loads((out / "table3.json").read_text())
    assert {(r["perturbation"], r["made_on"]) for r in t3["rows"]} == {(a, s) for a in ("LB (MI-FGSM)", "LB_trans (DI-MI-FGSM)") for s in ("mtcnn", "mtcnn+fan")}
    t4 = json.loads((out / "table4.json").read_text())
    assert [r["transform"] for r in t4["rows"]] == ["none"] * 4 + ["jpeg75"] * 4 + ["c"] * 4
    same = next(r for r in t4["rows"] if r["transform"] == "none" and r["perturbation"] == "LB (MI-FGSM)")
    assert same["nme_mtcnn"] == lb["nme_mtcnn"]  # the protection is shared between the tables
    clean = [r for r in t4["rows"] if r["perturbation"] == "clean (transform only)"]
    assert clean[0]["nme_mtcnn"] == 0 and clean[0]["ssim_i"] == 1  # identity on the clean image changes nothing
    swap = json.loads((out / "swap.json").read_text())
    assert {r["aligner"] for r in swap["rows"]} == {"mtcnn", "fan"} and swap["settings"]["swap_model"]["size"] == 32


def test_plots(smoke):
    out, _ = smoke
    for name in ("ablation_alpha.png", "ablation_steps.png", "table4.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    abl = json.loads((out / "ablation.json").read_text())
    assert [(r["parameter"], r["value"]) for r in abl["rows"]] == [("alpha", 0.5), ("alpha", 1.0), ("steps", 2), ("steps", 3)]
    assert "![ablation_alpha.png](ablation_alpha.png)" in (out / "ablation.md").read_text()


def test_run_record(smoke):
    out, _ = smoke
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["attack"]["steps"] == 2 and run["config"]["attack"]["eps"] == 15
    assert "name: smoke" in run["config_text"] and run["seed"] == 0 and run["tables"] == TABLES and run["finished"] is True
    assert set(run["timings"]["tables"]) == set(TABLES) and run["timings"]["total_seconds"] > 0
    assert run["timings"]["protections_reused"] > 0  # table4 / ablation / swap reuse table2's LB
    assert {"faceshield", "torch", "numpy", "matplotlib", "pyyaml"} <= set(run["env"]["versions"])
    assert yaml.safe_load((out / "config.yaml").read_text()) == run["config"]
    index = (out / "index.md").read_text()
    assert index.startswith("# Benchmark: smoke") and "Seed 0" in index
    assert index.count("\n## ") == len(TABLES)


#: two quick tables (1 attack step on the sample at 128 px) for the run-record and --resume tests
TWO_TABLES = {"images": ["sample"], "max_side": 128, "attack": {"steps": 1},
              "tables": {"table2": {"rows": ["base1"]}, "table4": {"rows": ["base1"], "transforms": ["identity"]}}}


def test_an_interrupted_run_keeps_the_record_of_its_finished_tables(tmp_path, monkeypatch):
    def broken(*args):
        raise KeyboardInterrupt

    monkeypatch.setitem(RUNNERS, "table4", broken)
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(TWO_TABLES, out=tmp_path / "out")
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["finished"] is False and run["tables"] == ["table2", "table4"] and list(run["timings"]["tables"]) == ["table2"]
    assert "**Unfinished**: 1 of the 2 tables" in (tmp_path / "out" / "index.md").read_text()
    assert (tmp_path / "out" / "table2.md").exists() and not (tmp_path / "out" / "table4.md").exists()


def test_bad_config_on_the_command_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("tables:\n  table2: {rows: [lb, fgsmx]}\n")
    res = CliRunner().invoke(app, ["bench", str(bad), "--out", str(tmp_path / "out")])
    assert res.exit_code == 2 and "tables.table2.rows[1]: unknown method 'fgsmx'" in res.output
    res = CliRunner().invoke(app, ["bench", str(CONFIGS / "smoke.yaml"), "--tables", "table1", "--out", str(tmp_path / "out")])
    assert res.exit_code == 2 and "table 'table1' is not in" in res.output
    assert not (tmp_path / "out").exists()


def test_missing_swap_model_is_a_note(tmp_path, monkeypatch):
    monkeypatch.setattr("faceshield.deepfake.swap.DEFAULT_MODEL", "no_such_swap_model.pt")  # as if not shipped
    monkeypatch.delenv("FACESHIELD_SWAP_MODEL", raising=False)
    run = run_benchmark({"images": ["sample"], "max_side": 128, "tables": {"swap": {"sources": ["mtcnn"], "rows": ["lb"], "aligners": ["mtcnn"]}}},
                        out=tmp_path / "out")
    assert any("swap table skipped" in n for n in run.tables["swap"].notes)
    assert "swap table skipped" in (tmp_path / "out" / "swap.md").read_text()


def test_every_table_has_a_runner():
    assert set(RUNNERS) == set(TABLE_KEYS)


def test_resume_joins_tables_run_apart_without_running_them_again(tmp_path, monkeypatch):
    import shutil

    (tmp_path / "joined").mkdir()
    for t in ("table2", "table4"):  # each table in its own run and directory, as two parallel processes would
        run_benchmark(TWO_TABLES, out=tmp_path / t, tables=t)
        for f in (tmp_path / t).glob(f"{t}.*"):
            shutil.copy(f, tmp_path / "joined")

    def must_not_run(*args):
        raise AssertionError("a table with the same inputs was run again")

    for t in ("table2", "table4"):
        monkeypatch.setitem(RUNNERS, t, must_not_run)
    res = CliRunner().invoke(app, ["bench", *_write_cfg(tmp_path, TWO_TABLES), "--out", str(tmp_path / "joined"), "--resume"])
    assert res.exit_code == 0, res.output
    assert "2 table(s) (2 reused)" in res.output and "table2: reused from" in res.output
    run = json.loads((tmp_path / "joined" / "run.json").read_text())
    assert run["finished"] is True and run["reused"] == ["table2", "table4"] and run["timings"]["protections"] == 0
    alone = json.loads((tmp_path / "table4" / "table4.json").read_text())
    assert json.loads((tmp_path / "joined" / "table4.json").read_text())["rows"] == alone["rows"]
    index = (tmp_path / "joined" / "index.md").read_text()
    assert index.count("\n## ") == 2 and "Reused from earlier runs (`--resume`): table2, table4" in index
    assert (tmp_path / "table2" / "table2.md").read_text() in index  # the table comes back as it was written


def test_resume_runs_a_table_again_when_its_inputs_changed(tmp_path, monkeypatch):
    run_benchmark(TWO_TABLES, out=tmp_path / "out")
    ran = []
    for t in ("table2", "table4"):
        monkeypatch.setitem(RUNNERS, t, lambda *a, _f=RUNNERS[t], _t=t: ran.append(_t) or _f(*a))
    changed = {**TWO_TABLES, "tables": {**TWO_TABLES["tables"], "table4": {"rows": ["base1"], "transforms": ["identity", "jpeg50"]}}}
    notes = []

    class Notes(BenchProgress):
        def note(self, text):
            notes.append(text)

    run = run_benchmark(changed, out=tmp_path / "out", resume=True, progress=Notes())
    assert ran == ["table4"] and run.record["reused"] == ["table2"]
    assert any(n.startswith("table4:") and "was made with other table" in n for n in notes)
    assert {r["transform"] for r in run.tables["table4"].rows} == {"none", "jpeg50"}
    ran.clear()
    run_benchmark({**changed, "seed": 1}, out=tmp_path / "out", resume=True)  # another seed: nothing is reused
    assert ran == ["table2", "table4"]


def test_resume_without_saved_tables_runs_everything(tmp_path):
    run = run_benchmark(TWO_TABLES, out=tmp_path / "out", resume=True)
    assert run.record["reused"] == [] and set(run.tables) == {"table2", "table4"}
    assert "Reused" not in (tmp_path / "out" / "index.md").read_text()


def _write_cfg(d: Path, cfg: dict) -> list[str]:
    path = d / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return [str(path)]


def test_a_port_of_a_white_box_network_is_marked_white_box_not_transfer():
    from types import SimpleNamespace

    from faceshield.benchmark.measure import is_white_box, nme_header
    from faceshield.models import registry

    tflite = SimpleNamespace(name="facemesh_tflite", info=registry.extractor_info("facemesh_tflite"))
    tflite.kind = tflite.info.kind
    dlib = SimpleNamespace(name="dlib68", info=registry.extractor_info("dlib68"))
    dlib.kind = dlib.info.kind
    assert is_white_box(tflite, "mtcnn+facemesh") and is_white_box(tflite, "facemesh_tflite")
    assert not is_white_box(tflite, "fan+hrnet") and not is_white_box(dlib, "mtcnn+facemesh")
    assert nme_header([tflite, dlib]) == ["NME facemesh_tflite (black-box, same network as facemesh)", "NME dlib68 (black-box)"]
