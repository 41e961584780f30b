"""NIQE: distribution fits vs SciPy/NumPy references, fitted model vs a direct computation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage, special, stats

from faceprior.metrics.niqe import (
    PATCH,
    PristineModel,
    fit_aggd,
    fit_ggd,
    fit_pristine,
    image_features,
    mscn,
    niqe,
    selected_features,
)


@pytest.mark.parametrize("shape", [0.8, 2.0, 3.5])
def test_ggd_fit_recovers_scipy_gennorm_shape(shape):
    sample = stats.gennorm.rvs(shape, scale=0.7, size=200_000, random_state=1)
    alpha, variance = fit_ggd(sample)
    assert alpha == pytest.approx(shape, rel=0.05)
    assert variance == pytest.approx(stats.gennorm.var(shape, scale=0.7), rel=0.02)


def test_aggd_fit_matches_direct_moment_formulas():
    rng = np.random.default_rng(0)
    x = np.concatenate([-np.abs(rng.laplace(0, 0.5, 50_000)), np.abs(rng.laplace(0, 1.0, 50_000))])
    shape, mean, left_var, right_var = fit_aggd(x)
    assert left_var == pytest.approx(np.mean(x[x < 0] ** 2))
    assert right_var == pytest.approx(np.mean(x[x > 0] ** 2))
    # Direct brute-force moment match with scipy's gamma function.
    gl, gr = np.sqrt(left_var), np.sqrt(right_var)
    g = gl / gr
    r_hat = np.mean(np.abs(x)) ** 2 / np.mean(x**2)
    r_norm = r_hat * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2
    grid = np.arange(0.2, 10.0 + 1e-9, 0.001)
    ratio = special.gamma(2 / grid) ** 2 / (special.gamma(1 / grid) * special.gamma(3 / grid))
    want = grid[np.argmin(np.abs(ratio - r_norm))]
    assert shape == pytest.approx(want, abs=1e-9)
    assert shape == pytest.approx(1.0, abs=0.1)  # Laplacian halves
    const = np.sqrt(special.gamma(1 / want) / special.gamma(3 / want))
    assert mean == pytest.approx(
        (gr - gl) * special.gamma(2 / want) / special.gamma(1 / want) * const
    )


def test_mscn_matches_scipy_filtering():
    rng = np.random.default_rng(2)
    image = rng.uniform(0, 255, (20, 24))
    x = np.arange(7) - 3
    g = np.exp(-(x**2) / (2 * (7 / 6) ** 2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    mu = ndimage.correlate(image, w, mode="nearest")
    sigma = np.sqrt(np.abs(ndimage.correlate(image**2, w, mode="nearest") - mu**2))
    got, got_sigma = mscn(image)
    np.testing.assert_allclose(got, (image - mu) / (sigma + 1), atol=1e-9)
    np.testing.assert_allclose(got_sigma, sigma, atol=1e-9)


def _textured(seed, size=PATCH * 2, blur=0.0):
    rng = np.random.default_rng(seed)
    image = ndimage.gaussian_filter(rng.uniform(0, 255, (size, size, 3)), (1.0, 1.0, 0))
    if blur:
        image = ndimage.gaussian_filter(image, (blur, blur, 0))
    return image


def test_fitted_model_equals_direct_mean_and_covariance(tmp_path):
    images = [_textured(s) for s in range(3)]
    model = fit_pristine(images)
    direct = []
    for image in images:
        features, sharpness = image_features(image)
        assert features.shape == (4, 36)
        direct.append(features[sharpness > 0.75 * sharpness.max()])
    stacked = np.concatenate(direct)
    np.testing.assert_allclose(model.mu, stacked.mean(0))
    np.testing.assert_allclose(model.cov, np.cov(stacked, rowvar=False))
    assert model.patches == stacked.shape[0] == sum(len(selected_features(i)) for i in images)
    loaded = PristineModel.load(model.save(tmp_path / "niqe.npz"))
    np.testing.assert_array_equal(loaded.cov, model.cov)


def test_niqe_is_larger_for_blurred_images_and_rejects_tiny_ones(tmp_path):
    model = fit_pristine([_textured(s) for s in range(4)])
    sharp = niqe(_textured(10), model)
    blurred = niqe(_textured(10, blur=3.0), model)
    assert blurred > sharp
    with pytest.raises(ValueError, match="96x96"):
        niqe(np.zeros((50, 200, 3)), model)
    np.savez(tmp_path / "other.npz", mu=np.zeros(3))
    with pytest.raises(ValueError, match="not a faceprior NIQE"):
        PristineModel.load(tmp_path / "other.npz")
