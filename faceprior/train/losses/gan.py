"""Adversarial losses and the StyleGAN2 regularisers.

Logistic (non-saturating) GAN with lazy R1 and path-length regularisation as in StyleGAN2 and
GPEN's official ``train_simple.py``; hinge GAN and multi-scale feature matching for the
pix2pixHD-style discriminators of PSFR-GAN and MMRB-GAN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.nn import functional as F


def d_logistic_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """``softplus(-D(real)) + softplus(D(fake))``, each averaged over the batch."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def g_nonsaturating_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """``softplus(-D(fake))``: the generator's non-saturating logistic loss."""
    return F.softplus(-fake_logits).mean()


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor) -> torch.Tensor:
    """Batch mean of ``||d D(x) / d x||^2`` on real images (which must require grad).

    StyleGAN2 weights it by ``gamma / 2 * d_reg_every`` (lazy regularisation).
    """
    (grad,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True)
    return grad.pow(2).reshape(grad.shape[0], -1).sum(1).mean()


def path_length_penalty(
    images: torch.Tensor, latents: torch.Tensor, mean_path_length: torch.Tensor, decay: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """StyleGAN2's path-length regulariser.

    ``y ~ N(0, I) / sqrt(H * W)``; the path length of each sample is ``||J_w^T y||`` (mean of
    the squared norms over latent copies when ``latents`` is (B, n, dim)); its running mean
    ``a`` moves by ``decay``; the penalty is the batch mean of ``(length - a)^2``.
    Returns ``(penalty, new_mean, mean_length)``; ``latents`` must be part of the graph.
    """
    noise = torch.randn_like(images) / math.sqrt(images.shape[2] * images.shape[3])
    (grad,) = torch.autograd.grad((images * noise).sum(), latents, create_graph=True)
    squared = grad.pow(2).sum(-1)
    lengths = torch.sqrt(squared.mean(1) if squared.dim() == 2 else squared)
    # As in StyleGAN2, the new mean keeps its graph inside the penalty (a decay-sized term).
    new_mean = mean_path_length + decay * (lengths.mean() - mean_path_length)
    penalty = (lengths - new_mean).pow(2).mean()
    return penalty, new_mean.detach(), lengths.detach().mean()


def d_hinge_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """``relu(1 - D(real)) + relu(1 + D(fake))``, each averaged."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def g_hinge_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """``-D(fake)`` averaged: the generator side of the hinge GAN."""
    return -fake_logits.mean()


def feature_matching_loss(
    fake_features: Sequence[Sequence[torch.Tensor]],
    real_features: Sequence[Sequence[torch.Tensor]],
) -> torch.Tensor:
    """pix2pixHD feature matching: L1 between discriminator features of fake and real.

    Indexed ``[scale][layer]``; the mean L1 of each layer is averaged over layers, then over
    scales. Real features are treated as constants.
    """
    per_scale = []
    for fake_layers, real_layers in zip(fake_features, real_features, strict=True):
        terms = [
            F.l1_loss(fake, real.detach())
            for fake, real in zip(fake_layers, real_layers, strict=True)
        ]
        per_scale.append(torch.stack(terms).mean())
    return torch.stack(per_scale).mean()
