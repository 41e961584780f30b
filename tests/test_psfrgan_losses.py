"""PSFR-GAN training losses: semantic-aware style loss, hinge, feature matching."""

from __future__ import annotations

import pytest
import torch

from faceprior.models.vgg import VGGFeatures
from faceprior.train.losses.psfrgan import (
    RegionStyleLoss,
    d_hinge_loss,
    feature_matching_loss,
    g_hinge_loss,
    pixel_loss,
    region_grams,
    region_style_distance,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def halves_mask(batch: int = 2, size: int = 32) -> torch.Tensor:
    """Skin (1) on the left half, hair (13) on the right half; other regions absent."""
    mask = torch.zeros(batch, 19, size, size)
    mask[:, 1, :, : size // 2] = 1
    mask[:, 13, :, size // 2 :] = 1
    return mask


@pytest.fixture(scope="module")
def style_loss() -> RegionStyleLoss:
    torch.manual_seed(0)
    return RegionStyleLoss(VGGFeatures("vgg19"), min_size=0)


def test_style_loss_zero_for_identical_images_positive_otherwise(style_loss):
    target = torch.rand(2, 3, 64, 64) * 2 - 1
    mask = halves_mask(size=64)
    assert style_loss(target.clone(), target, mask).item() == 0.0
    assert style_loss(target.flip(-1), target, mask).item() > 0.0


def test_style_loss_gradients_reach_the_output_only(style_loss):
    target = torch.rand(1, 3, 64, 64) * 2 - 1
    output = (torch.rand(1, 3, 64, 64) * 2 - 1).requires_grad_(True)
    style_loss(output, target, halves_mask(1, 64)).backward()
    assert output.grad is not None and output.grad.abs().sum() > 0
    assert all(p.grad is None for p in style_loss.vgg.parameters())


def test_style_loss_min_size_resizes_small_images():
    torch.manual_seed(0)
    vgg = VGGFeatures("vgg19")
    target = torch.rand(1, 3, 32, 32) * 2 - 1
    output = target.flip(-1)
    mask = halves_mask(1, 32)
    native = RegionStyleLoss(vgg, min_size=0)(output, target, mask)
    resized = RegionStyleLoss(vgg, min_size=64)(output, target, mask)
    # Random VGG weights shrink activations: compare relatively.
    assert not torch.isclose(native, resized, rtol=1e-3, atol=0.0)


def test_region_gram_only_sees_regions_the_mask_has():
    features = torch.randn(2, 4, 8, 8)
    mask = halves_mask(2, 16)
    grams = region_grams(features, mask)
    assert grams.shape == (2, 19, 4, 4)
    absent = [r for r in range(19) if r not in (1, 13)]
    assert torch.all(grams[:, absent] == 0)
    # Features outside a region do not move that region's Gram matrix.
    changed = features.clone()
    changed[..., 4:] += 5.0  # right half = hair only
    new = region_grams(changed, mask)
    assert torch.equal(new[:, 1], grams[:, 1]) and not torch.allclose(new[:, 13], grams[:, 13])


def test_region_gram_normalisation():
    features = torch.ones(1, 2, 4, 4)
    mask = torch.zeros(1, 19, 4, 4)
    mask[:, 5, :2] = 1  # 8 pixels
    gram = region_grams(features, mask)[0, 5]
    assert torch.allclose(gram, torch.full((2, 2), 8 / (2 * 8)))


def test_style_distance_ignores_changes_outside_the_mask():
    real = [torch.randn(1, 4, 8, 8)]
    mask = torch.zeros(1, 19, 8, 8)
    mask[:, 2, :, :4] = 1  # only the left half belongs to any region
    fake = [real[0].clone()]
    fake[0][..., 4:] = 0.0
    assert region_style_distance(fake, real, mask).item() == 0.0
    fake[0][..., 0] += 1.0
    assert region_style_distance(fake, real, mask).item() > 0.0


def _outputs(scores, features):
    return [
        (torch.full((1, 1, 2, 2), s), [torch.full((1, 2, 2, 2), f)])
        for s, f in zip(scores, features, strict=True)
    ]


def test_hinge_losses_match_the_official_formulas():
    real = _outputs([2.0, 0.5], [0.0, 0.0])
    fake = _outputs([-0.5, 0.5], [1.0, 2.0])
    # D: 0.5 * (relu(1 + fake) + relu(1 - real)), averaged over scales.
    expected_d = (0.5 * (0.5 + 0.0) + 0.5 * (1.5 + 0.5)) / 2
    assert d_hinge_loss(real, fake).item() == pytest.approx(expected_d)
    assert g_hinge_loss(fake).item() == pytest.approx(0.0)
    assert g_hinge_loss(_outputs([1.0, 3.0], [0, 0])).item() == pytest.approx(-2.0)


def test_feature_matching_sums_layers_and_averages_scales():
    real = [(torch.zeros(1), [torch.zeros(1, 2), torch.zeros(1, 2)])] * 2
    fake = [
        (torch.zeros(1), [torch.ones(1, 2), torch.full((1, 2), 2.0)]),
        (torch.zeros(1), [torch.zeros(1, 2), torch.zeros(1, 2)]),
    ]
    assert feature_matching_loss(real, fake).item() == pytest.approx((1.0 + 4.0) / 2)


def test_pixel_loss_is_mean_l1():
    assert pixel_loss(torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2, 2), 0.5)).item() == 0.5
