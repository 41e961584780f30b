"""NIQE (Mittal, Soundararajan & Bovik, 2013) as the MATLAB release computes it.

The score of an image is the distance of its natural-scene statistics from a pristine model
(lower is better). By default the model is the MATLAB release's own (``niqe_pris_params.npz``,
shipped in ``faceprior/weights/`` with its Apache-2.0 licence; see :func:`matlab_model`), so
the numbers are comparable with published NIQE values. Conventions, all MATLAB's:

- grey = ``rgb2gray`` of 8-bit RGB, rounded (the NTSC luma row ``0.2989 R + 0.5870 G + 0.1140 B``);
- the image is cropped to whole 96x96 blocks; at each of two scales the mean-subtracted
  contrast-normalised (MSCN) coefficients use the model's 7x7 Gaussian window (sigma 7/6),
  replicate borders and ``C = 1``; the second scale is ``imresize(im, 0.5)`` (bicubic with
  antialiasing, :func:`imresize_half`) and its blocks are 48x48;
- per block, 18 numbers: an asymmetric generalised Gaussian fit (shape, mean of the two
  scales) of the MSCN coefficients, then for the products with the four neighbours (right,
  down, down-right, down-left; circular shifts) shape, mean and the left/right scales;
- the image's blocks give a mean (NaN-aware) and covariance (rows without NaN), and
  ``sqrt((mu_p - mu)^T pinv((S_p + S) / 2) (mu_p - mu))`` is the score.

:func:`fit_pristine` fits a model of the same kind from a folder of pristine images (blocks
whose mean local deviation exceeds 0.75 of the image's sharpest, as MATLAB's fitting does).
BasicSR computes the same features on the BT.601 Y channel (``convert_to='y'``) instead of
``rgb2gray``: its scores differ from these in the second decimal.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, MetricError

BLOCK = 96
SHARPNESS_THRESHOLD = 0.75
SHAPES = np.linspace(0.2, 10.0, 9801)  # MATLAB's 0.2:0.001:10
NEIGHBOURS = ((0, 1), (1, 0), (1, 1), (1, -1))
# First row of inv([1 0.956 0.621; 1 -0.272 -0.647; 1 -1.106 1.703]): MATLAB's rgb2gray.
RGB2GRAY = np.linalg.inv(
    np.array([[1.0, 0.956, 0.621], [1.0, -0.272, -0.647], [1.0, -1.106, 1.703]])
)[0]
MODEL_KIND = "faceprior-niqe-matlab"


def _gamma(x: np.ndarray) -> np.ndarray:
    return np.exp(np.vectorize(math.lgamma)(x))


_G1, _G2, _G3 = _gamma(1 / SHAPES), _gamma(2 / SHAPES), _gamma(3 / SHAPES)
AGGD_RATIO = _G2**2 / (_G1 * _G3)


def grey(image: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2gray`` of an 8-bit-valued RGB image, rounded; a 2-D image as it is."""
    image = np.asarray(image, np.float64)
    if image.ndim == 2:
        return image
    return np.floor(image[..., :3] @ RGB2GRAY + 0.5)


def gaussian_window() -> np.ndarray:
    """``fspecial('gaussian', 7, 7/6)`` normalised to sum 1."""
    x = np.arange(7) - 3
    g = np.exp(-(x**2) / (2 * (7 / 6) ** 2))
    w = np.outer(g, g)
    return w / w.sum()


def _cubic(x: np.ndarray) -> np.ndarray:
    a = np.abs(x)
    near = (1.5 * a**3 - 2.5 * a**2 + 1) * (a <= 1)
    far = (-0.5 * a**3 + 2.5 * a**2 - 4 * a + 2) * ((a > 1) & (a <= 2))
    return near + far


def imresize_weights(length: int) -> np.ndarray:
    """(ceil(length / 2), length) matrix of MATLAB's ``imresize(x, 0.5)`` along one axis.

    Bicubic kernel widened by 2 for antialiasing, output pixel ``i`` (1-based) centred at
    input ``2 i - 0.5``, mirrored borders, weights normalised per output pixel.
    """
    scale = 0.5
    width = 4 / scale
    out = math.ceil(length * scale)
    u = np.arange(1, out + 1) / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = int(math.ceil(width)) + 2
    indices = left[:, None] + np.arange(taps)[None, :]
    weights = scale * _cubic(scale * (u[:, None] - indices))
    weights /= weights.sum(1, keepdims=True)
    mirror = np.concatenate([np.arange(length), np.arange(length)[::-1]])
    columns = mirror[(indices.astype(int) - 1) % (2 * length)]
    matrix = np.zeros((out, length))
    for row in range(out):
        np.add.at(matrix[row], columns[row], weights[row])
    return matrix


def imresize_half(image: np.ndarray) -> np.ndarray:
    """MATLAB ``imresize(image, 0.5)`` (bicubic, antialiased) of a 2-D float image."""
    rows = imresize_weights(image.shape[0])
    cols = imresize_weights(image.shape[1])
    return rows @ image @ cols.T


def mscn(image: np.ndarray, window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MSCN coefficients and the local standard deviation (replicate borders, C = 1)."""
    import cv2

    mu = cv2.filter2D(image, cv2.CV_64F, window, borderType=cv2.BORDER_REPLICATE)
    var = cv2.filter2D(image * image, cv2.CV_64F, window, borderType=cv2.BORDER_REPLICATE)
    sigma = np.sqrt(np.abs(var - mu * mu))
    return (image - mu) / (sigma + 1.0), sigma


def fit_aggd(x: np.ndarray) -> tuple[float, float, float]:
    """Shape, left and right scale of an asymmetric generalised Gaussian (moment matching).

    NaN where a side has no values (a flat block), as MATLAB's empty means give.
    """
    x = np.ravel(x)
    left, right = x[x < 0], x[x > 0]
    if left.size == 0 or right.size == 0:
        return math.nan, math.nan, math.nan
    left_std = math.sqrt(float(np.mean(left * left)))
    right_std = math.sqrt(float(np.mean(right * right)))
    ratio = left_std / right_std
    r_hat = float(np.mean(np.abs(x))) ** 2 / float(np.mean(x * x))
    r_norm = r_hat * (ratio**3 + 1) * (ratio + 1) / (ratio**2 + 1) ** 2
    index = int(np.argmin((AGGD_RATIO - r_norm) ** 2))
    shape = float(SHAPES[index])
    spread = math.sqrt(_G1[index] / _G3[index])
    return shape, left_std * spread, right_std * spread


def block_features(coefficients: np.ndarray) -> list[float]:
    """The 18 statistics of one block of MSCN coefficients."""
    shape, left, right = fit_aggd(coefficients)
    features = [shape, (left + right) / 2]
    for shift in NEIGHBOURS:
        shape, left, right = fit_aggd(coefficients * np.roll(coefficients, shift, axis=(0, 1)))
        if math.isnan(shape):
            features += [math.nan] * 4
            continue
        mean = (right - left) * math.gamma(2 / shape) / math.gamma(1 / shape)
        features += [shape, mean, left, right]
    return features


def image_features(
    image: np.ndarray, window: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(B, 36) features and (B,) sharpness of the 96x96 blocks of an RGB or grey image."""
    window = gaussian_window() if window is None else window
    luma = grey(image)
    rows, cols = luma.shape[0] // BLOCK, luma.shape[1] // BLOCK
    if rows == 0 or cols == 0:
        raise InputError(f"NIQE needs at least {BLOCK}x{BLOCK} pixels, got {luma.shape[:2]}")
    scales = [luma[: rows * BLOCK, : cols * BLOCK]]
    scales.append(imresize_half(scales[0]))
    per_scale, sharpness = [], None
    for level, plane in enumerate(scales):
        coefficients, sigma = mscn(plane, window)
        size = BLOCK >> level
        blocks = [
            (slice(r * size, (r + 1) * size), slice(c * size, (c + 1) * size))
            for r in range(rows)
            for c in range(cols)
        ]
        per_scale.append([block_features(coefficients[b]) for b in blocks])
        if level == 0:
            sharpness = np.array([sigma[b].mean() for b in blocks])
    return np.concatenate([np.array(f) for f in per_scale], axis=1), sharpness


@dataclass(frozen=True)
class PristineModel:
    """Mean (36,) and covariance (36, 36) of pristine block features, and the MSCN window."""

    mu: np.ndarray
    cov: np.ndarray
    window: np.ndarray
    patches: int = 0  # blocks it was fitted from (0: unknown, e.g. the MATLAB model)

    def save(self, path: str | os.PathLike) -> Path:
        from ..io.images import atomic_write_bytes

        buffer = io.BytesIO()
        np.savez(
            buffer,
            mu=self.mu,
            cov=self.cov,
            window=self.window,
            patches=self.patches,
            kind=MODEL_KIND,
        )
        atomic_write_bytes(path, buffer.getvalue())
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> PristineModel:
        """A model saved by :meth:`save`, or the BasicSR/MATLAB ``niqe_pris_params.npz``."""
        try:
            data = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise MetricError(f"{path}: not a readable NIQE model (.npz): {error}") from None
        with data:
            if "mu_pris_param" in data and "cov_pris_param" in data:
                window = data["gaussian_window"] if "gaussian_window" in data else gaussian_window()
                return cls(data["mu_pris_param"].ravel(), data["cov_pris_param"], window)
            if "kind" in data and str(data["kind"]) == MODEL_KIND:
                return cls(data["mu"], data["cov"], data["window"], int(data["patches"]))
            if "kind" in data and str(data["kind"]) == "faceprior-niqe":
                raise MetricError(
                    f"{path}: fitted with faceprior's earlier NIQE features, which are not "
                    f"MATLAB's; fit it again (--niqe-pristine FOLDER --save-niqe-model FILE)"
                )
        raise MetricError(
            f"{path}: not a NIQE model (.npz with mu_pris_param/cov_pris_param, or saved by "
            f"faceprior)"
        )


def matlab_model() -> PristineModel:
    """The MATLAB release's pristine model, shipped with faceprior (sha256-checked)."""
    from .weights import locate

    return PristineModel.load(locate("niqe-matlab"))


def selected_features(image: np.ndarray, window: np.ndarray | None = None) -> np.ndarray:
    """Features of the blocks sharp enough to describe pristine statistics."""
    features, sharpness = image_features(image, window)
    return features[sharpness > SHARPNESS_THRESHOLD * sharpness.max()]


def fit_pristine(images: Iterable[np.ndarray]) -> PristineModel:
    """Mean and covariance of the sharp blocks' features over a set of pristine images."""
    window = gaussian_window()
    chosen = [selected_features(image, window) for image in images]
    stacked = np.concatenate(chosen) if chosen else np.zeros((0, 36))
    stacked = stacked[np.all(np.isfinite(stacked), axis=1)]
    if stacked.shape[0] < 2:
        raise InputError("NIQE fitting needs at least 2 sharp blocks (give more/larger images)")
    return PristineModel(stacked.mean(0), np.cov(stacked, rowvar=False), window, len(stacked))


def niqe(image: np.ndarray, model: PristineModel) -> float:
    """NIQE score of one image (lower is closer to the pristine statistics)."""
    features, _ = image_features(image, model.window)
    if np.all(np.isnan(features).any(axis=1)):
        return math.nan
    mu = np.nanmean(features, axis=0)
    complete = features[~np.isnan(features).any(axis=1)]
    cov = np.cov(complete, rowvar=False) if len(complete) > 1 else np.zeros_like(model.cov)
    diff = model.mu - mu
    return float(np.sqrt(diff @ np.linalg.pinv((model.cov + cov) / 2) @ diff))
