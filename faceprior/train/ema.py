"""Exponential moving average of a network's parameters (the ``g_ema`` of StyleGAN2/GPEN).

Kept as a full copy of the network so that samples and exported weights come from the
averaged model; buffers are copied, not averaged (StyleGAN2's ``accumulate`` does the same
for the only buffers these networks have, the fixed blur kernels).
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def gpen_decay() -> float:
    """GPEN's ``accumulate(g_ema, g, 0.5 ** (32 / (10 * 1000)))`` (official train_simple.py)."""
    return 0.5 ** (32 / (10 * 1000))


class EMA:
    """``average = decay * average + (1 - decay) * source`` after every optimiser step."""

    def __init__(self, source: nn.Module, decay: float):
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"EMA decay must be in [0, 1], got {decay}")
        self.source = source
        self.decay = decay
        self.average = copy.deepcopy(source).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self) -> None:
        sources = dict(self.source.named_parameters())
        for name, param in self.average.named_parameters():
            param.lerp_(sources[name].detach().to(param.dtype), 1.0 - self.decay)
        sources = dict(self.source.named_buffers())
        for name, buffer in self.average.named_buffers():
            buffer.copy_(sources[name])

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.average.state_dict()

    def load_state_dict(self, state_dict: dict[str, torch.Tensor]) -> None:
        self.average.load_state_dict(state_dict)
