"""Recognise PSFR-GAN networks from state-dict keys and shapes.

Only shapes are read, so official, fine-tuned and reduced-size checkpoints all load without
flags. A file that merely resembles a layout is caught by the strict load that follows, which
names every missing or mismatched key.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ..registry import count_prefixed

StateDict = Mapping[str, torch.Tensor]


def _clip_range(widths: list[int], official_low: int) -> list[int]:
    """``ch_range`` reproducing ``widths``: the official lower bound unless a layer is thinner."""
    return [min(official_low, min(widths)), max(widths)]


def detect_parsenet(state_dict: StateDict) -> dict | None:
    required = (
        "encoder.0.conv2d.weight",
        "out_mask_conv.conv2d.weight",
        "body.0.conv1.conv2d.weight",
    )
    if not all(key in state_dict for key in required):
        return None
    down_steps = 0
    while f"encoder.{down_steps + 1}.conv1.conv2d.weight" in state_dict:
        down_steps += 1
    up_steps = count_prefixed(state_dict, "decoder.", ".conv1.conv2d.weight")
    widths = [state_dict["encoder.0.conv2d.weight"].shape[0]] + [
        state_dict[f"{name}.conv1.conv2d.weight"].shape[0]
        for name in [f"encoder.{i}" for i in range(1, down_steps + 1)]
        + [f"decoder.{i}" for i in range(up_steps)]
    ]
    min_feat_size = 32
    arguments = dict(
        in_size=min_feat_size * 2**down_steps,
        out_size=min_feat_size * 2**up_steps,
        min_feat_size=min_feat_size,
        base_ch=widths[0],
        parsing_ch=state_dict["out_mask_conv.conv2d.weight"].shape[0],
        res_depth=count_prefixed(state_dict, "body.", ".conv1.conv2d.weight"),
        relu_type="PReLU" if "body.0.conv1.relu.func.weight" in state_dict else "LeakyReLU",
        norm_type="bn",
        ch_range=_clip_range(widths, 32),
    )
    return arguments


def detect_generator(state_dict: StateDict) -> dict | None:
    required = ("const_input", "img_out.weight_orig", "head.1.norm_0.conv1.0.weight_orig")
    if not all(key in state_dict for key in required):
        return None
    min_feat_size = state_dict["const_input"].shape[-1]
    steps = count_prefixed(state_dict, "body.", ".1.weight_orig")
    widths = [state_dict["const_input"].shape[1]] + [
        state_dict[f"body.{i}.1.weight_orig"].shape[0] for i in range(steps)
    ]
    arguments = dict(
        out_size=min_feat_size * 2**steps,
        min_feat_size=min_feat_size,
        parse_ch=state_dict["head.1.norm_0.conv1.0.weight_orig"].shape[1] - 3,
        ch_range=_clip_range(widths, 32),
    )
    return arguments


def detect_discriminator(state_dict: StateDict) -> dict | None:
    first = "discriminators.0.model.0.conv2d.weight_orig"
    if first not in state_dict:
        return None
    layers = count_prefixed(state_dict, "discriminators.0.model.", ".conv2d.weight_orig")
    widths = [
        state_dict[f"discriminators.0.model.{i}.conv2d.weight_orig"].shape[0] for i in range(layers)
    ]
    arguments = dict(
        in_channels=state_dict[first].shape[1],
        base_channels=widths[0],
        n_layers=layers - 1,
        num_scales=count_prefixed(state_dict, "discriminators.", ".score_out.conv2d.weight_orig"),
        max_channels=max(widths),
        norm_type="in",
    )
    return arguments
