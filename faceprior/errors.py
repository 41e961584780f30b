"""faceprior's one error family: every problem a user can cause or fix is a FacepriorError.

The command line catches :class:`FacepriorError` once (``faceprior.cli``), prints
``faceprior <command>: <message>`` and exits with :attr:`FacepriorError.exit_code`; anything
else is a bug and keeps its traceback. Messages name the file or the Python parameter at
fault (``upscale``, not ``--upscale``): the CLI maps parameters to its flags.

Each class also derives from the built-in exception that code written before this family
caught (``ValueError``, ``FileNotFoundError``, ...), so ``except ValueError`` keeps working.
This module is a leaf: it imports nothing from faceprior.
"""

from __future__ import annotations

# Exit status of a run stopped by a user error (bad argument, unreadable model, ...): the
# argparse convention. A batch in which some files failed exits 1 (see faceprior.folders).
USER_ERROR_EXIT = 2


class FacepriorError(Exception):
    """A problem with what faceprior was given, explained so that the user can fix it."""

    exit_code = USER_ERROR_EXIT


class ArgumentError(FacepriorError, ValueError):
    """An argument out of range or of the wrong kind; ``parameter`` names it (Python name)."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter} {message}")
        self.parameter = parameter
        self.detail = message


class InputError(FacepriorError, ValueError):
    """An input (image, folder, glob) that cannot be read or used; the message names it."""


class OutputError(FacepriorError, OSError):
    """An output location that cannot or may not be written (read-only, would overwrite an
    input, full disk); the message names it."""


class CheckpointError(FacepriorError, ValueError):
    """A checkpoint (or ONNX model) could not be read or does not fit the expected network."""


class ModelNotFoundError(FacepriorError, FileNotFoundError):
    """A model name that is neither a file nor in the zoo, or weights missing from the cache."""


class UnknownNameError(FacepriorError, KeyError):
    """A zoo, architecture or detector name that faceprior does not know."""

    def __str__(self) -> str:  # KeyError quotes its message; this one is a sentence
        return str(self.args[0]) if self.args else ""


class DownloadError(FacepriorError, RuntimeError):
    """A zoo file could not be fetched or verified; the message says what to do by hand."""


class ModelUnavailableError(FacepriorError, RuntimeError):
    """The restoration weights could not be found or downloaded."""


class ConfigError(FacepriorError, ValueError):
    """A configuration file or override is invalid."""


class MetricError(FacepriorError, ValueError):
    """None of the requested metrics could be computed, or a metric's model is unusable."""
