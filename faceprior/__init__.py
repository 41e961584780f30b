"""faceprior: blind face restoration with generative (GAN) priors.

The public API is imported lazily so that ``import faceprior`` does not load torch:

- :func:`load_model` -- an official or faceprior checkpoint, or a zoo name, as a network;
- :func:`restore` and :class:`FaceRestorer` -- the photo pipeline;
- :func:`restore_folder` -- files, folders and globs of photos, with a report.
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "load_model": "faceprior.api",
    "load_restoration_model": "faceprior.api",
    "save_model": "faceprior.api",
    "restore": "faceprior.pipeline",
    "FaceRestorer": "faceprior.pipeline",
    "restore_folder": "faceprior.folders",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'faceprior' has no attribute {name!r}")
