"""BPDA (``bpda:<spec>``): the real non-differentiable transform forward, identity backward, usable
in an EOT pool; bad specs are refused with the spec quoted."""
import numpy as np
import pytest
import torch

from faceshield.attacks import EOTLoss, eot_pool
from faceshield.transforms import BPDA, JPEG, RandomTransform, create_transform, rgb_to_tensor, tensor_to_rgb
from faceshield.transforms.restore import NLMeans

SPECS = ["nlmeans:5", "median:3", "bits:5", "wavelet:0.04", "bilateral:25", "jpeg75"]


@pytest.fixture(scope="module")
def faces(astronaut):
    return [astronaut[20:84, 170:234], astronaut[60:124, 190:254]]  # two 64 x 64 crops of the face


@pytest.mark.parametrize("inner", SPECS)
def test_forward_is_the_real_restoration_of_the_8bit_image(inner, faces):
    t = create_transform(f"bpda:{inner}")
    real = create_transform(inner)
    x = torch.cat([rgb_to_tensor(f) for f in faces]) + 0.3 / 255  # off the 8-bit grid: rounded first
    y = t(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    for b, f in enumerate(faces):
        assert np.array_equal(tensor_to_rgb(y[b : b + 1]), real(f))
        assert torch.allclose(y[b : b + 1], rgb_to_tensor(real(f)), atol=1e-6)
    assert np.array_equal(t(faces[0]), real(faces[0]))  # on uint8 images: the restoration itself


def test_backward_is_the_identity(faces):
    t = create_transform("bpda:nlmeans:5")
    x = rgb_to_tensor(faces[0]).requires_grad_(True)
    w = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    (t(x) * w).sum().backward()
    assert torch.equal(x.grad, w)
    assert not torch.equal(t(x.detach()), x.detach())  # the forward did change the image


def test_spec_parses_and_round_trips():
    t = create_transform("bpda:nlmeans:5")
    assert isinstance(t, BPDA) and isinstance(t.inner, NLMeans) and t.inner.h == 5
    assert t.differentiable and t.spec == "bpda:nlmeans:5" and create_transform(t.spec) == t
    j = create_transform(" BPDA:jpeg75 ")
    assert isinstance(j.inner, JPEG) and j.spec == "bpda:jpeg:q=75" and create_transform(j.spec) == j
    r = create_transform("bpda:jpeg:q=50..90")
    assert isinstance(r.inner, RandomTransform) and r.spec == "bpda:jpeg:q=50..90"
    s = r.sample(torch.Generator().manual_seed(0))
    assert isinstance(s, BPDA) and isinstance(s.inner, JPEG) and 50 <= s.inner.quality <= 90


@pytest.mark.parametrize(
    "spec, message",
    [
        ("bpda", r"transform spec 'bpda': bpda wraps another transform's spec, e.g. 'bpda:nlmeans:5'"),
        ("bpda:", "bpda wraps another transform's spec"),
        ("bpda:blur:1.0", r"transform spec 'bpda:blur:1.0': bpda: 'blur:1' is differentiable already; use it without bpda"),
        ("bpda:bpda:median:3", "is differentiable already"),
        ("bpda:nlmean:5", r"transform spec 'bpda:nlmean:5': unknown transform 'nlmean'"),
        ("bpda:median:4", r"transform spec 'bpda:median:4': .*odd kernel size"),
        ("bpda:nlmeans", "missing the h"),
    ],
)
def test_bad_specs(spec, message):
    with pytest.raises(ValueError, match=message):
        create_transform(spec)


def test_eot_pool_accepts_bpda_and_gradients_reach_the_image(faces):
    pool = eot_pool(["bpda:nlmeans:5", "bpda:median:3", "blur:1.0"])
    assert [t.spec for t in pool] == ["bpda:nlmeans:5", "bpda:median:3", "blur:1"]
    with pytest.raises(ValueError, match=r"'median:3' is not differentiable; .*bpda:median:3"):
        eot_pool(["median:3"])
    loss = EOTLoss(lambda x, x0: (x - x0).pow(2).flatten(1).mean(1), ["bpda:nlmeans:5", "bpda:wavelet:0.04"], samples=2)
    x0 = rgb_to_tensor(faces[0])
    x = (x0 + 4 / 255 * torch.randn(x0.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1).requires_grad_(True)
    v = loss(x, x0)
    v.sum().backward()
    assert v.shape == (1,) and x.grad is not None and x.grad.abs().sum() > 0


def test_protect_config_takes_bpda_in_its_eot_pool():
    from faceshield.pipeline import ProtectConfig

    c = ProtectConfig(eot=("identity", "diffjpeg:q=75", "bpda:nlmeans:5", "bpda:median:3"), eot_samples=2)
    assert c.eot == ("identity", "diffjpeg:q=75", "bpda:nlmeans:5", "bpda:median:3")
    with pytest.raises(ValueError, match=r"eot: EOT: 'nlmeans:5' is not differentiable; .*bpda:nlmeans:5"):
        ProtectConfig(eot=("nlmeans:5",))
