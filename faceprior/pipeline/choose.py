"""Which restoration model a name means: the ``"auto"`` policy, and loading with the method's
knobs (:class:`~faceprior.models.restorer.RestorerOptions`)."""

from __future__ import annotations

import os
import warnings

from ..errors import ArgumentError, ModelUnavailableError

# "auto": the official GPEN-BFR-512 when its weights are cached or can be downloaded, else a
# larger official model already in the cache (never downloaded for this), else the small GPEN
# that faceprior trained and ships (works offline; docs/model-card-gpen-offline-128-v5.md).
DEFAULT_MODEL = "auto"
AUTO_MODELS = ("gpen-bfr-512", "gpen-bfr-256", "gpen-offline-128-v5")


class OfflineFallbackWarning(UserWarning):
    """``model="auto"`` used the bundled offline model: the official weights were unavailable."""


def load_restorer(model: str | os.PathLike | object, device: str, method=None) -> tuple:
    """``(restoration model, its name)`` for a zoo name, checkpoint path or loaded model.

    ``method``: the method's load-time knobs (a ``RestorerOptions``; ``None``: none), which
    the method's own options dataclass checks, once, as the model loads; a loaded model
    already holds its knobs, so giving any is an error. ``"auto"`` falls back to the bundled
    offline model with an :class:`OfflineFallbackWarning`.
    """
    from ..hub.download import DownloadError
    from ..models.loading import load_restoration_model
    from ..models.restorer import RestorationModel, RestorerOptions

    method = RestorerOptions() if method is None else method
    if isinstance(model, RestorationModel):
        given = method.given()
        if given:
            raise ArgumentError(next(iter(given)), "applies when loading a model by name or path")
        return model.eval().to(device), type(model.network).__name__
    if str(model) == DEFAULT_MODEL:
        preferred, *cached_only, offline = AUTO_MODELS
        try:
            return load_restoration_model(preferred, device, method), preferred
        except (DownloadError, FileNotFoundError, OSError):
            from ..hub.download import cached_path, is_offline
            from ..hub.zoo import get_entry

            reason = "offline" if is_offline() else "not cached, download failed"
            cached = [name for name in cached_only if cached_path(get_entry(name)).is_file()]
            model = cached[0] if cached else offline
            where = "the cached" if cached else "the bundled"
            warnings.warn(
                f"{preferred} unavailable ({reason}): using {where} {model}",
                OfflineFallbackWarning,
                stacklevel=2,
            )
    try:
        return load_restoration_model(model, device=device, options=method), str(model)
    except (DownloadError, FileNotFoundError, OSError) as error:
        raise ModelUnavailableError(
            f"cannot get the weights of restoration model {str(model)!r}: {error}. "
            f"Pass --model PATH (Python: model=PATH) to a local checkpoint (.pth or "
            f".safetensors), or a zoo name whose weights are cached (see `faceprior models`)."
        ) from None
