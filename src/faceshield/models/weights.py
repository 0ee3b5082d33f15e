"""The one weight resolver: explicit path > environment variable > package data > installed package.

Nothing is ever downloaded. A missing file raises :class:`WeightsNotFoundError` naming every place
that was tried and how to provide the file.
"""
from __future__ import annotations

import importlib.util
import os
from importlib import resources
from pathlib import Path

import torch

from faceshield.core.errors import WeightsNotFoundError


def package_data(filename: str) -> Path:
    """Path of a file shipped in ``faceshield/data``."""
    return Path(str(resources.files("faceshield") / "data" / filename))


def installed_package_file(package: str, *parts: str) -> Path | None:
    """Locate a file inside an installed package *without importing it* (importing some of them
    pulls torchvision or pkg_resources)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):  # e.g. a stub module in sys.modules without a spec
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        p = Path(root, *parts)
        if p.is_file():
            return p
    return None


def resolve_weights(
    what: str,
    *,
    path: str | os.PathLike | None = None,
    env: str | None = None,
    package_file: str | None = None,
    candidates: tuple[Path | None, ...] = (),
    hint: str = "",
) -> Path:
    """Find a weight file.

    Args:
        what: human name of the model, used in the error message.
        path: an explicit path given by the user; if given it must exist.
        env: name of an environment variable that may hold a path.
        package_file: file name inside ``faceshield/data``.
        candidates: further paths to try in order (e.g. inside installed packages).
        hint: how to obtain the file, appended to the error.
    """
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise WeightsNotFoundError(f"{what}: weight file {str(p)!r} does not exist")
        return p
    tried: list[str] = []
    if env:
        v = os.environ.get(env)
        if v:
            p = Path(v).expanduser()
            if p.is_file():
                return p
            tried.append(f"${env}={v}")
        else:
            tried.append(f"${env} (unset)")
    if package_file:
        p = package_data(package_file)
        if p.is_file():
            return p
        tried.append(str(p))
    for c in candidates:
        if c is not None and Path(c).is_file():
            return Path(c)
        if c is not None:
            tried.append(str(c))
    raise WeightsNotFoundError(
        f"{what}: weight file not found (tried {', '.join(tried) or 'nothing'}); "
        f"pass weights=PATH{f' or set ${env}' if env else ''}{'; ' + hint if hint else ''}"
    )


def load_state_dict(path: str | os.PathLike) -> dict:
    """Load a state dict safely (``weights_only=True``: no arbitrary pickles are executed)."""
    sd = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(sd, dict):
        raise ValueError(f"{path}: expected a state dict, got {type(sd).__name__}")
    return sd
