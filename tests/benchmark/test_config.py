"""Benchmark configs: the paper's defaults, and one clear error per kind of mistake."""
from pathlib import Path

import pytest

from faceshield.benchmark import BenchConfigError, load_config, parse_config, select_tables
from faceshield.benchmark.config import ALPHA_SWEEP, STEPS_SWEEP

CONFIGS = Path(__file__).resolve().parents[2] / "benchmarks" / "configs"


def test_defaults_are_the_papers():
    cfg = parse_config({"tables": {"table2": None, "table4": {}, "ablation": None}})
    assert cfg.attack["eps"] == 15 and cfg.attack["alpha"] == 1 and cfg.attack["steps"] == 20 and cfg.attack["decay"] == 0.5
    assert cfg.seed == 0 and [s.kind for s in cfg.images] == ["sample"] and cfg.extractors is None
    t2 = cfg.tables["table2"]
    assert t2["sources"] == [("mtcnn",)] and [r.method for r in t2["rows"]] == ["base1", "base2", "lb"]
    pc = t2["rows"][2].protect_config(cfg.attack, ("mtcnn",), cfg.seed)
    assert (pc.method, pc.eps, pc.alpha, pc.steps, pc.decay) == ("lb", 15 / 255, 1 / 255, 20, 0.5)
    t4 = cfg.tables["table4"]
    assert t4["transforms"] == ["identity", "jpeg75", "jpeg50", "c", "c2"]
    eot = t4["rows"][1].protect_config(cfg.attack, ("mtcnn",), 0)
    assert eot.eot and t4["rows"][1].label == "LB+EOT"
    assert cfg.tables["ablation"]["alpha"] == ALPHA_SWEEP == [0.5, 0.75, 1.0, 1.25, 1.5]
    assert cfg.tables["ablation"]["steps"] == STEPS_SWEEP == [14, 16, 18, 20, 22, 24, 26, 28]


def test_smooth_row_reaches_the_protect_config():
    cfg = parse_config({"tables": {"table1": {"rows": ["lb", {"label": "LB smooth", "method": "lb", "smooth": 2, "alpha": 2, "ssim_weight": 1.5, "push": 0.3, "redetect": 5, "nme_cap": 0.7}]}}})
    plain, smooth = (r.protect_config(cfg.attack, ("fan",), 0) for r in cfg.tables["table1"]["rows"])
    assert plain.smooth == 0 and smooth.smooth == 2.0 and smooth.alpha == 2 / 255
    assert plain.ssim_weight == 0 and smooth.ssim_weight == 1.5
    assert plain.push == 0 and smooth.push == 0.3
    assert plain.redetect == 0 and smooth.redetect == 5
    assert plain.nme_cap == 0 and smooth.nme_cap == 0  # a regression-only setting: dropped for fan ...
    on_mtcnn = cfg.tables["table1"]["rows"][1].protect_config(cfg.attack, ("mtcnn",), 0)
    assert on_mtcnn.nme_cap == 0.7 and on_mtcnn.push == 0  # ... and kept for mtcnn, where push means nothing
    assert parse_config(cfg.to_dict()).to_dict() == cfg.to_dict()


@pytest.mark.parametrize("name", ["smoke", "paper"])
def test_shipped_configs_load_and_round_trip(name):
    cfg = load_config(CONFIGS / f"{name}.yaml")
    again = parse_config(cfg.to_dict())
    assert again.to_dict() == cfg.to_dict()
    assert cfg.name == name


def test_paper_config_covers_every_table():
    cfg = load_config(CONFIGS / "paper.yaml")
    assert set(cfg.tables) == {"table1", "table2", "table3", "table4", "ablation", "swap"}
    assert cfg.attack["eps"] == 15 and cfg.attack["steps"] == 20
    assert [s.to_dict() for s in cfg.images] == ["sample", {"helen_test": 20}]
    assert ("mtcnn", "fan") in cfg.tables["table3"]["sources"]


def test_leave_one_out_sources_exclude_the_network_evaluated():
    from faceshield.models import list_extractors

    cfg = parse_config({"tables": {"table3": {"sources": [{"all_but": "fan"}, {"all_but": "facemesh_tflite"}, {"all_but": "dlib68"}]}}})
    no_fan, no_mesh, all_white = cfg.tables["table3"]["sources"]
    white = tuple(list_extractors(white_box=True))
    assert no_fan == tuple(n for n in white if n != "fan") and "mtcnn" in no_fan
    assert "facemesh" not in no_mesh and len(no_mesh) == len(white) - 1  # the TFLite model runs facemesh's network
    assert all_white == white  # dlib68 is no white-box target: every white-box one is used
    assert parse_config(cfg.to_dict()).to_dict() == cfg.to_dict()


BAD = [
    ({"tables": {"table3": {"sources": [{"all_bt": "fan"}]}}}, r"tables\.table3\.sources\[0\]: unknown key 'all_bt'; expected one of all_but"),
    ({"tables": {"table3": {"sources": [{"all_but": "nope"}]}}}, r"tables\.table3\.sources\[0\]\.all_but: unknown extractor 'nope'"),
    ({"tables": {"table2": None}, "foo": 1}, r"config: unknown key 'foo'; expected one of"),
    ({"tables": {"table9": None}}, r"tables: unknown table 'table9'; expected one of table1, table2"),
    ({}, r"tables: expected a mapping of tables to run"),
    ({"tables": {"table2": {"rows": ["lb", "fgsmx"]}}}, r"tables\.table2\.rows\[1\]: unknown method 'fgsmx'; expected one of .*lb_trans"),
    ({"tables": {"table2": {"row": ["lb"]}}}, r"tables\.table2: unknown key 'row'; expected one of extractors, images, rows, sources"),
    ({"tables": {"table2": {"rows": [{"label": "x"}]}}}, r"tables\.table2\.rows\[0\]: a row needs a method"),
    ({"tables": {"table2": {"rows": ["lb", "mifgsm"]}}}, r"two rows are labelled 'LB \(MI-FGSM\)'"),
    ({"extractors": ["mtcnn", "nope"], "tables": {"table2": None}}, r"extractors\[1\]: unknown extractor 'nope'; expected one of dlib68"),
    ({"tables": {"table3": {"sources": ["mtcnn", ["fan", "dlib68"]]}}}, r"tables\.table3\.sources\[1\]\[1\]: 'dlib68' is a black-box extractor"),
    ({"tables": {"table4": {"transforms": ["jpeg75", "webp80"]}}}, r"tables\.table4\.transforms\[1\]: unknown transform 'webp80'"),
    ({"tables": {"table4": {"rows": [{"method": "lb", "eot": ["blurry"]}]}}}, r"tables\.table4\.rows\[0\]\.eot: .*blurry"),
    ({"attack": {"steps": "many"}, "tables": {"table2": None}}, r"attack\.steps: expected an integer, got 'many'"),
    ({"attack": {"epsilon": 8}, "tables": {"table2": None}}, r"attack: unknown key 'epsilon'; expected one of alpha"),
    ({"attack": {"budget": "loose"}, "tables": {"table2": None}}, r"attack\.budget: expected one of project, paper, got 'loose'"),
    ({"attack": {"smooth": 40}, "tables": {"table2": None}}, r"attack\.smooth: expected 0\.\.20 pixels \(a Gaussian sigma; 0 = off\), got 40"),
    ({"tables": {"table1": {"rows": [{"method": "lb", "smooth": -2}]}}}, r"tables\.table1\.rows\[0\]\.smooth: expected 0\.\.20 pixels"),
    ({"attack": {"ssim_weight": -1}, "tables": {"table2": None}}, r"attack\.ssim_weight: expected a number >= 0"),
    ({"tables": {"table1": {"rows": [{"method": "lb", "push": "far"}]}}}, r"tables\.table1\.rows\[0\]\.push: expected a number"),
    ({"tables": {"table1": {"rows": [{"method": "lb", "redetect": 2.5}]}}}, r"tables\.table1\.rows\[0\]\.redetect: expected an integer"),
    ({"images": ["helen_test"], "tables": {"table2": None}}, r"images\[0\]: expected \{helen_test: N\}"),
    ({"images": [{"helen_test": 5, "shuffle": True}], "tables": {"table2": None}}, r"images\[0\]: unknown key 'shuffle'"),
    ({"tables": {"swap": {"swap_model": "/nonexistent/swap.pt"}}}, r"tables\.swap\.swap_model: swap model '/nonexistent/swap.pt' not found"),
    ({"tables": {"ablation": {"alpha": [], "steps": []}}}, r"tables\.ablation: expected at least one value to sweep"),
]


@pytest.mark.parametrize("data, match", BAD, ids=[m[:40] for _, m in BAD])
def test_bad_config_gives_a_clear_error(data, match):
    with pytest.raises(BenchConfigError, match=match):
        parse_config(data)


def test_bad_files(tmp_path):
    with pytest.raises(BenchConfigError, match=r"missing\.yaml: config file not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("tables: {table2: [\n")
    with pytest.raises(BenchConfigError, match=r"bad\.yaml: not valid YAML"):
        load_config(bad)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("tables:\n  table2: {rows: [lb, fgsmx]}\n")
    with pytest.raises(BenchConfigError, match=r"wrong\.yaml: tables\.table2\.rows\[1\]: unknown method 'fgsmx'"):
        load_config(wrong)


def test_select_tables():
    cfg = parse_config({"tables": {"table4": None, "table2": None}})
    assert select_tables(cfg, None) == ["table4", "table2"]
    assert select_tables(cfg, "table2,table4") == ["table4", "table2"]  # config order
    with pytest.raises(BenchConfigError, match=r"--tables: unknown table 'tabel2'"):
        select_tables(cfg, "tabel2")
    with pytest.raises(BenchConfigError, match=r"--tables: table 'swap' is not in the config \(it defines table4, table2\)"):
        select_tables(cfg, ["swap"])
