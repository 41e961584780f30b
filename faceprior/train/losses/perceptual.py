"""Perceptual loss: distances between VGG activations of output and target.

The VGG weights are the user's torchvision-layout ImageNet file (``faceprior.models.vgg``);
nothing is downloaded and a missing file is an error, because a randomly initialised VGG
would turn the loss into noise while training would appear to run normally.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F


class PerceptualLoss(nn.Module):
    """``sum_l weight_l * dist(phi_l(output), phi_l(target))`` on [-1, 1] RGB images.

    ``criterion`` is ``l1`` or ``mse`` (mean over elements of each layer). The VGG is frozen
    and stays in eval mode; gradients flow to ``output`` only.
    """

    def __init__(
        self,
        weights: str | os.PathLike,
        arch: str = "vgg19",
        layers: Sequence[str] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
        layer_weights: Sequence[float] | None = None,
        criterion: str = "l1",
    ):
        super().__init__()
        from ...models.vgg import load_vgg

        if not weights or not Path(weights).is_file():
            raise FileNotFoundError(
                f"perceptual loss needs a torchvision-layout {arch} weights file "
                f"(e.g. {arch}-*.pth from the torchvision model zoo); got {str(weights)!r}. "
                "Set the path in the config, or set the perceptual weight to 0."
            )
        if criterion not in ("l1", "mse"):
            raise ValueError(f"criterion must be 'l1' or 'mse', got {criterion!r}")
        layer_weights = list(layer_weights) if layer_weights is not None else [1.0] * len(layers)
        if len(layer_weights) != len(layers):
            raise ValueError(f"{len(layers)} layers but {len(layer_weights)} layer weights")
        self.vgg = load_vgg(weights, arch=arch)
        self.layers = tuple(layers)
        self.layer_weights = layer_weights
        self.criterion = criterion

    def train(self, mode: bool = True) -> PerceptualLoss:
        super().train(mode)
        self.vgg.eval()
        return self

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        distance = F.l1_loss if self.criterion == "l1" else F.mse_loss
        out_features = self.vgg((output + 1) / 2, self.layers)
        with torch.no_grad():
            target_features = self.vgg((target + 1) / 2, self.layers)
        total = output.new_zeros(())
        for name, weight in zip(self.layers, self.layer_weights, strict=True):
            total = total + weight * distance(out_features[name], target_features[name])
        return total
