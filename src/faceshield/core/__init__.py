"""Types, errors and input checks shared by every layer."""
from faceshield.core.errors import FaceshieldError, ImageReadError, NoFaceError, OutputExistsError, WeightsNotFoundError
from faceshield.core.types import ExtractorKind, Face, PointScheme

__all__ = [
    "ExtractorKind",
    "Face",
    "FaceshieldError",
    "ImageReadError",
    "NoFaceError",
    "OutputExistsError",
    "PointScheme",
    "WeightsNotFoundError",
]
