"""Degradation representation encoder (DRE) of Panini-Net (official panini.py).

Six conv + BatchNorm + LeakyReLU(0.1) layers (two of them stride 2) and a global average
pool give the 256-d degradation representation v_DR that conditions the DAFI weights. The
``mlp`` head exists only for the contrastive (UDRL/MoCo) training: Panini reads the pooled
feature before it, the MoCo loss reads the head's output.
"""

from __future__ import annotations

import torch
from torch import nn

from ..conventions import Conventions

REPRESENTATION_DIM = 256


def _conv_bn_act(in_channels: int, out_channels: int, stride: int) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, 3, stride, 1),
        nn.BatchNorm2d(out_channels),
        nn.LeakyReLU(0.1, inplace=True),
    ]


class DegradationEncoder(nn.Module):
    """``E`` (state-dict indices 0-18 as released) plus the contrastive ``mlp`` head."""

    def __init__(self):
        super().__init__()
        widths = (
            (3, 64, 1),
            (64, 64, 1),
            (64, 128, 2),
            (128, 128, 1),
            (128, 256, 2),
            (256, 256, 1),
        )
        layers = [layer for spec in widths for layer in _conv_bn_act(*spec)]
        self.E = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1))
        self.mlp = nn.Sequential(
            nn.Linear(REPRESENTATION_DIM, REPRESENTATION_DIM),
            nn.LeakyReLU(0.1, inplace=True),
            nn.Linear(REPRESENTATION_DIM, REPRESENTATION_DIM),
        )

    @property
    def arguments(self) -> dict:
        return {}

    @property
    def conventions(self) -> Conventions:
        return Conventions(
            architecture="panini-degradation-encoder",
            task="degradation-representation",
            input_size=256,
            output_size=None,
            outputs=("representation",),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) RGB in [-1, 1] (256 px as trained) -> v_DR (B, 256)."""
        return self.E(x).flatten(1)

    def project(self, representation: torch.Tensor) -> torch.Tensor:
        """The MoCo head: v_DR -> the 256-d vector the contrastive loss compares."""
        return self.mlp(representation)
