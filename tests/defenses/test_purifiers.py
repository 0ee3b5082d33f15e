"""Purifiers by spec: MagDR and every restoration, as the bench and `evaluate --purify` name them."""
import numpy as np
import pytest

from faceshield.defenses.purifiers import MagDRPurifier, create_purifier


def test_specs_resolve_to_magdr_or_a_restoration():
    assert isinstance(create_purifier("magdr"), MagDRPurifier) and create_purifier("magdr").spec == "magdr"
    assert create_purifier("magdr:ganimation").model == "ganimation"
    assert create_purifier("nlmeans:5").spec == "nlmeans:5"
    for bad in ("magdr:nope", "nlmeans", "", "frobnicate"):
        with pytest.raises(ValueError):
            create_purifier(bad)


def test_magdr_purifier_passes_a_photo_without_a_face_through_and_records_it():
    grey = np.full((96, 96, 3), 127, np.uint8)
    p = create_purifier("magdr")
    assert np.array_equal(p.apply(grey), grey) and p.last_record["no_face"] and not p.last_record["detected"]


def test_bench_configs_accept_purifier_specs(tmp_path):
    from faceshield.benchmark import BenchConfigError, load_config

    cfg = tmp_path / "c.yaml"
    cfg.write_text("tables:\n  table4:\n    transforms: [identity, magdr, 'median:3']\n")
    assert load_config(cfg).tables["table4"]["transforms"] == ["identity", "magdr", "median:3"]
    cfg.write_text("tables:\n  table4:\n    transforms: ['magdr:nope']\n")
    with pytest.raises(BenchConfigError, match="unknown manipulator"):
        load_config(cfg)
