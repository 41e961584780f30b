"""VGG16/VGG19 convolutional feature stacks for perceptual, style and LPIPS losses.

Only the ``features`` part of Simonyan & Zisserman's network is built (cfg D = VGG16, cfg E =
VGG19, no batch norm), with the state-dict layout of the widely distributed ImageNet files
(``features.{index}.weight/bias``, one index per conv, ReLU and max-pool layer), so a
user-supplied ``vgg16-397923af.pth``-style file loads as is; classifier keys are ignored.
No weights ship with faceprior: a VGG with random weights would make every loss built on it
meaningless, so :func:`load_vgg` insists on a file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import nn

from ..hub.checkpoint import (
    CheckpointError,
    load_state_dict_strict,
    read_checkpoint,
    state_dict_candidates,
)

# Output channels per conv, "M" for a 2x2 max-pool; one list per block, blocks end in a pool.
BLOCKS = {
    "vgg16": ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
    "vgg19": ((64, 64), (128, 128), (256,) * 4, (512,) * 4, (512,) * 4),
}

# The mean/std the ImageNet-trained files expect for RGB input in [0, 1].
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Layers used by the usual losses: style/perceptual (first ReLU of each block) and LPIPS-VGG.
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
LPIPS_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")


def layer_names(arch: str) -> list[str]:
    """Name of each ``features`` module in index order: ``conv1_1``, ``relu1_1``, ..., ``pool1``."""
    names: list[str] = []
    for block, channels in enumerate(BLOCKS[arch], start=1):
        for i in range(1, len(channels) + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        names.append(f"pool{block}")
    return names


class VGGFeatures(nn.Module):
    """The ``features`` stack of VGG16 or VGG19 returning activations at named layers.

    ``normalize_input=True`` takes RGB in [0, 1] and applies the ImageNet mean/std itself;
    ``False`` feeds the input unchanged (for callers that normalise differently, e.g. LPIPS'
    own scaling layer). Layers after the deepest requested one are never run.
    """

    def __init__(self, arch: str = "vgg19", normalize_input: bool = True):
        super().__init__()
        if arch not in BLOCKS:
            raise ValueError(f"unknown VGG variant {arch!r}; choose from {sorted(BLOCKS)}")
        self.arch = arch
        self.normalize_input = normalize_input
        self.names = layer_names(arch)
        layers: list[nn.Module] = []
        in_channels = 3
        for channels in BLOCKS[arch]:
            for out_channels in channels:
                layers += [nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU()]
                in_channels = out_channels
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), False)

    def forward(
        self, image: torch.Tensor, layers: Sequence[str] = STYLE_LAYERS
    ) -> dict[str, torch.Tensor]:
        unknown = [name for name in layers if name not in self.names]
        if unknown:
            raise ValueError(f"unknown {self.arch} layer(s) {unknown}; known: {self.names}")
        wanted = set(layers)
        last = max(self.names.index(name) for name in layers)
        x = (image - self.mean) / self.std if self.normalize_input else image
        found: dict[str, torch.Tensor] = {}
        for index in range(last + 1):
            x = self.features[index](x)
            if self.names[index] in wanted:
                found[self.names[index]] = x
        return {name: found[name] for name in layers}


def features_state_dict(content: object, source: str) -> dict[str, torch.Tensor]:
    """The ``features.*`` tensors of a torchvision-layout VGG/AlexNet file (classifier dropped).

    Accepts a plain state dict, one under ``state_dict``/``model``, with or without a
    DataParallel ``module.`` prefix, and bare ``{index}.weight`` keys of a saved ``features``.
    """
    for _, state_dict in state_dict_candidates(content):
        picked = {k: v for k, v in state_dict.items() if k.startswith("features.")}
        if not picked and all(k.split(".")[0].isdigit() for k in state_dict):
            picked = {f"features.{k}": v for k, v in state_dict.items()}
        if picked:
            return picked
    raise CheckpointError(f"{source}: no 'features.*' tensors (expected a torchvision-layout file)")


def load_vgg(
    path: str | os.PathLike, arch: str = "vgg19", normalize_input: bool = True
) -> VGGFeatures:
    """Build ``arch`` and load its features from a user-supplied file (strict), in eval mode."""
    model = VGGFeatures(arch, normalize_input=normalize_input)
    checkpoint = read_checkpoint(path)
    state_dict = features_state_dict(checkpoint.content, str(path))
    bare = {k[len("features.") :]: v for k, v in state_dict.items()}
    load_state_dict_strict(model.features, bare, f"{path} ({arch})")
    return model.eval().requires_grad_(False)
