"""The asymmetric codec of MMRB-GAN: a heavy MMRB encoder and a light one-conv-per-level decoder.

The abstract only says the codec is "asymmetric" and contains MMRBs; the layout below is the
reading of docs/mmrb-gan.md (ASSUMPTION). The encoder spends its capacity on
MMRB stacks at every resolution to sense weak local texture; the decoder is deliberately cheap
because the StyleGAN2 prior, not the codec, synthesises the face. The decoder's maps at each
resolution (4 .. size) condition the StyleGAN2 layers of that resolution, and the encoder's
4x4 map gives the latent code.

Each decoder level concatenates the encoder map of the same resolution (a U-Net skip; an
ASSUMPTION the spec leaves open): without it the conditioning maps would carry only the 4x4
bottleneck and the input's local detail could not reach the generator.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..stylegan2.layers import ConvLayer, EqualLinear
from .block import mmrb_stack


def default_encoder_blocks(size: int) -> list[int]:
    """MMRBs per encoder level, finest (``size``) to 4x4: 1 at >= 256 px, 2 below, 1 at 4x4."""
    levels = [size // 2**i for i in range(int(math.log2(size)) - 1)]
    return [1 if r >= 256 or r == 4 else 2 for r in levels]


class AsymmetricCodec(nn.Module):
    """Encoder (MMRB stacks + strided convs) to a latent; light decoder to conditioning maps.

    ``channels`` maps each resolution to its width (the StyleGAN2 table, so the maps fit the
    generator's noise-concatenation inputs). ``encoder_blocks`` lists the MMRBs per level from
    ``size`` down to 4; zeros give the "without MMRB" ablation.
    """

    def __init__(
        self,
        size: int,
        style_dim: int,
        channels: dict[int, int],
        encoder_blocks: Sequence[int],
        mmrb_paths: int = 3,
        mmrb_dilations: Sequence[int] = (2, 2),
        mmrb_attention: bool = True,
        mmrb_residual_scale: float = 0.2,
        mmrb_learnable_scale: bool = False,
    ):
        super().__init__()
        resolutions = [size // 2**i for i in range(int(math.log2(size)) - 1)]
        if len(encoder_blocks) != len(resolutions):
            raise ValueError(
                f"encoder_blocks needs {len(resolutions)} counts (one per level {resolutions}), "
                f"got {list(encoder_blocks)}"
            )
        self.resolutions = resolutions
        self.head = ConvLayer(3, channels[size], 3)
        self.levels = nn.ModuleList(
            nn.Sequential(
                *mmrb_stack(
                    channels[r],
                    count,
                    mmrb_paths,
                    mmrb_dilations,
                    mmrb_attention,
                    mmrb_residual_scale,
                    mmrb_learnable_scale,
                )
            )
            for r, count in zip(resolutions, encoder_blocks, strict=True)
        )
        self.downs = nn.ModuleList(
            ConvLayer(channels[r], channels[r // 2], 3, downsample=True) for r in resolutions[:-1]
        )
        self.to_latent = EqualLinear(channels[4] * 4 * 4, style_dim, activate=True)
        # Decoder level j turns the (j)-th coarsest map into the next finer one.
        coarse_to_fine = resolutions[::-1]
        self.ups = nn.ModuleList(
            ConvLayer(channels[coarse] + channels[fine], channels[fine], 3)
            for coarse, fine in zip(coarse_to_fine, coarse_to_fine[1:], strict=False)
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Return the latent code and the conditioning maps, coarsest (4x4) first."""
        encoded = []
        x = self.head(x)
        for index, level in enumerate(self.levels):
            x = level(x)
            encoded.append(x)
            if index < len(self.downs):
                x = self.downs[index](x)
        latent = self.to_latent(x.flatten(1))
        skips = encoded[::-1]
        maps = [skips[0]]
        for up, skip in zip(self.ups, skips[1:], strict=True):
            upsampled = F.interpolate(
                maps[-1], scale_factor=2, mode="bilinear", align_corners=False
            )
            maps.append(up(torch.cat([upsampled, skip], dim=1)))
        return latent, maps
