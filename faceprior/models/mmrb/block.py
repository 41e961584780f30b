"""The mixed multi-path residual block (MMRB), reconstructed in docs/mmrb-gan.md.

The paper (Hu et al., arXiv 2205.14377) only says that MMRBs "gradually extract weak texture
features" and are plug-and-play; everything below is an ASSUMPTION. A local 3x3 path, a
dilated 3x3 path (larger receptive field) and a point-wise path (which keeps faint local
signal from being smoothed away) run side by side on half the channels each, are concatenated,
fused by a 1x1 conv, optionally re-weighted by squeeze-excitation, and added back to the input
scaled by a residual factor. Every design choice the paper leaves open is a constructor option
so the ablations of docs/mmrb-gan.md are configuration switches.

Plain ``nn.Conv2d`` layers are used (not the equalized-lr StyleGAN2 layers) because the block
needs dilation and the small residual scale already keeps its contribution near identity.
The dilation and residual scale are stored in the state dict, so a raw checkpoint says which
block it holds (shapes alone cannot tell dilation 1 from 2).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

MAX_PATHS = 3
SE_REDUCTION = 16
LEAKY_SLOPE = 0.2


def _two_convs(in_channels: int, out_channels: int, dilations: Sequence[int]) -> nn.Sequential:
    first, second = dilations
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=first, dilation=first),
        nn.LeakyReLU(LEAKY_SLOPE),
        nn.Conv2d(out_channels, out_channels, 3, padding=second, dilation=second),
    )


class MMRB(nn.Module):
    """Mixed multi-path residual block: ``x + beta * SE(fuse([local, dilated, point]))``.

    ``paths``: 1 (local only), 2 (+ dilated) or 3 (+ point-wise), the order of docs/mmrb-gan.md.
    ``dilations``: dilation of the two convs of the dilated path; ``(1, 1)`` turns dilation off.
    ``attention``: squeeze-excitation (reduction 16) on the fused features.
    ``residual_scale``: beta; with ``learnable_scale`` it is a trained parameter starting at this
    value (0 makes the block an exact identity at initialisation, ReZero-style).
    """

    def __init__(
        self,
        channels: int,
        paths: int = 3,
        dilations: Sequence[int] = (2, 2),
        attention: bool = True,
        residual_scale: float = 0.2,
        learnable_scale: bool = False,
    ):
        super().__init__()
        if not 1 <= paths <= MAX_PATHS:
            raise ValueError(f"paths must be 1, 2 or 3, got {paths}")
        dilations = tuple(int(d) for d in dilations)
        if len(dilations) != 2 or min(dilations) < 1:
            raise ValueError(f"dilations must be two integers >= 1, got {dilations}")
        width = max(1, channels // 2)
        self.channels = channels
        self.paths = paths
        self.local = _two_convs(channels, width, (1, 1))
        if paths >= 2:
            self.dilated = _two_convs(channels, width, dilations)
            self.register_buffer("dilation", torch.tensor(dilations, dtype=torch.int64))
        if paths >= 3:
            self.point = nn.Conv2d(channels, width, 1)
        self.fuse = nn.Conv2d(paths * width, channels, 1)
        if attention:
            hidden = max(1, channels // SE_REDUCTION)
            self.attention = nn.Sequential(
                nn.AdaptiveAvgPool2d(1),
                nn.Conv2d(channels, hidden, 1),
                nn.ReLU(),
                nn.Conv2d(hidden, channels, 1),
                nn.Sigmoid(),
            )
        scale = torch.tensor(float(residual_scale))
        if learnable_scale:
            self.residual_scale = nn.Parameter(scale)
        else:
            self.register_buffer("residual_scale", scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.local(x)]
        if self.paths >= 2:
            branches.append(self.dilated(x))
        if self.paths >= 3:
            branches.append(self.point(x))
        mixed = self.fuse(torch.cat(branches, dim=1))
        if hasattr(self, "attention"):
            mixed = mixed * self.attention(mixed)
        return x + self.residual_scale * mixed


def mmrb_stack(
    channels: int,
    count: int,
    paths: int = 3,
    dilations: Sequence[int] = (2, 2),
    attention: bool = True,
    residual_scale: float = 0.2,
    learnable_scale: bool = False,
) -> list[MMRB]:
    """``count`` identically configured blocks (a list, so callers choose the container)."""
    return [
        MMRB(channels, paths, dilations, attention, residual_scale, learnable_scale)
        for _ in range(count)
    ]


def block_options(state_dict, prefix: str) -> dict | None:
    """Recover the MMRB options of the block stored under ``prefix`` (e.g. ``"ecd0.1."``).

    Returns ``None`` when no block is there. Used by checkpoint detection.
    """
    if f"{prefix}fuse.weight" not in state_dict:
        return None
    paths = (
        1 + (f"{prefix}dilated.0.weight" in state_dict) + (f"{prefix}point.weight" in state_dict)
    )
    dilation = state_dict.get(f"{prefix}dilation")
    return dict(
        paths=paths,
        dilations=[2, 2] if dilation is None else [int(d) for d in dilation.tolist()],
        attention=f"{prefix}attention.1.weight" in state_dict,
        residual_scale=float(state_dict[f"{prefix}residual_scale"]),
    )
