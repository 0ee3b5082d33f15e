"""MagNet's auto-encoder (reformer and detector): the shipped weights load safely, the reformer keeps
the photo's shape and removes noise, the detector scores a noisy photo above its clean original."""
import json

import numpy as np
import pytest
import torch

from faceshield.core.errors import NoFaceError
from faceshield.defenses.reformer import ReconstructionErrorDetector, Reformer, load_reformer, reform
from faceshield.models.weights import package_data
from faceshield.transforms import create_transform


def _mse(a, b):
    return float(np.mean((a.astype(float) - b.astype(float)) ** 2))


@pytest.fixture(scope="module")
def noisy(astronaut):
    rng = np.random.default_rng(0)
    return np.clip(astronaut + rng.normal(0, 0.05 * 255, astronaut.shape), 0, 255).round().astype(np.uint8)  # sigma 0.05, inside the training range


def test_shipped_weights_load_with_weights_only_and_fit_the_sidecar():
    sd = torch.load(package_data("reformer64.pt"), map_location="cpu", weights_only=True)
    assert all(v.dtype == torch.float16 for v in sd.values())
    meta = json.loads(package_data("reformer64.json").read_text())
    assert meta["machine"]["device"] == "cpu" and meta["data"]["split"] == "train" and meta["held_out"]["split"] == "test identities"
    net = load_reformer()
    assert isinstance(net, Reformer) and not net.training
    assert sum(p.numel() for p in net.parameters()) == meta["parameters"] < 200_000
    ho = meta["held_out"]["noise"]["0.1"]
    assert ho["noisy_out"] < 0.7 * ho["noisy_in"]  # on held-out identities, the strongest training noise is mostly removed


def test_reformer_keeps_shape_and_removes_noise(astronaut, noisy):
    odd = astronaut[:301, :257]  # any size, odd ones included
    out = reform(odd)
    assert out.shape == odd.shape and out.dtype == np.uint8
    assert _mse(reform(noisy), astronaut) < 0.7 * _mse(noisy, astronaut)  # measured 42 vs 145 (0.29); the clean photo reformed: 32


def test_the_transform_spec_parses_and_round_trips(astronaut):
    t = create_transform("reformer:1")
    assert t.spec == "reformer:1" and create_transform(t.spec) == t and create_transform("reformer:2").passes == 2
    face = astronaut[20:276, 100:356]
    assert np.array_equal(t(face), reform(face))
    for bad, msg in (("reformer", "missing the passes"), ("reformer:0", "positive"), ("reformer:1.5", "integer")):
        with pytest.raises(ValueError, match=msg):
            create_transform(bad)


def test_detector_scores_a_noisy_photo_above_the_clean_one(astronaut, noisy):
    det = ReconstructionErrorDetector()
    clean, dirty = det.score(astronaut), det.score(noisy)
    assert dirty > 1.5 * clean  # measured 0.0026 vs 0.00049 (5.3 x)
    det.fit([astronaut, np.ascontiguousarray(astronaut[:, ::-1])], flag_rate=0.0)
    assert det(noisy) and not det(astronaut)
    with pytest.raises(NoFaceError):
        det.score(np.full((128, 128, 3), 127, np.uint8))
