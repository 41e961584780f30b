"""Image operations the degradation recipes are built from (float32 HWC BGR in [0, 1]).

Every operation is a pure function of its inputs: randomness lives in the recipes, which
draw parameters first and then call these, so a drawn parameter set replays exactly.
"""

from __future__ import annotations

import cv2
import numpy as np

INTERPOLATIONS = {
    "nearest": cv2.INTER_NEAREST,
    "linear": cv2.INTER_LINEAR,
    "area": cv2.INTER_AREA,
    "cubic": cv2.INTER_CUBIC,
}


def gaussian_kernel(size: int, sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """Normalised (size, size) Gaussian with axes sigma_x/sigma_y rotated by theta (radians).

    The covariance is R diag(sx^2, sy^2) R^T, the usual parametrisation of anisotropic blur in
    the GFPGAN-style recipe; sigma_x == sigma_y gives the isotropic kernel.
    """
    if size % 2 == 0 or size < 1:
        raise ValueError(f"kernel size must be a positive odd number, got {size}")
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    covariance = rotation @ np.diag([sigma_x**2, sigma_y**2]) @ rotation.T
    inverse = np.linalg.inv(covariance)
    half = size // 2
    grid = np.arange(-half, half + 1, dtype=np.float64)
    xx, yy = np.meshgrid(grid, grid)
    points = np.stack([xx, yy], axis=-1)
    exponent = np.einsum("...i,ij,...j->...", points, inverse, points)
    kernel = np.exp(-0.5 * exponent)
    return (kernel / kernel.sum()).astype(np.float32)


def motion_kernel(size: int, angle_deg: float, direction: float) -> np.ndarray:
    """Normalised (size, size) line kernel through the centre at ``angle_deg``.

    ``direction`` in [-1, 1] tilts the weights along the line (0 = uniform streak, +-1 = the
    streak fades out towards one end), which models a camera that slowed down or sped up during
    the exposure -- the same knobs PSFR-GAN drew for imgaug's MotionBlur.
    """
    kernel = np.zeros((size, size), dtype=np.float64)
    centre = (size - 1) / 2.0
    t = np.linspace(-1.0, 1.0, 8 * size)
    weights = np.clip(1.0 + direction * t, 0.0, None)
    angle = np.deg2rad(angle_deg)
    xs = np.rint(centre + t * centre * np.cos(angle)).astype(int)
    ys = np.rint(centre + t * centre * np.sin(angle)).astype(int)
    np.add.at(kernel, (ys, xs), weights)
    if kernel.sum() <= 0:  # direction = +-1 leaves one end at zero weight, never the whole line
        kernel[int(centre), int(centre)] = 1.0
    return (kernel / kernel.sum()).astype(np.float32)


def filter2d(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Correlate every channel with ``kernel`` (reflect-101 borders, as cv2.filter2D does)."""
    return cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT_101)


def resize(image: np.ndarray, width: int, height: int, interpolation: str) -> np.ndarray:
    """cv2.resize by interpolation name; keeps a trailing channel axis of size 1."""
    out = cv2.resize(image, (int(width), int(height)), interpolation=INTERPOLATIONS[interpolation])
    if out.ndim == 2 and image.ndim == 3:
        out = out[:, :, None]
    return out


def _tent_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Source indices and weights, each (n_out, taps), of a tent filter widened by the
    downscale factor.

    Widening the tent to the scale factor (and renormalising at the borders) is what makes the
    filter anti-aliased; this is the filter Pillow calls BILINEAR, which reproduces the
    official Panini-Net 16x SR inputs (see docs/degradations.md).
    """
    scale = n_in / n_out
    support = max(scale, 1.0)
    centres = (np.arange(n_out) + 0.5) * scale
    first = np.floor(centres - support).astype(int)
    taps = int(np.ceil(2 * support)) + 2
    index = first[:, None] + np.arange(taps)[None, :]
    weights = np.clip(1.0 - np.abs(index + 0.5 - centres[:, None]) / support, 0.0, None)
    weights[(index < 0) | (index >= n_in)] = 0.0
    weights /= weights.sum(axis=1, keepdims=True)
    return np.clip(index, 0, n_in - 1), weights.astype(np.float32)


def _resample_rows(image: np.ndarray, size: int) -> np.ndarray:
    index, weights = _tent_taps(image.shape[0], size)
    out = np.zeros((size, *image.shape[1:]), dtype=np.float32)
    for tap in range(index.shape[1]):
        out += weights[:, tap, None, None] * image[index[:, tap]]
    return out


def resize_antialiased(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Separable anti-aliased bilinear (tent) resize in float32."""
    out = image.astype(np.float32)
    if out.shape[0] != height:
        out = _resample_rows(out, int(height))
    if out.shape[1] != width:
        out = _resample_rows(np.ascontiguousarray(out.transpose(1, 0, 2)), int(width))
        out = out.transpose(1, 0, 2)
    return np.ascontiguousarray(out)


def resize_to(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Area filter when shrinking, bicubic when enlarging (clipped): the neutral way to change
    the working resolution without adding a degradation of its own."""
    if (image.shape[1], image.shape[0]) == (width, height):
        return image
    shrinking = width * height < image.shape[0] * image.shape[1]
    out = resize(image, width, height, "area" if shrinking else "cubic")
    return np.clip(out, 0.0, 1.0)


def to_gray(image: np.ndarray) -> np.ndarray:
    """BGR -> luma (0.299 R + 0.587 G + 0.114 B) repeated on three channels."""
    gray = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_BGR2GRAY)
    return np.repeat(gray[:, :, None], 3, axis=2)


def gaussian_noise(
    image: np.ndarray, sigma: float, seed: int, per_channel: bool = True
) -> np.ndarray:
    """Add N(0, sigma/255) noise drawn from ``seed`` (shared across channels if not
    ``per_channel``), clipped to [0, 1]. Seeding here keeps a parameter set replayable."""
    height, width, channels = image.shape
    noise = np.random.default_rng(seed).standard_normal(
        (height, width, channels if per_channel else 1)
    )
    return np.clip(image + (sigma / 255.0) * noise.astype(np.float32), 0.0, 1.0)


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode/decode with libjpeg at ``quality`` (8-bit, 4:2:0 as OpenCV and Pillow default)."""
    ok, buffer = cv2.imencode(
        ".jpg", to_uint8(image), [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)]
    )
    if not ok:
        raise RuntimeError(f"JPEG encoding failed at quality {quality}")
    decoded = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    return decoded.astype(np.float32) / 255.0
