"""Recognising Panini-Net weights in the files the authors released (official moco/ code).

Panini ``.pth`` files are whole MMEditing ``GLEAN`` training checkpoints: the generator sits
under ``state_dict`` with a ``generator.`` prefix next to the discriminator, the VGG16 of the
perceptual loss and the optimiser state. The MoCo file keeps the degradation encoder as
``module.encoder_q.*`` beside the momentum copy and the queue. Only the inference network is
taken; the rest is training state and is ignored (the ``where`` text says what was left).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping

import torch

from ...hub.checkpoint import is_state_dict, state_dict_candidates
from ..registry import count_prefixed

LOG = logging.getLogger(__name__)

StateDict = Mapping[str, torch.Tensor]
MMEDIT_PREFIX = "generator."
MOCO_PREFIXES = ("module.encoder_q.", "encoder_q.")


def _with_prefix(
    state_dict: StateDict, prefix: str, where: str
) -> tuple[str, dict[str, torch.Tensor]] | None:
    picked = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
    if not picked:
        return None
    ignored: dict[str, int] = {}
    for key in state_dict:
        if not key.startswith(prefix):
            parts = key.split(".")
            head = ".".join(parts[:2] if parts[0] == "module" else parts[:1])
            ignored[head] = ignored.get(head, 0) + 1
    note = f"{where}, '{prefix}' entries"
    if ignored:
        listed = ", ".join(f"{count} '{head}.*'" for head, count in sorted(ignored.items()))
        note += f" (ignored training-only entries: {listed})"
        LOG.info("%s", note)
    return note, picked


def panini_candidates(content: object) -> Iterator[tuple[str, dict[str, torch.Tensor]]]:
    """The MMEditing wrapper's generator first, then the plain layouts (ours, stripped dicts)."""
    if isinstance(content, Mapping) and is_state_dict(content.get("state_dict")):
        found = _with_prefix(content["state_dict"], MMEDIT_PREFIX, "state_dict")
        if found is not None:
            yield found
    yield from state_dict_candidates(content)


def moco_candidates(content: object) -> Iterator[tuple[str, dict[str, torch.Tensor]]]:
    """The query encoder of a MoCo training checkpoint (official or ours), then plain dicts."""
    for where, state_dict in state_dict_candidates(content):
        for prefix in MOCO_PREFIXES:
            found = _with_prefix(state_dict, prefix, where)
            if found is not None:
                yield found
                break
        else:
            yield where, state_dict


def _common_arguments(state_dict: StateDict) -> dict | None:
    required = (
        "generator.constant_input.input",
        "generator.to_rgb1.conv.style_modulation.linear.weight_orig",
        "encoder.0.0.conv_first.weight",
        "encoder.5.3.weight",
        "AFS_maskGen.mapping.2.weight",
        "fusion_out.4.weight",
    )
    if not all(key in state_dict for key in required):
        return None
    num_stages = count_prefixed(state_dict, "generator.to_rgbs.", ".bias")
    fused = state_dict["fusion_out.0.weight"].shape[0]
    narrow = {} if fused == 512 else {"narrow": fused / 512}  # CPU-sized trained networks
    return dict(
        **narrow,
        out_size=2 ** (num_stages + 2),
        style_channels=state_dict[
            "generator.to_rgb1.conv.style_modulation.linear.weight_orig"
        ].shape[1],
        rrdb_channels=state_dict["encoder.0.0.conv_first.weight"].shape[0],
        num_rrdbs=count_prefixed(state_dict, "encoder.0.0.body.", ".rdb1.conv1.weight"),
        num_mlps=_count_mapping_layers(state_dict),
    )


def _count_mapping_layers(state_dict: StateDict) -> int:
    # style_mapping.0 is the parameter-free PixelNorm; the linear layers start at 1.
    count = 0
    while f"generator.style_mapping.{count + 1}.bias" in state_dict:
        count += 1
    return count


def detect_mfr(state_dict: StateDict) -> dict | None:
    if "choice_vector" in state_dict or "deg_encoder.E.0.weight" not in state_dict:
        return None
    common = _common_arguments(state_dict)
    if common is None:
        return None
    # encoder.0 = RRDB, CBAM, then (conv, act) pairs: one at the input size plus one stride-2
    # conv per halving down to 64 px (4 convs for the released 512 px input).
    convs = 0
    while f"encoder.0.{2 + 2 * convs}.weight" in state_dict:
        convs += 1
    return dict(in_size=64 * 2 ** (convs - 1), **common)


def detect_sr(state_dict: StateDict) -> dict | None:
    if "choice_vector" not in state_dict:
        return None
    common = _common_arguments(state_dict)
    return None if common is None else dict(in_size=64, **common)


def detect_degradation_encoder(state_dict: StateDict) -> dict | None:
    keys = ("E.0.weight", "E.15.weight", "E.16.running_var", "mlp.2.weight")
    if not all(key in state_dict for key in keys) or len(state_dict) != 46:
        return None
    return {} if tuple(state_dict["E.0.weight"].shape) == (64, 3, 3, 3) else None
