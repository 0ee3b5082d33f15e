"""One registry for every model faceshield can attack, evaluate or protect with (timm-style):
landmark extractors, manipulators (face editors), DeepFake detectors, and the perturbation
generators that protect in one forward pass (listed, never attacked: ``--method generator:NAME``).

    >>> from faceshield.models import create_extractor, list_extractors, list_targets
    >>> list_extractors()            # doctest: +SKIP
    ['dlib68', 'mtcnn']
    >>> list_targets(family="manipulator")  # doctest: +SKIP
    ['ganimation', 'stargan']
    >>> ext = create_extractor("mtcnn")  # doctest: +SKIP
"""
from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass

from faceshield.core.types import ExtractorKind
from faceshield.models.base import ExtractorInfo, LandmarkExtractor
from faceshield.models.manipulator import TargetInfo

FAMILIES = ("landmark", "manipulator", "detector", "generator")


@dataclass(frozen=True)
class _Entry:
    info: ExtractorInfo | TargetInfo
    factory: Callable[..., object]


_EXTRACTORS: dict[str, _Entry] = {}
_INSTANCES: dict[tuple, LandmarkExtractor] = {}


def register_extractor(info: ExtractorInfo | TargetInfo):
    """Class or factory decorator adding a model (an extractor, a manipulator or a detector) under
    ``info.name``; the factory takes ``weights=`` (a path or None) and keyword arguments."""

    def deco(factory):
        if info.name in _EXTRACTORS:
            raise ValueError(f"model {info.name!r} is registered twice")
        _EXTRACTORS[info.name] = _Entry(info, factory)
        return factory

    return deco


def _load_builtin() -> None:
    # Importing the modules registers their extractors.
    from faceshield.models import dlib68, facemesh, fan, hrnet, mtcnn, retinaface, zoo  # noqa: F401


register_target = register_extractor


def list_targets(pattern: str = "*", *, family: str | None = None, white_box: bool = False) -> list[str]:
    """Names of every registered model matching a glob ``pattern``, optionally of one ``family``
    (``landmark``, ``manipulator``, ``detector``, ``generator``); ``white_box``: only those an
    attack can differentiate (not black-box landmark extractors, not generators)."""
    _load_builtin()
    if family is not None and family not in FAMILIES:
        raise ValueError(f"family: expected one of {', '.join(FAMILIES)}, got {family!r}")
    return sorted(n for n, e in _EXTRACTORS.items() if fnmatch.fnmatch(n, pattern) and (family is None or e.info.kind.family == family)
                  and not (white_box and (e.info.kind is ExtractorKind.BLACKBOX or e.info.kind.family == "generator")))


def list_extractors(pattern: str = "*", *, white_box: bool = False) -> list[str]:
    """Names of registered landmark extractors matching a glob ``pattern`` (``white_box``: only
    those an attack can differentiate, i.e. not black-box)."""
    return list_targets(pattern, family="landmark", white_box=white_box)


def target_info(name: str) -> ExtractorInfo | TargetInfo:
    """The info of any registered model (``ValueError`` listing the known ones)."""
    _load_builtin()
    try:
        return _EXTRACTORS[name].info
    except KeyError:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(sorted(_EXTRACTORS))}") from None


def extractor_info(name: str) -> ExtractorInfo:
    """The info of a landmark extractor (``ValueError`` for unknown names and other families)."""
    _load_builtin()
    e = _EXTRACTORS.get(name)
    if e is None or e.info.kind.family != "landmark":
        raise ValueError(f"unknown extractor {name!r}; expected one of {', '.join(list_extractors())}")
    return e.info


def create_extractor(name: str, *, weights: str | None = None, cached: bool = True, **kwargs) -> LandmarkExtractor:
    """Build (or reuse) an extractor by name.

    Args:
        name: a name from :func:`list_extractors`.
        weights: explicit path to the weight file; otherwise the resolver looks in package data,
            environment variables and installed packages (see :mod:`faceshield.models.weights`).
        cached: reuse an instance built with the same arguments (weights load once per process).
    """
    extractor_info(name)  # raises for unknown names
    return _create(name, weights, cached, kwargs)


def create_target(name: str, *, weights: str | None = None, cached: bool = True, **kwargs):
    """Build (or reuse) any registered model by name: a :class:`LandmarkExtractor`, a
    :class:`~faceshield.models.manipulator.Manipulator` or a detector (arguments as
    :func:`create_extractor`)."""
    target_info(name)
    return _create(name, weights, cached, kwargs)


def _create(name: str, weights: str | None, cached: bool, kwargs: dict):
    key = (name, weights, tuple(sorted(kwargs.items())))
    if cached and key in _INSTANCES:
        return _INSTANCES[key]
    ext = _EXTRACTORS[name].factory(weights=weights, **kwargs)
    if cached:
        _INSTANCES[key] = ext
    return ext
