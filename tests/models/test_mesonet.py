"""MesoNet: loading the original Keras HDF5 weights, scores on the original sample faces, the
weight transpose against numpy, and the errors for bad or absent files."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from faceshield.core.errors import WeightsNotFoundError
from faceshield.models.mesonet import (
    VARIANTS,
    WEIGHTS_ENV,
    Meso4,
    MesoInception4,
    face_input,
    load_mesonet,
)

h5py = pytest.importorskip("h5py")

DATA_ROOT = Path(os.environ.get("FACESHIELD_DATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "data"))
MESONET_DIR = DATA_ROOT / "weights" / "mesonet"
SAMPLES = {
    "df": ("df00204.jpg", "df01254.jpg"),
    "real": ("real00240.jpg", "real00772.jpg"),
}


@pytest.fixture(scope="module")
def weights_dir() -> Path:
    if not all((MESONET_DIR / f).is_file() for _, f in VARIANTS.values()):
        pytest.skip(f"MesoNet weights not found in {MESONET_DIR} (set FACESHIELD_DATA)")
    return MESONET_DIR


@pytest.fixture(scope="module")
def models(weights_dir: Path) -> dict[str, torch.nn.Module]:
    return {v: load_mesonet(v, weights_dir / f) for v, (_, f) in VARIANTS.items()}


@pytest.fixture(scope="module")
def samples(weights_dir: Path) -> dict[str, torch.Tensor]:
    from PIL import Image

    out = {}
    for label, names in SAMPLES.items():
        p = [weights_dir / "test_images" / label / n for n in names]
        if not all(q.is_file() for q in p):
            pytest.skip(f"MesoNet sample faces not found in {weights_dir / 'test_images'}")
        out[label] = torch.cat([face_input(np.asarray(Image.open(q).convert("RGB"))) for q in p])
    return out


@pytest.fixture(scope="module")
def scores(models, samples) -> dict[str, dict[str, np.ndarray]]:
    with torch.no_grad():
        return {v: {k: m.prob_real(x).numpy() for k, x in samples.items()} for v, m in models.items()}


def test_all_variants_load(models):
    assert set(models) == set(VARIANTS)
    for v, m in models.items():
        assert isinstance(m, Meso4 if v.startswith("meso4") else MesoInception4)
        assert not m.training
        assert all(torch.isfinite(p).all() for p in m.state_dict().values())


def test_load_through_env(weights_dir, monkeypatch):
    monkeypatch.setenv(WEIGHTS_ENV, str(weights_dir))
    m = load_mesonet("meso4_df")
    ref = load_mesonet("meso4_df", weights_dir / "Meso4_DF.h5")
    for (k, a), b in zip(m.state_dict().items(), ref.state_dict().values()):
        assert torch.equal(a, b), k


def test_face_input():
    rng = np.random.default_rng(0)
    for shape in [(256, 256, 3), (342, 300, 3), (100, 120, 3)]:
        x = face_input(rng.integers(0, 256, shape, dtype=np.uint8))
        assert x.shape == (1, 3, 256, 256) and x.dtype == torch.float32
        assert 0.0 <= x.min() and x.max() <= 1.0
    img = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    assert torch.allclose(face_input(img)[0, 1], torch.from_numpy(img[..., 1]).float() / 255)
    with pytest.raises(ValueError):
        face_input(np.zeros((10, 10), np.uint8))


def test_wrong_input_shape(models):
    with pytest.raises(ValueError, match="256"):
        models["meso4_df"](torch.zeros(1, 3, 128, 128))


def test_outputs_are_probabilities(models, samples, scores):
    for v, s in scores.items():
        for label, p in s.items():
            assert p.shape == (2,)
            assert ((p >= 0) & (p <= 1)).all(), (v, label, p)
        x = torch.cat([samples["df"], samples["real"]])
        with torch.no_grad():
            logit = models[v](x)
        assert logit.shape == (4,)
        assert torch.allclose(torch.sigmoid(logit), torch.from_numpy(np.concatenate([s["df"], s["real"]])))


@pytest.mark.parametrize("variant", ["meso4_df", "mesoinception_df"])
def test_df_models_separate_the_samples(scores, variant):
    # measured: meso4_df df 0.05/0.02, real 0.99/1.00; mesoinception_df df 0.02/0.001, real 1.00/1.00
    s = scores[variant]
    assert s["real"].mean() - s["df"].mean() > 0.5
    assert (s["df"] < 0.3).all() and (s["real"] > 0.7).all()
    assert s["real"].min() > s["df"].max()


def test_f2f_models_call_the_real_samples_real(scores):
    # The F2F models were trained on Face2Face, not DeepFake: they also call the DeepFake samples
    # real (meso4_f2f 0.82/0.70, mesoinception_f2f 1.00/1.00), so only the real samples are checked.
    for v in ("meso4_f2f", "mesoinception_f2f"):
        assert (scores[v]["real"] > 0.7).all(), (v, scores[v])


def _numpy_conv_same(img: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Keras semantics in numpy: ``img`` (H, W, Cin), ``kernel`` (kh, kw, Cin, Cout), 'same'
    padding, stride 1 -> (H, W, Cout)."""
    kh, kw = kernel.shape[:2]
    pad = np.pad(img, ((kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
    h, w = img.shape[:2]
    out = np.zeros((h, w, kernel.shape[3]), np.float64)
    for i in range(kh):
        for j in range(kw):
            out += pad[i:i + h, j:j + w] @ kernel[i, j]
    return out + bias


def test_first_layer_matches_numpy(weights_dir, models, samples):
    with h5py.File(weights_dir / "Meso4_DF.h5", "r") as f:
        names = [n.decode() for n in f.attrs["layer_names"]]
        conv = next(n for n in names if n.startswith("conv2d"))
        bn = next(n for n in names if n.startswith("batch_normalization"))
        k = f[conv][f"{conv}/kernel:0"][()].astype(np.float64)
        b = f[conv][f"{conv}/bias:0"][()].astype(np.float64)
        g, be, mu, var = (f[bn][f"{bn}/{p}:0"][()].astype(np.float64)
                          for p in ("gamma", "beta", "moving_mean", "moving_variance"))
    x = samples["real"][:1]
    img = x[0].permute(1, 2, 0).numpy().astype(np.float64)
    ref = np.maximum(_numpy_conv_same(img, k, b), 0.0)
    ref = (ref - mu) / np.sqrt(var + 1e-3) * g + be  # Keras BN, eps 1e-3
    m = models["meso4_df"]
    with torch.no_grad():
        out = m.bn1(torch.relu(m.conv1(x)))[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(out, ref, atol=1e-4, rtol=0)


def _write_h5(path: Path, layers: list[tuple[str, dict[str, np.ndarray]]]) -> None:
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([n.encode() for n, _ in layers])
        for n, params in layers:
            g = f.create_group(n)
            g.attrs["weight_names"] = np.array([f"{n}/{p}:0".encode() for p in params])
            for p, a in params.items():
                g.create_dataset(f"{n}/{p}:0", data=a)


def test_wrong_kernel_shape_is_a_value_error(tmp_path):
    bad = tmp_path / "bad_meso4.h5"
    conv = ("conv2d_1", {"kernel": np.zeros((5, 5, 3, 8), np.float32), "bias": np.zeros(8, np.float32)})
    filler = [(f"x{i}", {"kernel": np.zeros((1, 1), np.float32), "bias": np.zeros(1, np.float32)}) for i in range(9)]
    _write_h5(bad, [conv, *filler])
    with pytest.raises(ValueError, match="bad_meso4.h5") as e:
        load_mesonet("meso4_df", bad)
    assert "(3, 3, 3, 8)" in str(e.value) and "conv2d_1" in str(e.value)


def test_missing_layers_and_non_hdf5_are_value_errors(tmp_path):
    short = tmp_path / "short.h5"
    _write_h5(short, [("conv2d_1", {"kernel": np.zeros((3, 3, 3, 8), np.float32), "bias": np.zeros(8, np.float32)})])
    with pytest.raises(ValueError, match="short.h5.*expected 10"):
        load_mesonet("meso4_df", short)
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5 at all")
    with pytest.raises(ValueError, match="junk.h5"):
        load_mesonet("mesoinception_df", junk)


def test_absent_path_and_unset_env(tmp_path, monkeypatch):
    with pytest.raises(WeightsNotFoundError):
        load_mesonet("meso4_df", tmp_path / "nope.h5")
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))
    with pytest.raises(WeightsNotFoundError, match=WEIGHTS_ENV):
        load_mesonet("meso4_f2f")
    monkeypatch.delenv(WEIGHTS_ENV)
    with pytest.raises(WeightsNotFoundError, match=WEIGHTS_ENV):
        load_mesonet("mesoinception_f2f")


def test_unknown_variant():
    with pytest.raises(ValueError, match="meso4_df"):
        load_mesonet("meso5")
