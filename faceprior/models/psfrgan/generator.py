"""PSFRGenerator: progressive semantic-aware style transformation (official ``psfrnet.py``).

A learned 16x16 constant is upsampled to 512x512 through SPADE-like residual blocks. The LQ
face and its parsing map never enter the main path: at every block they are bicubically
resized to the feature size and predict a per-pixel scale and shift of the instance-normalised
features. All convs are spectral-normalised (``weight_orig``/``weight_u``/``weight_v`` keys).
See official psfrnet.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..conventions import Conventions
from .spectral import SpectralConv2d

HIDDEN_CHANNELS = 64


def _conv3x3(in_channels: int, out_channels: int) -> SpectralConv2d:
    return SpectralConv2d(in_channels, out_channels, 3, padding=1)


def feature_channels(size: int, ch_range: Sequence[int]) -> int:
    """Official width rule: ``1024 * 16 / size`` clipped to ``ch_range``."""
    low, high = ch_range
    return max(low, min(1024 * 16 // size, high))


class SPADENorm(nn.Module):
    """``IN(x) * gamma + beta`` with gamma, beta predicted from the resized reference.

    Unlike SPADE, gamma multiplies directly (no ``1 + gamma``). The reference (LQ image and
    parse map) is resized with PyTorch bicubic, ``align_corners=False``, no antialiasing,
    whenever its width differs from the feature width, exactly as the official code.
    """

    def __init__(self, channels: int, ref_channels: int):
        super().__init__()
        self.param_free_norm = nn.InstanceNorm2d(channels, affine=False)
        self.conv1 = nn.Sequential(
            _conv3x3(ref_channels, HIDDEN_CHANNELS), nn.LeakyReLU(0.2, inplace=True)
        )
        self.gamma_conv = _conv3x3(HIDDEN_CHANNELS, channels)
        self.beta_conv = _conv3x3(HIDDEN_CHANNELS, channels)

    def forward(self, x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        if ref.shape[-1] != x.shape[-1]:
            ref = F.interpolate(ref, size=x.shape[2:], mode="bicubic", align_corners=False)
        hidden = self.conv1(ref)
        return self.param_free_norm(x) * self.gamma_conv(hidden) + self.beta_conv(hidden)


class SPADEResBlock(nn.Module):
    """``x + conv_1(lrelu(norm_1(conv_0(lrelu(norm_0(x, ref))), ref)))``."""

    def __init__(self, channels: int, ref_channels: int):
        super().__init__()
        self.conv_0 = _conv3x3(channels, channels)
        self.conv_1 = _conv3x3(channels, channels)
        self.norm_0 = SPADENorm(channels, ref_channels)
        self.norm_1 = SPADENorm(channels, ref_channels)

    def forward(self, x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        hidden = self.conv_0(F.leaky_relu(self.norm_0(x, ref), 0.2))
        return x + self.conv_1(F.leaky_relu(self.norm_1(hidden, ref), 0.2))


class PSFRGenerator(nn.Module):
    """The released PSFR-GAN generator; ``forward(lq, parse)`` returns the restored face.

    ``lq``: (B, 3, H, W) RGB in [-1, 1] (official 512); ``parse``: (B, parse_ch, H, W)
    one-hot parsing map of ``lq`` (see :func:`~faceprior.models.psfrgan.parsenet.hard_onehot`).
    The output is (B, 3, out_size, out_size), nominally [-1, 1], not clamped.
    ``min_feat_size`` is the side of the learned constant, ``out_size / min_feat_size`` the
    number of 2x up-sampling blocks and ``ch_range`` clips the official width rule.
    """

    def __init__(
        self,
        out_size: int = 512,
        min_feat_size: int = 16,
        parse_ch: int = 19,
        ch_range: Sequence[int] = (32, 1024),
    ):
        super().__init__()
        self.arguments = dict(
            out_size=out_size,
            min_feat_size=min_feat_size,
            parse_ch=parse_ch,
            ch_range=list(ch_range),
        )
        ref_channels = 3 + parse_ch
        steps = int(math.log2(out_size // min_feat_size))
        if min_feat_size * 2**steps != out_size:
            raise ValueError(f"out_size {out_size} is not min_feat_size {min_feat_size} * 2^k")
        head_channels = feature_channels(min_feat_size, ch_range)
        self.const_input = nn.Parameter(torch.randn(1, head_channels, min_feat_size, min_feat_size))
        last_channels = feature_channels(out_size, ch_range)
        self.img_out = _conv3x3(last_channels, 3)
        self.head = nn.Sequential(
            _conv3x3(head_channels, head_channels), SPADEResBlock(head_channels, ref_channels)
        )
        body = []
        size = min_feat_size
        for _ in range(steps):
            in_channels = feature_channels(size, ch_range)
            size *= 2
            out_channels = feature_channels(size, ch_range)
            body.append(
                nn.Sequential(
                    nn.Upsample(scale_factor=2, mode="nearest"),
                    _conv3x3(in_channels, out_channels),
                    SPADEResBlock(out_channels, ref_channels),
                )
            )
        self.body = nn.Sequential(*body)

    @property
    def conventions(self) -> Conventions:
        size = self.arguments["out_size"]
        return Conventions(
            architecture="psfrgan",
            task="restoration",
            input_size=size,
            output_size=size,
            template="ffhq",
            inputs=("image", "parse"),
            outputs=("image",),
        )

    def forward(self, lq: torch.Tensor, parse: torch.Tensor) -> torch.Tensor:
        expected = self.arguments["parse_ch"]
        if parse.shape[1] != expected:
            raise ValueError(f"parse map has {parse.shape[1]} channels, expected {expected}")
        ref = torch.cat([lq, parse], dim=1)
        x = self.const_input.expand(lq.shape[0], -1, -1, -1)
        x = self.head[1](self.head[0](x), ref)
        for upsample, conv, block in self.body:
            x = block(conv(upsample(x)), ref)
        return self.img_out(x)
