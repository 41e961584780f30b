"""Training losses and EMA against hand computations."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import shared_path
from torch.nn import functional as F

from faceprior.train.ema import EMA, gpen_decay
from faceprior.train.losses.gan import (
    d_hinge_loss,
    d_logistic_loss,
    feature_matching_loss,
    g_hinge_loss,
    g_nonsaturating_loss,
    path_length_penalty,
    r1_penalty,
)
from faceprior.train.losses.pixel import pixel_loss
from faceprior.train.tasks.gpen import lazy_adam


def test_logistic_losses_match_hand_values():
    real = torch.tensor([[2.0], [-1.0]])
    fake = torch.tensor([[0.5], [-3.0]])
    softplus = lambda v: math.log1p(math.exp(v))  # noqa: E731
    expected_d = (softplus(-2.0) + softplus(1.0)) / 2 + (softplus(0.5) + softplus(-3.0)) / 2
    assert d_logistic_loss(real, fake).item() == pytest.approx(expected_d, rel=1e-6)
    expected_g = (softplus(-0.5) + softplus(3.0)) / 2
    assert g_nonsaturating_loss(fake).item() == pytest.approx(expected_g, rel=1e-6)


def test_hinge_losses_match_hand_values():
    real = torch.tensor([0.5, 2.0])
    fake = torch.tensor([-2.0, 0.25])
    assert d_hinge_loss(real, fake).item() == pytest.approx((0.5 + 0.0) / 2 + (0.0 + 1.25) / 2)
    assert g_hinge_loss(fake).item() == pytest.approx(0.875)


def test_r1_penalty_of_a_linear_discriminator_is_the_squared_weight_norm():
    torch.manual_seed(0)
    weight = torch.randn(3, 4, 4)
    images = torch.randn(5, 3, 4, 4, requires_grad=True)
    logits = (images * weight).flatten(1).sum(1, keepdim=True)
    # d logit / d x = weight for every sample: penalty = ||w||^2.
    assert r1_penalty(logits, images).item() == pytest.approx(weight.pow(2).sum().item(), rel=1e-5)


def test_r1_penalty_of_a_quadratic_discriminator():
    images = torch.tensor([[[[1.0, 2.0]]], [[[3.0, -1.0]]]], requires_grad=True)
    logits = images.pow(2).flatten(1).sum(1)  # grad 2x, ||2x||^2 = 4 * sum x^2
    expected = (4 * (1 + 4) + 4 * (9 + 1)) / 2
    assert r1_penalty(logits, images).item() == pytest.approx(expected)


def test_path_length_penalty_of_a_linear_generator():
    torch.manual_seed(0)
    batch, dim, size = 3, 6, 4
    matrix = torch.randn(3 * size * size, dim)
    latents = torch.randn(batch, dim, requires_grad=True)
    images = (latents @ matrix.T).view(batch, 3, size, size)
    torch.manual_seed(1)
    penalty, new_mean, mean_length = path_length_penalty(images, latents, torch.tensor(0.5), 0.01)
    torch.manual_seed(1)
    noise = torch.randn(batch, 3, size, size) / math.sqrt(size * size)
    lengths = (noise.view(batch, -1) @ matrix).norm(dim=1)  # ||J^T y|| with J = matrix
    expected_mean = 0.5 + 0.01 * (lengths.mean() - 0.5)
    assert mean_length.item() == pytest.approx(lengths.mean().item(), rel=1e-5)
    assert new_mean.item() == pytest.approx(expected_mean.item(), rel=1e-5)
    assert penalty.item() == pytest.approx((lengths - expected_mean).pow(2).mean().item(), rel=1e-5)


def test_path_length_with_per_layer_latents_averages_squared_norms():
    latents = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]], requires_grad=True)  # (1, 2 layers, 2)
    images = latents.sum().view(1, 1, 1, 1)  # J^T y = y for every entry
    torch.manual_seed(3)
    _, _, length = path_length_penalty(images, latents, torch.tensor(0.0), 0.0)
    torch.manual_seed(3)
    y = torch.randn(1, 1, 1, 1).item()
    assert length.item() == pytest.approx(math.sqrt((2 * y * y + 2 * y * y) / 2), rel=1e-5)


def test_feature_matching_averages_layers_then_scales():
    fake = [[torch.zeros(1, 2), torch.ones(1, 2)], [torch.full((1, 3), 2.0)]]
    real = [[torch.ones(1, 2), torch.ones(1, 2)], [torch.zeros(1, 3)]]
    # scale 0: (1 + 0) / 2 = 0.5; scale 1: 2; mean 1.25
    assert feature_matching_loss(fake, real).item() == pytest.approx(1.25)


def test_pixel_losses():
    out = torch.tensor([0.0, 3.0])
    target = torch.tensor([0.5, 0.0])
    assert pixel_loss("l1", out, target).item() == pytest.approx(1.75)
    # smooth L1 (beta 1): 0.5 * 0.5^2 = 0.125; 3 - 0.5 = 2.5 -> mean 1.3125
    assert pixel_loss("smooth_l1", out, target).item() == pytest.approx(1.3125)
    assert pixel_loss("mse", out, target).item() == pytest.approx((0.25 + 9) / 2)
    with pytest.raises(ValueError, match="unknown pixel loss"):
        pixel_loss("l3", out, target)


def test_ema_update_follows_the_formula():
    net = torch.nn.Linear(2, 1)
    with torch.no_grad():
        net.weight.fill_(1.0)
        net.bias.fill_(0.0)
    ema = EMA(net, decay=0.9)
    with torch.no_grad():
        net.weight.fill_(2.0)
        net.bias.fill_(-1.0)
    ema.update()
    assert torch.allclose(ema.average.weight, torch.full((1, 2), 0.9 * 1 + 0.1 * 2))
    ema.update()
    expected = 0.9 * (0.9 + 0.2) + 0.1 * 2.0
    assert torch.allclose(ema.average.weight, torch.full((1, 2), expected))
    assert torch.allclose(ema.average.bias, torch.tensor([0.9 * -0.1 - 0.1]))
    assert not any(p.requires_grad for p in ema.average.parameters())
    assert gpen_decay() == pytest.approx(0.997784, abs=1e-6)
    with pytest.raises(ValueError):
        EMA(net, 1.5)


def test_lazy_adam_scaling_of_gpen():
    params = [torch.nn.Parameter(torch.zeros(1))]
    g_optim = lazy_adam(params, 0.002, 4)
    d_optim = lazy_adam(params, 0.002, 16)
    assert g_optim.param_groups[0]["lr"] == pytest.approx(0.002 * 4 / 5)
    assert g_optim.param_groups[0]["betas"] == (0.0, pytest.approx(0.99 ** (4 / 5)))
    assert d_optim.param_groups[0]["lr"] == pytest.approx(0.002 * 16 / 17)


def test_missing_loss_weights_are_an_error(tmp_path):
    from faceprior.train.losses.identity import IdentityLoss
    from faceprior.train.losses.perceptual import PerceptualLoss

    with pytest.raises(FileNotFoundError, match="torchvision-layout vgg19"):
        PerceptualLoss(tmp_path / "missing.pth")
    with pytest.raises(FileNotFoundError, match="identity loss needs"):
        IdentityLoss("")


def test_perceptual_loss_with_a_saved_vgg(tmp_path):
    from faceprior.models.vgg import VGGFeatures
    from faceprior.train.losses.perceptual import PerceptualLoss

    torch.manual_seed(0)
    path = tmp_path / "vgg16.pth"
    torch.save(VGGFeatures("vgg16").state_dict(), path)
    loss = PerceptualLoss(path, "vgg16", layers=("relu1_2", "relu2_2"), layer_weights=(1.0, 0.5))
    image = torch.rand(1, 3, 16, 16) * 2 - 1
    assert loss(image, image).item() == 0.0
    other = (image + 0.3).clamp(-1, 1).requires_grad_(True)
    value = loss(other, image)
    value.backward()
    assert value.item() > 0 and other.grad.abs().sum() > 0
    features = loss.vgg((other.detach() + 1) / 2, ("relu1_2", "relu2_2"))
    target = loss.vgg((image + 1) / 2, ("relu1_2", "relu2_2"))
    expected = F.l1_loss(features["relu1_2"], target["relu1_2"]) + 0.5 * F.l1_loss(
        features["relu2_2"], target["relu2_2"]
    )
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)


def test_identity_loss_with_mobilefacenet():
    from faceprior.train.losses.identity import IdentityLoss

    weights = shared_path("data/weights/mobilefacenet_casia_068.ckpt")
    loss = IdentityLoss(weights)
    torch.manual_seed(0)
    face = torch.rand(2, 3, 64, 64) * 2 - 1
    assert loss(face, face).item() == pytest.approx(0.0, abs=1e-5)
    other = torch.flip(face, dims=[0]).requires_grad_(True)
    value = loss(other, face)
    value.backward()
    assert 0 < value.item() <= 2 and other.grad.abs().sum() > 0
