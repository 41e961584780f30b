"""PSNR/SSIM against scikit-image on the same inputs."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from faceprior.metrics.psnr_ssim import psnr, ssim, to_y


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    clean = rng.integers(0, 256, (48, 40, 3)).astype(np.float64)
    clean = (clean + np.roll(clean, 1, 0) + np.roll(clean, 1, 1)) / 3  # some structure
    noisy = np.clip(clean + rng.normal(0, 12, clean.shape), 0, 255).round()
    return clean, noisy


def _sk_ssim(a, b, channel_axis):
    return structural_similarity(
        a,
        b,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
        channel_axis=channel_axis,
    )


def test_y_channel_matches_skimage(pair):
    clean, _ = pair
    np.testing.assert_allclose(to_y(clean), rgb2ycbcr(clean / 255.0)[..., 0], atol=1e-9)


@pytest.mark.parametrize("crop", [0, 4])
def test_psnr_matches_skimage(pair, crop):
    a, b = pair
    sl = slice(crop, -crop or None)
    want = peak_signal_noise_ratio(a[sl, sl], b[sl, sl], data_range=255)
    assert psnr(a, b, crop_border=crop) == pytest.approx(want, abs=1e-9)
    want_y = peak_signal_noise_ratio(to_y(a[sl, sl]), to_y(b[sl, sl]), data_range=255)
    assert psnr(a, b, crop_border=crop, y_channel=True) == pytest.approx(want_y, abs=1e-9)


@pytest.mark.parametrize("crop", [0, 4])
def test_ssim_matches_skimage(pair, crop):
    a, b = pair
    sl = slice(crop, -crop or None)
    want = _sk_ssim(a[sl, sl], b[sl, sl], channel_axis=2)
    assert ssim(a, b, crop_border=crop) == pytest.approx(want, abs=1e-7)
    want_y = _sk_ssim(to_y(a[sl, sl]), to_y(b[sl, sl]), channel_axis=None)
    assert ssim(a, b, crop_border=crop, y_channel=True) == pytest.approx(want_y, abs=1e-7)


def test_options_change_results_and_identity_is_perfect(pair):
    a, b = pair
    assert psnr(a, b) != psnr(a, b, crop_border=4)
    assert ssim(a, b) != ssim(a, b, y_channel=True)
    assert psnr(a, a) == float("inf")
    assert ssim(a, a) == pytest.approx(1.0)


def test_bad_inputs_are_rejected(pair):
    a, b = pair
    with pytest.raises(ValueError, match="shape"):
        psnr(a, b[:-1])
    with pytest.raises(ValueError, match="crop_border"):
        ssim(a, b, crop_border=30)
    with pytest.raises(ValueError, match="RGB"):
        psnr(a[..., 0], b[..., 0])
