"""One registry for every model faceshield can attack or evaluate with (timm-style).

    >>> from faceshield.models import create_extractor, list_extractors
    >>> list_extractors()            # doctest: +SKIP
    ['dlib68', 'mtcnn']
    >>> ext = create_extractor("mtcnn")  # doctest: +SKIP
"""
from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass

from faceshield.core.types import ExtractorKind
from faceshield.models.base import ExtractorInfo, LandmarkExtractor


@dataclass(frozen=True)
class _Entry:
    info: ExtractorInfo
    factory: Callable[..., LandmarkExtractor]


_EXTRACTORS: dict[str, _Entry] = {}
_INSTANCES: dict[tuple, LandmarkExtractor] = {}


def register_extractor(info: ExtractorInfo):
    """Class or factory decorator adding an extractor under ``info.name``."""

    def deco(factory):
        if info.name in _EXTRACTORS:
            raise ValueError(f"extractor {info.name!r} is registered twice")
        _EXTRACTORS[info.name] = _Entry(info, factory)
        return factory

    return deco


def _load_builtin() -> None:
    # Importing the modules registers their extractors.
    from faceshield.models import dlib68, facemesh, fan, hrnet, mtcnn  # noqa: F401


def list_extractors(pattern: str = "*", *, white_box: bool = False) -> list[str]:
    """Names of registered extractors matching a glob ``pattern`` (``white_box``: only those an
    attack can differentiate, i.e. not black-box)."""
    _load_builtin()
    return sorted(n for n, e in _EXTRACTORS.items() if fnmatch.fnmatch(n, pattern) and not (white_box and e.info.kind is ExtractorKind.BLACKBOX))


def extractor_info(name: str) -> ExtractorInfo:
    _load_builtin()
    try:
        return _EXTRACTORS[name].info
    except KeyError:
        raise ValueError(f"unknown extractor {name!r}; expected one of {', '.join(sorted(_EXTRACTORS))}") from None


def create_extractor(name: str, *, weights: str | None = None, cached: bool = True, **kwargs) -> LandmarkExtractor:
    """Build (or reuse) an extractor by name.

    Args:
        name: a name from :func:`list_extractors`.
        weights: explicit path to the weight file; otherwise the resolver looks in package data,
            environment variables and installed packages (see :mod:`faceshield.models.weights`).
        cached: reuse an instance built with the same arguments (weights load once per process).
    """
    extractor_info(name)  # raises for unknown names
    key = (name, weights, tuple(sorted(kwargs.items())))
    if cached and key in _INSTANCES:
        return _INSTANCES[key]
    ext = _EXTRACTORS[name].factory(weights=weights, **kwargs)
    if cached:
        _INSTANCES[key] = ext
    return ext
