"""Exception types. Every message is one line a user can act on."""


class FaceshieldError(Exception):
    """Base class of all errors faceshield raises on purpose."""


class ImageReadError(FaceshieldError, ValueError):
    """An input file is missing, unreadable, truncated, empty or not a supported image."""


class NoFaceError(FaceshieldError):
    """No face was detected in an image, so there is nothing to protect or evaluate."""


class OutputExistsError(FaceshieldError, FileExistsError):
    """An output file exists and overwriting was not asked for."""


class WeightsNotFoundError(FaceshieldError, FileNotFoundError):
    """A model weight file could not be found; the message says where to put it."""


class VideoReadError(FaceshieldError, ValueError):
    """An input video is missing, unreadable, corrupt, a still image, or has no video stream."""


class VideoWriteError(FaceshieldError, ValueError):
    """A video could not be encoded: unknown or unavailable codec, a codec the container cannot hold,
    an unsupported output extension, or an encoder failure."""
