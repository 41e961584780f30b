"""AlexNet convolutional feature stack (the 'one weird trick' variant) for LPIPS-Alex.

The layout of the widely distributed ImageNet file (``features.{index}.weight/bias``: convs at
0, 3, 6, 8, 10, each followed by a ReLU) so a user-supplied ``alexnet-owt-*.pth``-style file
loads as is; classifier keys are ignored. LPIPS reads the five ReLU outputs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import nn

from ..hub.checkpoint import load_state_dict_strict, read_checkpoint
from .vgg import features_state_dict

# index -> name of every module in ``features``.
LAYER_NAMES = (
    "conv1", "relu1", "pool1", "conv2", "relu2", "pool2",
    "conv3", "relu3", "conv4", "relu4", "conv5", "relu5", "pool5",
)  # fmt: skip
LPIPS_LAYERS = ("relu1", "relu2", "relu3", "relu4", "relu5")


class AlexNetFeatures(nn.Module):
    """AlexNet ``features`` returning activations at named layers; input as the caller scales it."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(3, 2),
        )

    def forward(
        self, image: torch.Tensor, layers: Sequence[str] = LPIPS_LAYERS
    ) -> dict[str, torch.Tensor]:
        unknown = [name for name in layers if name not in LAYER_NAMES]
        if unknown:
            raise ValueError(f"unknown AlexNet layer(s) {unknown}; known: {list(LAYER_NAMES)}")
        wanted = set(layers)
        last = max(LAYER_NAMES.index(name) for name in layers)
        found: dict[str, torch.Tensor] = {}
        x = image
        for index in range(last + 1):
            x = self.features[index](x)
            if LAYER_NAMES[index] in wanted:
                found[LAYER_NAMES[index]] = x
        return {name: found[name] for name in layers}


def load_alexnet(path: str | os.PathLike) -> AlexNetFeatures:
    """Build AlexNet features and load them from a user-supplied file (strict), in eval mode."""
    model = AlexNetFeatures()
    state_dict = features_state_dict(read_checkpoint(path).content, str(path))
    bare = {k[len("features.") :]: v for k, v in state_dict.items()}
    load_state_dict_strict(model.features, bare, f"{path} (alexnet)")
    return model.eval().requires_grad_(False)
