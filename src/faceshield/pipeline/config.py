"""The settings of a protection run, checked once: :class:`ProtectConfig` and :data:`PRESETS`.

One schema serves every surface. Each field of :class:`ProtectConfig` carries its check (a
:class:`Setting`: type, range, choices, and whether people speak 8-bit levels for it) in its
dataclass metadata:

* the Python API takes [0, 1] units: ``ProtectConfig(eps=15/255)`` checks every field when it is
  built and raises ``ValueError`` naming the field;
* the CLI (``--eps 15``) and bench configs (``attack: {eps: 15}``) speak 8-bit levels and go through
  :meth:`ProtectConfig.from_user`, which checks each value in the units the user typed and names it as
  the user wrote it (``--eps: expected 1..255 levels, got -3``), before any model is loaded;
* the bench's attack keys and their defaults are :meth:`ProtectConfig.user_defaults`.

A setting that means nothing for the chosen optimiser or targets (``steps`` for FGSM, ``decay``
without momentum, ``push`` without a heat-map target, ``eot_samples`` without ``eot`` ...) is
refused when it is given a value other than its default, never silently ignored; presets and a
bench's shared ``attack`` block only *offer* values, which are dropped where they mean nothing.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

MASK_MODES = ("face", "none")
LEVELS = 255  # 8-bit levels per [0, 1] unit


def _choices_method() -> list[str]:
    from faceshield.attacks import ALIASES, ATTACKS
    from faceshield.models import list_targets

    gens = [f"generator:{n}" for n in list_targets(family="generator")]
    return [*ALIASES, *(k for k in sorted(ATTACKS) if k not in ALIASES), *(["generator", *gens] if gens else [])]  # the paper's names first


#: the generator ``--method generator`` stands for.
DEFAULT_GENERATOR = "combined"
#: the settings a perturbation generator honours at protection time (one forward pass: no loss,
#: steps or step size; ``eps`` at most the budget it was trained for scales its output).
GENERATOR_SETTINGS = ("method", "eps", "mask", "mask_scale", "jnd", "chroma", "detector", "seed")


def generator_name(method: str) -> str | None:
    """The generator a method names (``generator`` -> :data:`DEFAULT_GENERATOR`,
    ``generator:NAME`` -> ``NAME``), None for an iterative attack."""
    m = str(method).strip().lower()
    if m == "generator":
        return DEFAULT_GENERATOR
    return m.split(":", 1)[1] if m.startswith("generator:") else None


def _choices_budget() -> tuple[str, ...]:
    from faceshield.attacks.base import BUDGET_RULES

    return BUDGET_RULES


def _choices_jitter() -> tuple[str, ...]:
    from faceshield.attacks.losses import JITTER_MODES

    return JITTER_MODES


def _num(v: float) -> str:
    return f"{v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else repr(v)


@dataclass(frozen=True)
class Setting:
    """How one field of :class:`ProtectConfig` is checked.

    Attributes:
        kind: ``float``, ``int``, ``bool``, ``choice`` (one string of ``choices``), ``names`` (a
            non-empty tuple of white-box extractor names) or ``specs`` (a tuple of EOT transform specs).
        low, high: inclusive range of numbers, in the user's units (8-bit levels when ``levels``).
        above: ``low`` is exclusive (``> low``).
        choices: allowed strings, or a function returning them (looked up when checked).
        levels: [0, 1] in the API, 8-bit levels for people (``eps``, ``alpha``).
        unit: what the number is, appended to the range in messages (``" pixels (...)"``).
    """

    kind: str
    low: float | None = None
    high: float | None = None
    above: bool = False
    choices: Sequence[str] | Callable[[], Sequence[str]] | None = None
    levels: bool = False
    unit: str = ""

    def _range(self, scale: float, integer: bool) -> str:
        """What the range looks like in the user's units: ``1..255 levels``, ``an integer >= 1``."""
        def show(v: float | None) -> str | None:
            if v is None:
                return None
            if scale == 1:
                return _num(v)
            return "1/255" if v == 1 else ("1" if v == LEVELS else f"{v / scale:.4g}")

        lo, hi = show(self.low), show(self.high)
        unit = (" levels" if scale == 1 else " ([0, 1] units: 8-bit levels / 255)") if self.levels else self.unit
        word = "an integer" if integer else "a number"
        if hi is not None and lo is not None:
            return f"{word} in ({lo}, {hi}]{unit}" if self.above else f"{'an integer in ' if integer else ''}{lo}..{hi}{unit}"
        return f"{word} {'>' if self.above else '>='} {lo}{unit}"

    def check(self, value: Any, where: str, *, levels: bool = False) -> Any:
        """``value`` checked and normalised (floats as float, tuples as tuples), in the same units.

        Args:
            value: the value as given.
            where: how the user named it (``eps``, ``--eps``, ``attack.eps``), for the message.
            levels: the value is in 8-bit levels (CLI, bench), not [0, 1] units (API).

        Raises:
            ValueError: ``"<where>: expected <what>, got <value>"``.
        """
        def fail(what: str) -> ValueError:
            return ValueError(f"{where}: expected {what}, got {_num(value)}")

        if self.kind in ("float", "int"):
            integer = self.kind == "int"
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or (integer and value != int(value)):
                raise fail("an integer" if integer else "a number")
            scale = 1 if (levels or not self.levels) else LEVELS
            v = value * scale if scale != 1 else value
            tol = 1e-9 * max(1.0, abs(v))
            lo_bad = self.low is not None and (v <= self.low + tol if self.above else v < self.low - tol)
            if lo_bad or (self.high is not None and v > self.high + tol):
                raise fail(self._range(scale, integer))
            return int(value) if integer else float(value)
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise fail("true or false")
            return value
        choices = self.choices() if callable(self.choices) else self.choices
        if self.kind == "choice":
            if not isinstance(value, str) or value.strip().lower() not in choices:
                raise fail(f"one of {', '.join(choices)}")
            return value.strip().lower()
        items = (value,) if isinstance(value, str) else value
        if self.kind == "domains" and isinstance(items, (list, tuple)) and not items:
            return ()
        if not isinstance(items, (list, tuple)) or not all(isinstance(s, str) and s.strip() for s in items):
            raise fail("a list of names" if self.kind == "names" else "a list of transform specs")
        items = tuple(s.strip() for s in items)
        if self.kind == "names":
            return _check_targets(items, where)
        if self.kind == "domains":
            return _check_domains(items, where)
        if self.kind == "specs":
            return _check_eot(items, where, expand=not levels)
        raise AssertionError(self.kind)  # pragma: no cover


def _check_targets(names: tuple[str, ...], where: str) -> tuple[str, ...]:
    from faceshield.models import list_targets, target_info

    if not names:
        raise ValueError(f"{where}: expected at least one target, got none")
    known, white = list_targets(), list_targets(white_box=True)
    for n in names:
        if n not in known:
            raise ValueError(f"{where}: unknown target {n!r}; expected white-box ones among {', '.join(white)}")
        if n not in white and target_info(n).family == "generator":
            raise ValueError(f"{where}: {n!r} is a perturbation generator: it protects, it is not attacked; use method generator:{n}")
        if n not in white:
            raise ValueError(f"{where}: {n!r} is a black-box extractor: it cannot be attacked, only evaluated (transfer); white-box ones: {', '.join(white)}")
    if len(set(names)) != len(names):
        raise ValueError(f"{where}: a target appears twice in {', '.join(names)}")
    families = {target_info(n).family for n in names}
    if "detector" in families and "manipulator" not in families:
        raise ValueError(f"{where}: a detector target scores a manipulator's edits; add a manipulator target (e.g. stargan) to {', '.join(names)}")
    return names


def _check_domains(domains: tuple[str, ...], where: str) -> tuple[str, ...]:
    from faceshield.models import list_targets, target_info

    known = sorted({d for n in list_targets(family="manipulator") for d in target_info(n).domains})
    for d in domains:
        if d not in known:
            raise ValueError(f"{where}: unknown domain {d!r}; expected among {', '.join(known)}")
    if len(set(domains)) != len(domains):
        raise ValueError(f"{where}: a domain appears twice in {', '.join(domains)}")
    return domains


def _choices_detector() -> list[str]:
    from faceshield.models import list_extractors

    return list_extractors()


def _check_eot(specs: tuple[str, ...], where: str, *, expand: bool) -> tuple[str, ...]:
    from faceshield.attacks import EOT_DEFAULT, eot_pool

    full = tuple(s for e in specs for s in (EOT_DEFAULT if e == "default" else (e,)))
    if not full:
        return ()
    try:
        pool = eot_pool(full)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: {e}") from None
    return tuple(t.spec for t in pool) if expand else specs


def _field(default: Any, kind: str, **kw: Any):
    return field(default=default, metadata={"setting": Setting(kind, **kw)})


@dataclass(frozen=True)
class ProtectConfig:
    """Settings of a protection run, checked when built. Budgets in [0, 1] units (``eps=15/255`` is
    the paper's 15 levels); :meth:`from_user` takes 8-bit levels.

    Attributes:
        method: ``lb`` (MI-FGSM, Landmark Breaker), ``base1`` (FGSM), ``base2`` (I-FGSM), ``pgd``,
            ``lb_trans`` (MI-FGSM with input diversity), ``lb_mix`` (alternating Base2 / LB), ``cw``
            (Carlini-Wagner objective with Adam inside the eps-box); ``generator`` or
            ``generator:NAME``: a trained perturbation generator, one forward pass (it honours only
            :data:`GENERATOR_SETTINGS`; ``eps`` at most its trained budget scales its output).
        targets: white-box extractors attacked together (their losses are summed).
        eps: L_inf budget, 1/255..1 (Landmark Breaker: 15/255).
        alpha: step size (1/255); not for ``base1``, whose one step is ``eps``.
        steps: iterations T (20); not for ``base1``.
        patience: stop early once the loss has plateaued (its best of the last ``patience`` steps
            improved by less than 2 % of the improvement so far; 0 = off, all ``steps`` run); not
            for ``base1`` and ``cw``.
        decay: momentum decay lambda (0.5); momentum attacks only (``lb``, ``lb_trans``, ``lb_mix``).
        budget: ``project`` (clip to the eps-ball every step) or ``paper`` (Alg. 1's stopping rule);
            not for ``base1`` and ``pgd``, which always project.
        mask: ``face`` perturbs only the face regions (boxes enlarged by ``mask_scale``), ``none`` lets
            the attack touch whatever its gradients reach.
        mask_scale: face-box enlargement of the ``face`` mask (1.6).
        jitter: box-jitter copies per face (robustness to where the real detector puts the box).
        jitter_mode: ``fixed`` (a fixed pattern of shifted / scaled boxes) or ``random`` (fresh
            random boxes at every step, an expectation over boxes; one extra clean forward pass per
            step): see :mod:`faceshield.attacks.losses`.
        seed: random seed (PGD's random start, EOT and input-diversity draws); same seed -> identical bytes.
        eot: expectation over transformations: differentiable transform specs the loss is averaged
            over (e.g. ``("diffjpeg:q=40..90", "identity")``; ``("default",)`` means
            :data:`~faceshield.attacks.EOT_DEFAULT`); empty (default) = off.
        eot_samples: transforms drawn per iteration when ``eot`` is on (2: on the astronaut sample
            2, 4 and 8 samples gave the same NME after JPEG Q50; momentum averages over iterations too).
        perceptual: scale the budget pixel by pixel with local texture
            (:func:`~faceshield.attacks.budget.texture_budget`: flat skin gets a third of ``eps``,
            edges and hair the full ``eps``).
        jnd: keep every pixel within its just-noticeable difference
            (:func:`~faceshield.attacks.budget.jnd_budget`: luminance adaptation and texture masking;
            flat mid-grey skin about 3 levels, edges and hair up to ``eps``).
        chroma: fraction of the perturbation's colour kept, the rest moved into luminance (1 = plain
            RGB; 0 = a grey perturbation). A grey image (R = G = B) always gets a grey perturbation.
        smooth: Gaussian sigma (pixels, 0..20) the perturbation is blurred with inside the attack (0 =
            off): see :mod:`faceshield.attacks.base`.
        ssim_weight: weight ``beta`` of ``1 - SSIM`` (over the protected region) added to the
            attack's loss (0 = off).
        delta_e_weight: weight of the mean S-CIELAB Delta E (over the protected region; about 1 at a
            just-noticeable colour difference) added to the attack's loss (0 = off;
            :func:`~faceshield.attacks.budget.delta_e_penalty`).
        push: heat-map targets only: weight of the push term added to Eq. 1 (0 = off, the paper's
            loss; :func:`~faceshield.attacks.losses.heatmap_push`).
        redetect: every ``redetect`` steps, run each target's own detector on the current protected
            image and add the boxes it now weighs for each face to the boxes attacked (0 = off; see
            :class:`~faceshield.attacks.losses.LandmarkDisplacementLoss`).
        nme_cap: regression targets only (MTCNN, FaceMesh): count each attacked box's landmark
            displacement up to this NME (0 = off).
        hide: targets with a face score only (MTCNN, the RetinaFace family): weight of the term that
            pushes the detector's face logit below the pipeline's threshold (0 = off; a lost face is
            protected; :class:`~faceshield.attacks.losses.LandmarkDisplacementLoss`).
        feature_weight: targets with features only (the RetinaFace family): weight of the relative
            distortion of their early features around the face added to the loss (0 = off; for
            transfer to CNN detectors never seen: :class:`~faceshield.attacks.losses.FeatureDistortionLoss`).
        detector: manipulator targets and generators only: the landmark extractor that finds and
            aligns the faces a manipulator edits (the forger's face detector; ``mtcnn``), or that a
            generator's crops are taken from.
        domains: manipulator targets only: the conditions disrupted (empty = all of each
            manipulator's domains, Ruiz et al.'s class-transferable attack).
        domain_mode: manipulator targets only: ``all`` sums the disruption over the domains every
            step; ``random`` draws one domain per face per step.

    Raises:
        ValueError: a field out of range or of the wrong type, or a non-default value for a setting
            the method or targets do not use; the message names the field and what was expected.
    """

    method: str = _field("lb", "choice", choices=_choices_method)
    targets: tuple[str, ...] = _field(("mtcnn",), "names")
    eps: float = _field(15 / 255, "float", low=1, high=LEVELS, levels=True)
    alpha: float = _field(1 / 255, "float", low=0, high=LEVELS, above=True, levels=True)
    steps: int = _field(20, "int", low=1, high=100_000)
    patience: int = _field(0, "int", low=0, high=100_000)
    decay: float = _field(0.5, "float", low=0)
    budget: str = _field("project", "choice", choices=_choices_budget)
    mask: str = _field("face", "choice", choices=MASK_MODES)
    mask_scale: float = _field(1.6, "float", low=0, high=10, above=True)
    jitter: int = _field(9, "int", low=1, high=1000)
    jitter_mode: str = _field("fixed", "choice", choices=_choices_jitter)
    seed: int = _field(0, "int", low=0)
    eot: tuple[str, ...] = _field((), "specs")
    eot_samples: int = _field(2, "int", low=1, high=1000)
    perceptual: bool = _field(False, "bool")
    jnd: bool = _field(False, "bool")
    chroma: float = _field(1.0, "float", low=0, high=1, unit=" (the fraction of the perturbation's colour kept; 0 = grey)")
    smooth: float = _field(0.0, "float", low=0, high=20, unit=" pixels (a Gaussian sigma; 0 = off)")
    ssim_weight: float = _field(0.0, "float", low=0)
    delta_e_weight: float = _field(0.0, "float", low=0)
    push: float = _field(0.0, "float", low=0)
    redetect: int = _field(0, "int", low=0)
    nme_cap: float = _field(0.0, "float", low=0)
    hide: float = _field(0.0, "float", low=0)
    feature_weight: float = _field(0.0, "float", low=0)
    detector: str = _field("mtcnn", "choice", choices=_choices_detector)
    domains: tuple[str, ...] = _field((), "domains")
    domain_mode: str = _field("all", "choice", choices=("all", "random"))

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, f.metadata["setting"].check(getattr(self, f.name), f.name))
        for f in fields(self):
            why = self.unused(f.name)
            if why and getattr(self, f.name) != f.default:
                raise _refusal(f, f.name, why)

    # -- what means something -----------------------------------------------------------------
    def unused(self, name: str) -> str | None:
        """Why setting ``name`` means nothing with this config's method and targets (None: it is used)."""
        return _unused(name, self.method, self.targets, self.eot, self.mask)

    # -- construction from user input --------------------------------------------------------------
    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "ProtectConfig":
        """The settings of :data:`PRESETS` ``name`` ([0, 1] units), with ``overrides`` (any field)
        on top. A preset value that means nothing for the method and targets chosen is dropped (e.g.
        ``quality``'s ``push`` on MTCNN alone); an override that means nothing is refused."""
        if name not in PRESETS:
            raise ValueError(f"preset: expected one of {', '.join(PRESETS)}, got {name!r}")
        return cls._merge(PRESETS[name], overrides)

    @classmethod
    def from_user(cls, given: Mapping[str, Any], *, preset: str | None = None, base: Mapping[str, Any] | None = None,
                  name: Callable[[str], str] = str) -> "ProtectConfig":
        """Build from what a person typed: 8-bit levels for ``eps`` / ``alpha`` (CLI, bench configs).

        Args:
            given: explicit settings (levels): each is checked in these units and named ``name(key)``
                in errors (``--eps: expected 1..255 levels, got -3``); one that means nothing for the
                method and targets is refused.
            preset: a name of :data:`PRESETS` whose values come under ``given``.
            base: shared settings (levels, e.g. a bench config's ``attack`` block) under the preset;
                checked like ``given``, but dropped where they mean nothing for the method.
            name: how the user spells a field (``lambda k: "--" + k.replace("_", "-")`` for the CLI).

        Raises:
            ValueError: the first bad value, in the user's units and words.
        """
        known = {f.name: f for f in fields(cls)}
        if preset is not None and preset not in PRESETS:
            raise ValueError(f"{name('preset')}: expected one of {', '.join(PRESETS)}, got {preset!r}")

        def to_unit(values: Mapping[str, Any]) -> dict:
            out = {}
            for k, v in values.items():
                v = cls.check_user(k, v, name(k))
                out[k] = v / LEVELS if _levels(known[k]) else v
            return out

        return cls._merge({**to_unit(base or {}), **(PRESETS[preset] if preset else {})}, to_unit(given), name)

    @classmethod
    def _merge(cls, offered: Mapping[str, Any], explicit: Mapping[str, Any], name: Callable[[str], str] = str) -> "ProtectConfig":
        """``explicit`` over ``offered`` ([0, 1] units): an offered value that means nothing for the
        merged method, targets, EOT and mask is dropped; an explicit one is refused, named ``name(key)``."""
        known = {f.name: f for f in fields(cls)}
        merged = {**offered, **explicit}
        method, targets, eot, mask = (merged.get(k, known[k].default) for k in ("method", "targets", "eot", "mask"))
        why = {k: _unused(k, method, tuple(targets), _expand(eot), mask) for k in merged}
        for k, v in explicit.items():
            if why[k] and v != known[k].default:
                raise _refusal(known[k], name(k), why[k])
        return cls(**{k: v for k, v in merged.items() if k in explicit or not why[k]})

    @classmethod
    def check_user(cls, key: str, value: Any, where: str) -> Any:
        """One setting as a person typed it (8-bit levels for ``eps`` / ``alpha``), checked and
        normalised in those units (tuples for ``targets`` / ``eot``, ``eot`` not expanded).

        Raises:
            ValueError: ``"<where>: ..."``, unknown key or bad value.
        """
        known = {f.name: f for f in fields(cls)}
        if key not in known:
            raise ValueError(f"{where}: unknown setting; expected one of {', '.join(known)}")
        return known[key].metadata["setting"].check(value, where, levels=True)

    @classmethod
    def user_defaults(cls, exclude: Sequence[str] = ("method", "targets", "seed")) -> dict[str, Any]:
        """Every field's default in the user's units (``eps``: 15.0 levels; tuples as lists): the
        keys and defaults of a bench config's ``attack`` block."""
        return {f.name: _user(f, f.default) for f in fields(cls) if f.name not in exclude}

    def to_dict(self) -> dict:
        """The settings the run used (those meaning nothing for its method and targets left out),
        plus ``eps_levels`` / ``alpha_levels`` in 8-bit levels."""
        d = {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in fields(self) if not self.unused(f.name)}
        d["eps_levels"] = round(self.eps * LEVELS, 4)
        if "alpha" in d:
            d["alpha_levels"] = round(self.alpha * LEVELS, 4)
        return d

    def attack_kwargs(self) -> dict[str, Any]:
        """The optimiser's keyword arguments: the settings it honours
        (:func:`~faceshield.attacks.attack_settings`) that this config holds (DI-MI-FGSM's
        ``ratio_range`` and ``prob`` keep the paper's values)."""
        from faceshield.attacks import attack_settings

        names = {f.name for f in fields(self)}
        return {k: getattr(self, k) for k in attack_settings(self.method) if k in names}


def _refusal(f, where: str, why: str) -> ValueError:
    """The error for a non-default value of a setting that means nothing here (``why``)."""
    return ValueError(f"{where}: {why}; leave it at its default ({_num(_user(f, f.default))}{' levels' if _levels(f) else ''})")


def _levels(f) -> bool:
    return f.metadata["setting"].levels


def _user(f, v: Any) -> Any:
    if _levels(f):
        return round(v * LEVELS, 6)
    return list(v) if isinstance(v, tuple) else v


def _expand(eot: Any) -> tuple:
    return tuple(eot) if not isinstance(eot, str) else (eot,)


_OPTIMISER = {"alpha", "steps", "decay", "budget", "patience"}
#: settings that mean something for some kinds of target only
TARGET_SETTINGS = ("push", "nme_cap", "hide", "feature_weight", "jitter", "jitter_mode", "redetect", "detector", "domains", "domain_mode")
_LANDMARK_ONLY = ("jitter", "jitter_mode", "redetect")
_MANIPULATOR_ONLY = ("detector", "domains", "domain_mode")


def unused_setting(name: str, *, method: str = "lb", targets: Sequence[str] = ("mtcnn",), eot: Sequence[str] = (), mask: str = "face") -> str | None:
    """Why setting ``name`` means nothing with this method, these targets, EOT and mask (a phrase),
    or None when it is used: ``steps`` for ``base1`` (one step of eps), ``decay`` without momentum,
    ``budget`` for ``base1`` / ``pgd``, ``push`` without a heat-map target, ``nme_cap`` without a
    regression target, ``eot_samples`` without ``eot``, ``mask_scale`` with ``mask="none"``."""
    return _unused(name, method, tuple(targets), _expand(eot), mask)


def _unused(name: str, method: str, targets: Sequence[str], eot: Sequence[str], mask: str) -> str | None:
    from faceshield.attacks import attack_settings, canonical_attack

    if generator_name(method) is not None:
        if name == "mask_scale" and mask == "none":
            return "it enlarges the face mask, and mask is none"
        if name not in GENERATOR_SETTINGS:
            return f"method {method} is a trained perturbation generator (one forward pass, its targets fixed by training); it has no {name}"
        return None
    if name in _OPTIMISER:
        try:
            uses = attack_settings(method)
        except ValueError:
            return None  # the method itself is refused by its own check
        if name not in uses:
            adam = "optimises with Adam inside the eps-box"
            cw = canonical_attack(method) == "cw"
            what = {"alpha": adam if cw else "takes one step of eps", "steps": "takes one step of eps", "decay": "has no momentum (decay is for lb, lb_trans, lb_mix)",
                    "budget": adam if cw else "always projects onto the eps-ball", "patience": adam if cw else "takes one step of eps"}[name]
            return f"method {method} {what}"
        return None
    if name in _LANDMARK_ONLY or name in _MANIPULATOR_ONLY:
        from faceshield.models import target_info

        try:
            families = {target_info(t).family for t in targets}
        except ValueError:
            return None
        want = "landmark" if name in _LANDMARK_ONLY else "manipulator"
        if want not in families:
            return f"only {want} targets use it, and the targets are {', '.join(targets)}"
        return None
    if name in ("hide", "feature_weight"):
        from faceshield.models import target_info

        attr, what = ("face_score", "a differentiable face score (mtcnn, retinaface-*)") if name == "hide" else ("features", "differentiable features (retinaface-*)")
        try:
            ok = any(getattr(target_info(t), attr, False) for t in targets)
        except ValueError:
            return None
        return None if ok else f"only targets with {what} use it, and the targets are {', '.join(targets)}"
    if name in ("push", "nme_cap"):
        from faceshield.core.types import ExtractorKind

        want = ExtractorKind.HEATMAP if name == "push" else ExtractorKind.REGRESSION
        from faceshield.models import target_info

        try:
            kinds = {target_info(t).kind for t in targets}
        except ValueError:
            return None
        if want not in kinds:
            return f"only {want.value} targets use it, and the targets are {', '.join(targets)}"
        return None
    if name == "eot_samples" and not eot:
        return "it is the number of EOT transforms per step, and eot is off"
    if name == "mask_scale" and mask == "none":
        return "it enlarges the face mask, and mask is none"
    return None


#: Named settings on top of :class:`ProtectConfig`'s defaults ([0, 1] units), measured in
#: ``docs/results.md``: ``paper`` is Landmark Breaker's Alg. 1 (the defaults, fastest); ``strong``
#: buys NME with 3x the steps, a texture-following budget and random box jitter; ``smooth`` blurs
#: the perturbation (sigma 2 px: far higher SSIM); ``quality`` blurs less (sigma 1 px), puts SSIM
#: into the objective and, on heat-map models, keeps pushing the heat-maps away after Eq. 1 bottoms
#: out, with 100 steps, random box jitter and every box the detector weighs re-detected every 10
#: steps; ``robust`` is ``quality`` averaged over random JPEG / resize / blur (EOT; about 2x slower)
#: for photos and videos that will be re-compressed. A preset value that means nothing for the
#: targets chosen (``push`` without a heat-map target) is dropped.
_QUALITY = {"steps": 100, "alpha": 2 / 255, "smooth": 1.0, "ssim_weight": 1.0, "push": 0.5, "jitter_mode": "random", "redetect": 10}
#: ``subtle`` (the command line's and the web page's default) sits on the visibility bound
#: (SSIMULACRA 2 on the face >= 70 on average): an ensemble of MTCNN and our StarGAN editor at 6
#: levels, every pixel within its just-noticeable difference, 30 % of the colour kept. Measured
#: (benchmarks/default_protection.py, 8 held-out photos): 38 of 40 StarGAN edits disrupted, no
#: landmark extractor's face protected (nothing we have protects landmarks at this bound).
_SUBTLE = {"targets": ("mtcnn", "stargan"), "eps": 6 / 255, "jnd": True, "chroma": 0.3}
PRESETS: dict[str, dict] = {
    "subtle": _SUBTLE,
    "paper": {},
    "strong": {"steps": 60, "perceptual": True, "jitter_mode": "random"},
    "smooth": {"steps": 60, "alpha": 2 / 255, "smooth": 2.0},
    "quality": _QUALITY,
    "robust": {**_QUALITY, "eot": ("default",), "eot_samples": 2},
}
