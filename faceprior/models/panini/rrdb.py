"""RRDB trunk of Panini-Net's image feature extractor (official panini.py; ESRGAN's blocks)."""

from __future__ import annotations

import torch
from torch import nn

RESIDUAL_SCALE = 0.2


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convs; the last one's output, scaled by 0.2, is residual."""

    def __init__(self, channels: int, growth: int = 32):
        super().__init__()
        for index in range(1, 6):
            in_channels = channels + (index - 1) * growth
            out_channels = channels if index == 5 else growth
            setattr(self, f"conv{index}", nn.Conv2d(in_channels, out_channels, 3, 1, 1))
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)
        self._init_weights()

    def _init_weights(self) -> None:
        # As released: kaiming-normal (fan_in, ReLU gain) scaled by 0.1, zero bias, which keeps
        # the 0.2-scaled residual branches small at the start of training.
        for index in range(1, 6):
            conv = getattr(self, f"conv{index}")
            nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="relu")
            conv.weight.data.mul_(0.1)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for index in range(1, 5):
            conv = getattr(self, f"conv{index}")
            features.append(self.lrelu(conv(torch.cat(features, 1))))
        return x + RESIDUAL_SCALE * self.conv5(torch.cat(features, 1))


class RRDB(nn.Module):
    """Three residual dense blocks with an outer 0.2-scaled residual."""

    def __init__(self, channels: int, growth: int = 32):
        super().__init__()
        self.rdb1 = ResidualDenseBlock(channels, growth)
        self.rdb2 = ResidualDenseBlock(channels, growth)
        self.rdb3 = ResidualDenseBlock(channels, growth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + RESIDUAL_SCALE * self.rdb3(self.rdb2(self.rdb1(x)))


class RRDBFeatureExtractor(nn.Module):
    """``conv_first`` -> ``num_blocks`` RRDBs -> ``conv_body`` with a long skip (no upsampling)."""

    def __init__(self, in_channels: int, channels: int, num_blocks: int, growth: int = 32):
        super().__init__()
        self.conv_first = nn.Conv2d(in_channels, channels, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(channels, growth) for _ in range(num_blocks)])
        self.conv_body = nn.Conv2d(channels, channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv_first(x)
        return feat + self.conv_body(self.body(feat))
