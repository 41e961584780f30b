"""LPIPS (Zhang et al., CVPR 2018): learned perceptual distance on AlexNet or VGG16 features.

The distance of two RGB images in [-1, 1]: both go through a fixed per-channel scaling
(shift ``(-0.030, -0.088, -0.188)``, scale ``(0.458, 0.448, 0.450)``), then the backbone; at
each of five ReLU layers the feature vectors are unit-normalised along channels (eps 1e-10),
their squared difference is weighted per channel by a learned non-negative 1x1 conv
(``lin{k}.model.1.weight``, shape (1, C, 1, 1), the layout of the released v0.1 ``alex.pth`` /
``vgg.pth``), averaged over space and summed over layers.

LPIPS: the v0.1 linear layers ship with faceprior (``faceprior/weights/lpips_v0.1_*``, BSD-2);
the ImageNet backbone (torchvision layout) is user-supplied, since no package carries it
without torchvision. ST-LPIPS (Ghildyal & Liu, ECCV 2022): the same distance on the
shift-tolerant backbones of :mod:`faceprior.models.shift_tolerant`, whose complete released
files (backbone, linear layers, scaling) come from the stlpips-pytorch wheel
(:func:`load_stlpips`); nothing is ever computed with random weights.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from ..hub.checkpoint import (
    CheckpointError,
    load_state_dict_strict,
    read_checkpoint,
    state_dict_candidates,
)
from ..models.alexnet import LPIPS_LAYERS as ALEX_LAYERS
from ..models.alexnet import AlexNetFeatures, load_alexnet
from ..models.shift_tolerant import ALEX_TAPS, BUILDERS, VGG_TAPS, binomial_filter
from ..models.vgg import LPIPS_LAYERS as VGG_LAYERS
from ..models.vgg import VGGFeatures, load_vgg

SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
ALEX_CHANNELS = (64, 192, 384, 256, 256)
VGG_CHANNELS = (64, 128, 256, 512, 512)
CHANNELS = {
    "alex": ALEX_CHANNELS,
    "vgg": VGG_CHANNELS,
    "st_alex": ALEX_CHANNELS,
    "st_vgg": VGG_CHANNELS,
}
LAYERS = {
    "alex": ALEX_LAYERS,
    "vgg": VGG_LAYERS,
    "st_alex": tuple(name for _, name in ALEX_TAPS),
    "st_vgg": tuple(name for _, name in VGG_TAPS),
}
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
        weights = linear_weights(state_dict, net, str(path))
        if weights is not None:
            return weights
    raise CheckpointError(f"{path}: no LPIPS linear weights (lin0.model.1.weight ... lin4)")


def linear_weights(state_dict: dict, net: str, source: str) -> list[torch.Tensor] | None:
    """``lin0..lin4`` of a state dict (shapes checked against ``net``), None when absent."""
    keys = [f"lin{k}.model.1.weight" for k in range(5)]
    if not all(k in state_dict for k in keys):
        return None
    weights = [state_dict[k].float() for k in keys]
    shapes = [tuple(w.shape) for w in weights]
    expected = [(1, c, 1, 1) for c in CHANNELS[net]]
    if shapes != expected:
        raise CheckpointError(
            f"{source}: LPIPS linear weights have shapes {shapes}, {net} needs {expected}"
        )
    return weights


def build_lpips(net: str, backbone: nn.Module, linear: list[torch.Tensor]) -> LPIPS:
    model = LPIPS(backbone, net)
    with torch.no_grad():
        for param, value in zip(model.lins, linear, strict=True):
            param.copy_(value)
    return model.eval().requires_grad_(False)


def load_lpips(
    net: str, backbone_path: str | os.PathLike, linear_path: str | os.PathLike | None = None
) -> LPIPS:
    """LPIPS-``net`` ('alex' or 'vgg') from a torchvision-layout backbone and a lin file.

    ``linear_path`` None: the v0.1 linear layers shipped with faceprior (sha256-checked).
    """
    if net not in ("alex", "vgg"):
        raise ValueError(f"unknown LPIPS backbone {net!r}; choose from ['alex', 'vgg']")
    if linear_path is None:
        from .weights import locate

        linear_path = locate(f"lpips-{net}-linear")
    linear = read_linear_weights(linear_path, net)
    if net == "alex":
        backbone: AlexNetFeatures | VGGFeatures = load_alexnet(backbone_path)
    else:
        backbone = load_vgg(backbone_path, "vgg16", normalize_input=False)
    return build_lpips(net, backbone, linear)


def load_stlpips(net: str, path: str | os.PathLike) -> LPIPS:
    """ST-LPIPS-``net`` ('alex' or 'vgg') from a released ``{net}_shift_tolerant.pth``.

    The file's ``net.slice{k}.{index}`` tensors load strictly into the shift-tolerant
    backbone; its blur filters and input scaling must equal the fixed ones used here (they
    are constants, checked so that a different variant is refused rather than misread).
    """
    if net not in BUILDERS:
        raise ValueError(f"unknown ST-LPIPS backbone {net!r}; choose from {sorted(BUILDERS)}")
    content = read_checkpoint(path).content
    state_dict = next((sd for _, sd in state_dict_candidates(content)), None)
    if state_dict is None:
        raise CheckpointError(f"{path}: no tensors (expected an ST-LPIPS state dict)")
    backbone = BUILDERS[net]()
    weights: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        parts = key.split(".")
        if key.startswith("net.slice") and parts[-1] == "filt":
            if not torch.equal(value, binomial_filter(value.shape[0])):
                raise CheckpointError(f"{path}: {key} is not the 3x3 binomial blur-pool filter")
        elif key.startswith("net.slice"):
            weights[".".join(["features", *parts[2:]])] = value
    for key, want in (("scaling_layer.shift", SHIFT), ("scaling_layer.scale", SCALE)):
        if key in state_dict and not torch.allclose(state_dict[key].flatten(), torch.tensor(want)):
            raise CheckpointError(f"{path}: {key} differs from LPIPS' input scaling {want}")
    load_state_dict_strict(backbone, weights, f"{path} (ST-LPIPS {net})")
    linear = linear_weights(state_dict, net, str(path))
    if linear is None:
        raise CheckpointError(f"{path}: no LPIPS linear weights (lin0.model.1.weight ... lin4)")
    return build_lpips(f"st_{net}", backbone.eval(), linear)
