"""One fixed degradation (preset ``photo``): the evaluation conditions of the bundled models.

Training recipes draw their parameters at random; an evaluation needs every face degraded the
same way, as a face of a given size in a real photo would be: a Gaussian blur (lens, motion,
focus), an area downscale by ``downscale`` (a face of ``size / downscale`` pixels), optional
Gaussian noise, JPEG, and a resize back to the input size (``scale`` 1) with ``upsample``
(bicubic: the usual "no restoration" baseline; bilinear: what the photo pipeline's affine warp
feeds a model). Issue 16's headline condition is ``sigma=1.2, downscale=4, jpeg_quality=60``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from . import ops
from .base import Degradation


@dataclasses.dataclass(frozen=True)
class PhotoDegradation(Degradation):
    """Blur ``sigma``, area downscale by ``downscale``, noise ``noise_sigma`` (8-bit levels),
    JPEG ``jpeg_quality`` (100: none), resize back with ``upsample``; no randomness except the
    noise, which replays from its seed."""

    sigma: float = 1.2
    downscale: float = 4.0
    noise_sigma: float = 0.0
    jpeg_quality: int = 60
    upsample: str = "cubic"

    name = "photo"

    def __post_init__(self) -> None:
        for name, low, high in (
            ("sigma", 0.0, 100.0),
            ("downscale", 1.0, 64.0),
            ("noise_sigma", 0.0, 255.0),
            ("jpeg_quality", 1, 100),
        ):
            if not low <= getattr(self, name) <= high:
                raise ValueError(f"{name} must be in [{low}, {high}], got {getattr(self, name)}")
        if self.upsample not in ops.INTERPOLATIONS:
            raise ValueError(
                f"upsample must be one of {sorted(ops.INTERPOLATIONS)}, got {self.upsample!r}"
            )

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"noise_seed": int(rng.integers(0, 2**31 - 1))}

    def apply(self, hq: np.ndarray, params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        height, width = hq.shape[:2]
        lq = hq
        if self.sigma > 0:
            radius = max(1, int(np.ceil(3 * self.sigma)))
            kernel = ops.gaussian_kernel(2 * radius + 1, self.sigma, self.sigma, 0.0)
            lq = ops.filter2d(lq, kernel)
        small_w = max(1, round(width / self.downscale))
        small_h = max(1, round(height / self.downscale))
        lq = ops.resize(lq, small_w, small_h, "area")
        if self.noise_sigma > 0:
            lq = ops.gaussian_noise(lq, self.noise_sigma, params["noise_seed"])
        if self.jpeg_quality < 100:
            lq = ops.jpeg(lq, self.jpeg_quality)
        else:
            lq = ops.to_uint8(lq).astype(np.float32) / 255.0
        lq = ops.resize(lq, width, height, self.upsample)
        return np.clip(lq, 0.0, 1.0), hq
