"""Alignment: templates, Umeyama fit, GPEN's reference warps, borders, inverse matrix."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import shared_path

from faceprior.face.align import (
    align_face,
    invert_affine,
    similarity_transform,
    template_points,
)

FFHQ_512 = [
    (192.98138, 239.94708),
    (318.90277, 240.1936),
    (256.63416, 314.01935),
    (201.26117, 371.41043),
    (313.08905, 371.15118),
]


@pytest.fixture(scope="module")
def reference():
    return np.load(shared_path("parity/gpen-alignment/reference_alignment.npz"))


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


@pytest.mark.parametrize("size", [256, 512, 1024, 2048])
def test_gpen_template_matches_official(reference, size):
    np.testing.assert_allclose(
        template_points("gpen", size), reference[f"reference_5pts_{size}"], rtol=0, atol=1e-9
    )


def test_ffhq_template_scales_with_size():
    np.testing.assert_allclose(template_points("ffhq", 512), FFHQ_512, atol=1e-12)
    np.testing.assert_allclose(template_points("ffhq", 256), np.array(FFHQ_512) / 2, atol=1e-12)
    with pytest.raises(ValueError, match="known: celeba, ffhq, gpen"):
        template_points("arcface", 112)
    with pytest.raises(ValueError):
        template_points("ffhq", 0)


@pytest.mark.parametrize("size", [256, 512])
def test_warp_matches_gpen_reference(reference, size):
    image = reference["warp_source_image"]
    landmarks = reference[f"warp_landmarks10_{size}"].reshape(2, 5).T  # x1..x5, y1..y5
    crop, matrix, inverse = align_face(image, landmarks, "gpen", size)
    expected = reference[f"warp_tfm_{size}"]
    # The official fit runs in float32 arithmetic and ours in float64: the difference is
    # float32 rounding (about 1e-7 relative), far below a pixel.
    np.testing.assert_allclose(matrix[:, :2], expected[:, :2], rtol=0, atol=1e-6)
    np.testing.assert_allclose(matrix[:, 2], expected[:, 2], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(inverse, reference[f"warp_tfm_inv_{size}"], rtol=1e-6, atol=1e-5)
    assert crop.shape == (size, size, 3) and crop.dtype == np.uint8
    difference = np.abs(crop.astype(int) - reference[f"warp_crop_{size}"])
    assert difference.max() <= 1
    assert (difference > 0).mean() < 1e-3


def test_umeyama_recovers_a_similarity():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 500, (5, 2))
    angle, scale, shift = 0.4, 1.7, np.array([-30.0, 12.5])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = src @ (scale * rotation).T + shift
    matrix = similarity_transform(src, dst)
    np.testing.assert_allclose(matrix[:, :2], scale * rotation, atol=1e-10)
    np.testing.assert_allclose(matrix[:, 2], shift, atol=1e-8)
    np.testing.assert_allclose(_apply(invert_affine(matrix), dst), src, atol=1e-8)


def test_mirrored_points_give_a_rotation_not_a_reflection():
    src = template_points("ffhq", 512)
    mirrored = src * [-1.0, 1.0]
    matrix = similarity_transform(src, mirrored)
    assert np.linalg.det(matrix[:, :2]) > 0
    unconstrained, *_ = np.linalg.lstsq(np.c_[src, np.ones(5)], mirrored, rcond=None)
    assert np.linalg.det(unconstrained[:2].T) < 0  # the best affine fit would mirror


def test_degenerate_and_bad_landmarks():
    with pytest.raises(ValueError, match="one point"):
        similarity_transform(np.ones((5, 2)), template_points("gpen", 512))
    with pytest.raises(ValueError, match="NaN"):
        similarity_transform(np.full((5, 2), np.nan), template_points("gpen", 512))
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        align_face(np.zeros((64, 64, 3), np.uint8), np.zeros(10), "gpen", 64)
    with pytest.raises(ValueError, match="5 landmarks"):
        align_face(np.zeros((64, 64, 3), np.uint8), np.eye(4, 2), "gpen", 64)
    with pytest.raises(ValueError, match="image"):
        align_face(None, template_points("gpen", 64), "gpen", 64)


def test_border_options_and_paste_back(reference):
    image = reference["warp_source_image"]
    # A face near the top-left corner so the crop leaves the photo.
    landmarks = template_points("ffhq", 512) * 0.3 - [40.0, 60.0]
    black, matrix, inverse = align_face(image, landmarks, "ffhq", 256)
    assert (black[0] == 0).all()
    grey, _, _ = align_face(image, landmarks, "ffhq", 256, border_value=128)
    assert (grey[0] == 128).all()
    reflected, _, _ = align_face(image, landmarks, "ffhq", 256, border_mode=cv2.BORDER_REFLECT)
    assert not np.array_equal(reflected, black)
    # The crop lands the landmarks on the template; the inverse maps them back.
    np.testing.assert_allclose(_apply(matrix, landmarks), template_points("ffhq", 256), atol=1e-3)
    np.testing.assert_allclose(_apply(inverse, template_points("ffhq", 256)), landmarks, atol=1e-3)
    pasted = cv2.warpAffine(black, inverse, (image.shape[1], image.shape[0]))
    inside = pasted[70:90, 30:50].astype(int)
    assert np.abs(inside - image[70:90, 30:50]).mean() < 10  # paste-back restores the region


def test_celeba_template_is_the_training_crop_of_the_celeba_subset():
    """Scaled to 128 px the measured CelebA crop sits within 1.5 px of the FFHQ template."""
    np.testing.assert_allclose(
        template_points("celeba", 128), template_points("ffhq", 128), atol=1.5
    )
    eyes = template_points("celeba", 155)[:2]
    assert abs(np.linalg.norm(eyes[1] - eyes[0]) - 38.7) < 0.1  # MANIFEST.md eye distance
