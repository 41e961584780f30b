"""The StyleGAN2 prior in mmgen's ``StyleGANv2Generator`` layout, built from faceprior's core.

Panini-Net's released weights store the prior as mmgen names it (``weight_orig``,
``style_modulation.linear``, ``noise_injector``, ``constant_input``, fixed
``injected_noise_i`` buffers), while ``faceprior.models.stylegan2`` uses the rosinality names
GPEN's checkpoints need. The math is the same (official panini.py), so the classes below are the
core layers with their parameters re-seated under the mmgen names; every computation still runs
through the core ``forward`` methods. Parameters keep the official state-dict order.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from ..stylegan2.discriminator import channel_table
from ..stylegan2.layers import (
    DEFAULT_BLUR,
    ConstantInput,
    EqualLinear,
    ModulatedConv2d,
    PixelNorm,
    StyledConv,
    ToRGB,
)


def _reseat(module: nn.Module, old: str, new: str, value: nn.Module | None = None) -> None:
    """Rename parameter or child ``old`` to ``new`` (optionally replacing it) in place.

    Keeping the position keeps the official state-dict order, which the parity manifests and
    optimiser-state layouts of the released files follow.
    """
    for table in (module._parameters, module._modules):
        if old in table:
            entries = [
                (new if k == old else k, value if k == old and value is not None else v)
                for k, v in table.items()
            ]
            table.clear()
            table.update(entries)
            return
    raise KeyError(f"{type(module).__name__} has no parameter or child {old!r}")


class _WeightOrig(nn.Module):
    """Holder giving mmgen's ``linear.weight_orig`` key (its equalized-lr hook's parameter)."""

    def __init__(self, weight: nn.Parameter):
        super().__init__()
        self.weight_orig = weight


class MMGenEqualLinear(EqualLinear):
    """Core ``EqualLinear`` stored as mmgen's ``EqualLinearActModule`` (``bias``, ``linear``)."""

    weight = property(lambda self: self.linear.weight_orig)

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        bias_init: float = 0.0,
        lr_mul: float = 1.0,
        activate: bool = False,
    ):
        super().__init__(in_dim, out_dim, bias_init=bias_init, lr_mul=lr_mul, activate=activate)
        self.linear = _WeightOrig(self._parameters.pop("weight"))


class MMGenModulatedConv2d(ModulatedConv2d):
    """Core ``ModulatedConv2d`` with mmgen keys: ``weight_orig``, ``style_modulation``, ``blur``."""

    weight = property(lambda self: self.weight_orig)
    modulation = property(lambda self: self.style_modulation)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        style_dim: int,
        demodulate: bool = True,
        upsample: bool = False,
        blur_kernel=DEFAULT_BLUR,
    ):
        super().__init__(
            in_channels, out_channels, kernel_size, style_dim, demodulate, upsample, blur_kernel
        )
        _reseat(self, "weight", "weight_orig")
        style = MMGenEqualLinear(style_dim, in_channels, bias_init=1.0)
        _reseat(self, "modulation", "style_modulation", style)
        if upsample:  # mmgen registers the blur after the style layer
            self._modules["blur"] = self._modules.pop("blur")


class MMGenStyledConv(StyledConv):
    """Core ``StyledConv`` as mmgen's ``ModulatedStyleConv`` (``conv``, ``noise_injector``)."""

    noise = property(lambda self: self.noise_injector)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        style_dim: int,
        upsample: bool = False,
        blur_kernel=DEFAULT_BLUR,
    ):
        super().__init__(in_channels, out_channels, kernel_size, style_dim, upsample, blur_kernel)
        conv = MMGenModulatedConv2d(
            in_channels,
            out_channels,
            kernel_size,
            style_dim,
            upsample=upsample,
            blur_kernel=blur_kernel,
        )
        _reseat(self, "conv", "conv", conv)
        _reseat(self, "noise", "noise_injector")


class MMGenToRGB(ToRGB):
    """Core ``ToRGB`` as mmgen's ``ModulatedToRGB`` (``bias``, ``upsample``, ``conv``)."""

    def __init__(
        self, in_channels: int, style_dim: int, upsample: bool = True, blur_kernel=DEFAULT_BLUR
    ):
        super().__init__(in_channels, style_dim, upsample, blur_kernel)
        conv = MMGenModulatedConv2d(in_channels, 3, 1, style_dim, demodulate=False)
        _reseat(self, "conv", "conv", conv)


Fuse = Callable[[int, torch.Tensor], torch.Tensor]


class StyleGAN2Prior(nn.Module):
    """mmgen ``StyleGANv2Generator`` synthesis driven by externally given w+ codes.

    Panini never calls the mapping network (``style_mapping`` is kept so the released files
    load strictly; its PixelNorm is the core one, eps 1e-8 on the mean square, where mmgen
    uses 1e-6 on the norm) and never draws noise: the ``injected_noise_i`` buffers saved in
    the checkpoint are the noise, so the output is deterministic in train and eval mode.
    ``narrow`` scales every channel count (1 as released; smaller for CPU-sized training runs).
    """

    def __init__(
        self,
        out_size: int,
        style_channels: int = 512,
        num_mlps: int = 8,
        channel_multiplier: int = 2,
        blur_kernel=DEFAULT_BLUR,
        lr_mlp: float = 0.01,
        narrow: float = 1.0,
    ):
        super().__init__()
        self.out_size = out_size
        self.style_channels = style_channels
        self.style_mapping = nn.Sequential(
            PixelNorm(),
            *[
                MMGenEqualLinear(style_channels, style_channels, lr_mul=lr_mlp, activate=True)
                for _ in range(num_mlps)
            ],
        )
        channels = channel_table(channel_multiplier, narrow)
        self.constant_input = ConstantInput(channels[4])
        self.conv1 = MMGenStyledConv(
            channels[4], channels[4], 3, style_channels, blur_kernel=blur_kernel
        )
        self.to_rgb1 = MMGenToRGB(channels[4], style_channels, upsample=False)
        log_size = int(math.log2(out_size))
        self.num_latents = 2 * log_size - 2
        self.num_injected_noises = 2 * log_size - 3
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        in_channels = channels[4]
        for level in range(3, log_size + 1):
            out_channels = channels[2**level]
            self.convs.append(
                MMGenStyledConv(in_channels, out_channels, 3, style_channels, True, blur_kernel)
            )
            self.convs.append(
                MMGenStyledConv(out_channels, out_channels, 3, style_channels, False, blur_kernel)
            )
            self.to_rgbs.append(MMGenToRGB(out_channels, style_channels, True, blur_kernel))
            in_channels = out_channels
        for index in range(self.num_injected_noises):
            size = 2 ** ((index + 5) // 2)
            self.register_buffer(f"injected_noise_{index}", torch.randn(1, 1, size, size))

    def injected_noise(self, index: int) -> torch.Tensor:
        return getattr(self, f"injected_noise_{index}")

    def forward(self, latents: torch.Tensor, fuse: Fuse | None = None) -> torch.Tensor:
        """Synthesize the RGB image from w+ codes (B, num_latents, style_channels).

        ``fuse(stage, feature)`` replaces the feature map that enters the upsampling conv of
        stage ``stage`` (feature resolution 4 * 2**stage); Panini's DAFI plugs in here.
        As in mmgen, to_rgb of stage j shares the latent of the first conv of stage j + 1.
        """
        if latents.ndim != 3 or latents.shape[1] < self.num_latents:
            raise ValueError(
                f"expected w+ codes (B, >={self.num_latents}, {self.style_channels}), "
                f"got {tuple(latents.shape)}"
            )
        out = self.conv1(
            self.constant_input(latents.shape[0]), latents[:, 0], self.injected_noise(0)
        )
        skip = self.to_rgb1(out, latents[:, 1])
        for stage, to_rgb in enumerate(self.to_rgbs):
            index = 1 + 2 * stage
            if fuse is not None:
                out = fuse(stage, out)
            out = self.convs[2 * stage](out, latents[:, index], self.injected_noise(index))
            out = self.convs[2 * stage + 1](
                out, latents[:, index + 1], self.injected_noise(index + 1)
            )
            skip = to_rgb(out, latents[:, index + 2], skip)
        return skip
