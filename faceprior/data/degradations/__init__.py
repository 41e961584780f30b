"""Synthetic LQ/HQ degradation recipes (CPU, NumPy/OpenCV, reproducible per seed and index).

``build_degradation(preset, **knobs)`` returns a :class:`Degradation`; calling it as
``degradation(hq, rng)`` with an HQ face (float32 HWC BGR in [0, 1]) and a
``numpy.random.Generator`` returns ``(lq, hq_out, params)``. ``params`` is JSON-serialisable and
``degradation.apply(hq, params)`` replays it exactly. See docs/degradations.md.
"""

from __future__ import annotations

from typing import Any

from .base import Degradation
from .gfpgan import GFPGANDegradation
from .panini import PaniniMFRDegradation, PaniniSRDegradation
from .photo import PhotoDegradation
from .psfrgan import PSFRDegradation

PRESETS: dict[str, type[Degradation]] = {
    "gpen": GFPGANDegradation,
    "psfrgan": PSFRDegradation,
    "panini-mfr": PaniniMFRDegradation,
    "panini-sr16": PaniniSRDegradation,
    "photo": PhotoDegradation,
}

__all__ = [
    "PRESETS",
    "Degradation",
    "GFPGANDegradation",
    "PSFRDegradation",
    "PaniniMFRDegradation",
    "PaniniSRDegradation",
    "PhotoDegradation",
    "build_degradation",
]


def build_degradation(preset: str, **knobs: Any) -> Degradation:
    """The recipe ``preset`` with the official settings, overridden by ``knobs`` (the recipe
    class's fields, e.g. ``gray_prob=0.0``); unknown names raise ``TypeError``."""
    try:
        cls = PRESETS[preset]
    except KeyError:
        raise ValueError(
            f"unknown degradation preset {preset!r}; choose one of {', '.join(PRESETS)}"
        ) from None
    tuples = {
        key: tuple(value) if isinstance(value, list) else value for key, value in knobs.items()
    }
    return cls(**tuples)
