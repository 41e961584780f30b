"""The shift-tolerant AlexNet and VGG16 feature stacks of ST-LPIPS (Ghildyal & Liu, ECCV 2022).

ShiftTolerant-LPIPS retrains LPIPS on backbones that do not alias when the image moves by a
pixel: every stride-2 step becomes a stride-1 operation followed by a blur-pool
(:class:`BlurPool`: reflect padding of 2 on every side, a depthwise 3x3 binomial filter
``[1, 2, 1]^T [1, 2, 1] / 16``, stride 2), and max-pools keep their kernel with stride 1.

- AlexNet: conv 11x11 (stride 1, pad 2), blur-pool, ReLU -> relu1; max-pool 3 (stride 1),
  blur-pool, conv 5x5, ReLU -> relu2; max-pool 3, blur-pool, conv 3x3, ReLU -> relu3;
  conv, ReLU -> relu4; conv, ReLU -> relu5.
- VGG16 (cfg D): each 2x2 max-pool becomes max-pool 2 (stride 1) + blur-pool; LPIPS reads
  relu1_2, relu2_2, relu3_3, relu4_3, relu5_3.

Module indices follow the released files (``net.slice{k}.{index}.*`` in
``{alex,vgg}_shift_tolerant.pth`` of the stlpips-pytorch wheel): ``net.slice{k}.{index}`` is
``features.{index}`` here. The whole ST-LPIPS file (backbone, the five linear layers and the
input scaling) is read by :func:`faceprior.metrics.lpips.load_stlpips`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

BINOMIAL = (1.0, 2.0, 1.0)

# (index of the ReLU whose output LPIPS reads, its name) per network.
ALEX_TAPS = ((2, "relu1"), (6, "relu2"), (10, "relu3"), (12, "relu4"), (14, "relu5"))
VGG_TAPS = ((3, "relu1_2"), (9, "relu2_2"), (17, "relu3_3"), (25, "relu4_3"), (33, "relu5_3"))
VGG16_BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


def binomial_filter(channels: int) -> torch.Tensor:
    """The (C, 1, 3, 3) depthwise blur of a blur-pool: outer([1, 2, 1]) / 16 per channel."""
    row = torch.tensor(BINOMIAL)
    kernel = torch.outer(row, row)
    return (kernel / kernel.sum()).expand(channels, 1, 3, 3).clone()


class BlurPool(nn.Module):
    """Reflect-pad by 2, blur with :func:`binomial_filter`, keep every second pixel."""

    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer("filt", binomial_filter(channels), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x, (2, 2, 2, 2), mode="reflect")
        return F.conv2d(padded, self.filt, stride=2, groups=x.shape[1])


class ShiftTolerantFeatures(nn.Module):
    """A feature stack returning the activations LPIPS reads, by name, in order."""

    def __init__(self, layers: Sequence[nn.Module], taps: Sequence[tuple[int, str]]):
        super().__init__()
        self.features = nn.Sequential(*layers)
        self.taps = tuple(taps)
        self.layer_names = tuple(name for _, name in taps)

    def forward(
        self, image: torch.Tensor, layers: Sequence[str] | None = None
    ) -> dict[str, torch.Tensor]:
        wanted = self.layer_names if layers is None else tuple(layers)
        unknown = [name for name in wanted if name not in self.layer_names]
        if unknown:
            raise ValueError(f"unknown layer(s) {unknown}; known: {list(self.layer_names)}")
        index_of = dict((name, index) for index, name in self.taps)
        last = max(index_of[name] for name in wanted)
        found: dict[str, torch.Tensor] = {}
        x = image
        for index in range(last + 1):
            x = self.features[index](x)
            for tap, name in self.taps:
                if tap == index and name in wanted:
                    found[name] = x
        return {name: found[name] for name in wanted}


def shift_tolerant_alexnet() -> ShiftTolerantFeatures:
    layers = [
        nn.Conv2d(3, 64, 11, stride=1, padding=2),
        BlurPool(64),
        nn.ReLU(),
        nn.MaxPool2d(3, 1),
        BlurPool(64),
        nn.Conv2d(64, 192, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(3, 1),
        BlurPool(192),
        nn.Conv2d(192, 384, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1),
        nn.ReLU(),
    ]
    return ShiftTolerantFeatures(layers, ALEX_TAPS)


def shift_tolerant_vgg16() -> ShiftTolerantFeatures:
    layers: list[nn.Module] = []
    channels = 3
    for block, widths in enumerate(VGG16_BLOCKS):
        if block > 0:
            layers += [nn.MaxPool2d(2, 1), BlurPool(channels)]
        for width in widths:
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU()]
            channels = width
    return ShiftTolerantFeatures(layers, VGG_TAPS)


BUILDERS = {"alex": shift_tolerant_alexnet, "vgg": shift_tolerant_vgg16}
