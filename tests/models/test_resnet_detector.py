"""Our ResNet-18-class DeepFake detector: shapes, one logit per sample, gradients to the input, and
the weight loader (fp16 state dict + JSON sidecar) round trip and refusals (random weights, no data)."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from faceshield.core.types import TargetKind
from faceshield.models.manipulator import DeepfakeDetector, TargetInfo
from faceshield.models.resnet_detector import DetectorConfig, ResNetDetector, load_resnet_detector

W = 8  # a narrow net keeps the tests fast


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _net(width: int = W) -> ResNetDetector:
    torch.manual_seed(0)
    net = ResNetDetector(width=width)
    with torch.no_grad():  # non-trivial BN statistics and residual branches (bn2 starts at zero)
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
    return net.eval()


def _x(b: int = 3, s: int = 128) -> torch.Tensor:
    return torch.rand(b, 3, s, s, generator=torch.Generator().manual_seed(1))


def _write(path, net: ResNetDetector, model: dict | None = None) -> None:
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()}, path)
    path.with_suffix(".json").write_text(json.dumps({"model": model if model is not None else net.config.to_dict()}))


def test_config():
    cfg = DetectorConfig()
    assert (cfg.size, cfg.width) == (128, 32) and cfg.to_dict() == {"size": 128, "width": 32}
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.width = 64  # type: ignore[misc]
    with pytest.raises(ValueError, match="width"):
        DetectorConfig(width=0)
    assert ResNetDetector().config == cfg


def test_layout_and_shapes():
    net = _net()
    assert [len(s) for s in net.stages] == [2, 2, 2, 2]
    assert net.stem[0].stride == (2, 2) and isinstance(net.stem[3], torch.nn.MaxPool2d)
    assert net.fc.in_features == 8 * W and net.fc.out_features == 1
    y = net(_x())
    assert y.shape == (3,) and y.dtype == torch.float32 and torch.isfinite(y).all()
    assert net.features(_x()).shape == (3, 8 * W)
    assert net(_x(2, 64)).shape == (2,)  # fully convolutional up to the pool
    with pytest.raises(ValueError, match="expected"):
        net(torch.rand(2, 1, 128, 128))


def test_one_logit_per_sample():
    net = _net()
    x = _x(4)
    y = net(x)
    torch.testing.assert_close(torch.cat([net(x[i : i + 1]) for i in range(4)]), y, atol=1e-5, rtol=1e-4)
    assert y.std() > 0  # depends on the sample
    det = DeepfakeDetector(net, TargetInfo("t", TargetKind.DETECTOR, "test"), 128)
    p = det.prob_real(_x(2, 200))  # any crop size is resized to 128
    assert p.shape == (2,) and ((p > 0) & (p < 1)).all()


def test_gradients_reach_the_input():
    net = _net()
    x = _x(2).requires_grad_(True)
    net(x).sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    # each logit depends on its own sample only (eval mode)
    x.grad = None
    net(x)[0].backward()
    assert x.grad[0].abs().sum() > 0 and x.grad[1].abs().sum() == 0


def test_load_round_trip(tmp_path):
    net = _net()
    p = tmp_path / "det.pt"
    _write(p, net)
    got = load_resnet_detector(p)
    assert isinstance(got, ResNetDetector) and not got.training
    assert got.config == DetectorConfig(width=W)
    assert all(v.dtype == torch.float32 for v in got.state_dict().values() if v.is_floating_point())
    ref = _net()
    ref.load_state_dict({k: v.half().float() if v.is_floating_point() else v for k, v in net.state_dict().items()})
    with torch.no_grad():
        torch.testing.assert_close(got(_x()), ref(_x()))


def test_load_refuses_what_does_not_fit(tmp_path):
    net = _net()
    p = tmp_path / "wide.pt"
    _write(p, net, {"size": 128, "width": 2 * W})  # the sidecar's architecture does not fit the tensors
    with pytest.raises(ValueError, match=r"wide\.pt.*does not fit ResNetDetector\(width=16.*expected"):
        load_resnet_detector(p)
    q = tmp_path / "mangled.pt"
    sd = net.state_dict()
    sd["fc.weight"] = torch.zeros(1, 3)
    _write(q, net)
    torch.save(sd, q)
    with pytest.raises(ValueError, match=r"mangled\.pt.*does not fit.*expected"):
        load_resnet_detector(q)
    r = tmp_path / "garbage.pt"
    r.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match=r"garbage\.pt.*expected"):
        load_resnet_detector(r)
    s = tmp_path / "list.pt"
    torch.save([1, 2], s)
    with pytest.raises(ValueError, match=r"list\.pt.*expected"):
        load_resnet_detector(s)
    t = tmp_path / "badside.pt"
    _write(t, net, {"size": 128, "depth": 18})
    with pytest.raises(ValueError, match=r"badside\.json.*expected"):
        load_resnet_detector(t)
