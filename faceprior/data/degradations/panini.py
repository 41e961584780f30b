"""Panini-Net's two tasks: multi-degradation restoration (``panini-mfr``) and 16x face SR
(``panini-sr16``).

The official repository ships pre-generated LQ images only; its degradation code was never
released (/work/shared/specs/panini.md section 6). What is known and what was chosen:

* Sizes are fixed by the released models: MFR takes a 512 LQ for a 1024 GT (x2), SR a 64 LQ
  for a 1024 GT (x16). Both presets keep these ratios (``scale``) at any HQ size.
* 16x SR kernel: measured, not guessed. Downscaling the 10 official GT examples with an
  anti-aliased bilinear (tent) filter reproduces the official 64x64 inputs at 54.7 dB PSNR on
  average (Pillow's BILINEAR 56.8 dB; Pillow's BICUBIC 40.2 dB, cv2 INTER_AREA 39.1 dB,
  non-antialiased cv2 bicubic 26.9 dB), so ``panini-sr16`` is a tent downscale and nothing else.
* MFR chain: a choice. The official examples visibly combine blur, downsampling, noise and JPEG;
  the ranges are those the GFPGAN paper states for its synthetic model
  y = [(x * k_sigma) downsampled by r + n_delta]_JPEG_q with sigma in [0.2, 10], r in [1, 8],
  delta in [0, 15], q in [60, 100], applied at the official 512 LQ resolution after the same
  tent x2 downscale the SR inputs show. The isotropic Gaussian kernel is 41x41.

Both presets flip HQ and LQ together with p=0.5, as the official training pipeline does.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from . import ops
from .base import Degradation, check_probability, check_range, draw_seed, uniform


def _flip(hq: np.ndarray, flip: bool) -> np.ndarray:
    return np.ascontiguousarray(hq[:, ::-1]) if flip else hq


def _check_scale(scale: int) -> None:
    if int(scale) != scale or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}")


@dataclasses.dataclass(frozen=True)
class PaniniMFRDegradation(Degradation):
    """LQ is HQ / ``scale`` (x2 by default, a 512 LQ for a 1024 GT); ``hq_out`` is the
    (possibly flipped) HQ. The chain runs at ``reference_size`` (the LQ side of the official
    data) and the result is resampled to the LQ size."""

    scale: int = 2
    reference_size: int = 512
    kernel_size: int = 41
    sigma_range: tuple[float, float] = (0.2, 10.0)
    downsample_range: tuple[float, float] = (1.0, 8.0)
    noise_range: tuple[float, float] = (0.0, 15.0)
    jpeg_range: tuple[int, int] = (60, 100)
    flip_prob: float = 0.5

    name = "panini-mfr"

    def __post_init__(self) -> None:
        _check_scale(self.scale)
        if self.kernel_size % 2 == 0 or self.kernel_size < 3:
            raise ValueError(f"kernel_size must be odd and >= 3, got {self.kernel_size}")
        if self.reference_size < 16:
            raise ValueError(f"reference_size must be >= 16, got {self.reference_size}")
        check_range("sigma_range", self.sigma_range, 1e-3, 100.0)
        check_range("downsample_range", self.downsample_range, 1.0, 64.0)
        check_range("noise_range", self.noise_range, 0.0, 255.0)
        check_range("jpeg_range", self.jpeg_range, 1, 100)
        check_probability("flip_prob", self.flip_prob)

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {
            "flip": bool(rng.uniform() < self.flip_prob),
            "sigma": uniform(rng, self.sigma_range),
            "downsample": uniform(rng, self.downsample_range),
            "noise_sigma": uniform(rng, self.noise_range),
            "noise_seed": draw_seed(rng),
            "jpeg_quality": int(rng.integers(self.jpeg_range[0], self.jpeg_range[1] + 1)),
        }

    def apply(self, hq: np.ndarray, params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        hq = _flip(hq, params["flip"])
        lq_h, lq_w = self.lq_shape(*hq.shape[:2])
        if lq_h < 1 or lq_w < 1:
            raise ValueError(f"HQ {hq.shape[:2]} is too small for x{self.scale}")
        ref = self.reference_size
        lq = ops.resize_antialiased(hq, ref, ref)
        sigma = params["sigma"]
        lq = ops.filter2d(lq, ops.gaussian_kernel(self.kernel_size, sigma, sigma, 0.0))
        small = max(1, int(ref / params["downsample"]))
        lq = ops.resize(lq, small, small, "linear")
        lq = ops.gaussian_noise(lq, params["noise_sigma"], params["noise_seed"])
        lq = ops.jpeg(lq, params["jpeg_quality"])
        lq = ops.resize(lq, ref, ref, "linear")
        lq = ops.resize_to(np.clip(lq, 0.0, 1.0), lq_w, lq_h)
        return lq, hq


@dataclasses.dataclass(frozen=True)
class PaniniSRDegradation(Degradation):
    """LQ is HQ / ``scale`` (x16 by default: 64 for a 1024 GT) by an anti-aliased tent filter,
    the kernel measured on the official examples; ``hq_out`` is the (possibly flipped) HQ."""

    scale: int = 16
    flip_prob: float = 0.5

    name = "panini-sr16"

    def __post_init__(self) -> None:
        _check_scale(self.scale)
        check_probability("flip_prob", self.flip_prob)

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"flip": bool(rng.uniform() < self.flip_prob)}

    def apply(self, hq: np.ndarray, params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        hq = _flip(hq, params["flip"])
        lq_h, lq_w = self.lq_shape(*hq.shape[:2])
        if lq_h < 1 or lq_w < 1:
            raise ValueError(f"HQ {hq.shape[:2]} is too small for x{self.scale}")
        return np.clip(ops.resize_antialiased(hq, lq_w, lq_h), 0.0, 1.0), hq
