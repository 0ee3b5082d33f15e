"""Benchmark configs: a YAML file (or a dict) -> a validated :class:`BenchConfig`.

Every key but ``tables`` has a default; the attack keys, their defaults and their checks are
:class:`~faceshield.pipeline.ProtectConfig`'s (Landmark Breaker's Sec. IV-A5: eps 15, alpha 1, T 20,
lambda 0.5; eps and alpha in 8-bit levels). Unknown keys, tables, methods, extractors and transforms
are refused with a :class:`BenchConfigError` naming where in the file they are::

    name: smoke                      # titles and the default output dir (default: the file's stem)
    out: out/bench/smoke             # output directory, relative to the working directory
    seed: 0                          # ProtectConfig.seed of every protection
    limit: null                      # at most this many images per table (CLI -n)
    max_side: null                   # shrink larger images to this long side first (INTER_AREA)
    images: [sample, {helen_test: 20}, "photos/*.jpg", {video: clip.mp4, frames: 5, tail: 20}]
    extractors: null                 # evaluator columns (default: every registered one available)
    attack: {eps: 15, alpha: 1, steps: 20, decay: 0.5, budget: project, mask: face,
             mask_scale: 1.6, jitter: 9, eot: [], eot_samples: 2, perceptual: false, jitter_mode: fixed,
             smooth: 0, ssim_weight: 0, push: 0, redetect: 0, nme_cap: 0}
    tables:
      table2: {sources: [mtcnn], rows: [base1, base2, lb]}
      table4: {rows: [lb, {label: LB+EOT, method: lb, eot: [default]}, {preset: robust}], transforms: [identity, jpeg75, c]}

A *row* is a method name or a mapping ``{method, preset, label, <any attack key>}``: the run's
``attack`` block, then the preset's settings (:data:`~faceshield.pipeline.PRESETS`), then the row's
keys. The ``attack`` block and the preset only offer values: one that means nothing for the row's
method (``steps`` for ``base1``) is dropped; a row key that means nothing for its method is refused,
and a row's ``push`` / ``nme_cap`` apply to the sources they mean something for. A *source* (what the
perturbation is made on) is a white-box extractor name, a list of them (an ensemble) or ``{all_but: X}``
(every white-box extractor but X and the one running X's network: leave-one-out, X black-box); a table's
rows are made on each of its sources. Tables and their keys (defaults in :data:`TABLE_KEYS`); each
also takes ``images`` (instead of the run's) and, except swap, ``extractors`` (instead of the run's):

* ``table1``: ``sources`` (default: every white-box extractor), ``rows`` ([lb]).
* ``table2``: ``sources`` ([mtcnn]), ``rows`` ([base1, base2, lb]).
* ``table3``: ``sources`` ([mtcnn, fan, [mtcnn, fan]]), ``rows`` ([lb, lb_trans, lb_mix]).
* ``table4``: ``sources`` ([mtcnn]), ``rows`` ([lb, LB+EOT]), ``transforms`` (transform or purifier specs, e.g. ``magdr``,
  [identity, jpeg75, jpeg50, c, c2]), ``clean_baseline`` (true: also the transformed clean image).
* ``ablation``: ``sources`` ([mtcnn]), ``method`` (lb), ``alpha`` ([0.5 .. 1.5]), ``steps``
  ([14, 16, .., 28]); ``extractors`` defaults to the source's own (white-box NME, as Fig. 4).
* ``swap``: ``sources`` ([mtcnn, fan, hrnet, facemesh]), ``rows`` ([base1, base2, lb]),
  ``aligners`` ([mtcnn, fan, hrnet, facemesh, dlib68]), ``swap_model`` (a .pt with its .json
  sidecar; default the shipped one or ``$FACESHIELD_SWAP_MODEL``, the table is skipped with a note
  when there is none), ``identity`` (decoder to render; default the model's last).
"""
from __future__ import annotations

import copy
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faceshield.core.errors import FaceshieldError
from faceshield.models import extractor_info, list_extractors
from faceshield.pipeline import PRESETS, ProtectConfig
from faceshield.pipeline.config import TARGET_SETTINGS, generator_name, unused_setting


class BenchConfigError(FaceshieldError, ValueError):
    """A benchmark config is malformed: the message names the file, the key and what was expected."""


#: Attack settings (CLI units: eps and alpha in 8-bit levels) and their defaults: those of
#: :class:`~faceshield.pipeline.ProtectConfig` (the paper's), every key but method, targets and seed.
ATTACK_DEFAULTS: dict[str, Any] = ProtectConfig.user_defaults()
ROW_KEYS = ("label", "method", "preset", *ATTACK_DEFAULTS)

ALPHA_SWEEP = [0.5, 0.75, 1.0, 1.25, 1.5]  # Fig. 4, step size in 8-bit levels
STEPS_SWEEP = list(range(14, 29, 2))  # Fig. 4, T = 14, 16, ..., 28
ALIGNERS = ["mtcnn", "fan", "hrnet", "facemesh", "dlib68"]

#: Per table: its keys and their defaults (``None`` for sources = every available white-box extractor;
#: for ``extractors`` = the run's evaluators; for ``images`` = the run's images).
TABLE_KEYS: dict[str, dict[str, Any]] = {
    "table1": {"sources": None, "rows": ["lb"], "extractors": None, "images": None},
    "table2": {"sources": ["mtcnn"], "rows": ["base1", "base2", "lb"], "extractors": None, "images": None},
    "table3": {"sources": ["mtcnn", "fan", ["mtcnn", "fan"]], "rows": ["lb", "lb_trans", "lb_mix"], "extractors": None, "images": None},
    "table4": {
        "sources": ["mtcnn"],
        "rows": ["lb", {"label": "LB+EOT", "method": "lb", "eot": ["default"]}],
        "transforms": ["identity", "jpeg75", "jpeg50", "c", "c2"],
        "clean_baseline": True,
        "extractors": None, "images": None,
    },
    "ablation": {"sources": ["mtcnn"], "method": "lb", "alpha": ALPHA_SWEEP, "steps": STEPS_SWEEP, "extractors": None, "images": None},
    "swap": {
        "sources": ["mtcnn", "fan", "hrnet", "facemesh"], "rows": ["base1", "base2", "lb"], "aligners": ALIGNERS,
        "swap_model": None, "identity": None, "images": None,
    },
}
TOP_KEYS = ("name", "description", "out", "seed", "limit", "max_side", "images", "extractors", "attack", "tables")

_PRETTY = {"base1": "Base1 (FGSM)", "fgsm": "Base1 (FGSM)", "base2": "Base2 (I-FGSM)", "ifgsm": "Base2 (I-FGSM)", "bim": "Base2 (I-FGSM)",
           "lb": "LB (MI-FGSM)", "mifgsm": "LB (MI-FGSM)", "lb_trans": "LB_trans (DI-MI-FGSM)", "dimifgsm": "LB_trans (DI-MI-FGSM)",
           "lb_mix": "LB_mix (Base2/LB)", "mixed": "LB_mix (Base2/LB)", "pgd": "PGD"}


# ------------------------------------------------------------------------------------------ values


def _fail(where: str, msg: str) -> BenchConfigError:
    return BenchConfigError(f"{where}: {msg}" if where else msg)


def _keys(value: Any, allowed, where: str) -> dict:
    if not isinstance(value, Mapping):
        raise _fail(where, f"expected a mapping with keys {', '.join(sorted(allowed))}, got {type(value).__name__} {value!r}")
    for k in value:
        if k not in allowed:
            raise _fail(where, f"unknown key {k!r}; expected one of {', '.join(sorted(allowed))}")
    return dict(value)


def _number(v: Any, where: str, *, integer: bool = False, positive: bool = False, minimum: float | None = None) -> float | int:
    kind = "an integer" if integer else "a number"
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or (integer and v != int(v)):
        raise _fail(where, f"expected {kind}, got {v!r}")
    if positive and v <= 0:
        raise _fail(where, f"expected {kind} > 0, got {v!r}")
    if minimum is not None and v < minimum:
        raise _fail(where, f"expected {kind} >= {minimum:g}, got {v!r}")
    return int(v) if integer else float(v)


def _string(v: Any, where: str, choices=None) -> str:
    if not isinstance(v, str) or not v.strip():
        raise _fail(where, f"expected a non-empty string, got {v!r}")
    if choices is not None and v not in choices:
        raise _fail(where, f"expected one of {', '.join(choices)}, got {v!r}")
    return v.strip()


def _list(v: Any, where: str, *, allow_empty: bool = False) -> list:
    if isinstance(v, (str, Mapping)) or not isinstance(v, (list, tuple)):
        raise _fail(where, f"expected a list, got {type(v).__name__} {v!r}")
    if not v and not allow_empty:
        raise _fail(where, "expected a non-empty list, got []")
    return list(v)


def _extractor(name: Any, where: str, *, white_box: bool = False) -> str:
    name = _string(name, where)
    known = list_extractors()
    if name not in known:
        raise _fail(where, f"unknown extractor {name!r}; expected one of {', '.join(known)}")
    if white_box and name not in list_extractors(white_box=True):
        raise _fail(where, f"{name!r} is a black-box extractor: it cannot be attacked, only evaluated (list it under extractors); white-box ones: "
                    + ", ".join(list_extractors(white_box=True)))
    return name


def _method(name: Any, where: str) -> str:
    from faceshield.attacks import attack_names
    from faceshield.models import list_targets

    name = _string(name, where)
    gen = generator_name(name)
    if gen is not None:
        if gen not in list_targets(family="generator"):
            raise _fail(where, f"unknown generator {gen!r}; expected one of {', '.join(list_targets(family='generator'))}")
        return name.lower()
    if name.lower() not in attack_names():
        raise _fail(where, f"unknown method {name!r}; expected one of {', '.join(attack_names())}")
    return name.lower()


def _attack_value(key: str, v: Any, where: str) -> Any:
    """One attack setting checked by :class:`ProtectConfig`'s schema, in CLI units (lists stay lists)."""
    try:
        v = ProtectConfig.check_user(key, v, where)
    except ValueError as e:
        raise BenchConfigError(str(e)) from None
    return list(v) if isinstance(v, tuple) else v


def _attack(value: Any, where: str, base: Mapping[str, Any] | None = None) -> dict:
    out = dict(ATTACK_DEFAULTS if base is None else base)
    for k, v in _keys(value or {}, ATTACK_DEFAULTS, where).items():
        out[k] = _attack_value(k, v, f"{where}.{k}")
    return out


# ------------------------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class RowSpec:
    """One perturbation of a table: an attack method, optionally a preset, and settings that differ.

    Attributes:
        label: what the table calls it (default: the method's paper name or the preset, plus the overrides).
        method: an attack name (``base1``, ``base2``, ``lb``, ``lb_trans``, ``lb_mix``, ``pgd``, ...).
        overrides: attack keys (CLI units) that replace the preset's and the run's ``attack`` values;
            one that means nothing for the method is refused, and ``push`` / ``nme_cap`` apply to the
            table's sources they mean something for (refused when that is none of them).
        preset: a name of :data:`~faceshield.pipeline.PRESETS` whose settings come between the run's
            ``attack`` block and ``overrides`` (None: none).
    """

    label: str
    method: str
    overrides: dict = field(default_factory=dict)
    preset: str | None = None

    @property
    def generator(self) -> str | None:
        """The trained generator this row runs (``method: generator[:NAME]``), None for an attack."""
        return generator_name(self.method)

    def protect_config(self, attack: Mapping[str, Any], targets, seed: int, **extra: Any) -> ProtectConfig:
        """The :class:`ProtectConfig` of this row made on ``targets``: ``attack`` (the run's shared
        block, dropped where it means nothing for the method), then the preset, then ``overrides`` and
        ``extra`` (refused where they mean nothing). A generator row ignores ``targets`` (it was
        trained against its own) and the shared ``eps`` (it runs at its own budget unless the row
        gives one)."""
        given = {**self.overrides, **extra}
        if self.generator:
            base = {k: v for k, v in attack.items() if k != "eps"}
            return ProtectConfig.from_user({**given, "method": self.method, "seed": seed}, preset=self.preset, base=base)
        # a row serves every source of its table: its push / nme_cap are for the sources they mean something for
        given = {k: v for k, v in given.items() if k not in TARGET_SETTINGS or not unused_setting(k, targets=targets)}
        return ProtectConfig.from_user({**given, "method": self.method, "targets": tuple(targets), "seed": seed}, preset=self.preset, base=attack)

    def to_dict(self) -> dict | str:
        auto = default_label(self.method, self.overrides, self.preset)
        if not self.overrides and self.preset is None and self.label == auto:
            return self.method
        return {"label": self.label, "method": self.method, **({"preset": self.preset} if self.preset else {}), **self.overrides}


def row_pairs(rows, sources) -> list[tuple[tuple[str, ...], RowSpec]]:
    """``(made on, row)`` in table order: every attack row on every source; a generator row once,
    made on what it was trained against."""
    from faceshield.models import target_info

    out = []
    for i, src in enumerate(sources):
        for row in rows:
            if row.generator is None:
                out.append((tuple(src), row))
            elif i == 0:
                out.append((tuple(target_info(row.generator).trained_against), row))
    return out


def default_label(method: str, overrides: Mapping[str, Any], preset: str | None = None) -> str:
    gen = generator_name(method)
    if gen is not None:
        return f"generator {gen}" + ("" if not overrides else " [" + ", ".join(f"{k}={v}" for k, v in overrides.items()) + "]")
    label = _PRETTY.get(method, method) if preset is None else f"{preset} preset" + ("" if method == "lb" else f" ({_PRETTY.get(method, method)})")
    extra = {k: v for k, v in overrides.items() if k != "eot"}
    if overrides.get("eot"):
        label += " + EOT"
    if extra:
        label += " [" + ", ".join(f"{k}={v}" for k, v in extra.items()) + "]"
    return label


def _row(value: Any, where: str) -> RowSpec:
    if isinstance(value, str):
        m = _method(value, where)
        return RowSpec(default_label(m, {}), m)
    d = _keys(value, ROW_KEYS, where)
    preset = d.pop("preset", None)
    if preset is not None:
        preset = _string(preset, f"{where}.preset", tuple(PRESETS))
    if "method" not in d and preset is None:
        raise _fail(where, "a row needs a method or a preset, e.g. {method: lb, label: LB+EOT, eot: [default]} or {preset: quality}")
    m = _method(d.pop("method", "lb"), f"{where}.method")
    label = d.pop("label", None)
    overrides = {k: _attack_value(k, v, f"{where}.{k}") for k, v in d.items()}
    return RowSpec(default_label(m, overrides, preset) if label is None else _string(str(label), f"{where}.label"), m, overrides, preset)


def _rows(value: Any, where: str) -> list[RowSpec]:
    rows = [_row(r, f"{where}[{i}]") for i, r in enumerate(_list(value, where))]
    labels = [r.label for r in rows]
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise _fail(where, f"two rows are labelled {dup[0]!r}; give them distinct labels")
    return rows


def _sources(value: Any, where: str) -> list[tuple[str, ...]] | None:
    if value is None:
        return None
    out = []
    for i, s in enumerate(_list(value, where)):
        w = f"{where}[{i}]"
        if isinstance(s, Mapping):
            t = _leave_one_out(s, w)
        else:
            names = [s] if isinstance(s, str) else _list(s, w)
            t = tuple(_extractor(n, f"{w}" if isinstance(s, str) else f"{w}[{j}]", white_box=True) for j, n in enumerate(names))
        if len(set(t)) != len(t):
            raise _fail(w, f"an extractor appears twice in {list(t)}")
        if t in out:
            raise _fail(w, f"source {'+'.join(t)} is listed twice")
        out.append(t)
    return out


def _leave_one_out(value: Mapping, where: str) -> tuple[str, ...]:
    """``{all_but: X}``: every white-box landmark extractor but ``X`` and the one that runs the same
    network (``facemesh`` for ``facemesh_tflite``): an ensemble for which ``X`` is black-box."""
    x = _extractor(_keys(value, ("all_but",), where).get("all_but"), f"{where}.all_but")
    same = extractor_info(x).same_network_as
    t = tuple(n for n in list_extractors(white_box=True) if n not in (x, same))
    if not t:
        raise _fail(where, f"no white-box extractor is left without {x!r}")
    return t


def source_name(targets) -> str:
    """``("mtcnn", "fan")`` -> ``"mtcnn+fan"``."""
    return "+".join(targets)


# ----------------------------------------------------------------------------------------- images


def data_root() -> Path:
    """The development data root: ``$FACESHIELD_DATA``, else ``<repo>/../shared/data``."""
    env = os.environ.get("FACESHIELD_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[3].parent / "shared" / "data"


def expand_path(path: str) -> Path:
    """``$FACESHIELD_DATA`` (also when unset: see :func:`data_root`), other variables and ``~``."""
    root = str(data_root())
    path = path.replace("${FACESHIELD_DATA}", root).replace("$FACESHIELD_DATA", root)
    return Path(os.path.expanduser(os.path.expandvars(path)))


@dataclass(frozen=True)
class ImageSource:
    """Where images come from.

    Attributes:
        kind: ``sample`` (the built-in astronaut), ``helen_test`` (the first ``count`` images of
            ``$FACESHIELD_DATA/landmarks68/test``; skipped with a note when absent), ``path`` (an
            image file, a directory of images or a glob; ``count`` caps it) or ``video`` (``count``
            frames evenly spread over the last ``tail`` frames of a video).
        path: file, directory, glob or video (``$FACESHIELD_DATA``, other variables and ``~`` expanded;
            relative to the working directory). A missing path is an error, except under
            ``$FACESHIELD_DATA`` (development data: skipped with a note).
        count, tail: see ``kind``.
    """

    kind: str
    path: str | None = None
    count: int | None = None
    tail: int | None = None

    def to_dict(self) -> Any:
        if self.kind == "sample":
            return "sample"
        if self.kind == "helen_test":
            return {"helen_test": self.count}
        if self.kind == "path":
            return self.path if self.count is None else {"path": self.path, "limit": self.count}
        return {"video": self.path, "frames": self.count, "tail": self.tail}

    def describe(self) -> str:
        d = self.to_dict()
        return d if isinstance(d, str) else ", ".join(f"{k}: {v}" for k, v in d.items())


def _image_source(value: Any, where: str) -> ImageSource:
    if isinstance(value, str):
        if value == "sample":
            return ImageSource("sample")
        if value == "helen_test":
            raise _fail(where, "expected {helen_test: N} with the number of HELEN test images, got 'helen_test'")
        return ImageSource("path", _string(value, where))
    if isinstance(value, Mapping) and "helen_test" in value:
        d = _keys(value, {"helen_test"}, where)
        return ImageSource("helen_test", count=_number(d["helen_test"], f"{where}.helen_test", integer=True, minimum=0))
    if isinstance(value, Mapping) and "video" in value:
        d = _keys(value, {"video", "frames", "tail"}, where)
        return ImageSource("video", _string(d["video"], f"{where}.video"), _number(d.get("frames", 5), f"{where}.frames", integer=True, minimum=1),
                           _number(d.get("tail", 20), f"{where}.tail", integer=True, minimum=1))
    if isinstance(value, Mapping) and "path" in value:
        d = _keys(value, {"path", "limit"}, where)
        lim = d.get("limit")
        return ImageSource("path", _string(d["path"], f"{where}.path"), None if lim is None else _number(lim, f"{where}.limit", integer=True, minimum=1))
    raise _fail(where, f"expected 'sample', {{helen_test: N}}, a path / directory / glob, {{path: P, limit: N}} or {{video: V, frames: K, tail: M}}, got {value!r}")


def _images(value: Any, where: str) -> list[ImageSource]:
    return [_image_source(v, f"{where}[{i}]") for i, v in enumerate(_list(value, where))]


# ----------------------------------------------------------------------------------------- tables


def _transforms(value: Any, where: str) -> list[str]:
    from faceshield.defenses.purifiers import create_purifier

    out = []
    for i, s in enumerate(_list(value, where)):
        w = f"{where}[{i}]"
        spec = _string(s, w)
        try:
            create_purifier(spec)
        except (TypeError, ValueError) as e:
            raise _fail(w, str(e)) from None
        if spec in out:
            raise _fail(w, f"transform {spec!r} is listed twice")
        out.append(spec)
    return out


def _table(name: str, value: Any, where: str) -> dict:
    spec = TABLE_KEYS[name]
    given = {} if value is None or value is True else _keys(value, spec, where)
    out: dict[str, Any] = {}
    for k, default in spec.items():
        v = copy.deepcopy(given.get(k, default))
        w = f"{where}.{k}"
        if k == "sources":
            out[k] = _sources(v, w)
        elif k == "rows":
            out[k] = _rows(v, w)
        elif k in ("extractors", "aligners"):
            out[k] = None if v is None else _unique([_extractor(e, f"{w}[{i}]") for i, e in enumerate(_list(v, w))], w)
        elif k == "images":
            out[k] = None if v is None else _images(v, w)
        elif k == "transforms":
            out[k] = _transforms(v, w)
        elif k == "clean_baseline":
            if not isinstance(v, bool):
                raise _fail(w, f"expected true or false, got {v!r}")
            out[k] = v
        elif k == "method":
            out[k] = _method(v, w)
        elif k == "alpha":
            out[k] = [_number(x, f"{w}[{i}]", positive=True) for i, x in enumerate(_list(v, w, allow_empty=True))]
        elif k == "steps":
            out[k] = [_number(x, f"{w}[{i}]", integer=True, minimum=1) for i, x in enumerate(_list(v, w, allow_empty=True))]
        elif k == "swap_model":
            out[k] = None if v is None else _string(str(v), w)
            if out[k] is not None and not expand_path(out[k]).is_file():
                raise _fail(w, f"swap model {out[k]!r} not found (expected a .pt file with its .json sidecar; relative paths are from the working directory)")
        elif k == "identity":
            out[k] = None if v is None else _string(v, w)
        else:  # pragma: no cover - every key of TABLE_KEYS is handled above
            raise AssertionError(k)
    if name == "ablation" and not out["alpha"] and not out["steps"]:
        raise _fail(where, "expected at least one value to sweep in alpha or steps")
    return out


def _unique(names: list[str], where: str) -> list[str]:
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise _fail(where, f"{dup[0]!r} is listed twice")
    return names


# ----------------------------------------------------------------------------------------- config


@dataclass
class BenchConfig:
    """A validated benchmark config (see the module docstring for the file format).

    Attributes:
        name: run name (titles; default output ``out/bench/<name>``).
        out: output directory (the CLI's ``--out`` wins).
        seed: seed of every protection (and of torch / numpy at the start of the run).
        limit: at most this many images per table (None: all).
        max_side: images whose long side is larger are shrunk to it before anything else (None: keep).
        images: the run's image sources.
        extractors: evaluator columns (None: every registered extractor whose weights are available).
        attack: attack settings in CLI units (eps / alpha in 8-bit levels).
        tables: table name -> its validated options, in run order.
        path: the config file, if any; text: its content.
    """

    name: str = "bench"
    description: str = ""
    out: str | None = None
    seed: int = 0
    limit: int | None = None
    max_side: int | None = None
    images: list[ImageSource] = field(default_factory=lambda: [ImageSource("sample")])
    extractors: list[str] | None = None
    attack: dict = field(default_factory=lambda: dict(ATTACK_DEFAULTS))
    tables: dict[str, dict] = field(default_factory=dict)
    path: Path | None = None
    text: str | None = None

    @property
    def out_dir(self) -> Path:
        return Path(os.path.expanduser(self.out)) if self.out else Path("out") / "bench" / self.name

    def to_dict(self) -> dict:
        """The resolved config (defaults filled in) in the file format: loading it gives the same run."""
        def table(opts: dict) -> dict:
            d = {}
            for k, v in opts.items():
                if k == "sources":
                    d[k] = None if v is None else [t[0] if len(t) == 1 else list(t) for t in v]
                elif k == "rows":
                    d[k] = [r.to_dict() for r in v]
                elif k == "images":
                    d[k] = None if v is None else [s.to_dict() for s in v]
                else:
                    d[k] = copy.deepcopy(v)
            return d

        return {
            "name": self.name, "description": self.description, "out": self.out, "seed": self.seed, "limit": self.limit, "max_side": self.max_side,
            "images": [s.to_dict() for s in self.images], "extractors": self.extractors, "attack": dict(self.attack),
            "tables": {n: table(o) for n, o in self.tables.items()},
        }

    def table_inputs(self, name: str, limit: int | None) -> dict:
        """Everything that decides table ``name``'s numbers (seed, limit, images, extractors,
        attack, the table's options), as saved in its JSON: a table whose saved inputs equal these
        can be reused by ``faceshield bench --resume`` instead of run again."""
        d = self.to_dict()
        return {"seed": d["seed"], "limit": limit, "max_side": d["max_side"], "images": d["images"],
                "extractors": d["extractors"], "attack": d["attack"], "table": d["tables"][name]}


def parse_config(data: Any, *, path: Path | None = None, text: str | None = None) -> BenchConfig:
    """Validate a config mapping (what ``yaml.safe_load`` gives) into a :class:`BenchConfig`.

    Raises:
        BenchConfigError: unknown or malformed key, table, method, extractor or transform.
    """
    prefix = f"{path}" if path else "config"
    if data is None:
        data = {}
    d = _keys(data, TOP_KEYS, prefix)
    try:
        cfg = BenchConfig(path=path, text=text)
        cfg.name = _string(str(d.get("name", path.stem if path else "bench")), "name")
        cfg.description = str(d.get("description") or "")
        cfg.out = None if d.get("out") is None else _string(str(d["out"]), "out")
        cfg.seed = _number(d.get("seed", 0), "seed", integer=True, minimum=0)
        cfg.limit = None if d.get("limit") is None else _number(d["limit"], "limit", integer=True, minimum=1)
        cfg.max_side = None if d.get("max_side") is None else _number(d["max_side"], "max_side", integer=True, minimum=16)
        cfg.images = _images(d.get("images", ["sample"]), "images")
        ex = d.get("extractors")
        cfg.extractors = None if ex is None else _unique([_extractor(e, f"extractors[{i}]") for i, e in enumerate(_list(ex, "extractors"))], "extractors")
        cfg.attack = _attack(d.get("attack"), "attack")
        tables = d.get("tables")
        if tables is None:
            raise _fail("tables", f"expected a mapping of tables to run; expected keys among {', '.join(TABLE_KEYS)}")
        if isinstance(tables, Mapping):
            for t in tables:
                if t not in TABLE_KEYS:
                    raise _fail("tables", f"unknown table {t!r}; expected one of {', '.join(TABLE_KEYS)}")
        tables = _keys(tables, TABLE_KEYS, "tables")
        if not tables:
            raise _fail("tables", f"no table to run; expected one or more of {', '.join(TABLE_KEYS)}")
        cfg.tables = {n: _table(n, v, f"tables.{n}") for n, v in tables.items()}
        # build every ProtectConfig once so that bad combinations (a setting the method does not use) fail now, not an hour in
        for n, opts in cfg.tables.items():
            sources = opts.get("sources") or [(t,) for t in list_extractors(white_box=True)]
            for i, r in enumerate(opts.get("rows", [])):
                for k in TARGET_SETTINGS:
                    if r.overrides.get(k) and all(unused_setting(k, targets=src) for src in sources):
                        raise _fail(f"tables.{n}.rows[{i}].{k}", unused_setting(k, targets=[t for src in sources for t in src]))
                try:
                    for src in sources:
                        r.protect_config(cfg.attack, src, cfg.seed)
                except (TypeError, ValueError) as e:
                    raise _fail(f"tables.{n}.rows[{i}]", str(e)) from None
        return cfg
    except BenchConfigError as e:
        if prefix == "config" or str(e).startswith(prefix):
            raise
        raise BenchConfigError(f"{prefix}: {e}") from None


def load_config(source: str | os.PathLike | Mapping) -> BenchConfig:
    """Read and validate a YAML config file (or validate a mapping).

    Raises:
        BenchConfigError: the file is missing or not YAML, or the config is malformed.
    """
    if isinstance(source, Mapping):
        return parse_config(dict(source))
    import yaml

    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BenchConfigError(f"{path}: config file not found") from None
    except (IsADirectoryError, UnicodeDecodeError, OSError) as e:
        raise BenchConfigError(f"{path}: cannot read the config ({e.__class__.__name__}: {e})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise BenchConfigError(f"{path}: not valid YAML: {' '.join(str(e).split())}") from None
    return parse_config(data, path=path, text=text)
