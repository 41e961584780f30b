"""GPEN with a fusion head: the prior's face and the input's own pixels, mixed per pixel.

A 128 px GPEN re-synthesises every face through its StyleGAN2 decoder. On a tiny face that is
what adds detail; on a face that was already 64 px or more it throws away pixels the input
still had (benchmarks/results/offline_model.md: the no-prior U-Net, whose output is input +
residual, keeps them). The fusion head sees both, the degraded input ``x`` and GPEN's output
``g``, and returns

    out = g + sigmoid(gate) * (x - g) + residual

``gate`` and ``residual`` come from a small residual CNN that works on 4x4 pixel-unshuffled
tiles (cheap, and a 3x3 conv there spans 12 px: more than a JPEG block). Its last conv starts
at zero with the gate's bias at ``-GATE_START``, so a head on a trained GPEN starts from that
GPEN's output (98 % of it) and training teaches it where the input is worth keeping and
what to add. The GPEN part keeps its own keys under ``gpen.``, so a plain GPEN checkpoint
initialises it unchanged (``init: target: generator.gpen``).
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from .conventions import Conventions
from .gpen import FullGenerator, _detect_generator
from .registry import Architecture, count_prefixed
from .restorer import first_output_restorer
from .stylegan2 import TINY_STYLEGAN2

TILE = 4  # pixel-unshuffle factor of the head
GATE_START = 4.0  # sigmoid(-4) = 0.018: the head starts 98 % at GPEN's output


class ResidualBlock(nn.Module):
    """conv-LeakyReLU-conv with an identity skip."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.leaky_relu(self.conv1(x), 0.2))


class FusionHead(nn.Module):
    """Maps (input, GPEN output) to the fused face; see the module docstring."""

    def __init__(self, channels: int = 64, blocks: int = 4):
        super().__init__()
        self.body_in = nn.Conv2d(2 * 3 * TILE * TILE, channels, 3, padding=1)
        self.body = nn.Sequential(*(ResidualBlock(channels) for _ in range(blocks)))
        self.body_out = nn.Conv2d(channels, 4 * TILE * TILE, 3, padding=1)
        nn.init.zeros_(self.body_out.weight)
        with torch.no_grad():
            self.body_out.bias.zero_()
            self.body_out.bias[3 * TILE * TILE :] = -GATE_START  # shuffle keeps channel blocks

    def forward(self, x: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        tiles = F.pixel_unshuffle(torch.cat([x, prior], dim=1), TILE)
        features = F.leaky_relu(self.body_in(tiles), 0.2)
        out = F.pixel_shuffle(self.body_out(self.body(features)), TILE)
        residual, gate = out[:, :3], torch.sigmoid(out[:, 3:])
        return prior + gate * (x - prior) + residual


class GPENFusion(nn.Module):
    """A GPEN ``FullGenerator`` (``gpen``) followed by a :class:`FusionHead` (``head``).

    ``forward(x) -> (image, None)`` as GPEN, so the photo pipeline, ONNX export and the
    trainer treat it as one. :meth:`fuse` is the head alone, for a run that trains only the
    head on a fixed GPEN.
    """

    architecture = "gpen-fusion"

    def __init__(
        self,
        size: int,
        style_dim: int = 512,
        n_mlp: int = 8,
        channel_multiplier: int = 2,
        narrow: float = 1.0,
        head_channels: int = 64,
        head_blocks: int = 4,
        template: str = "gpen",
    ):
        super().__init__()
        if size % TILE:
            raise ValueError(f"size must be a multiple of {TILE}, got {size}")
        self.gpen = FullGenerator(
            size, style_dim, n_mlp, channel_multiplier, narrow, template=template
        )
        self.head = FusionHead(head_channels, head_blocks)
        self.arguments = dict(
            self.gpen.arguments, head_channels=head_channels, head_blocks=head_blocks
        )

    @property
    def conventions(self) -> Conventions:
        """The GPEN part's I/O contract: the head keeps its sizes, range and template."""
        return replace(self.gpen.conventions, architecture=self.architecture)

    def fuse(self, x: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """The head on a given GPEN output ``prior`` of ``x``."""
        return self.head(x, prior)

    def forward(
        self, x: torch.Tensor, return_latents: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        prior, latents = self.gpen(x, return_latents)
        return self.fuse(x, prior), latents


def _detect(state_dict) -> dict | None:
    if "head.body_in.weight" not in state_dict:
        return None
    gpen = {k[len("gpen.") :]: v for k, v in state_dict.items() if k.startswith("gpen.")}
    arguments = _detect_generator(gpen, want_sr=False)
    if arguments is None:
        return None
    return dict(
        arguments,
        head_channels=state_dict["head.body_in.weight"].shape[0],
        head_blocks=count_prefixed(state_dict, "head.body.", ".conv1.weight"),
    )


ARCHITECTURES = [
    Architecture(
        "gpen-fusion",
        GPENFusion,
        _detect,
        restorer=first_output_restorer,
        description="GPEN followed by a head that mixes its face with the input's pixels",
        example=dict(size=16, **TINY_STYLEGAN2, head_channels=8, head_blocks=1),
    )
]
