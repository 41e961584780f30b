"""Degradation-aware feature interpolation (DAFI, official panini.py) and its fidelity control.

A small MLP maps the 256-d degradation representation to one 2-way softmax per channel and
scale: ``m_gan`` weights the StyleGAN2 prior's feature, ``m_enc = 1 - m_gan`` the projected
image-encoder feature, ``F = m_gan * F_gan + m_enc * F_enc``. The weights are channel-wise
scalars (broadcast over H and W) at the five scales 4, 8, 16, 32, 64.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

NUM_SCALES = 5
FUSED_CHANNELS = 512

Fidelity = float | Sequence[float] | torch.Tensor


class DAFIWeightGenerator(nn.Module):
    """The released ``AdaptiveFeatureSelect_maskgen``: v_DR -> (m_gan, m_enc), (B, 5, 512, 1, 1)."""

    def __init__(self, representation_dim: int = 256, channels: int = FUSED_CHANNELS):
        super().__init__()
        self.channels = channels  # fused feature width; 512 in both released models
        self.mapping = nn.Sequential(
            nn.Linear(representation_dim, representation_dim),
            nn.LeakyReLU(0.1, inplace=True),
            nn.Linear(representation_dim, NUM_SCALES * 2 * channels),
        )

    def forward(self, representation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.mapping(representation).view(-1, NUM_SCALES, 2, self.channels, 1, 1)
        weights = torch.softmax(logits, dim=2)
        return weights[:, :, 0], weights[:, :, 1]


def scale_fidelity(
    m_gan: torch.Tensor, m_enc: torch.Tensor, fidelity: Fidelity
) -> tuple[torch.Tensor, torch.Tensor]:
    """Move the interpolation toward the input features (fidelity 1) or the prior (0).

    The odds of the encoder branch, m_enc / m_gan, are multiplied by f / (1 - f):
    ``m_enc' = f m_enc / (f m_enc + (1 - f) m_gan)`` and ``m_gan' = 1 - m_enc'``. So f = 0.5
    keeps the network's own degradation-aware weights, f = 0 uses the GAN prior alone and
    f = 1 the encoder features alone, m_enc' rises monotonically with f, and the per-channel
    ranking of the learned weights is kept in between (the paper's editable restoration
    rescales the same weights by hand). ``fidelity`` is one value or one per scale (5).
    """
    f = torch.as_tensor(fidelity, dtype=m_enc.dtype, device=m_enc.device).reshape(-1)
    if f.numel() not in (1, NUM_SCALES):
        raise ValueError(f"fidelity must be one value or {NUM_SCALES} (one per scale)")
    if bool(((f < 0) | (f > 1) | torch.isnan(f)).any()):
        raise ValueError(f"fidelity must lie in [0, 1], got {f.tolist()}")
    f = f.expand(NUM_SCALES).view(1, NUM_SCALES, 1, 1, 1)
    enc = f * m_enc
    m_enc_scaled = enc / (enc + (1 - f) * m_gan).clamp_min(torch.finfo(enc.dtype).tiny)
    # The end points are exact even where the softmax saturated to 0 or 1.
    m_enc_scaled = torch.where(f == 1, torch.ones_like(m_enc_scaled), m_enc_scaled)
    m_enc_scaled = torch.where(f == 0, torch.zeros_like(m_enc_scaled), m_enc_scaled)
    return 1 - m_enc_scaled, m_enc_scaled
