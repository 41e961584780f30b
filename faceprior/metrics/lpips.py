"""LPIPS (Zhang et al., CVPR 2018): learned perceptual distance on AlexNet or VGG16 features.

The distance of two RGB images in [-1, 1]: both go through a fixed per-channel scaling
(shift ``(-0.030, -0.088, -0.188)``, scale ``(0.458, 0.448, 0.450)``), then the backbone; at
each of five ReLU layers the feature vectors are unit-normalised along channels (eps 1e-10),
their squared difference is weighted per channel by a learned non-negative 1x1 conv
(``lin{k}.model.1.weight``, shape (1, C, 1, 1), the layout of the released v0.1 ``alex.pth`` /
``vgg.pth``), averaged over space and summed over layers. Both files are user-supplied: the
backbone in torchvision layout, the linear weights as released; nothing is computed without them.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from ..hub.checkpoint import CheckpointError, read_checkpoint, state_dict_candidates
from ..models.alexnet import LPIPS_LAYERS as ALEX_LAYERS
from ..models.alexnet import AlexNetFeatures, load_alexnet
from ..models.vgg import LPIPS_LAYERS as VGG_LAYERS
from ..models.vgg import VGGFeatures, load_vgg

SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
CHANNELS = {"alex": (64, 192, 384, 256, 256), "vgg": (64, 128, 256, 512, 512)}
LAYERS = {"alex": ALEX_LAYERS, "vgg": VGG_LAYERS}
EPS = 1e-10


class LPIPS(nn.Module):
    """``forward(a, b)`` -> (N,) distances of (N, 3, H, W) RGB images in [-1, 1]."""

    def __init__(self, backbone: nn.Module, net: str):
        super().__init__()
        if net not in CHANNELS:
            raise ValueError(f"unknown LPIPS backbone {net!r}; choose from {sorted(CHANNELS)}")
        self.net = net
        self.backbone = backbone
        self.lins = nn.ParameterList([nn.Parameter(torch.zeros(1, c, 1, 1)) for c in CHANNELS[net]])
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), False)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if a.shape != b.shape:
            raise ValueError(f"images differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
        layers = LAYERS[self.net]
        fa = self.backbone((a - self.shift) / self.scale, layers)
        fb = self.backbone((b - self.shift) / self.scale, layers)
        total = a.new_zeros(a.shape[0])
        for name, weight in zip(layers, self.lins, strict=True):
            na = fa[name] / (fa[name].pow(2).sum(1, keepdim=True).sqrt() + EPS)
            nb = fb[name] / (fb[name].pow(2).sum(1, keepdim=True).sqrt() + EPS)
            total = total + ((na - nb) ** 2 * weight).sum(1).mean((1, 2))
        return total


def read_linear_weights(path: str | os.PathLike, net: str) -> list[torch.Tensor]:
    """The five ``lin{k}.model.1.weight`` tensors of a released LPIPS weight file."""
    content = read_checkpoint(path).content
    for _, state_dict in state_dict_candidates(content):
        keys = [f"lin{k}.model.1.weight" for k in range(5)]
        if all(k in state_dict for k in keys):
            weights = [state_dict[k].float() for k in keys]
            shapes = [tuple(w.shape) for w in weights]
            expected = [(1, c, 1, 1) for c in CHANNELS[net]]
            if shapes != expected:
                raise CheckpointError(
                    f"{path}: LPIPS linear weights have shapes {shapes}, {net} needs {expected}"
                )
            return weights
    raise CheckpointError(f"{path}: no LPIPS linear weights (lin0.model.1.weight ... lin4)")


def build_lpips(net: str, backbone: nn.Module, linear: list[torch.Tensor]) -> LPIPS:
    model = LPIPS(backbone, net)
    with torch.no_grad():
        for param, value in zip(model.lins, linear, strict=True):
            param.copy_(value)
    return model.eval().requires_grad_(False)


def load_lpips(net: str, backbone_path: str | os.PathLike, linear_path: str | os.PathLike) -> LPIPS:
    """LPIPS-``net`` ('alex' or 'vgg') from a torchvision-layout backbone and released lin file."""
    if net not in CHANNELS:
        raise ValueError(f"unknown LPIPS backbone {net!r}; choose from {sorted(CHANNELS)}")
    linear = read_linear_weights(linear_path, net)
    if net == "alex":
        backbone: AlexNetFeatures | VGGFeatures = load_alexnet(backbone_path)
    else:
        backbone = load_vgg(backbone_path, "vgg16", normalize_input=False)
    return build_lpips(net, backbone, linear)
