"""Convolution and residual blocks of PSFR-GAN's ParseNet and discriminator.

Submodule names (``conv2d``, ``norm.norm``, ``relu.func``, ``shortcut_func``, ``conv1``,
``conv2``) reproduce the official ``models/blocks.py`` so checkpoints load strictly;
see official blocks.py.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .spectral import SpectralConv2d

NORMS = ("bn", "in", "none")
ACTIVATIONS = ("relu", "leakyrelu", "prelu", "selu", "none")
SCALES = ("none", "up", "down", "down_avg")


class NormLayer(nn.Module):
    """Holds the torch norm as ``.norm`` (the official wrapper, hence the ``norm.norm`` keys)."""

    def __init__(self, channels: int, norm_type: str):
        super().__init__()
        norm_type = norm_type.lower()
        if norm_type == "bn":
            self.norm = nn.BatchNorm2d(channels, affine=True)
        elif norm_type == "in":
            self.norm = nn.InstanceNorm2d(channels, affine=False)
        elif norm_type == "none":
            self.norm = nn.Identity()
        else:
            raise ValueError(f"unknown norm {norm_type!r}; choose from {NORMS}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)


class ActivationLayer(nn.Module):
    """Holds the activation as ``.func`` (PReLU's weight is stored as ``relu.func.weight``)."""

    def __init__(self, channels: int, relu_type: str):
        super().__init__()
        relu_type = relu_type.lower()
        if relu_type == "relu":
            self.func = nn.ReLU(inplace=True)
        elif relu_type == "leakyrelu":
            self.func = nn.LeakyReLU(0.2, inplace=True)
        elif relu_type == "prelu":
            self.func = nn.PReLU(channels)
        elif relu_type == "selu":
            self.func = nn.SELU(inplace=True)
        elif relu_type == "none":
            self.func = nn.Identity()
        else:
            raise ValueError(f"unknown activation {relu_type!r}; choose from {ACTIVATIONS}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.func(x)


class ConvLayer(nn.Module):
    """[2x nearest up] -> reflection pad -> conv [stride 2] -> [avg-pool 2] -> norm -> activation.

    The conv has no bias in front of BatchNorm. ``spectral=True`` swaps in
    :class:`SpectralConv2d` (the discriminator's convs).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        scale: str = "none",
        norm_type: str = "none",
        relu_type: str = "none",
        use_pad: bool = True,
        spectral: bool = False,
    ):
        super().__init__()
        if scale not in SCALES:
            raise ValueError(f"unknown scale {scale!r}; choose from {SCALES}")
        self.scale = scale
        self.use_pad = use_pad
        bias = norm_type.lower() != "bn"
        stride = 2 if scale == "down" else 1
        self.reflection_pad = nn.ReflectionPad2d(math.ceil((kernel_size - 1) / 2))
        if spectral:
            self.conv2d = SpectralConv2d(in_channels, out_channels, kernel_size, stride, bias=bias)
        else:
            self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride, bias=bias)
        self.avgpool = nn.AvgPool2d(2, 2)
        self.norm = NormLayer(out_channels, norm_type)
        self.relu = ActivationLayer(out_channels, relu_type)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale == "up":
            x = nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")
        if self.use_pad:
            x = self.reflection_pad(x)
        x = self.conv2d(x)
        if self.scale == "down_avg":
            x = self.avgpool(x)
        return self.relu(self.norm(x))


class ResidualBlock(nn.Module):
    """``shortcut(x) + conv2(conv1(x))`` with no activation after the sum.

    ``scale='down'`` strides the second conv, ``'up'`` upsamples before the first; the shortcut
    is a plain conv whenever the shape changes.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        relu_type: str = "prelu",
        norm_type: str = "bn",
        scale: str = "none",
    ):
        super().__init__()
        if scale not in ("none", "up", "down"):
            raise ValueError(f"a residual block scales 'none', 'up' or 'down', not {scale!r}")
        if scale == "none" and in_channels == out_channels:
            self.shortcut_func = nn.Identity()
        else:
            self.shortcut_func = ConvLayer(in_channels, out_channels, 3, scale)
        first_scale = "up" if scale == "up" else "none"
        second_scale = "down" if scale == "down" else "none"
        self.conv1 = ConvLayer(
            in_channels, out_channels, 3, first_scale, norm_type=norm_type, relu_type=relu_type
        )
        self.conv2 = ConvLayer(out_channels, out_channels, 3, second_scale, norm_type=norm_type)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut_func(x) + self.conv2(self.conv1(x))
