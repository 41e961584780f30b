"""PSFR-GAN's training degradation (preset ``psfrgan``), written without imgaug.

Recipe (/work/shared/specs/psfrgan.md section 7), on 8-bit images at 512x512: grayscale on the
HQ (p=0.3); with p=0.5 one of Gaussian blur (sigma ~ U[3, 15]), average blur (k ~ U{3..15}),
median blur (k ~ U{3..15}, even k + 1) or motion blur (k ~ U{5..25}, angle U[0, 360),
direction U[-1, 1]); resize to s x s with s ~ U{32..255} and interpolation drawn from
nearest/linear/area/cubic; with p=0.2 Gaussian noise (sigma ~ U[0, 25.5], per channel with
p=0.5); with p=0.7 JPEG with compression c ~ U{10..65} mapped to quality
round(1 + 99 (1 - c/101)); bicubic resize back.

All numbers are absolute pixels at 512, so the recipe runs at ``reference_size``: an HQ of
another size is resampled to it first and the final resize goes straight back to the HQ size.
No flips (the official loader has none).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import cv2
import numpy as np

from . import ops
from .base import Degradation, check_probability, check_range, draw_seed, uniform

BLUR_KINDS = ("gaussian", "average", "median", "motion")


def _jpeg_quality(compression: int) -> int:
    """imgaug's compression -> libjpeg quality mapping the official pipeline relied on."""
    return int(round(1 + 99 * (1 - compression / 101)))


def _u8(image: np.ndarray) -> np.ndarray:
    """Back to 8-bit after every step: imgaug worked on uint8 throughout."""
    return ops.to_uint8(image).astype(np.float32) / 255.0


@dataclasses.dataclass(frozen=True)
class PSFRDegradation(Degradation):
    """LQ has the HQ size (``scale`` 1); ``hq_out`` is the HQ, greyed when drawn."""

    reference_size: int = 512
    gray_prob: float = 0.3
    blur_prob: float = 0.5
    gaussian_sigma_range: tuple[float, float] = (3.0, 15.0)
    average_kernel_range: tuple[int, int] = (3, 15)
    median_kernel_range: tuple[int, int] = (3, 15)
    motion_kernel_range: tuple[int, int] = (5, 25)
    scale_range: tuple[int, int] = (32, 255)
    noise_prob: float = 0.2
    noise_range: tuple[float, float] = (0.0, 25.5)
    jpeg_prob: float = 0.7
    compression_range: tuple[int, int] = (10, 65)

    name = "psfrgan"

    def __post_init__(self) -> None:
        if self.reference_size < 16:
            raise ValueError(f"reference_size must be >= 16, got {self.reference_size}")
        check_range("gaussian_sigma_range", self.gaussian_sigma_range, 0.0, 100.0)
        check_range("average_kernel_range", self.average_kernel_range, 1, 255)
        check_range("median_kernel_range", self.median_kernel_range, 1, 255)
        check_range("motion_kernel_range", self.motion_kernel_range, 3, 255)
        check_range("scale_range", self.scale_range, 1, self.reference_size)
        check_range("noise_range", self.noise_range, 0.0, 255.0)
        check_range("compression_range", self.compression_range, 0, 100)
        for name in ("gray_prob", "blur_prob", "noise_prob", "jpeg_prob"):
            check_probability(name, getattr(self, name))

    def _sample_blur(self, rng: np.random.Generator) -> dict[str, Any]:
        kind = BLUR_KINDS[int(rng.integers(0, len(BLUR_KINDS)))]
        if kind == "gaussian":
            return {"kind": kind, "sigma": uniform(rng, self.gaussian_sigma_range)}
        if kind == "average":
            low, high = self.average_kernel_range
            return {"kind": kind, "kernel": int(rng.integers(low, high + 1))}
        if kind == "median":
            low, high = self.median_kernel_range
            kernel = int(rng.integers(low, high + 1))
            return {"kind": kind, "kernel": kernel + 1 if kernel % 2 == 0 else kernel}
        low, high = self.motion_kernel_range
        return {
            "kind": kind,
            "kernel": int(rng.integers(low, high + 1)),
            "angle": float(rng.uniform(0.0, 360.0)),
            "direction": float(rng.uniform(-1.0, 1.0)),
        }

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        gray = bool(rng.uniform() < self.gray_prob)
        scale_size = int(rng.integers(self.scale_range[0], self.scale_range[1] + 1))
        blur = self._sample_blur(rng) if rng.uniform() < self.blur_prob else None
        interpolation = str(rng.choice(list(ops.INTERPOLATIONS)))
        noise = None
        if rng.uniform() < self.noise_prob:
            noise = {
                "sigma": uniform(rng, self.noise_range),
                "per_channel": bool(rng.uniform() < 0.5),
                "seed": draw_seed(rng),
            }
        jpeg_quality = None
        if rng.uniform() < self.jpeg_prob:
            compression = int(rng.uniform(*self.compression_range))
            jpeg_quality = _jpeg_quality(compression)
        return {
            "gray": gray,
            "blur": blur,
            "scale_size": scale_size,
            "interpolation": interpolation,
            "noise": noise,
            "jpeg_quality": jpeg_quality,
        }

    def _blur(self, image: np.ndarray, blur: dict[str, Any]) -> np.ndarray:
        pixels = ops.to_uint8(image)
        if blur["kind"] == "gaussian":
            out = cv2.GaussianBlur(pixels, (0, 0), sigmaX=blur["sigma"])
        elif blur["kind"] == "average":
            out = cv2.blur(pixels, (blur["kernel"], blur["kernel"]))
        elif blur["kind"] == "median":
            out = cv2.medianBlur(pixels, blur["kernel"])
        else:
            kernel = ops.motion_kernel(blur["kernel"], blur["angle"], blur["direction"])
            out = cv2.filter2D(pixels, -1, kernel, borderType=cv2.BORDER_REFLECT_101)
        return out.astype(np.float32) / 255.0

    def apply(self, hq: np.ndarray, params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        height, width = hq.shape[:2]
        if params["gray"]:
            hq = ops.to_gray(hq)
        lq = _u8(ops.resize_to(hq, self.reference_size, self.reference_size))
        if params["blur"] is not None:
            lq = self._blur(lq, params["blur"])
        size = params["scale_size"]
        lq = _u8(ops.resize(lq, size, size, params["interpolation"]))
        noise = params["noise"]
        if noise is not None:
            lq = _u8(ops.gaussian_noise(lq, noise["sigma"], noise["seed"], noise["per_channel"]))
        if params["jpeg_quality"] is not None:
            lq = ops.jpeg(lq, params["jpeg_quality"])
        lq = _u8(ops.resize(lq, width, height, "cubic"))
        return lq, hq
