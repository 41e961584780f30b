"""The public model-loading API, ``faceprior.load_model`` and friends.

A thin facade: the work is done in ``faceprior.models.loading``, which the rest of the
package imports directly.
"""

from __future__ import annotations

from .models.loading import load_model, load_restoration_model, resolve_weights, save_model

__all__ = ["load_model", "load_restoration_model", "resolve_weights", "save_model"]
