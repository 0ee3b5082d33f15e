"""Build transforms from short spec strings (what the CLI, configs and reports use).

Grammar: ``name[number][:value | :key=value[,key=value ...]]``; a numeric value may be a range
``low..high`` for the differentiable and JPEG families, which gives a
:class:`~faceshield.transforms.random.RandomTransform` (for EOT)::

    identity                       no change
    jpeg75  jpeg:75  jpeg:q=50     real JPEG (OpenCV) at quality 75 / 50 (paper: Q75, Q50)
    diffjpeg:q=50  diffjpeg:q=50..90   differentiable JPEG (kornia), fixed or random quality
    resize:0.5  resize:0.6..0.95   down to 50 % of the size and back up
    blur:1.0  blur:0.3..1.2        Gaussian blur, sigma in pixels
    mpeg4:q=4  h264:crf=23         one video codec round trip (also fps=, bitrate=, frames=, preset=)
    c  c:q=4                       the paper's C: MPEG-4 (default qscale 4)
    c2  c2:q=4,crf=23              the paper's C2: MPEG-4, then H.264 (default CRF 23)
    median:3  bilateral:25  nlmeans:5  tv:0.05  wavelet:0.04  bits:5  resizepad:0.9  deflect:200
                                   a forger's restorations (:mod:`faceshield.transforms.restore`)
    reformer:1                     MagNet's auto-encoder reformer, one pass (the model is imported
                                   on first use from :mod:`faceshield.defenses.reformer`)

A wrapper takes a whole spec after its name and the first ``:``::

    bpda:nlmeans:5  bpda:jpeg75  bpda:jpeg:q=50..90  bpda:median:3
                                   BPDA (:mod:`faceshield.transforms.bpda`): the real, non-differentiable
                                   transform forward, identity backward; differentiable in that sense,
                                   so it may go in an EOT pool (``eot=...``). Wrapping a differentiable
                                   transform (``bpda:blur:1.0``) or nothing (``bpda``) is refused.
"""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from faceshield.transforms.base import Compose, Identity, Transform
from faceshield.transforms.blur import GaussianBlur
from faceshield.transforms.bpda import BPDA
from faceshield.transforms.codec import C2_CRF, C_QSCALE, VideoCodec
from faceshield.transforms.jpeg import JPEG, DiffJPEG
from faceshield.transforms.random import RandomTransform
from faceshield.transforms.resize import Resize
from faceshield.transforms.restore import RESTORATIONS


@dataclass(frozen=True)
class _Family:
    description: str
    keys: dict[str, str]  # accepted key (and aliases) -> constructor argument
    primary: str | None = None  # the argument a bare value / a number suffix sets
    ranges: bool = False  # numeric values may be ranges low..high
    integer: tuple[str, ...] = ()
    example: str = ""


_FAMILIES: dict[str, _Family] = {
    "identity": _Family("no change", {}, example="identity"),
    "jpeg": _Family("real JPEG (OpenCV), quality 1-100", {"q": "quality", "quality": "quality"}, "quality", True, ("quality",), "jpeg75"),
    "diffjpeg": _Family("differentiable JPEG (kornia), quality 1-100", {"q": "quality", "quality": "quality"}, "quality", True, (), "diffjpeg:q=50"),
    "resize": _Family("resize down by a scale in (0, 1] and back up", {"scale": "scale", "s": "scale"}, "scale", True, (), "resize:0.5"),
    "blur": _Family("Gaussian blur, sigma in pixels", {"sigma": "sigma", "s": "sigma"}, "sigma", True, (), "blur:1.0"),
    "mpeg4": _Family("MPEG-4 video round trip", {"q": "qscale", "qscale": "qscale", "bitrate": "bitrate", "fps": "fps", "frames": "still_frames"}, "qscale", example="mpeg4:q=4"),
    "h264": _Family("H.264 (libx264) video round trip", {"crf": "crf", "bitrate": "bitrate", "fps": "fps", "frames": "still_frames", "preset": "preset"}, "crf", example="h264:crf=23"),
    "c": _Family(f"the paper's C: MPEG-4 (qscale {C_QSCALE})", {"q": "qscale", "qscale": "qscale", "fps": "fps", "frames": "still_frames"}, "qscale", example="c"),
    "c2": _Family(f"the paper's C2: MPEG-4 (qscale {C_QSCALE}) then H.264 (CRF {C2_CRF})", {"q": "qscale", "qscale": "qscale", "crf": "crf", "fps": "fps", "frames": "still_frames"}, example="c2"),
}
_FAMILIES.update({n: _Family((c.__doc__ or "").split("\n")[0].rstrip("."), {key: key}, key, False, (key,) if integer else (), example)
                  for n, (c, key, integer, example) in RESTORATIONS.items()})
#: wrapper name -> description; ``name:<any spec>`` (see the module docstring)
_WRAPPERS = {"bpda": "BPDA: a non-differentiable transform forward, identity backward (e.g. bpda:nlmeans:5)"}
_ALIASES = {"none": "identity", "id": "identity", "gaussian_blur": "blur"}
_SUFFIX = re.compile(r"^(jpeg|diffjpeg|resize|blur)(\d+(?:\.\d*)?)$")
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_RANGE = re.compile(rf"^({_NUMBER})\.\.({_NUMBER})$")


def list_transforms(pattern: str = "*") -> list[str]:
    """Names of the transform families matching a glob ``pattern`` (see the module docstring)."""
    return sorted(n for n in (*_FAMILIES, *_WRAPPERS) if fnmatch.fnmatch(n, pattern))


def describe_transforms() -> dict[str, str]:
    """Family name -> one-line description with an example spec."""
    return dict(sorted({**{n: f"{f.description} (e.g. {f.example})" for n, f in _FAMILIES.items()}, **_WRAPPERS}.items()))


def _number(text: str, key: str, spec: str) -> float | int:
    if not re.fullmatch(_NUMBER, text):
        raise ValueError(f"transform spec {spec!r}: expected a number for {key}, got {text!r}")
    v = float(text)
    return int(v) if v == int(v) and "." not in text and "e" not in text.lower() else v


def _parse(spec: str) -> tuple[str, dict[str, str]]:
    if not isinstance(spec, str):
        raise TypeError(f"transform spec: expected a string such as 'jpeg75', got {type(spec).__name__}")
    text = spec.strip()
    if not text:
        raise ValueError(f"transform spec: expected a name such as {', '.join(list_transforms())}, got an empty string")
    head, _, rest = text.partition(":")
    name = _ALIASES.get(head, head.lower())
    args: list[str] = [a.strip() for a in rest.split(",")] if rest.strip() else []
    if rest and not rest.strip():
        raise ValueError(f"transform spec {spec!r}: nothing after ':'")
    if name not in _FAMILIES:
        m = _SUFFIX.match(name)
        if not m:
            raise ValueError(f"unknown transform {head!r} in spec {spec!r}; expected one of {', '.join(list_transforms())}")
        name = m.group(1)
        args.insert(0, m.group(2))
    fam = _FAMILIES[name]
    out: dict[str, str] = {}
    for i, a in enumerate(args):
        if not a:
            raise ValueError(f"transform spec {spec!r}: empty argument")
        key, eq, value = a.partition("=")
        if not eq:
            if i != 0 or fam.primary is None:
                raise ValueError(f"transform spec {spec!r}: expected key=value, got {a!r} ({name} takes {', '.join(sorted(fam.keys)) or 'no arguments'})")
            key, value = fam.primary, a
        else:
            key = key.strip()
            if key not in fam.keys:
                raise ValueError(f"transform spec {spec!r}: unknown parameter {key!r} for {name}; expected {', '.join(sorted(fam.keys)) or 'no parameters'}")
            key = fam.keys[key]
        value = value.strip()
        if key in out:
            raise ValueError(f"transform spec {spec!r}: {key} given twice")
        out[key] = value
    return name, out


def _values(name: str, args: dict[str, str], spec: str) -> tuple[dict, dict]:
    """Split parsed arguments into fixed values and ranges."""
    fam = _FAMILIES[name]
    fixed, ranges = {}, {}
    for k, v in args.items():
        m = _RANGE.match(v)
        if m:
            if not fam.ranges:
                raise ValueError(f"transform spec {spec!r}: ranges (low..high) are only for jpeg, diffjpeg, resize and blur, got {k}={v}")
            ranges[k] = (float(m.group(1)), float(m.group(2)))
        elif k == "preset":
            fixed[k] = v
        else:
            fixed[k] = _number(v, k, spec)
    return fixed, ranges


def create_transform(spec: str | Transform) -> Transform:
    """Build a transform from a spec string (see the module docstring); a :class:`Transform` is returned as is.

    Raises:
        ValueError: unknown name, unknown parameter, missing or bad value (the message quotes the spec).
    """
    if isinstance(spec, Transform):
        return spec
    if isinstance(spec, str) and spec.strip().partition(":")[0].strip().lower() in _WRAPPERS:
        return _wrapper(spec)
    name, args = _parse(spec)
    fixed, ranges = _values(name, args, spec)
    fam = _FAMILIES[name]
    try:
        if name == "identity":
            return Identity()
        if name in ("jpeg", "diffjpeg", "resize", "blur"):
            cls = {"jpeg": JPEG, "diffjpeg": DiffJPEG, "resize": Resize, "blur": GaussianBlur}[name]
            if fam.primary not in fixed and fam.primary not in ranges:
                raise ValueError(f"missing the {fam.primary}, e.g. {fam.example!r}")
            if ranges:
                lo, hi = ranges[fam.primary]
                cls(**{fam.primary: lo}), cls(**{fam.primary: hi})  # validate both ends
                key = {"quality": "q"}.get(fam.primary)
                text = f"{name}:{key + '=' if key else ''}{lo:g}..{hi:g}"
                return RandomTransform(cls, ranges, text, integer=fam.integer, differentiable=cls.differentiable)
            return cls(**fixed)
        if name in RESTORATIONS:
            cls, key, _, example = RESTORATIONS[name]
            if key not in fixed:
                raise ValueError(f"missing the {key}, e.g. {example!r}")
            return cls(**fixed)
        if name in ("mpeg4", "h264"):
            return VideoCodec(name, **fixed)
        if name == "c":
            return VideoCodec("mpeg4", **{"qscale": C_QSCALE, **fixed})
        # c2: MPEG-4, then H.264
        shared = {k: v for k, v in fixed.items() if k in ("fps", "still_frames")}
        first = VideoCodec("mpeg4", qscale=fixed.get("qscale", C_QSCALE), **shared)
        second = VideoCodec("h264", crf=fixed.get("crf", C2_CRF), **shared)
        extra = "".join(f",{k}={v}" for k, v in (("fps", fixed.get("fps")), ("frames", fixed.get("still_frames"))) if v is not None)
        return Compose([first, second], name=f"c2:q={first.qscale},crf={second.crf}{extra}")
    except (TypeError, ValueError) as e:
        raise ValueError(f"transform spec {spec!r}: {e}") from e


def _wrapper(spec: str) -> Transform:
    """``bpda:<spec>``: the wrapped spec is everything after the first ``:``."""
    head, _, inner = spec.strip().partition(":")
    if not inner.strip():
        raise ValueError(f"transform spec {spec!r}: {head.strip().lower()} wraps another transform's spec, e.g. 'bpda:nlmeans:5'")
    try:
        return BPDA(create_transform(inner.strip()))
    except (TypeError, ValueError) as e:
        raise ValueError(f"transform spec {spec!r}: {e}") from e


__all__ = ["create_transform", "describe_transforms", "list_transforms"]
