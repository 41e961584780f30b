"""PSNR and SSIM with the conventions of the face-restoration literature.

Convention (as BasicSR-based papers report them): images are uint8-range float64 arrays
(H, W, 3) RGB in [0, 255]; ``crop_border`` pixels are removed on every side first; the Y
channel is ITU-R BT.601 luma with studio range (``16 + (65.481 R + 128.553 G + 24.966 B) / 255``,
MATLAB's ``rgb2ycbcr``), not rounded. SSIM (Wang et al. 2004) uses an 11x11 Gaussian window
(sigma 1.5), K1 = 0.01, K2 = 0.03, L = 255, population (not sample) statistics, only the
positions where the window fits inside the image, and the mean over channels for RGB. These
equal scikit-image's ``structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=255)``, which the tests check.
"""

from __future__ import annotations

import numpy as np

from ..errors import ArgumentError, InputError

Y_COEFFICIENTS = np.array([65.481, 128.553, 24.966]) / 255.0


def to_y(image: np.ndarray) -> np.ndarray:
    """BT.601 studio-range luma (16..235) of an RGB image in [0, 255]."""
    return 16.0 + np.asarray(image, np.float64) @ Y_COEFFICIENTS


def _prepare(a: np.ndarray, b: np.ndarray, crop_border: int, y_channel: bool):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) RGB images, got {a.shape}")
    if crop_border < 0 or 2 * crop_border >= min(a.shape[:2]):
        height, width = a.shape[:2]
        raise ArgumentError("crop_border", f"{crop_border} does not fit a {width}x{height} image")
    if crop_border:
        a = a[crop_border:-crop_border, crop_border:-crop_border]
        b = b[crop_border:-crop_border, crop_border:-crop_border]
    if y_channel:
        a, b = to_y(a)[..., None], to_y(b)[..., None]
    return a, b


def psnr(a: np.ndarray, b: np.ndarray, crop_border: int = 0, y_channel: bool = False) -> float:
    """Peak signal-to-noise ratio in dB (peak 255); ``inf`` for identical images."""
    a, b = _prepare(a, b, crop_border, y_channel)
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    g /= g.sum()
    return np.outer(g, g)


def _filter_valid(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Correlation of a 2-D image with ``window`` where the window fits (no padding)."""
    import cv2

    full = cv2.filter2D(image, cv2.CV_64F, window, borderType=cv2.BORDER_CONSTANT)
    half = window.shape[0] // 2
    return full[half:-half, half:-half]


def _ssim_channel(a: np.ndarray, b: np.ndarray) -> float:
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    window = _gaussian_window()
    mu_a, mu_b = _filter_valid(a, window), _filter_valid(b, window)
    var_a = _filter_valid(a * a, window) - mu_a**2
    var_b = _filter_valid(b * b, window) - mu_b**2
    cov = _filter_valid(a * b, window) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    )
    return float(ssim_map.mean())


def ssim(a: np.ndarray, b: np.ndarray, crop_border: int = 0, y_channel: bool = False) -> float:
    """Structural similarity, mean over channels (see the module docstring for the convention)."""
    a, b = _prepare(a, b, crop_border, y_channel)
    if min(a.shape[:2]) < 11:
        raise InputError(f"SSIM needs at least 11x11 pixels after cropping, got {a.shape[:2]}")
    return float(np.mean([_ssim_channel(a[..., c], b[..., c]) for c in range(a.shape[2])]))
