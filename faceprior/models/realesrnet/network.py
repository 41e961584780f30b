"""The RRDBNet of GPEN's background super-resolution (official ``sr_model/rrdbnet_arch.py``).

``conv_first`` -> ``num_block`` RRDBs -> ``conv_body`` with a long skip, then two nearest x2
upsamplings with a conv each, ``conv_hr`` and ``conv_last``. The trunk always ends 4x below the
output: x2 and x1 networks start with ``pixel_unshuffle`` by 2 and 4, which is why their input
height and width must be multiples of 2 and 4 (``faceprior.face.background`` pads for that).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..conventions import Conventions
from ..panini.rrdb import RRDB

# Input pixels folded into channels before the trunk, per output scale.
UNSHUFFLE = {1: 4, 2: 2, 4: 1}


class RRDBNet(nn.Module):
    """``forward(x)``: (B, 3, H, W) RGB in [0, 1] -> (B, 3, scale*H, scale*W), not clamped.

    H and W must be multiples of ``input_multiple`` (4 for x1, 2 for x2, 1 for x4).
    """

    def __init__(
        self,
        scale: int = 2,
        num_feat: int = 32,
        num_block: int = 23,
        num_grow_ch: int = 32,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
    ):
        super().__init__()
        if scale not in UNSHUFFLE:
            raise ValueError(f"scale must be one of {sorted(UNSHUFFLE)}, got {scale}")
        self.arguments = dict(
            scale=scale,
            num_feat=num_feat,
            num_block=num_block,
            num_grow_ch=num_grow_ch,
            num_in_ch=num_in_ch,
            num_out_ch=num_out_ch,
        )
        self.scale = scale
        self.input_multiple = UNSHUFFLE[scale]
        self.conv_first = nn.Conv2d(num_in_ch * self.input_multiple**2, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(num_feat, num_grow_ch) for _ in range(num_block)])
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    @property
    def conventions(self) -> Conventions:
        return Conventions(
            architecture="realesrnet",
            task="super-resolution",
            input_size=None,
            output_size=None,
            value_range=(0.0, 1.0),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_multiple > 1:
            x = F.pixel_unshuffle(x, self.input_multiple)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))


def detect_rrdbnet(state_dict) -> dict | None:
    """Constructor arguments of an RRDBNet state dict (scale from ``conv_first``'s width)."""
    from ..registry import count_prefixed

    required = ("conv_first.weight", "body.0.rdb1.conv1.weight", "conv_up2.weight")
    if not all(key in state_dict for key in required) or "conv_last.weight" not in state_dict:
        return None
    num_out_ch = state_dict["conv_last.weight"].shape[0]
    folded = state_dict["conv_first.weight"].shape[1]
    scales = {num_out_ch * factor**2: scale for scale, factor in UNSHUFFLE.items()}
    if folded not in scales:
        return None
    scale = scales[folded]
    return dict(
        scale=scale,
        num_feat=state_dict["conv_first.weight"].shape[0],
        num_block=count_prefixed(state_dict, "body.", ".rdb1.conv1.weight"),
        num_grow_ch=state_dict["body.0.rdb1.conv1.weight"].shape[0],
        num_in_ch=folded // UNSHUFFLE[scale] ** 2,
        num_out_ch=num_out_ch,
    )
