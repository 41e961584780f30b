"""ArcFace IR-SE face-recognition embedding, in the layout of the public ``model_ir_se50.pth``.

GPEN's identity loss (official train_simple.py) embeds faces with the IR-SE-50 of
InsightFace_Pytorch (``Backbone(112, 50, mode='ir_se')``), whose checkpoint is a plain state
dict. The module names here reproduce that layout so the file loads strictly:

* ``input_layer``: conv 3x3 (3 -> 64, no bias), BN, PReLU.
* ``body.N``: one flat sequence of ``bottleneck_IR_SE`` units in four stages of depth 64, 128,
  256, 512 (3/4/14/3 units for 50 layers), the first unit of each stage with stride 2. A unit
  adds ``res_layer`` (BN, conv 3x3, PReLU, conv 3x3 with the stride, BN, squeeze-excitation
  ``fc1``/``fc2`` with reduction 16, no biases) to ``shortcut_layer``: a stride-only 1x1 max
  pool when the depth is unchanged (no weights), else conv 1x1 with the stride + BN.
* ``output_layer``: BN, dropout, flatten, linear 512*7*7 -> 512, BN1d; the embedding is
  L2-normalised.

Input: (N, 3, 112, 112) RGB in [-1, 1]. :func:`gpen_crop` takes an FFHQ-aligned face there the
way GPEN's ``IDLoss`` does.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from ..hub.checkpoint import (
    CheckpointError,
    is_state_dict,
    load_state_dict_strict,
    read_checkpoint,
)

INPUT_SIZE = 112
EMBEDDING_SIZE = 512
STAGE_DEPTHS = (64, 128, 256, 512)
STAGE_UNITS = {50: (3, 4, 14, 3), 100: (3, 13, 30, 3), 152: (3, 8, 36, 3)}
SE_REDUCTION = 16
# The training-time dropout of GPEN's ``Backbone(..., drop_ratio=0.6)``; inert in eval mode,
# which is the only mode faceprior runs the network in.
DROP_RATIO = 0.6

# GPEN's identity-loss crop of a 256-pixel FFHQ-aligned face: rows 35:-33, columns 32:-36
# (multiplied by H // 256 for larger faces).
GPEN_CROP_256 = (35, 33, 32, 36)  # top, bottom, left, right margins


class SqueezeExcitation(nn.Module):
    """Channel gate: global average, 1x1 reduce, ReLU, 1x1 expand, sigmoid (no biases)."""

    def __init__(self, channels: int, reduction: int = SE_REDUCTION):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=False)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1))))
        return x * torch.sigmoid(gate)


class BottleneckIRSE(nn.Module):
    """Improved residual unit (pre-BN, PReLU between the convs) with squeeze-excitation."""

    def __init__(self, in_channels: int, depth: int, stride: int):
        super().__init__()
        if in_channels == depth:
            self.shortcut_layer: nn.Module = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(
                nn.Conv2d(in_channels, depth, 1, stride, bias=False), nn.BatchNorm2d(depth)
            )
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(in_channels),
            nn.Conv2d(in_channels, depth, 3, 1, 1, bias=False),
            nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False),
            nn.BatchNorm2d(depth),
            SqueezeExcitation(depth),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


class ArcFaceIRSE(nn.Module):
    """IR-SE-``num_layers``; ``forward`` maps (N, 3, 112, 112) in [-1, 1] to unit (N, 512)."""

    def __init__(self, num_layers: int = 50):
        super().__init__()
        if num_layers not in STAGE_UNITS:
            raise ValueError(f"IR-SE depth must be one of {sorted(STAGE_UNITS)}, got {num_layers}")
        self.num_layers = num_layers
        self.input_layer = nn.Sequential(
            nn.Conv2d(3, STAGE_DEPTHS[0], 3, 1, 1, bias=False),
            nn.BatchNorm2d(STAGE_DEPTHS[0]),
            nn.PReLU(STAGE_DEPTHS[0]),
        )
        units: list[nn.Module] = []
        channels = STAGE_DEPTHS[0]
        for depth, count in zip(STAGE_DEPTHS, STAGE_UNITS[num_layers], strict=True):
            for i in range(count):
                units.append(BottleneckIRSE(channels, depth, 2 if i == 0 else 1))
                channels = depth
        self.body = nn.Sequential(*units)
        side = INPUT_SIZE // 16
        self.output_layer = nn.Sequential(
            nn.BatchNorm2d(channels),
            nn.Dropout(DROP_RATIO),
            nn.Flatten(),
            nn.Linear(channels * side * side, EMBEDDING_SIZE),
            nn.BatchNorm1d(EMBEDDING_SIZE),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"ArcFace needs 112x112 input, got {tuple(x.shape[-2:])}")
        return F.normalize(self.output_layer(self.body(self.input_layer(x))), dim=1)


def _num_layers(state_dict: dict[str, torch.Tensor], path: str | os.PathLike) -> int:
    """Depth from the number of ``body.N`` units, so IR-SE-100/152 files load as well."""
    units = {int(key.split(".")[1]) for key in state_dict if key.startswith("body.")}
    by_units = {sum(counts): layers for layers, counts in STAGE_UNITS.items()}
    if not units:
        raise CheckpointError(
            f"{path}: not an ArcFace IR-SE state dict (no 'body.N' keys; expected the "
            "InsightFace_Pytorch layout of model_ir_se50.pth)"
        )
    if max(units) + 1 not in by_units:
        raise CheckpointError(
            f"{path}: {max(units) + 1} body units fit no IR-SE depth "
            f"({', '.join(f'{n} units = IR-SE-{k}' for n, k in sorted(by_units.items()))})"
        )
    return by_units[max(units) + 1]


def load_arcface(path: str | os.PathLike) -> ArcFaceIRSE:
    """Load an InsightFace_Pytorch-layout IR-SE state dict (e.g. ``model_ir_se50.pth``), strict.

    Tensors only (``weights_only``). A DataParallel ``module.`` prefix is removed, and files
    saved before PyTorch 0.4.1 (no BN ``num_batches_tracked`` counters, unused in eval) get the
    counters as zeros. Returns the network in eval mode without gradients.
    """
    content = read_checkpoint(path).content
    if not is_state_dict(content):
        raise CheckpointError(f"{path}: expected a plain ArcFace IR-SE state dict of tensors")
    state_dict = dict(content)
    if all(key.startswith("module.") for key in state_dict):
        state_dict = {key.removeprefix("module."): v for key, v in state_dict.items()}
    model = ArcFaceIRSE(_num_layers(state_dict, path))
    if not any(key.endswith("num_batches_tracked") for key in state_dict):
        for key, value in model.state_dict().items():
            if key.endswith("num_batches_tracked"):
                state_dict[key] = torch.zeros_like(value)
    load_state_dict_strict(model, state_dict, str(path))
    return model.eval().requires_grad_(False)


def gpen_crop(images: torch.Tensor) -> torch.Tensor:
    """The (N, C, 112, 112) region GPEN's identity loss embeds from FFHQ-aligned faces.

    GPEN crops rows ``35*s:-33*s`` and columns ``32*s:-36*s`` with ``s = H // 256``, then
    average-pools to 112x112. Margins here are ``round(m * side / 256)`` per axis: the same
    pixels for sides that are multiples of 256, and the same face region for other sizes
    (where GPEN's integer ``s`` would be 0 or crop a different region).
    """
    height, width = images.shape[-2:]
    top, bottom, left, right = (
        round(margin * side / 256)
        for margin, side in zip(GPEN_CROP_256, (height, height, width, width), strict=True)
    )
    crop = images[..., top : height - bottom, left : width - right]
    return F.adaptive_avg_pool2d(crop, (INPUT_SIZE, INPUT_SIZE))
