"""StyleGAN2 residual discriminator with minibatch standard deviation."""

from __future__ import annotations

import math

import torch
from torch import nn

from .layers import DEFAULT_BLUR, ConvLayer, EqualLinear


def channel_table(channel_multiplier: int = 2, narrow: float = 1.0) -> dict[int, int]:
    """Feature channels per resolution (StyleGAN2 config-f table, scaled by GPEN's ``narrow``)."""
    return {
        4: int(512 * narrow),
        8: int(512 * narrow),
        16: int(512 * narrow),
        32: int(512 * narrow),
        64: int(256 * channel_multiplier * narrow),
        128: int(128 * channel_multiplier * narrow),
        256: int(64 * channel_multiplier * narrow),
        512: int(32 * channel_multiplier * narrow),
        1024: int(16 * channel_multiplier * narrow),
        2048: int(8 * channel_multiplier * narrow),
    }


class ResBlock(nn.Module):
    """Two 3x3 convs (the second downsamples) plus a blurred 1x1 skip, summed / sqrt(2)."""

    def __init__(self, in_channels: int, out_channels: int, blur_kernel=DEFAULT_BLUR):
        super().__init__()
        self.conv1 = ConvLayer(in_channels, in_channels, 3)
        self.conv2 = ConvLayer(in_channels, out_channels, 3, downsample=True)
        self.skip = ConvLayer(
            in_channels, out_channels, 1, downsample=True, activate=False, bias=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2)


def minibatch_stddev(x: torch.Tensor, group_size: int | None, num_features: int = 1):
    """Append the across-group standard deviation as extra feature channels.

    ``group_size=None`` uses the whole batch as one group (GPEN's released discriminator);
    StyleGAN2 uses ``min(4, batch)``.
    """
    batch, channels, height, width = x.shape
    group = batch if group_size is None else min(batch, group_size)
    y = x.view(group, -1, num_features, channels // num_features, height, width)
    y = torch.sqrt(y.var(0, unbiased=False) + 1e-8)
    y = y.mean([2, 3, 4], keepdim=True).squeeze(2)
    y = y.repeat(group, 1, height, width)
    return torch.cat([x, y], dim=1)


class Discriminator(nn.Module):
    """StyleGAN2 ResNet discriminator; returns one raw logit per image."""

    def __init__(
        self,
        size: int,
        channel_multiplier: int = 2,
        narrow: float = 1.0,
        blur_kernel=DEFAULT_BLUR,
        stddev_group: int | None = 4,
    ):
        super().__init__()
        self.size = size
        self.channel_multiplier = channel_multiplier
        self.narrow = narrow
        self.stddev_group = stddev_group
        channels = channel_table(channel_multiplier, narrow)
        blocks: list[nn.Module] = [ConvLayer(3, channels[size], 1)]
        in_channels = channels[size]
        for level in range(int(math.log2(size)), 2, -1):
            out_channels = channels[2 ** (level - 1)]
            blocks.append(ResBlock(in_channels, out_channels, blur_kernel))
            in_channels = out_channels
        self.convs = nn.Sequential(*blocks)
        self.final_conv = ConvLayer(in_channels + 1, channels[4], 3)
        self.final_linear = nn.Sequential(
            EqualLinear(channels[4] * 4 * 4, channels[4], activate=True),
            EqualLinear(channels[4], 1),
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        out = minibatch_stddev(self.convs(image), self.stddev_group)
        out = self.final_conv(out)
        return self.final_linear(out.flatten(1))
