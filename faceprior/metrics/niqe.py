"""NIQE (Mittal et al., 2013): distance of natural-scene statistics from a pristine model.

Per 96x96 patch (48x48 at the half scale) the mean-subtracted contrast-normalised (MSCN)
luminance is described by a generalised Gaussian (shape, variance) and its products with four
neighbours (right, down, down-right, down-left) by asymmetric generalised Gaussians (shape,
mean, left and right variance): 18 numbers per scale, 36 per patch. The pristine model is the
mean and covariance of those vectors over the sharpest patches (local sharpness above 0.75 of
the image's maximum) of a folder of pristine images, fitted here (:func:`fit_pristine`) and
saved as ``.npz``; the score of an image is the Mahalanobis-like distance of its patches'
mean and covariance from the model (lower is better).

Convention: grey = 0.2989 R + 0.5870 G + 0.1140 B in [0, 255]; MSCN with a 7x7 Gaussian
(sigma 7/6), replicate borders, C = 1; the half scale is a 2x2 box average (MATLAB uses an
antialiased bicubic ``imresize``), so scores are comparable between models fitted with faceprior,
not with the numbers of MATLAB's built-in model.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PATCH = 96
SHARPNESS_THRESHOLD = 0.75
SHAPES = np.arange(0.2, 10.0 + 1e-9, 0.001)
GREY = np.array([0.2989, 0.5870, 0.1140])
NEIGHBOURS = ((0, 1), (1, 0), (1, 1), (1, -1))


def _gamma(x: np.ndarray) -> np.ndarray:
    from math import lgamma

    return np.exp(np.vectorize(lgamma)(x))


_G1, _G2, _G3 = _gamma(1 / SHAPES), _gamma(2 / SHAPES), _gamma(3 / SHAPES)
GGD_RATIO = _G1 * _G3 / _G2**2  # E[x^2] / E[|x|]^2 of a GGD with each shape
AGGD_RATIO = _G2**2 / (_G1 * _G3)


def grey(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, np.float64)
    return image @ GREY if image.ndim == 3 else image


def _gaussian_window() -> np.ndarray:
    x = np.arange(7) - 3
    g = np.exp(-(x**2) / (2 * (7 / 6) ** 2))
    w = np.outer(g, g)
    return w / w.sum()


def mscn(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MSCN coefficients and the local standard deviation of a 2-D float image."""
    import cv2

    window = _gaussian_window()
    mu = cv2.filter2D(image, cv2.CV_64F, window, borderType=cv2.BORDER_REPLICATE)
    var = cv2.filter2D(image * image, cv2.CV_64F, window, borderType=cv2.BORDER_REPLICATE)
    sigma = np.sqrt(np.abs(var - mu * mu))
    return (image - mu) / (sigma + 1.0), sigma


def fit_ggd(x: np.ndarray) -> tuple[float, float]:
    """Shape and variance of a zero-mean generalised Gaussian, by moment matching."""
    x = x.ravel()
    second = float(np.mean(x * x))
    first = float(np.mean(np.abs(x)))
    rho = second / (first * first) if first > 0 else np.inf
    return float(SHAPES[np.argmin(np.abs(GGD_RATIO - rho))]), second


def fit_aggd(x: np.ndarray) -> tuple[float, float, float, float]:
    """Shape, mean, left and right variance of an asymmetric generalised Gaussian."""
    x = x.ravel()
    left = x[x < 0]
    right = x[x > 0]
    left_std = float(np.sqrt(np.mean(left * left))) if left.size else 0.0
    right_std = float(np.sqrt(np.mean(right * right))) if right.size else 0.0
    gamma_hat = left_std / right_std if right_std > 0 else np.inf
    second = float(np.mean(x * x))
    r_hat = float(np.mean(np.abs(x))) ** 2 / second if second > 0 else 0.0
    r_norm = r_hat * (gamma_hat**3 + 1) * (gamma_hat + 1) / (gamma_hat**2 + 1) ** 2
    index = int(np.argmin(np.abs(AGGD_RATIO - r_norm)))
    shape = float(SHAPES[index])
    mean = (right_std - left_std) * (_G2[index] / _G1[index]) * np.sqrt(_G1[index] / _G3[index])
    return shape, float(mean), left_std**2, right_std**2


def patch_features(coefficients: np.ndarray) -> list[float]:
    """The 18 statistics of one patch of MSCN coefficients."""
    features = list(fit_ggd(coefficients))
    height, width = coefficients.shape
    for dy, dx in NEIGHBOURS:
        x0, x1 = max(0, -dx), width - max(0, dx)
        a = coefficients[0 : height - dy, x0:x1]
        b = coefficients[dy:height, x0 + dx : x1 + dx]
        features.extend(fit_aggd(a * b))
    return features


def image_features(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(P, 36) features and (P,) sharpness of the 96x96 patches of an RGB/grey image."""
    import cv2

    luma = grey(image)
    rows, cols = luma.shape[0] // PATCH, luma.shape[1] // PATCH
    if rows == 0 or cols == 0:
        raise ValueError(f"NIQE needs at least {PATCH}x{PATCH} pixels, got {luma.shape[:2]}")
    luma = luma[: rows * PATCH, : cols * PATCH]
    half = cv2.resize(luma, (cols * PATCH // 2, rows * PATCH // 2), interpolation=cv2.INTER_AREA)
    full_mscn, full_sigma = mscn(luma)
    half_mscn, _ = mscn(half)
    features, sharpness = [], []
    for r in range(rows):
        for c in range(cols):
            big = (slice(r * PATCH, (r + 1) * PATCH), slice(c * PATCH, (c + 1) * PATCH))
            small = (
                slice(r * PATCH // 2, (r + 1) * PATCH // 2),
                slice(c * PATCH // 2, (c + 1) * PATCH // 2),
            )
            features.append(patch_features(full_mscn[big]) + patch_features(half_mscn[small]))
            sharpness.append(float(full_sigma[big].mean()))
    return np.array(features), np.array(sharpness)


@dataclass(frozen=True)
class PristineModel:
    mu: np.ndarray  # (36,)
    cov: np.ndarray  # (36, 36)
    patches: int

    def save(self, path: str | os.PathLike) -> Path:
        from ..io.images import atomic_write_bytes

        buffer = io.BytesIO()
        np.savez(buffer, mu=self.mu, cov=self.cov, patches=self.patches, kind="faceprior-niqe")
        atomic_write_bytes(path, buffer.getvalue())
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> PristineModel:
        with np.load(path, allow_pickle=False) as data:
            if "kind" not in data or str(data["kind"]) != "faceprior-niqe":
                raise ValueError(f"{path}: not a faceprior NIQE model (.npz with mu, cov)")
            return cls(data["mu"], data["cov"], int(data["patches"]))


def selected_features(image: np.ndarray) -> np.ndarray:
    """Features of the patches sharp enough to describe pristine statistics."""
    features, sharpness = image_features(image)
    return features[sharpness > SHARPNESS_THRESHOLD * sharpness.max()]


def fit_pristine(images: Iterable[np.ndarray]) -> PristineModel:
    """Mean and covariance of the sharp patches' features over a set of pristine images."""
    chosen = [selected_features(image) for image in images]
    stacked = np.concatenate(chosen) if chosen else np.zeros((0, 36))
    if stacked.shape[0] < 2:
        raise ValueError("NIQE fitting needs at least 2 sharp patches (give more/larger images)")
    return PristineModel(stacked.mean(0), np.cov(stacked, rowvar=False), stacked.shape[0])


def niqe(image: np.ndarray, model: PristineModel) -> float:
    """NIQE score of one image (lower is closer to the pristine statistics)."""
    features, _ = image_features(image)
    features = features[np.all(np.isfinite(features), axis=1)]
    mu = features.mean(0)
    cov = np.cov(features, rowvar=False) if features.shape[0] > 1 else np.zeros_like(model.cov)
    diff = model.mu - mu
    return float(np.sqrt(diff @ np.linalg.pinv((model.cov + cov) / 2) @ diff))
