"""PSFR-GAN's multi-scale patch discriminator (training only; official weights were never
released, issue #9).

Three identical spectral-normalised PatchGANs see the image concatenated with its HQ parse map
at full, 1/2 and 1/4 resolution (average-pool down-sampling). Layer layout as in the official
``MultiScaleDiscriminator``/``NLayerDiscriminator`` (official networks.py); key names
below the per-scale prefix follow the official ``model.{i}`` / ``score_out`` blocks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..conventions import Conventions
from .blocks import ConvLayer
from .spectral import INITIAL_ITERATIONS, SpectralConv2d


class NLayerDiscriminator(nn.Module):
    """Patch discriminator: a conv, ``n_layers`` conv + avg-pool + IN blocks, a 3x3 score conv.

    ``forward`` returns ``(scores, features)`` with the outputs of ``model.0 .. model.n``.
    """

    def __init__(
        self,
        in_channels: int = 22,
        base_channels: int = 64,
        n_layers: int = 4,
        max_channels: int = 1024,
        norm_type: str = "in",
    ):
        super().__init__()
        layers: list[nn.Module] = [
            ConvLayer(in_channels, base_channels, 3, relu_type="leakyrelu", spectral=True)
        ]
        channels = base_channels
        for _ in range(n_layers):
            out_channels = min(channels * 2, max_channels)
            layers.append(
                ConvLayer(
                    channels,
                    out_channels,
                    3,
                    scale="down_avg",
                    norm_type=norm_type,
                    relu_type="leakyrelu",
                    spectral=True,
                )
            )
            channels = out_channels
        self.model = nn.Sequential(*layers)
        self.score_out = ConvLayer(channels, 1, 3, use_pad=False, spectral=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        features = []
        for layer in self.model:
            x = layer(x)
            features.append(x)
        return self.score_out(x), features


class MultiScaleDiscriminator(nn.Module):
    """``num_scales`` PatchGANs on the input pooled 0, 1, 2, ... times.

    ``forward(x)`` takes (B, in_channels, H, W) = cat(image in [-1, 1], one-hot parse map) and
    returns one ``(scores, features)`` pair per scale, full resolution first. Fresh weights
    follow the official init: conv weights N(0, 0.02), biases 0.
    """

    def __init__(
        self,
        in_channels: int = 22,
        base_channels: int = 64,
        n_layers: int = 4,
        num_scales: int = 3,
        max_channels: int = 1024,
        norm_type: str = "in",
    ):
        super().__init__()
        self.arguments = dict(
            in_channels=in_channels,
            base_channels=base_channels,
            n_layers=n_layers,
            num_scales=num_scales,
            max_channels=max_channels,
            norm_type=norm_type,
        )
        self.discriminators = nn.ModuleList(
            NLayerDiscriminator(in_channels, base_channels, n_layers, max_channels, norm_type)
            for _ in range(num_scales)
        )
        for module in self.modules():
            if isinstance(module, SpectralConv2d):
                with torch.no_grad():
                    module.weight_orig.normal_(0.0, 0.02)
                    if module.bias is not None:
                        module.bias.zero_()
                if not module.weight_orig.is_meta:
                    module.power_iteration(INITIAL_ITERATIONS)

    @property
    def conventions(self) -> Conventions:
        return Conventions(
            architecture="psfrgan-discriminator",
            task="discrimination",
            input_size=None,
            output_size=None,
            inputs=("image_and_parse",),
            outputs=("scores_and_features",),
        )

    def forward(self, x: torch.Tensor) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        results = []
        for index, discriminator in enumerate(self.discriminators):
            if index > 0:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            results.append(discriminator(x))
        return results
