"""Initialising MMRB networks from an official GPEN checkpoint.

The parts an MMRB network shares with GPEN (the StyleGAN2 decoder ``generator.*``, and for
GPEN-MMRB also ``final_linear.*``) must match exactly, so a wrong-size checkpoint fails loudly
instead of silently training from scratch. The encoder is taken with ``strict=False`` semantics:
every tensor whose name and shape fit is copied, and the report lists exactly what was not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from ...hub.checkpoint import CheckpointError

# Key prefixes each architecture shares with GPEN and must load strictly.
SHARED_PREFIXES = {
    "gpen-mmrb": ("generator.", "final_linear."),
    "mmrb-gan": ("generator.",),
}


@dataclass(frozen=True)
class TransferReport:
    """What :func:`load_gpen_weights` did: copied keys, network keys left as initialised (with
    the reason), and checkpoint keys nothing took."""

    loaded: tuple[str, ...]
    not_loaded: tuple[str, ...]
    not_used: tuple[str, ...]

    def __str__(self) -> str:
        return (
            f"loaded {len(self.loaded)} tensors; left as initialised: {_listing(self.not_loaded)}; "
            f"unused from the checkpoint: {_listing(self.not_used)}"
        )


def _listing(keys: tuple[str, ...], shown: int = 6) -> str:
    if not keys:
        return "none"
    more = f", ... ({len(keys)} in all)" if len(keys) > shown else ""
    return ", ".join(keys[:shown]) + more


def load_gpen_weights(
    network: nn.Module, gpen_state_dict: Mapping[str, torch.Tensor]
) -> TransferReport:
    """Copy a GPEN ``FullGenerator`` state dict into a ``gpen-mmrb`` or ``mmrb-gan`` network.

    Shared keys must all be present with equal shapes (``CheckpointError`` otherwise, and the
    network is left untouched); other keys are copied where name and shape fit.
    """
    architecture = network.conventions.architecture
    if architecture not in SHARED_PREFIXES:
        raise ValueError(f"cannot load GPEN weights into a {architecture} network")
    shared = SHARED_PREFIXES[architecture]
    own = network.state_dict()
    problems = []
    for key, tensor in own.items():
        if key.startswith(shared):
            if key not in gpen_state_dict:
                problems.append(f"missing {key}")
            elif tuple(gpen_state_dict[key].shape) != tuple(tensor.shape):
                problems.append(
                    f"{key}: network {tuple(tensor.shape)}, "
                    f"checkpoint {tuple(gpen_state_dict[key].shape)}"
                )
    problems += [
        f"unexpected {key}" for key in gpen_state_dict if key.startswith(shared) and key not in own
    ]
    if problems:
        shown = "; ".join(problems[:8]) + (
            f"; ... ({len(problems)} in all)" if len(problems) > 8 else ""
        )
        raise CheckpointError(
            f"the GPEN checkpoint does not fit the shared part ({', '.join(shared)}) of this "
            f"{architecture} network: {shown}"
        )
    loaded, not_loaded = [], []
    for key, tensor in own.items():
        source = gpen_state_dict.get(key)
        if source is not None and tuple(source.shape) == tuple(tensor.shape):
            own[key] = source.to(dtype=tensor.dtype)
            loaded.append(key)
        else:
            not_loaded.append(key)
    network.load_state_dict(own, strict=True)
    taken = set(loaded)
    not_used = [key for key in gpen_state_dict if key not in taken]
    return TransferReport(tuple(loaded), tuple(not_loaded), tuple(not_used))
