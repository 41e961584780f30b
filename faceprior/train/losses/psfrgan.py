"""PSFR-GAN's training losses as the official code (enhance_model.py, loss.py) computes them.

Generator: ``10 * L1 + 10 * feature matching + 1 * hinge + 1000 * semantic-aware style``;
discriminator: hinge, halved, averaged over the three scales. The discriminator sees
``cat(image, HQ one-hot parse map)`` for real and fake alike, and the style loss also uses the
HQ parse map. Inputs are the per-scale ``(scores, features)`` pairs of
:class:`~faceprior.models.psfrgan.MultiScaleDiscriminator`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

ScaleOutputs = Sequence[tuple[torch.Tensor, Sequence[torch.Tensor]]]

# VGG19 layers of the style loss. The official feature slices end in torchvision's in-place
# ReLUs, so the first two are post-ReLU while the deepest one is the raw conv5_4 output.
STYLE_LAYERS = ("relu3_4", "relu4_4", "conv5_4")
GRAM_EPS = 1e-8


def pixel_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean L1 in [-1, 1] (the paper says MSE; the released code and model use L1)."""
    return F.l1_loss(output, target)


def g_hinge_loss(fake_outputs: ScaleOutputs) -> torch.Tensor:
    """``-mean(D_k(fake))`` averaged over scales."""
    return torch.stack([-scores.mean() for scores, _ in fake_outputs]).mean()


def d_hinge_loss(real_outputs: ScaleOutputs, fake_outputs: ScaleOutputs) -> torch.Tensor:
    """``0.5 * (mean relu(1 + D_k(fake)) + mean relu(1 - D_k(real)))`` averaged over scales.

    Pass discriminator outputs of a detached fake.
    """
    terms = [
        0.5 * (F.relu(1.0 + fake).mean() + F.relu(1.0 - real).mean())
        for (real, _), (fake, _) in zip(real_outputs, fake_outputs, strict=True)
    ]
    return torch.stack(terms).mean()


def feature_matching_loss(real_outputs: ScaleOutputs, fake_outputs: ScaleOutputs) -> torch.Tensor:
    """Per scale the *sum* over layers of MSE(fake, real.detach()), then the mean over scales."""
    per_scale = []
    for (_, real_features), (_, fake_features) in zip(real_outputs, fake_outputs, strict=True):
        terms = [
            F.mse_loss(fake, real.detach())
            for fake, real in zip(fake_features, real_features, strict=True)
        ]
        per_scale.append(torch.stack(terms).sum())
    return torch.stack(per_scale).mean()


def region_grams(features: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Masked Gram matrices (B, R, C, C) of features (B, C, h, w) for masks (B, R, H, W).

    Masks are nearest-resized to the feature size; region r's Gram is
    ``(F*M_r)(F*M_r)^T / (C * (sum M_r + 1e-8))``, zero when the region is absent.
    """
    batch, channels, height, width = features.shape
    masks = F.interpolate(masks, size=(height, width), mode="nearest")
    grams = []
    for region in range(masks.shape[1]):
        masked = (features * masks[:, region : region + 1]).reshape(batch, channels, -1)
        area = masks[:, region].sum(dim=(1, 2)).view(batch, 1, 1)
        grams.append(masked @ masked.transpose(1, 2) / (channels * (area + GRAM_EPS)))
    return torch.stack(grams, dim=1)


def region_style_distance(
    fake_features: Sequence[torch.Tensor],
    real_features: Sequence[torch.Tensor],
    masks: torch.Tensor,
) -> torch.Tensor:
    """Sum over layers of MSE between masked Grams of fake and (constant) real features."""
    total = masks.new_zeros(())
    for fake, real in zip(fake_features, real_features, strict=True):
        with torch.no_grad():
            target = region_grams(real, masks)
        total = total + F.mse_loss(region_grams(fake, masks), target)
    return total


class RegionStyleLoss(nn.Module):
    """The semantic-aware style loss on VGG19 features of [-1, 1] RGB images.

    ``vgg`` is a :class:`~faceprior.models.vgg.VGGFeatures` (VGG19, ImageNet normalisation
    inside); use :meth:`from_file` with the user's torchvision-layout ``vgg19-*.pth``.
    Images narrower than ``min_size`` are bilinearly resized to it first, as the official
    code does for widths below 224 (the interpolation mode is our choice); 0 disables this.
    """

    def __init__(self, vgg: nn.Module, min_size: int = 224, layers: Sequence[str] = STYLE_LAYERS):
        super().__init__()
        self.vgg = vgg.eval().requires_grad_(False)
        self.min_size = min_size
        self.layers = tuple(layers)

    @classmethod
    def from_file(cls, weights: str | os.PathLike, min_size: int = 224) -> RegionStyleLoss:
        """Load VGG19 features from a torchvision-layout file (required: no download)."""
        from ...models.vgg import load_vgg

        return cls(load_vgg(weights, arch="vgg19"), min_size=min_size)

    def train(self, mode: bool = True) -> RegionStyleLoss:
        super().train(mode)
        self.vgg.eval()
        return self

    def _features(self, image: torch.Tensor) -> list[torch.Tensor]:
        image = (image + 1) / 2
        if image.shape[-1] < self.min_size:
            size = (self.min_size, self.min_size)
            image = F.interpolate(image, size=size, mode="bilinear", align_corners=False)
        found = self.vgg(image, self.layers)
        return [found[name] for name in self.layers]

    def forward(
        self, output: torch.Tensor, target: torch.Tensor, masks: torch.Tensor
    ) -> torch.Tensor:
        """``masks``: (B, 19, H, W) one-hot parse map of the HQ target."""
        with torch.no_grad():
            target_features = self._features(target)
        return region_style_distance(self._features(output), target_features, masks)
