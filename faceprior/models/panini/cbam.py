"""CBAM as used by Panini-Net's image feature extractor (official panini.py).

Deliberately as released, which differs from the CBAM paper: no residual connection, and the
``fea_preprocess`` conv runs twice, before the channel gate and again before the spatial gate.
"""

from __future__ import annotations

import torch
from torch import nn


class ChannelGate(nn.Module):
    """Sigmoid of a shared MLP applied to the average- and max-pooled channel vectors."""

    def __init__(self, channels: int, reduction_ratio: int):
        super().__init__()
        hidden = channels // reduction_ratio
        self.mlp = nn.Sequential(
            nn.Flatten(), nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.mlp(x.mean((2, 3), keepdim=True)) + self.mlp(x.amax((2, 3), keepdim=True))
        return x * torch.sigmoid(logits)[:, :, None, None]


class _SpatialConv(nn.Module):
    """7x7 conv over [channel max, channel mean] followed by BatchNorm (no activation)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, 7, 1, 3, bias=False)
        self.bn = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class SpatialGate(nn.Module):
    def __init__(self):
        super().__init__()
        self.spatial = _SpatialConv()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.amax(1, keepdim=True), x.mean(1, keepdim=True)], 1)
        return x * torch.sigmoid(self.spatial(pooled))


class CBAM(nn.Module):
    """``P`` -> channel gate -> ``P`` again -> spatial gate (``P`` = ``fea_preprocess``)."""

    def __init__(self, channels: int, reduction_ratio: int):
        super().__init__()
        self.fea_preprocess = nn.Conv2d(channels, channels, 3, 1, 1)
        self.ChannelGate = ChannelGate(channels, reduction_ratio)
        self.SpatialGate = SpatialGate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.ChannelGate(self.fea_preprocess(x))
        return self.SpatialGate(self.fea_preprocess(x))
