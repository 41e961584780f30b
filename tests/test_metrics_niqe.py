"""NIQE with MATLAB's conventions, against an independent SciPy/NumPy reference of the release.

The reference below follows the MATLAB release's ``computequality``/``computefeature``/
``estimateaggdparam`` and ``imresize`` step by step with different tools (SciPy's ``convolve``
with nearest borders, ``np.roll``, SciPy's gamma function, an explicit per-pixel resize loop),
so the two implementations share no code.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from conftest import shared_path
from scipy import ndimage, special

from faceprior.metrics.niqe import (
    PristineModel,
    fit_aggd,
    fit_pristine,
    gaussian_window,
    grey,
    image_features,
    imresize_half,
    matlab_model,
    niqe,
    selected_features,
)

GAM = np.linspace(0.2, 10.0, 9801)


def _ref_aggd(x):
    x = x.ravel()
    left = np.sqrt(np.mean(x[x < 0] ** 2))
    right = np.sqrt(np.mean(x[x > 0] ** 2))
    g = left / right
    r_hat = np.mean(np.abs(x)) ** 2 / np.mean(x**2)
    r_norm = r_hat * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2
    r_gam = special.gamma(2 / GAM) ** 2 / (special.gamma(1 / GAM) * special.gamma(3 / GAM))
    alpha = GAM[np.argmin((r_gam - r_norm) ** 2)]
    c = np.sqrt(special.gamma(1 / alpha) / special.gamma(3 / alpha))
    return alpha, left * c, right * c


def _ref_block(block):
    alpha, bl, br = _ref_aggd(block)
    feat = [alpha, (bl + br) / 2]
    for shift in ([0, 1], [1, 0], [1, 1], [-1, 1]):  # MATLAB's circshift offsets
        alpha, bl, br = _ref_aggd(block * np.roll(block, shift, axis=(0, 1)))
        feat += [alpha, (br - bl) * special.gamma(2 / alpha) / special.gamma(1 / alpha), bl, br]
    return feat


def _ref_imresize_half(image):
    """MATLAB imresize(image, 0.5), bicubic + antialias, one output pixel at a time."""

    def cubic(x):
        a = abs(x)
        if a <= 1:
            return 1.5 * a**3 - 2.5 * a**2 + 1
        return -0.5 * a**3 + 2.5 * a**2 - 4 * a + 2 if a <= 2 else 0.0

    def along(vector):
        n = len(vector)
        out = []
        for i in range(1, math.ceil(n / 2) + 1):
            centre = 2 * i - 0.5
            taps = range(math.floor(centre - 4), math.floor(centre - 4) + 10)
            weights = [0.5 * cubic(0.5 * (centre - j)) for j in taps]
            values = []
            for j in taps:
                k = (j - 1) % (2 * n)
                values.append(vector[k if k < n else 2 * n - 1 - k])
            out.append(np.dot(weights, values) / sum(weights))
        return np.array(out)

    rows = np.stack([along(column) for column in image.T], axis=1)
    return np.stack([along(row) for row in rows])


def _ref_niqe(rgb, mu_p, cov_p, window):
    im = np.floor(
        rgb @ np.linalg.inv([[1, 0.956, 0.621], [1, -0.272, -0.647], [1, -1.106, 1.703]])[0] + 0.5
    )
    rows, cols = im.shape[0] // 96, im.shape[1] // 96
    im = im[: rows * 96, : cols * 96]
    feats = []
    for scale in (1, 2):
        mu = ndimage.convolve(im, window, mode="nearest")
        sigma = np.sqrt(np.abs(ndimage.convolve(im * im, window, mode="nearest") - mu * mu))
        norm = (im - mu) / (sigma + 1)
        size = 96 // scale
        feats.append(
            [
                _ref_block(norm[r * size : (r + 1) * size, c * size : (c + 1) * size])
                for c in range(cols)
                for r in range(rows)
            ]
        )
        im = _ref_imresize_half(im)
    dist = np.concatenate([np.array(f) for f in feats], axis=1)
    mu_d = np.nanmean(dist, axis=0)
    cov_d = np.cov(dist[~np.isnan(dist).any(axis=1)], rowvar=False)
    diff = mu_p - mu_d
    return float(np.sqrt(diff @ np.linalg.pinv((cov_p + cov_d) / 2) @ diff))


def _face(name="ffhq_00001.jpg", size=192):
    bgr = cv2.imread(str(shared_path(f"data/hq/{name}")))
    return cv2.resize(bgr, (size, size), interpolation=cv2.INTER_AREA)[..., ::-1].astype(float)


def test_imresize_half_matches_the_matlab_formula():
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, (14, 22))
    np.testing.assert_allclose(imresize_half(image), _ref_imresize_half(image), atol=1e-9)
    np.testing.assert_allclose(imresize_half(np.full((10, 12), 7.0)), np.full((5, 6), 7.0))


def test_aggd_fit_matches_reference_and_is_nan_for_one_sided_blocks():
    rng = np.random.default_rng(1)
    x = np.concatenate([-np.abs(rng.laplace(0, 0.5, 5000)), np.abs(rng.laplace(0, 1.0, 5000))])
    np.testing.assert_allclose(fit_aggd(x), _ref_aggd(x), rtol=1e-9)
    assert fit_aggd(x)[0] == pytest.approx(1.0, abs=0.15)  # Laplacian halves: shape 1
    assert all(math.isnan(v) for v in fit_aggd(np.abs(x)))


def test_matlab_model_and_score_match_the_reference_on_a_real_face():
    model = matlab_model()
    assert model.mu.shape == (36,) and model.cov.shape == (36, 36)
    np.testing.assert_allclose(model.window, gaussian_window(), atol=1e-12)
    rgb = _face()
    want = _ref_niqe(rgb, model.mu, model.cov, model.window)
    assert niqe(rgb, model) == pytest.approx(want, rel=1e-6)
    features, _ = image_features(rgb, model.window)
    assert features.shape == (4, 36)


def test_niqe_ranks_a_sharp_face_above_its_blurred_copy():
    model = matlab_model()
    sharp = _face(size=384)
    blurred = cv2.GaussianBlur(sharp, (0, 0), 2.5)
    assert 2.0 < niqe(sharp, model) < niqe(blurred, model)
    with pytest.raises(ValueError, match="96x96"):
        niqe(np.zeros((50, 200, 3)), model)


def test_grey_is_matlab_rgb2gray_rounded():
    rgb = np.array([[[255.0, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]]])
    np.testing.assert_array_equal(grey(rgb), [[76, 150, 29, 18]])


def _textured(seed, size=192, blur=0.0):
    rng = np.random.default_rng(seed)
    image = ndimage.gaussian_filter(rng.uniform(0, 255, (size, size, 3)), (1.0, 1.0, 0))
    return ndimage.gaussian_filter(image, (blur, blur, 0)) if blur else image


def test_fitted_model_equals_direct_mean_and_covariance(tmp_path):
    images = [_textured(s) for s in range(3)]
    model = fit_pristine(images)
    direct = []
    for image in images:
        features, sharpness = image_features(image)
        direct.append(features[sharpness > 0.75 * sharpness.max()])
    stacked = np.concatenate(direct)
    np.testing.assert_allclose(model.mu, stacked.mean(0))
    np.testing.assert_allclose(model.cov, np.cov(stacked, rowvar=False))
    assert model.patches == stacked.shape[0] == sum(len(selected_features(i)) for i in images)
    loaded = PristineModel.load(model.save(tmp_path / "niqe.npz"))
    np.testing.assert_array_equal(loaded.cov, model.cov)
    assert niqe(_textured(9, blur=3.0), model) > niqe(_textured(9), model)


def test_model_files_of_other_kinds_are_refused(tmp_path):
    np.savez(tmp_path / "other.npz", mu=np.zeros(3))
    with pytest.raises(ValueError, match="not a NIQE model"):
        PristineModel.load(tmp_path / "other.npz")
    np.savez(tmp_path / "old.npz", mu=np.zeros(36), cov=np.eye(36), kind="faceprior-niqe")
    with pytest.raises(ValueError, match="fit it again"):
        PristineModel.load(tmp_path / "old.npz")
