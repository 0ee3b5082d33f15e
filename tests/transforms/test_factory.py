"""Spec strings -> transforms."""
import pytest
import torch

from faceshield.transforms import JPEG, DiffJPEG, GaussianBlur, Identity, RandomTransform, Resize, VideoCodec, create_transform, list_transforms


@pytest.mark.parametrize(
    "spec, cls, attr, value",
    [
        ("jpeg75", JPEG, "quality", 75),
        ("jpeg:q=50", JPEG, "quality", 50),
        ("jpeg:quality=50", JPEG, "quality", 50),
        ("JPEG:50", JPEG, "quality", 50),
        ("diffjpeg:q=50", DiffJPEG, "quality", 50.0),
        ("resize:0.5", Resize, "scale", 0.5),
        ("resize:scale=0.25", Resize, "scale", 0.25),
        ("blur:1.0", GaussianBlur, "sigma", 1.0),
        ("c", VideoCodec, "qscale", 4),
        ("c:q=6", VideoCodec, "qscale", 6),
        ("h264:crf=30", VideoCodec, "crf", 30),
        ("identity", Identity, "name", "identity"),
        ("none", Identity, "name", "identity"),
    ],
)
def test_specs(spec, cls, attr, value):
    t = create_transform(spec)
    assert type(t) is cls and getattr(t, attr) == value
    assert create_transform(t.spec) == t  # the canonical spec rebuilds it


def test_c2_is_mpeg4_then_h264():
    t = create_transform("c2")
    assert [(p.codec, p.qscale, p.crf) for p in t.transforms] == [("mpeg4", 4, None), ("h264", None, 23)]
    assert t.spec == "c2:q=4,crf=23" and not t.differentiable
    assert create_transform("c2:q=3,crf=28").spec == "c2:q=3,crf=28"


def test_ranges_give_reproducible_random_transforms():
    t = create_transform("diffjpeg:q=50..90")
    assert isinstance(t, RandomTransform) and t.differentiable and t.spec == "diffjpeg:q=50..90"
    a = [t.sample(torch.Generator().manual_seed(3)) for _ in range(2)]
    assert a[0] == a[1] and 50 <= a[0].quality <= 90
    qs = {t.sample(g).quality for g in [torch.Generator().manual_seed(0)] for _ in range(20)}
    assert len(qs) > 10
    j = create_transform("jpeg:q=50..60").sample(torch.Generator().manual_seed(0))
    assert isinstance(j, JPEG) and isinstance(j.quality, int)


def test_list_transforms():
    assert list_transforms() == ["bilateral", "bits", "blur", "bpda", "c", "c2", "deflect", "diffjpeg", "h264", "identity", "jpeg", "median", "mpeg4", "nlmeans", "reformer", "resize", "resizepad", "tv", "wavelet"]
    assert list_transforms("*jpeg") == ["diffjpeg", "jpeg"]


@pytest.mark.parametrize(
    "spec, message",
    [
        ("", "expected a name such as"),
        ("jpg75", "unknown transform 'jpg75' in spec 'jpg75'; expected one of bilateral, bits, blur, bpda, c, c2"),
        ("c3", "unknown transform 'c3'"),
        ("jpeg", r"transform spec 'jpeg': missing the quality, e.g. 'jpeg75'"),
        ("jpeg:q=101", r"quality: expected a JPEG quality in \[1, 100\], got 101"),
        ("jpeg:x=3", "unknown parameter 'x' for jpeg; expected q, quality"),
        ("blur:abc", "expected a number for sigma, got 'abc'"),
        ("resize:1.5", r"scale: expected a down-scaling factor in \(0, 1\]"),
        ("jpeg:50,60", "expected key=value, got '60'"),
        ("identity:1", "identity takes no arguments"),
        ("c:q=2..5", r"ranges \(low..high\) are only for jpeg, diffjpeg, resize and blur"),
        ("diffjpeg:q=90..50", "low <= high"),
        ("jpeg:q=50,q=60", "quality given twice"),
        ("h264:preset=turbo", "preset: expected one of"),
    ],
)
def test_bad_specs(spec, message):
    with pytest.raises(ValueError, match=message):
        create_transform(spec)


def test_non_string_spec():
    with pytest.raises(TypeError, match="transform spec: expected a string such as 'jpeg75', got int"):
        create_transform(75)
