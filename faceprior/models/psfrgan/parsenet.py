"""ParseNet: PSFR-GAN's face-parsing network ("FPN", official ``models/networks.py``).

An hourglass of residual blocks (BatchNorm, reflection padding) that predicts 19-class
CelebAMask-HQ logits plus an auxiliary restored image at the input resolution. PSFR-GAN feeds
its hard one-hot map to the generator; GPEN and GFPGAN-style pipelines use the same layout for
paste-back masks. See official networks.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ..conventions import Conventions
from .blocks import ConvLayer, ResidualBlock

# CelebAMask-HQ class order: the channel index of the logits is the label value.
CLASS_NAMES = (
    "background", "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear",
    "r_ear", "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth",
)  # fmt: skip


class ParseNet(nn.Module):
    """Face parser; ``forward(x)`` returns ``(logits, image)`` like the official model.

    ``x`` is (B, 3, H, W) RGB in [-1, 1] (official size 512; any multiple of
    ``in_size / min_feat_size`` works, the network is fully convolutional). ``logits`` are
    (B, parsing_ch, H, W); ``image`` is the auxiliary restoration head, unbounded.
    The constructor mirrors the official one: ``in_size / min_feat_size`` sets the number of
    down-sampling blocks, ``out_size / min_feat_size`` the up-sampling ones, and channel widths
    are ``base_ch * 2^i`` clipped to ``ch_range``.
    """

    def __init__(
        self,
        in_size: int = 512,
        out_size: int = 512,
        min_feat_size: int = 32,
        base_ch: int = 64,
        parsing_ch: int = 19,
        res_depth: int = 10,
        relu_type: str = "LeakyReLU",
        norm_type: str = "bn",
        ch_range: Sequence[int] = (32, 256),
    ):
        super().__init__()
        self.arguments = dict(
            in_size=in_size,
            out_size=out_size,
            min_feat_size=min_feat_size,
            base_ch=base_ch,
            parsing_ch=parsing_ch,
            res_depth=res_depth,
            relu_type=relu_type,
            norm_type=norm_type,
            ch_range=list(ch_range),
        )
        low, high = ch_range

        def clip(channels: int) -> int:
            return max(low, min(channels, high))

        down_steps = int(math.log2(in_size // min_feat_size))
        up_steps = int(math.log2(out_size // min_feat_size))
        width = base_ch
        encoder: list[nn.Module] = [ConvLayer(3, base_ch, 3)]
        for _ in range(down_steps):
            encoder.append(
                ResidualBlock(clip(width), clip(width * 2), relu_type, norm_type, scale="down")
            )
            width *= 2
        self.encoder = nn.Sequential(*encoder)
        self.body = nn.Sequential(
            *(
                ResidualBlock(clip(width), clip(width), relu_type, norm_type)
                for _ in range(res_depth)
            )
        )
        decoder: list[nn.Module] = []
        for _ in range(up_steps):
            decoder.append(
                ResidualBlock(clip(width), clip(width // 2), relu_type, norm_type, scale="up")
            )
            width //= 2
        self.decoder = nn.Sequential(*decoder)
        self.out_img_conv = ConvLayer(clip(width), 3)
        self.out_mask_conv = ConvLayer(clip(width), parsing_ch)

    @property
    def conventions(self) -> Conventions:
        return Conventions(
            architecture="psfrgan-parsenet",
            task="parsing",
            input_size=self.arguments["in_size"],
            output_size=self.arguments["out_size"],
            template="ffhq",
            outputs=("logits", "image"),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.encoder(x)
        features = self.decoder(features + self.body(features))
        return self.out_mask_conv(features), self.out_img_conv(features)


def hard_onehot(logits: torch.Tensor) -> torch.Tensor:
    """The official parse map: 1 where a channel equals the per-pixel maximum, else 0.

    Not an argmax one-hot: exactly tied maxima give several ones at a pixel, as in the
    official ``(logits == logits.max(1, keepdim=True)[0]).float()``.
    """
    return (logits == logits.amax(dim=1, keepdim=True)).to(logits.dtype)
