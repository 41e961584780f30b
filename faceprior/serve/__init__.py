"""``faceprior serve``: restoration over HTTP, with a web page (see docs/serve.md).

:func:`create_app` builds the FastAPI application from :class:`ServeSettings`; the models run
in one worker process (``faceprior.serve.worker``) fed by a bounded queue
(``faceprior.serve.dispatch``). The application needs the ``serve`` extra (FastAPI); the
settings do not, so ``faceprior serve --help`` works without it.
"""

from __future__ import annotations

from .settings import ServeSettings, SettingsError

__all__ = ["ServeSettings", "SettingsError", "create_app"]


def create_app(settings: ServeSettings):
    """The ASGI application (FastAPI) for ``settings``; see :mod:`faceprior.serve.app`."""
    from .app import create_app as build

    return build(settings)
