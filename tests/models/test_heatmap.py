"""Heat-map extractors: decode conventions, crop geometry, FAN / HRNet architectures and loaders,
the extractor pipeline, and an attack on a small random-weight FAN."""
from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch

from faceshield.attacks import MIFGSM, HeatmapCosineLoss
from faceshield.core.errors import WeightsNotFoundError
from faceshield.core.types import IBUG68, MTCNN5, WFLW98, ExtractorKind, Face
from faceshield.models import create_extractor, extractor_info, list_extractors
from faceshield.models.fan import FAN, FANExtractor, fan_config, load_fan
from faceshield.models.heatmap import (
    FAN_CROP, HRNET_CROP, MIRROR, CropSpec, HeatmapExtractor, decode_fan, decode_hrnet, soft_argmax,
)
from faceshield.models.hrnet import HighResolutionNet, HRNetExtractor, hrnet_config, load_hrnet
from faceshield.models.weights import package_data

pytestmark = pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore:`torch.jit.:DeprecationWarning")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # tiny convolutions: one thread is faster, and immune to oversubscribed CPUs
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _randomise(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights *and* BN statistics, so a loader that drops buffers is caught."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
    return net.eval()


def small_fan(**kw) -> FAN:
    return _randomise(FAN(**{"num_stacks": 2, "features": 32, **kw}))


def small_hrnet(**kw) -> HighResolutionNet:
    return _randomise(HighResolutionNet(**{"width": 4, "modules": (1, 2, 1), "blocks": 1, "stem": 8, "layer1_blocks": 1, **kw}))


class StubDetector:
    """Returns fixed boxes (stands in for MTCNN)."""

    def __init__(self, boxes):
        self.boxes = [np.asarray(b, dtype=np.float64) for b in boxes]

    def detect(self, image):
        return [Face(box=b, points=np.zeros((5, 2)), scheme=MTCNN5, score=0.9) for b in self.boxes]


SMALL_CROP = CropSpec(input_size=64, shift_y=0.12, reference_scale=195.0)


# ---------------------------------------------------------------------------- decoding


def _peak(h=16, w=16, row=6, col=9, value=1.0):
    m = torch.zeros(1, 1, h, w)
    m[0, 0, row, col] = value
    return m


def test_decode_fan_symmetric_peak_is_the_pixel_centre():
    assert decode_fan(_peak()).tolist() == [[[9.5, 6.5]]]


@pytest.mark.parametrize(
    "neighbour, expected",
    [((6, 10), [9.75, 6.5]), ((6, 8), [9.25, 6.5]), ((7, 9), [9.5, 6.75]), ((5, 9), [9.5, 6.25])],
)
def test_decode_fan_quarter_pixel_towards_larger_neighbour(neighbour, expected):
    h = _peak()
    h[0, 0][neighbour] = 0.5
    assert decode_fan(h)[0, 0].tolist() == expected


def test_decode_shifts_both_axes_and_ignores_equal_neighbours():
    h = _peak()
    h[0, 0, 6, 10] = 0.4
    h[0, 0, 6, 8] = 0.4  # equal left/right: no x step
    h[0, 0, 5, 9] = 0.7  # upper larger: -0.25 in y
    assert decode_fan(h)[0, 0].tolist() == [9.5, 6.25]


@pytest.mark.parametrize("row, col", [(0, 5), (15, 5), (5, 0), (5, 15)])
def test_decode_no_step_for_border_peaks(row, col):
    h = _peak(row=row, col=col)
    h[0, 0, min(row + 1, 15), col] = 0.5
    h[0, 0, row, min(col + 1, 15)] = 0.5
    h[0, 0, row, col] = 1.0
    assert decode_fan(h)[0, 0].tolist() == [col + 0.5, row + 0.5]


def test_decode_hrnet_is_one_based_fan_plus_one():
    g = torch.Generator().manual_seed(0)
    h = torch.rand(2, 5, 16, 16, generator=g)
    assert torch.equal(decode_hrnet(h), decode_fan(h) + 1)
    h = _peak()
    h[0, 0, 6, 10] = 0.5
    assert decode_hrnet(h)[0, 0].tolist() == [10.75, 7.5]  # 1-based column 10 + 0.25 + 0.5


def test_decode_hrnet_zeroes_non_positive_maps():
    h = torch.full((1, 2, 16, 16), -1.0)
    h[0, 0, 3, 4] = -0.5
    assert decode_hrnet(h)[0].tolist() == [[0.5, 0.5], [0.5, 0.5]]


def test_decode_first_maximum_on_ties():
    h = torch.zeros(1, 1, 8, 8)
    h[0, 0, 2, 6] = 1
    h[0, 0, 5, 1] = 1
    assert decode_fan(h)[0, 0].tolist() == [6.5, 2.5]


def _gaussian(cx: float, cy: float, size: int = 32, sigma: float = 1.0) -> torch.Tensor:
    c = torch.arange(size, dtype=torch.float64) + 0.5  # pixel centres, edge frame
    g = torch.exp(-((c[None, :] - cx) ** 2 + (c[:, None] - cy) ** 2) / (2 * sigma**2))
    return g[None, None]


@pytest.mark.parametrize("window", [None, 3])
def test_soft_argmax_finds_sharp_gaussian_peak(window):
    h = _gaussian(12.5, 20.5)  # centred on a pixel centre: symmetric
    assert torch.allclose(soft_argmax(h, 50.0, window), torch.tensor([[[12.5, 20.5]]], dtype=h.dtype), atol=1e-6)
    h = _gaussian(12.8, 20.3, sigma=1.5)  # sub-pixel centre
    p = soft_argmax(h, 20.0, window)[0, 0]
    assert (p - torch.tensor([12.8, 20.3], dtype=h.dtype)).abs().max() < 0.25
    assert (p - decode_fan(h)[0, 0]).abs().max() < 0.5  # same frame as the library decode


def test_soft_argmax_is_differentiable_and_checks_args():
    h = _gaussian(10.2, 9.7).float().requires_grad_(True)
    soft_argmax(h, 10.0, 3).sum().backward()
    assert h.grad is not None and h.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="beta: expected > 0"):
        soft_argmax(h, 0.0)
    with pytest.raises(ValueError, match=r"expected heat-maps of shape \(N, K, h, w\)"):
        decode_fan(torch.zeros(3, 4, 4))
    with pytest.raises(TypeError, match="floating-point"):
        decode_fan(torch.zeros(1, 1, 4, 4, dtype=torch.long))


# ---------------------------------------------------------------------------- crop geometry


def test_fan_crop_follows_face_alignment_convention():
    box = torch.tensor([[100.0, 80.0, 200.0, 210.0]])  # w 100, h 130
    side = 200 * (100 + 130) / 195
    cx, cy = 150.0, 145.0 - 0.12 * 130
    expected = torch.tensor([[cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2]])
    assert torch.allclose(FAN_CROP.square(box), expected)
    ext = FANExtractor(net=small_fan(), detector=StubDetector([]))
    lo, hi = expected[0, :2] + side / 256, expected[0, 2:]
    assert ext.input_boxes(box).tolist() == [[*torch.trunc(lo).tolist(), *torch.trunc(hi).tolist()]]
    neg = torch.tensor([[-90.0, -70.0, 10.0, 60.0]])  # truncation towards zero, as int() in the library
    sq = FAN_CROP.square(neg)[0]
    side = float(sq[2] - sq[0])
    assert ext.input_boxes(neg)[0, 0] == np.trunc(float(sq[0]) + side / 256)


def test_hrnet_crop_is_centred_and_enlarged():
    box = torch.tensor([[10.0, 20.0, 110.0, 140.0]])
    side = 1.25 * (100 + 120) / 2
    assert torch.allclose(HRNET_CROP.square(box), torch.tensor([[60 - side / 2, 80 - side / 2, 60 + side / 2, 80 + side / 2]]))
    assert HRNET_CROP.mean == (0.485, 0.456, 0.406) and HRNET_CROP.std == (0.229, 0.224, 0.225)


def test_to_image_maps_heatmap_edges_to_crop_edges():
    sq = torch.tensor([[10.0, 20.0, 74.0, 84.0]])
    pts = torch.tensor([[[0.0, 0.0], [16.0, 16.0], [8.0, 4.0]]])
    out = HeatmapExtractor.to_image(pts, sq, (16, 16))
    assert out.tolist() == [[[10.0, 20.0], [74.0, 84.0], [42.0, 36.0]]]


def test_crop_spec_rejects_bad_values():
    with pytest.raises(ValueError, match="decoder"):
        CropSpec(decoder="dlib")
    with pytest.raises(ValueError, match="both or neither"):
        CropSpec(mean=(0.5, 0.5, 0.5))


def test_mirror_is_an_involution_swapping_eye_corners():
    m = MIRROR["ibug68"]
    assert sorted(m) == list(range(68)) and all(m[m[i]] == i for i in range(68))
    assert (m[36], m[45], m[0], m[8], m[30], m[48], m[57], m[60], m[66]) == (45, 36, 16, 8, 30, 54, 57, 64, 66)


# ---------------------------------------------------------------------------- architectures


def test_fan_official_key_names_and_shapes():
    net = FAN()  # 2DFAN-4
    sd = net.state_dict()
    shapes = {
        "conv1.weight": (64, 3, 7, 7), "conv1.bias": (64,), "bn1.running_mean": (64,),
        "conv2.bn1.weight": (64,), "conv2.conv1.weight": (64, 64, 3, 3), "conv2.conv2.weight": (32, 64, 3, 3),
        "conv2.conv3.weight": (32, 32, 3, 3), "conv2.downsample.0.weight": (64,), "conv2.downsample.2.weight": (128, 64, 1, 1),
        "conv4.downsample.2.weight": (256, 128, 1, 1), "m0.b1_4.bn1.weight": (256,), "m0.b2_plus_1.conv3.weight": (64, 64, 3, 3),
        "m3.b3_1.conv1.weight": (128, 256, 3, 3), "top_m_0.conv2.weight": (64, 128, 3, 3), "conv_last0.weight": (256, 256, 1, 1),
        "bn_end0.running_var": (256,), "l0.weight": (68, 256, 1, 1), "bl0.weight": (256, 256, 1, 1), "al0.weight": (256, 68, 1, 1),
        "l3.bias": (68,), "al2.bias": (256,),
    }
    for k, s in shapes.items():
        assert tuple(sd[k].shape) == s, k
    assert not any(k.startswith(("bl3.", "al3.", "conv3.downsample", "m0.b2_plus_2")) for k in sd)
    assert sum(p.numel() for p in net.parameters()) == 23_820_176
    assert sum(p.numel() for p in FAN(num_stacks=1).parameters()) == 6_249_668
    assert fan_config(sd) == {"num_stacks": 4, "num_points": 68, "features": 256, "depth": 4}


def test_fan_outputs_one_heatmap_set_per_stack():
    out = small_fan(num_stacks=3)(torch.rand(2, 3, 64, 64))
    assert [tuple(o.shape) for o in out] == [(2, 68, 16, 16)] * 3
    with pytest.raises(ValueError, match="pool"):
        FAN(pool="median")


def test_hrnet_w18_official_key_names_and_shapes():
    net = HighResolutionNet()
    sd = net.state_dict()
    shapes = {
        "conv1.weight": (64, 3, 3, 3), "bn2.running_var": (64,), "layer1.0.downsample.0.weight": (256, 64, 1, 1),
        "layer1.0.downsample.1.weight": (256,), "layer1.3.conv3.weight": (256, 64, 1, 1),
        "transition1.0.0.weight": (18, 256, 3, 3), "transition1.1.0.0.weight": (36, 256, 3, 3),
        "transition2.2.0.0.weight": (72, 36, 3, 3), "transition3.3.0.0.weight": (144, 72, 3, 3),
        "stage2.0.branches.1.3.conv2.weight": (36, 36, 3, 3), "stage2.0.fuse_layers.0.1.0.weight": (18, 36, 1, 1),
        "stage2.0.fuse_layers.1.0.0.0.weight": (36, 18, 3, 3), "stage3.3.branches.2.3.bn2.weight": (72,),
        "stage4.2.fuse_layers.3.0.0.0.weight": (18, 18, 3, 3), "stage4.2.fuse_layers.3.0.2.0.weight": (144, 18, 3, 3),
        "stage4.2.fuse_layers.0.3.1.running_mean": (18,), "head.0.weight": (270, 270, 1, 1), "head.0.bias": (270,),
        "head.1.weight": (270,), "head.3.weight": (68, 270, 1, 1), "head.3.bias": (68,),
    }
    for k, s in shapes.items():
        assert tuple(sd[k].shape) == s, k
    assert not any(k.startswith(("transition2.0", "transition2.1", "stage3.4", "stage4.3", "head.2")) for k in sd)
    assert not any(".fuse_layers." in k and k.split(".fuse_layers.")[1][:3] in ("0.0", "1.1", "2.2", "3.3") for k in sd)
    assert sum(p.numel() for p in net.parameters()) == 9_654_398
    assert hrnet_config(sd) == net.config
    assert tuple(HighResolutionNet(num_points=98).state_dict()["head.3.weight"].shape) == (98, 270, 1, 1)


def test_hrnet_output_shape():
    out = small_hrnet()(torch.rand(2, 3, 64, 64))
    assert tuple(out.shape) == (2, 68, 16, 16)


# ---------------------------------------------------------------------------- loaders


@pytest.fixture(scope="module")
def fan_net() -> FAN:
    return small_fan()


def _same_outputs(a: torch.nn.Module, b: torch.nn.Module, x: torch.Tensor) -> None:
    with torch.no_grad():
        ya, yb = a(x), b(x)
    ya, yb = (ya if isinstance(ya, list) else [ya]), (yb if isinstance(yb, list) else [yb])
    assert len(ya) == len(yb)
    for p, q in zip(ya, yb):
        assert torch.equal(p, q)


def test_load_fan_plain_state_dict(tmp_path, fan_net):
    path = tmp_path / "fan.pth"
    torch.save(fan_net.state_dict(), path)
    net = load_fan(path)
    assert (net.num_stacks, net.features, net.num_points, net.pool) == (2, 32, 68, "avg")
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    _same_outputs(fan_net, net, torch.rand(1, 3, 64, 64))


def test_load_fan_wrapped_dataparallel_checkpoint(tmp_path, fan_net):
    path = tmp_path / "2DFAN-4.pth.tar"
    wrapped = {f"module.{k}": v for k, v in fan_net.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save({"state_dict": wrapped, "epoch": 30}, path)
    _same_outputs(fan_net, load_fan(path), torch.rand(1, 3, 64, 64))


@pytest.mark.parametrize("pool", ["avg", "max"])
def test_load_fan_torchscript_archive(tmp_path, pool):
    ref = small_fan(pool=pool, num_stacks=1)
    x = torch.rand(1, 3, 64, 64)
    path = tmp_path / "2DFAN4-test.zip"
    torch.jit.save(torch.jit.trace(ref, x, strict=False, check_trace=False), str(path))
    net = load_fan(path)
    assert net.pool == pool  # read from the archive's code
    assert type(net) is FAN
    _same_outputs(ref, net, x)


def test_load_fan_refuses_torchscript_with_setstate(tmp_path):
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("evil/data.pkl", b"")
        z.writestr("evil/code/__torch__/m.py", "class M(Module):\n  def __setstate__(self, state: Tuple[int]) -> None:\n    pass\n")
    with pytest.raises(ValueError, match="__setstate__"):
        load_fan(path)


def test_load_fan_rejects_other_files(tmp_path):
    p = tmp_path / "hrnet.pth"
    torch.save(small_hrnet().state_dict(), p)
    with pytest.raises(ValueError, match="not a FAN state dict"):
        load_fan(p)
    p = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], p)
    with pytest.raises(ValueError, match="expected a state dict"):
        load_fan(p)
    sd = small_fan().state_dict()
    sd["l0.weight"] = sd["l0.weight"][:, :16]
    p = tmp_path / "bad.pth"
    torch.save(sd, p)
    with pytest.raises(ValueError, match="do not fit the network"):
        load_fan(p)


def test_load_hrnet_plain_and_wrapped(tmp_path):
    ref = small_hrnet(num_points=98)
    x = torch.rand(1, 3, 64, 64)
    plain = tmp_path / "HR18-WFLW.pth"
    torch.save(ref.state_dict(), plain)
    net = load_hrnet(plain, 98)
    assert net.config == ref.config  # width, module counts and K inferred from the tensors
    _same_outputs(ref, net, x)
    wrapped = tmp_path / "HR18-300W.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in ref.state_dict().items()}}, wrapped)
    _same_outputs(ref, load_hrnet(wrapped), x)
    with pytest.raises(ValueError, match="expected a 68-point HRNet"):
        load_hrnet(plain, 68)


# ---------------------------------------------------------------------------- registry and weights


def test_registered_as_heatmap_extractors():
    assert {"fan", "hrnet"} <= set(list_extractors())
    for name in ("fan", "hrnet"):
        info = extractor_info(name)
        assert info.kind is ExtractorKind.HEATMAP and info.scheme is IBUG68


@pytest.mark.parametrize(
    "name, env, package_file, hint",
    [("fan", "FACESHIELD_FAN", "fan68.pt", "2DFAN4-11f355bf06.pth.tar"), ("hrnet", "FACESHIELD_HRNET", "hrnet68.pt", "HR18-300W.pth")],
)
def test_missing_weights_raise_with_hint(monkeypatch, tmp_path, name, env, package_file, hint):
    if package_data(package_file).is_file():
        pytest.skip(f"{package_file} is shipped: the default weights exist")
    monkeypatch.delenv(env, raising=False)
    pattern = rf"weight file not found \(tried \${env} \(unset\), .*{package_file}\); pass weights=PATH or set \${env}; .*downloads nothing.*{hint}"
    with pytest.raises(WeightsNotFoundError, match=pattern):
        create_extractor(name, cached=False)
    monkeypatch.setenv(env, str(tmp_path / "nope.pth"))
    with pytest.raises(WeightsNotFoundError, match=rf"\${env}=.*nope\.pth"):
        create_extractor(name, cached=False)
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        create_extractor(name, weights=str(tmp_path / "missing.pth"), cached=False)


def test_create_extractor_from_weight_files(monkeypatch, tmp_path):
    fan_path = tmp_path / "fan.pth"
    torch.save(small_fan(num_stacks=1).state_dict(), fan_path)
    monkeypatch.setenv("FACESHIELD_FAN", str(fan_path))
    ext = create_extractor("fan", cached=False, crop=SMALL_CROP)
    assert isinstance(ext, FANExtractor) and ext.weights_path == fan_path
    hr_path = tmp_path / "hr98.pth"
    torch.save(small_hrnet(num_points=98).state_dict(), hr_path)
    ext = create_extractor("hrnet", weights=str(hr_path), cached=False, crop=HRNET_CROP)
    assert isinstance(ext, HRNetExtractor) and ext.scheme is WFLW98 and extractor_info("hrnet").scheme is IBUG68


# ---------------------------------------------------------------------------- the extractor pipeline


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    g = torch.Generator().manual_seed(3)
    x = torch.nn.functional.interpolate(torch.rand(1, 3, 6, 6, generator=g), size=48, mode="bilinear", align_corners=False)
    return (x[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()


BOX = [10.0, 12.0, 38.0, 42.0]


@pytest.fixture(scope="module")
def small_extractor(fan_net) -> FANExtractor:
    return FANExtractor(net=fan_net, crop=SMALL_CROP, detector=StubDetector([BOX]))


def _x(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img.copy()).permute(2, 0, 1)[None].float() / 255


def test_heatmaps_and_landmarks_shapes_and_gradients(small_extractor, image):
    x = _x(image).requires_grad_(True)
    rois = torch.tensor([BOX])
    h = small_extractor.heatmaps(x, rois)
    assert tuple(h.shape) == (1, 68, 16, 16)
    pts = small_extractor.landmarks(x, rois)
    assert tuple(pts.shape) == (1, 68, 2)
    (g,) = torch.autograd.grad(pts.sum(), x)
    assert g.abs().sum() > 0
    lib = small_extractor.landmarks(x, rois, decode="library")
    sq = small_extractor.frame_boxes(rois)[0]
    assert (lib[..., 0] >= sq[0]).all() and (lib[..., 0] <= sq[2]).all() and not lib.requires_grad
    with pytest.raises(ValueError, match="decode"):
        small_extractor.landmarks(x, rois, decode="argmax")


def test_per_roi_image_index(small_extractor, image):
    x = torch.cat([_x(image), _x(image[::-1].copy())])
    rois = torch.tensor([BOX, [5.0, 6.0, 30.0, 33.0], BOX])
    index = torch.tensor([1, 0, 0])
    h = small_extractor.heatmaps(x, rois, index)
    for n in range(3):
        one = small_extractor.heatmaps(x[index[n] : index[n] + 1], rois[n : n + 1])
        assert torch.allclose(h[n : n + 1], one, atol=1e-5)
    with pytest.raises(ValueError, match="index"):
        small_extractor.heatmaps(x, rois, torch.tensor([0, 2, 0]))
    with pytest.raises(ValueError, match="one roi per image"):
        small_extractor.heatmaps(x, rois)


def test_detect_reports_detector_boxes_and_library_points(small_extractor, image):
    faces = small_extractor.detect(image)
    assert len(faces) == 1
    f = faces[0]
    assert f.scheme is IBUG68 and f.points.shape == (68, 2) and f.score == pytest.approx(0.9)
    assert f.box.tolist() == BOX and f.roi.tolist() == BOX
    x = _x(image)
    h = small_extractor.heatmaps(x, torch.tensor([BOX]), antialias=False)
    sq = small_extractor.frame_boxes(torch.tensor([BOX]))
    ref = HeatmapExtractor.to_image(decode_fan(h), sq, h.shape[-2:])[0].double().numpy()
    # detect rounds the crop to 8 bits, like the library; with a random net that may move a few argmaxes
    assert np.mean(np.abs(ref - f.points).max(1) < 1e-3) > 0.8
    empty = FANExtractor(net=small_extractor.net, crop=SMALL_CROP, detector=StubDetector([]))
    assert empty.detect(image) == []
    with pytest.raises(ValueError, match="uint8"):
        small_extractor.detect(image.astype(np.float32))


def test_flip_input_is_mirror_equivariant(fan_net, image):
    ext = FANExtractor(net=fan_net, crop=SMALL_CROP, exact_crop=False, flip_input=True, detector=StubDetector([]))
    x = _x(image)
    w = x.shape[-1]
    box = torch.tensor([BOX])
    mirrored_box = torch.tensor([[w - BOX[2], BOX[1], w - BOX[0], BOX[3]]])
    h = ext.heatmaps(x, box)
    hm = ext.heatmaps(x.flip(-1), mirrored_box)
    mirror = torch.tensor(MIRROR["ibug68"])
    assert torch.allclose(hm, h.index_select(1, mirror).flip(-1), atol=1e-4)


def test_hrnet_extractor_normalises_with_imagenet_stats(image):
    net = small_hrnet()
    ext = HRNetExtractor(net=net, crop=CropSpec(input_size=64, scale_factor=1.25, reference_scale=400.0,
                                               mean=HRNET_CROP.mean, std=HRNET_CROP.std, decoder="hrnet"),
                         detector=StubDetector([BOX]))
    x = _x(image)
    rois = torch.tensor([BOX])
    from faceshield.faces.crop import crop_boxes

    crops = crop_boxes(x, ext.input_boxes(rois), 64)
    mean, std = torch.tensor(HRNET_CROP.mean).view(1, 3, 1, 1), torch.tensor(HRNET_CROP.std).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(ext.heatmaps(x, rois), net((crops - mean) / std), atol=1e-5)
    lib = ext.landmarks(x, rois, decode="library")
    h = ext.heatmaps(x, rois)
    assert torch.allclose(lib, HeatmapExtractor.to_image(decode_hrnet(h) - 1, ext.frame_boxes(rois), (16, 16)))
    assert ext.detect(image)[0].scheme is IBUG68


# ---------------------------------------------------------------------------- attack


def _calibrated_fan() -> FAN:
    """A random-weight FAN whose BN statistics are measured on smooth random images (as training
    would leave them): its heat-maps then vary over space like a trained model's instead of being
    one constant offset, so Eq. 1's cosine is sensitive to the input."""
    torch.manual_seed(0)
    net = FAN(num_stacks=1, features=32)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average
    net.train()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for _ in range(3):
            net(torch.nn.functional.interpolate(torch.rand(8, 3, 8, 8, generator=g), size=64, mode="bilinear", align_corners=False))
        net.l0.bias.zero_()
    return net.eval()


def test_mifgsm_lowers_heatmap_cosine_on_small_fan(image):
    ext = FANExtractor(net=_calibrated_fan(), crop=SMALL_CROP, detector=StubDetector([]))
    loss = HeatmapCosineLoss(ext, [[BOX]])
    x = _x(image)
    assert torch.allclose(loss(x, x), torch.ones(1), atol=1e-5)  # Eq. 1 on the model's own heat-maps
    adv = MIFGSM(loss, eps=8 / 255, alpha=2 / 255, steps=5)(x, seed=0)
    assert float(loss(adv, x)) < 0.95
    assert (torch.round(adv * 255) - torch.round(x * 255)).abs().max() <= 8
