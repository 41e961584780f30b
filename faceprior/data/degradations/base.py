"""What every degradation recipe shares: draw parameters, then apply them.

Splitting ``sample`` (all randomness) from ``apply`` (a pure function of the image and the
drawn parameters) is what makes a recipe reproducible and replayable: the parameters written to
a benchmark manifest regenerate the exact LQ image, and the same parameters can degrade two
different faces (the positive pairs of Panini-Net's degradation-representation training).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

SEED_BOUND = 2**31 - 1


def check_image(hq: np.ndarray) -> None:
    """Refuse inputs outside the contract instead of degrading them silently."""
    if not isinstance(hq, np.ndarray) or hq.ndim != 3 or hq.shape[2] != 3:
        shape = getattr(hq, "shape", None)
        raise ValueError(f"expected an HxWx3 BGR image array, got shape {shape}")
    if hq.dtype != np.float32:
        raise ValueError(f"expected float32 values in [0, 1], got dtype {hq.dtype}")


def check_range(name: str, bounds: tuple[float, float], low: float, high: float) -> None:
    if len(bounds) != 2 or not low <= bounds[0] <= bounds[1] <= high:
        raise ValueError(
            f"{name} must be (min, max) with {low} <= min <= max <= {high}, got {bounds}"
        )


def check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value}")


def uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def log_uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    """Uniform in log space: each factor of 2 within ``bounds`` is drawn equally often."""
    return float(np.exp(rng.uniform(np.log(bounds[0]), np.log(bounds[1]))))


def draw_seed(rng: np.random.Generator) -> int:
    """A child seed stored in the parameters so per-pixel noise replays from them."""
    return int(rng.integers(0, SEED_BOUND))


@dataclasses.dataclass(frozen=True)
class Degradation:
    """Base of the recipes. A subclass sets ``name`` and ``scale`` and implements
    ``sample`` and ``apply``; its dataclass fields are its public, explicit knobs.

    ``scale`` is the ratio HQ side / LQ side of the result (1 for restoration recipes whose LQ
    keeps the HQ size, >1 for super-resolution recipes).
    """

    name = "degradation"
    scale = 1

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """Draw one JSON-serialisable parameter set."""
        raise NotImplementedError

    def apply(self, hq: np.ndarray, params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """Degrade ``hq`` (float32 HWC BGR in [0, 1]) with ``params``: ``(lq, hq_out)``."""
        raise NotImplementedError

    def __call__(
        self, hq: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        check_image(hq)
        params = self.sample(rng)
        lq, hq_out = self.apply(hq, params)
        return lq, hq_out, params

    def lq_shape(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) of the LQ image this recipe makes from an HQ of that size."""
        return height // self.scale, width // self.scale

    def config(self) -> dict[str, Any]:
        """The recipe's knobs (JSON-serialisable), recorded in manifests next to the draws."""
        values = {
            field.name: list(value) if isinstance(value, tuple) else value
            for field in dataclasses.fields(self)
            for value in [getattr(self, field.name)]
        }
        return {"preset": self.name, "scale": self.scale, **values}
