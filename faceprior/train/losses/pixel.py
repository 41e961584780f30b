"""Pixel reconstruction losses on [-1, 1] images."""

from __future__ import annotations

import torch
from torch.nn import functional as F

PIXEL_LOSSES = ("l1", "smooth_l1", "mse")


def pixel_loss(kind: str, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean ``kind`` distance; ``smooth_l1`` uses beta 1 (GPEN's ``nn.SmoothL1Loss()``)."""
    if kind == "l1":
        return F.l1_loss(output, target)
    if kind == "smooth_l1":
        return F.smooth_l1_loss(output, target, beta=1.0)
    if kind == "mse":
        return F.mse_loss(output, target)
    raise ValueError(f"unknown pixel loss {kind!r}; choose from {PIXEL_LOSSES}")
