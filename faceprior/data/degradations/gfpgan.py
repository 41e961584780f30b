"""GFPGAN-style degradation as GPEN's released trainer uses it (preset ``gpen``).

Recipe (/work/shared/specs/gpen.md section 5.1, ``GFPGAN_degradation``): horizontal flip,
grayscale applied to the ground truth (so LQ and GT are both grey), Gaussian blur (41x41,
isotropic or anisotropic with rotation), bilinear downsampling by s ~ U[0.8, 8], Gaussian noise,
JPEG, 8-bit quantisation and a bilinear resize back to the input size. The recipe has no
reference resolution: GPEN applies the same numbers at 256, 512 and 1024.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from . import ops
from .base import (
    Degradation,
    check_probability,
    check_range,
    draw_seed,
    log_uniform,
    uniform,
)

SAMPLINGS = {"uniform": uniform, "log": log_uniform}


@dataclasses.dataclass(frozen=True)
class GFPGANDegradation(Degradation):
    """LQ has the HQ size (``scale`` 1); ``hq_out`` is the flipped and/or greyed HQ."""

    kernel_size: int = 41
    sigma_range: tuple[float, float] = (0.1, 10.0)
    iso_prob: float = 0.5
    downsample_range: tuple[float, float] = (0.8, 8.0)
    # How s is drawn: GPEN's "uniform", or "log" (uniform in log s), which gives every octave
    # of face size the same share, as faces of 30-250 px spread in photos; uniform puts most
    # draws on tiny faces.
    downsample_sampling: str = "uniform"
    noise_range: tuple[float, float] = (0.0, 20.0)
    jpeg_range: tuple[int, int] = (60, 100)
    gray_prob: float = 0.2
    flip_prob: float = 0.5
    # Interpolation of the resize back to the HQ size: GPEN's bilinear, or "cubic" for the
    # bicubic-upsampled input that restorations are usually compared against.
    upsample: str = "linear"

    name = "gpen"

    def __post_init__(self) -> None:
        if self.kernel_size % 2 == 0 or self.kernel_size < 3:
            raise ValueError(f"kernel_size must be odd and >= 3, got {self.kernel_size}")
        check_range("sigma_range", self.sigma_range, 1e-3, 100.0)
        check_range("downsample_range", self.downsample_range, 0.1, 64.0)
        if self.downsample_sampling not in SAMPLINGS:
            raise ValueError(
                f"downsample_sampling must be one of {tuple(SAMPLINGS)}, "
                f"got {self.downsample_sampling!r}"
            )
        check_range("noise_range", self.noise_range, 0.0, 255.0)
        check_range("jpeg_range", self.jpeg_range, 1, 100)
        for name in ("iso_prob", "gray_prob", "flip_prob"):
            check_probability(name, getattr(self, name))
        if self.upsample not in ops.INTERPOLATIONS:
            raise ValueError(
                f"upsample must be one of {sorted(ops.INTERPOLATIONS)}, got {self.upsample!r}"
            )

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        flip = bool(rng.uniform() < self.flip_prob)
        gray = bool(rng.uniform() < self.gray_prob)
        if rng.uniform() < self.iso_prob:
            sigma = uniform(rng, self.sigma_range)
            blur = {"kind": "iso", "sigma_x": sigma, "sigma_y": sigma, "theta": 0.0}
        else:
            blur = {
                "kind": "aniso",
                "sigma_x": uniform(rng, self.sigma_range),
                "sigma_y": uniform(rng, self.sigma_range),
                "theta": float(rng.uniform(-np.pi, np.pi)),
            }
        return {
            "flip": flip,
            "gray": gray,
            "blur": blur,
            "downsample": SAMPLINGS[self.downsample_sampling](rng, self.downsample_range),
            "noise_sigma": uniform(rng, self.noise_range),
            "noise_seed": draw_seed(rng),
            # int() truncation as in the official draw: quality 100 only when U hits the bound
            "jpeg_quality": int(rng.uniform(self.jpeg_range[0], self.jpeg_range[1])),
        }

    def apply(self, hq: np.ndarray, params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        height, width = hq.shape[:2]
        if params["flip"]:
            hq = np.ascontiguousarray(hq[:, ::-1])
        if params["gray"]:
            hq = ops.to_gray(hq)
        blur = params["blur"]
        kernel = ops.gaussian_kernel(
            self.kernel_size, blur["sigma_x"], blur["sigma_y"], blur["theta"]
        )
        lq = ops.filter2d(hq, kernel)
        factor = params["downsample"]
        small_w, small_h = max(1, int(width // factor)), max(1, int(height // factor))
        lq = ops.resize(lq, small_w, small_h, "linear")
        lq = ops.gaussian_noise(lq, params["noise_sigma"], params["noise_seed"])
        lq = ops.jpeg(lq, params["jpeg_quality"])
        lq = ops.resize(lq, width, height, self.upsample)
        return np.clip(lq, 0.0, 1.0), hq
