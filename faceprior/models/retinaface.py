"""RetinaFace (Deng et al., CVPR 2020): single-shot face detector with 5 landmarks.

The layout follows the widely used PyTorch release (biubug6/Pytorch_Retinaface) so its
checkpoints load strictly: ``body`` (MobileNet-0.25 ``stage1..3`` or a torchvision-style
ResNet-50 cut after ``layer4``), ``fpn``, three ``ssh`` context modules and per-level
``ClassHead``/``BboxHead``/``LandmarkHead`` 1x1 convolutions with 2 anchors per location.
This module holds the network and its registration; the anchor grid, the decoding of the raw
regressions and the official post-processing are the detector's (``faceprior.face.retinaface``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .conventions import Conventions
from .registry import Architecture

# BGR channel means subtracted from 0..255 pixels (no /255): the training convention.
PIXEL_MEAN_BGR = (104.0, 117.0, 123.0)


@dataclass(frozen=True)
class RetinaFaceConfig:
    """Anchor grid and channel widths of one backbone (the official ``cfg_mnet``/``cfg_re50``)."""

    backbone: str
    in_channel: int
    out_channel: int
    min_sizes: tuple[tuple[int, ...], ...] = ((16, 32), (64, 128), (256, 512))
    steps: tuple[int, ...] = (8, 16, 32)
    variances: tuple[float, float] = (0.1, 0.2)


CONFIGS = {
    "retinaface-mobilenet0.25": RetinaFaceConfig("mobilenet0.25", in_channel=32, out_channel=64),
    "retinaface-resnet50": RetinaFaceConfig("resnet50", in_channel=256, out_channel=256),
}


def _conv_bn(
    in_ch: int,
    out_ch: int,
    kernel: int,
    stride: int = 1,
    groups: int = 1,
    leaky: float | None = 0.0,
) -> list[nn.Module]:
    """Bias-free conv + BatchNorm (+ LeakyReLU unless ``leaky`` is None): the repeated unit."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch),
    ]
    if leaky is not None:
        layers.append(nn.LeakyReLU(leaky))
    return layers


def _depthwise_separable(in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
    """MobileNet-v1 block; keys ``.0/.1`` (depthwise conv, BN) and ``.3/.4`` (pointwise, BN)."""
    return nn.Sequential(
        *_conv_bn(in_ch, in_ch, 3, stride, groups=in_ch, leaky=0.1),
        *_conv_bn(in_ch, out_ch, 1, leaky=0.1),
    )


class MobileNetV1Body(nn.Module):
    """MobileNet-v1 at width 0.25 returning the stride-8/16/32 features (64/128/256 ch)."""

    def __init__(self) -> None:
        super().__init__()
        self.stage1 = nn.Sequential(
            nn.Sequential(*_conv_bn(3, 8, 3, 2, leaky=0.1)),
            _depthwise_separable(8, 16, 1),
            _depthwise_separable(16, 32, 2),
            _depthwise_separable(32, 32, 1),
            _depthwise_separable(32, 64, 2),
            _depthwise_separable(64, 64, 1),
        )
        self.stage2 = nn.Sequential(
            _depthwise_separable(64, 128, 2), *[_depthwise_separable(128, 128, 1) for _ in range(5)]
        )
        self.stage3 = nn.Sequential(
            _depthwise_separable(128, 256, 2), _depthwise_separable(256, 256, 1)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        c1 = self.stage1(x)
        c2 = self.stage2(c1)
        return [c1, c2, self.stage3(c2)]


class Bottleneck(nn.Module):
    """ResNet-50 bottleneck with the stride on the 3x3 conv (torchvision's layout and keys)."""

    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int) -> None:
        super().__init__()
        out_ch = width * self.expansion
        self.conv1 = nn.Conv2d(in_ch, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.downsample = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(out + shortcut)


class ResNet50Body(nn.Module):
    """ResNet-50 up to ``layer4``, returning layer2/3/4 (strides 8/16/32, 512/1024/2048 ch).

    Keys equal torchvision's ``resnet50`` minus ``fc`` (what the official RetinaFace keeps
    through ``IntermediateLayerGetter``), so ``body.conv1.weight``, ``body.layer2.0...``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        in_ch = 64
        for index, (width, blocks, stride) in enumerate(
            ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)), start=1
        ):
            layer = [Bottleneck(in_ch, width, stride)]
            in_ch = width * Bottleneck.expansion
            layer += [Bottleneck(in_ch, width, 1) for _ in range(blocks - 1)]
            setattr(self, f"layer{index}", nn.Sequential(*layer))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer1(F.max_pool2d(x, 3, 2, 1))
        c2 = self.layer2(x)
        c3 = self.layer3(c2)
        return [c2, c3, self.layer4(c3)]


class FPN(nn.Module):
    """Top-down feature pyramid: 1x1 lateral convs, nearest upsampling, 3x3 merge convs."""

    def __init__(self, in_channels: Sequence[int], out_ch: int) -> None:
        super().__init__()
        leaky = 0.1 if out_ch <= 64 else 0.0
        for index, in_ch in enumerate(in_channels, start=1):
            setattr(self, f"output{index}", nn.Sequential(*_conv_bn(in_ch, out_ch, 1, leaky=leaky)))
        self.merge1 = nn.Sequential(*_conv_bn(out_ch, out_ch, 3, leaky=leaky))
        self.merge2 = nn.Sequential(*_conv_bn(out_ch, out_ch, 3, leaky=leaky))

    def forward(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        out1 = self.output1(features[0])
        out2 = self.output2(features[1])
        out3 = self.output3(features[2])
        out2 = self.merge2(out2 + F.interpolate(out3, size=out2.shape[-2:], mode="nearest"))
        out1 = self.merge1(out1 + F.interpolate(out2, size=out1.shape[-2:], mode="nearest"))
        return [out1, out2, out3]


class SSH(nn.Module):
    """Context module: parallel 3x3, 5x5 and 7x7 receptive fields (stacked 3x3 convs), ReLU.

    The mixed ``X``/``x`` spelling of ``conv7x7_3`` is the official key.
    """

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        leaky = 0.1 if out_ch <= 64 else 0.0
        quarter = out_ch // 4
        self.conv3X3 = nn.Sequential(*_conv_bn(in_ch, out_ch // 2, 3, leaky=None))
        self.conv5X5_1 = nn.Sequential(*_conv_bn(in_ch, quarter, 3, leaky=leaky))
        self.conv5X5_2 = nn.Sequential(*_conv_bn(quarter, quarter, 3, leaky=None))
        self.conv7X7_2 = nn.Sequential(*_conv_bn(quarter, quarter, 3, leaky=leaky))
        self.conv7x7_3 = nn.Sequential(*_conv_bn(quarter, quarter, 3, leaky=None))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch5 = self.conv5X5_1(x)
        branch7 = self.conv7x7_3(self.conv7X7_2(branch5))
        return F.relu(torch.cat([self.conv3X3(x), self.conv5X5_2(branch5), branch7], dim=1))


class _Head(nn.Module):
    """1x1 conv predicting ``values`` numbers per anchor, flattened to (B, H*W*anchors, values)."""

    def __init__(self, in_ch: int, anchors: int, values: int) -> None:
        super().__init__()
        self.values = values
        self.conv1x1 = nn.Conv2d(in_ch, anchors * values, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1x1(x).permute(0, 2, 3, 1)
        return out.reshape(out.shape[0], -1, self.values)


class RetinaFace(nn.Module):
    """The detector network; ``forward`` returns raw box and landmark regressions and face
    probabilities for every anchor of ``faceprior.face.retinaface.prior_boxes`` (same order).

    Input: (B, 3, H, W) BGR float, 0..255 minus :data:`PIXEL_MEAN_BGR`
    (``faceprior.face.retinaface.preprocess``).
    Output: ``loc`` (B, N, 4), ``conf`` (B, N, 2) softmax [background, face],
    ``landmarks`` (B, N, 10).
    """

    def __init__(self, backbone: str = "mobilenet0.25") -> None:
        super().__init__()
        config = _config_for_backbone(backbone)
        self.config = config
        self.arguments = dict(backbone=backbone)
        self.body = MobileNetV1Body() if backbone == "mobilenet0.25" else ResNet50Body()
        in_channels = [config.in_channel * 2, config.in_channel * 4, config.in_channel * 8]
        out_ch = config.out_channel
        self.fpn = FPN(in_channels, out_ch)
        self.ssh1 = SSH(out_ch, out_ch)
        self.ssh2 = SSH(out_ch, out_ch)
        self.ssh3 = SSH(out_ch, out_ch)
        levels, anchors = len(config.steps), len(config.min_sizes[0])
        self.ClassHead = nn.ModuleList(_Head(out_ch, anchors, 2) for _ in range(levels))
        self.BboxHead = nn.ModuleList(_Head(out_ch, anchors, 4) for _ in range(levels))
        self.LandmarkHead = nn.ModuleList(_Head(out_ch, anchors, 10) for _ in range(levels))

    @property
    def conventions(self) -> Conventions:
        name = next(name for name, config in CONFIGS.items() if config == self.config)
        return Conventions(
            architecture=name,
            task="face-detection",
            input_size=None,
            output_size=None,
            color_order="BGR",
            value_range=(0.0, 255.0),  # before the channel means are subtracted
            outputs=("loc", "conf", "landmarks"),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pyramid = self.fpn(self.body(x))
        features = [
            ssh(f) for ssh, f in zip((self.ssh1, self.ssh2, self.ssh3), pyramid, strict=True)
        ]

        def run(heads: nn.ModuleList) -> torch.Tensor:
            return torch.cat([head(f) for head, f in zip(heads, features, strict=True)], dim=1)

        loc, logits, landmarks = run(self.BboxHead), run(self.ClassHead), run(self.LandmarkHead)
        return loc, F.softmax(logits, dim=-1), landmarks


def _config_for_backbone(backbone: str) -> RetinaFaceConfig:
    for config in CONFIGS.values():
        if config.backbone == backbone:
            return config
    known = ", ".join(c.backbone for c in CONFIGS.values())
    raise ValueError(f"unknown RetinaFace backbone {backbone!r}; known: {known}")


def detect_backbone(state_dict: Mapping[str, torch.Tensor]) -> str | None:
    """Which backbone a RetinaFace state dict holds, from its keys (None if not RetinaFace)."""
    if "ClassHead.0.conv1x1.weight" not in state_dict:
        return None
    if "body.stage1.0.0.weight" in state_dict:
        return "mobilenet0.25"
    if "body.layer2.0.conv1.weight" in state_dict:
        return "resnet50"
    return None


def _architectures():
    def detector(backbone: str):
        def detect(state_dict: Mapping[str, torch.Tensor]) -> dict | None:
            return {"backbone": backbone} if detect_backbone(state_dict) == backbone else None

        return detect

    return [
        Architecture(
            name,
            RetinaFace,
            detector(config.backbone),
            description=f"RetinaFace face detector, {config.backbone} backbone (5 landmarks)",
            example=dict(backbone=config.backbone),
        )
        for name, config in CONFIGS.items()
    ]


ARCHITECTURES = _architectures()
