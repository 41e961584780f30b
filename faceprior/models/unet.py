"""A plain U-Net face restorer: the no-prior baseline that GAN-prior methods are measured against.

Issue 10 asks whether the GAN prior earns its keep, so the offline GPEN is compared with a
U-Net of about the same parameter count, trained by the same task (``unet_bfr``: same data,
degradations, losses and steps). The design is the textbook one on purpose: two 3x3 convs
with leaky ReLU per level, average-pool down, bilinear up, skip concatenation, and a global
residual (the network predicts a correction of its input, the usual choice for restoration).
Its convolutions use GPEN's equalized learning rate (weights N(0, 1), scaled at run time), so
that the optimiser settings the two share mean the same step size: with PyTorch's default
parametrisation, GPEN's Adam lr 0.002 with beta1 0 made the U-Net diverge within 215 steps.

A U-Net's weights do not tell its training size, so raw state dicts are not recognised;
faceprior stores it as safetensors with its arguments (``faceprior.save_model``, or the
trainer's export), which ``faceprior.load_model`` reads.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .conventions import Conventions
from .registry import Architecture
from .restorer import first_output_restorer
from .stylegan2.layers import EqualConv2d
from .templates import TEMPLATES


class ConvBlock(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(
            EqualConv2d(in_channels, out_channels, 3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            EqualConv2d(out_channels, out_channels, 3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
        )


class UNet(nn.Module):
    """``forward(image) -> (restored, None)``: aligned RGB faces in [-1, 1], same size out.

    ``template`` names the alignment the training faces had (faceprior trains on the CelebA
    subset's crop, ``celeba``); the photo pipeline warps faces to it.
    ``channels`` lists the width of each level from full resolution down; the input side
    must be divisible by ``2 ** (len(channels) - 1)``. The second output mirrors GPEN's
    ``(image, latents)`` so that the same training task and pipeline code drive both.
    """

    def __init__(
        self,
        size: int = 128,
        channels: Sequence[int] = (32, 64, 128, 256),
        template: str = "celeba",
    ):
        super().__init__()
        channels = [int(c) for c in channels]
        if template not in TEMPLATES:
            raise ValueError(f"unknown template {template!r}; known: {sorted(TEMPLATES)}")
        if len(channels) < 2 or min(channels) < 1:
            raise ValueError(f"channels needs at least two positive widths, got {channels}")
        if size % 2 ** (len(channels) - 1):
            raise ValueError(f"size {size} is not divisible by 2^{len(channels) - 1}")
        self.size = size
        self.template = template  # the alignment of the training faces
        self.arguments = dict(size=size, channels=channels, template=template)
        widths = [3, *channels]
        self.encoders = nn.ModuleList(
            ConvBlock(widths[i], widths[i + 1]) for i in range(len(channels))
        )
        self.decoders = nn.ModuleList(
            ConvBlock(channels[i + 1] + channels[i], channels[i])
            for i in reversed(range(len(channels) - 1))
        )
        self.to_rgb = EqualConv2d(channels[0], 3, 1)

    @property
    def conventions(self) -> Conventions:
        return Conventions(
            architecture="unet",
            task="restoration",
            input_size=self.size,
            output_size=self.size,
            template=self.template,
            outputs=("image", None),
        )

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, None]:
        if image.ndim != 4 or image.shape[1] != 3 or image.shape[-2:] != (self.size, self.size):
            raise ValueError(
                f"U-Net ({self.size} px) expects (B, 3, {self.size}, {self.size}) faces, "
                f"got {tuple(image.shape)}"
            )
        skips = []
        x = image
        for index, encoder in enumerate(self.encoders):
            x = encoder(x if index == 0 else F.avg_pool2d(x, 2))
            skips.append(x)
        for decoder, skip in zip(self.decoders, reversed(skips[:-1])):
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = decoder(torch.cat([x, skip], 1))
        return image + self.to_rgb(x), None


def _architectures():
    return [
        Architecture(
            "unet",
            UNet,
            lambda state_dict: None,  # needs the arguments stored beside the weights
            restorer=first_output_restorer,
            description="plain U-Net baseline (no GAN prior), faceprior's own",
            example=dict(size=32, channels=(8, 16, 32)),
        )
    ]


ARCHITECTURES = _architectures()
