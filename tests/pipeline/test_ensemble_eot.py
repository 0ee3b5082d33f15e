"""Pipeline settings of issue 5: ensembles of white-box targets, EOT and the transfer variants."""
import numpy as np
import pytest

from faceshield.attacks import EOT_DEFAULT, EOTLoss, SumLoss
from faceshield.pipeline import ProtectConfig, protect_array
from faceshield.pipeline.image import _work_region


def test_ensemble_over_mtcnn_and_fan(astronaut):
    res = protect_array(astronaut, ProtectConfig(targets=("mtcnn", "fan"), steps=4, jitter=1))
    assert set(res.faces) == {"mtcnn", "fan"} and all(len(f) == 1 for f in res.faces.values())
    assert res.loss_end < res.loss_start
    assert np.abs(res.rgb.astype(int) - astronaut).max() <= 15 and (res.rgb != astronaut).any()


@pytest.mark.parametrize("method", ["lb_trans", "lb_mix"])
def test_transfer_variants_run_through_the_pipeline(astronaut, method):
    cfg = ProtectConfig(method=method, targets=("mtcnn",), steps=4, jitter=1, seed=3)
    a = protect_array(astronaut, cfg)
    assert np.abs(a.rgb.astype(int) - astronaut).max() <= 15 and (a.rgb != astronaut).any()
    assert np.array_equal(a.rgb, protect_array(astronaut, cfg).rgb)


def test_eot_config_is_validated_and_recorded():
    assert ProtectConfig().eot == () and ProtectConfig().to_dict()["eot"] == []
    cfg = ProtectConfig(eot=("default",), eot_samples=2)
    assert len(cfg.eot) == len(EOT_DEFAULT) and cfg.to_dict()["eot"] == list(cfg.eot) and cfg.to_dict()["eot_samples"] == 2
    assert ProtectConfig(eot="diffjpeg:q=60").eot == ("diffjpeg:q=60",)
    with pytest.raises(ValueError, match="'jpeg:q=50' is not differentiable"):
        ProtectConfig(eot=("jpeg50",))
    with pytest.raises(ValueError, match="unknown transform 'jepg'"):
        ProtectConfig(eot=("jepg:50",))
    with pytest.raises(ValueError, match=r"eot_samples: expected an integer in 1\.\.1000, got 0"):
        ProtectConfig(eot=("identity",), eot_samples=0)


def test_eot_runs_in_the_pipeline_and_is_reproducible(astronaut, monkeypatch):
    built = []
    init = EOTLoss.__init__

    def spy(self, *a, **k):
        init(self, *a, **k)
        built.append(self)

    monkeypatch.setattr(EOTLoss, "__init__", spy)
    cfg = ProtectConfig(steps=3, jitter=1, eot=("diffjpeg:q=50..90", "identity"), eot_samples=2, seed=1)
    a = protect_array(astronaut, cfg)
    assert len(built) == 1 and built[0].samples == 2 and built[0].seed == 1 and not isinstance(built[0].loss, SumLoss)
    assert np.array_equal(a.rgb, protect_array(astronaut, cfg).rgb)
    assert not np.array_equal(a.rgb, protect_array(astronaut, ProtectConfig(steps=3, jitter=1, seed=1)).rgb)


def test_work_region_is_aligned_to_jpeg_blocks_only_when_asked():
    boxes = [np.array([181.0, 62.0, 267.0, 172.0])]
    assert _work_region((512, 512), boxes) == (71, 0, 377, 282)  # box +- its size (110 px)
    assert _work_region((512, 512), boxes, align=16) == (64, 0, 377, 282)
