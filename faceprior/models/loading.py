"""Checkpoints or zoo names in, ready networks out: what ``faceprior.load_model`` does.

A file is read without executing pickles (``faceprior.hub.checkpoint``), its architecture and
constructor arguments are recognised from tensor shapes (``faceprior.models.registry``), and
the network is built and loaded strictly. An ``.onnx`` file written by ``faceprior export``
runs in ONNX Runtime behind the same interfaces (``faceprior.models.onnx``).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from ..errors import ArgumentError, ModelNotFoundError
from ..hub import download as hub_download
from ..hub.checkpoint import (
    Checkpoint,
    CheckpointError,
    load_state_dict_strict,
    read_checkpoint,
    save_safetensors,
    state_dict_candidates,
    validated_arguments,
)
from ..hub.zoo import entries
from .onnx import load_onnx_restorer
from .registry import (
    architectures,
    detect_architecture,
    get_architecture,
    nearest_architecture,
)
from .restorer import RestorationModel, RestorerOptions


def resolve_weights(name_or_path: str | os.PathLike, download: bool = True) -> Path:
    """A local checkpoint path, or the cached (downloaded on demand) file of a zoo entry."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        return path
    name = str(name_or_path)
    if name in entries():
        entry = entries()[name]
        if entry.bundled:
            bundled = hub_download.bundled_path(entry)
            if not bundled.is_file():
                raise ModelNotFoundError(
                    f"{name}: the bundled file {bundled} is missing from this installation "
                    f"(reinstall faceprior)"
                )
            hub_download.verify(entry, bundled)  # a damaged install fails here, not in a forward
            return bundled
        if not download and not hub_download.cached_path(entry).exists():
            raise ModelNotFoundError(f"{name} is not in the cache and download=False")
        return hub_download.fetch(entry)
    raise ModelNotFoundError(
        f"{name_or_path!r} is neither an existing file nor a zoo model name "
        f"(see `faceprior models`)"
    )


def build_from_checkpoint(checkpoint: Checkpoint, stated: dict | None = None) -> nn.Module:
    """Build the network a checkpoint holds and load its weights strictly.

    ``stated``: constructor arguments known from elsewhere (the zoo entry the file came from)
    that fill in what the tensor shapes cannot tell, such as GPEN-Seg2face's value range;
    arguments recorded in the file or recognised from its shapes take precedence.
    """
    if checkpoint.architecture is not None:
        arch = get_architecture(checkpoint.architecture)
        arguments = validated_arguments(checkpoint, arch.name, arch.build)
        network = arch.build(**arguments)
        load_state_dict_strict(network, checkpoint.content, str(checkpoint.path))
        return network
    found = detect_architecture(checkpoint.content)
    if found is None:
        raise CheckpointError(_unrecognised(checkpoint))
    arch, arguments, where, state_dict = found
    network = arch.build(**{**(stated or {}), **arguments})
    load_state_dict_strict(network, state_dict, f"{checkpoint.path} [{where}, as {arch.name}]")
    return network


def _unrecognised(checkpoint: Checkpoint) -> str:
    content = checkpoint.content
    if isinstance(content, dict):
        keys = list(content)[:6]
        found = f"top-level keys {keys}{' ...' if len(content) > 6 else ''}"
    else:
        found = f"a {type(content).__name__}"
    for where, state_dict in state_dict_candidates(content):
        nearest = nearest_architecture(state_dict)
        if nearest is not None:
            name, missing = nearest
            lacks = (
                f"it lacks {', '.join(missing[:8])}"
                + (f" ({len(missing)} in all)" if len(missing) > 8 else "")
                if missing
                else "its numbered layers do not form a complete network (one removed?)"
            )
            return f"{checkpoint.path}: looks like a {name} state dict ({where}), but {lacks}"
    known = ", ".join(a.name for a in architectures())
    return (
        f"{checkpoint.path}: no supported network recognised (found {found}). "
        f"Expected a state dict (raw, or under g_ema/params_ema/state_dict) of one of: {known}."
    )


def load_model(
    name_or_path: str | os.PathLike,
    device: str | torch.device = "cpu",
    download: bool = True,
) -> nn.Module:
    """Load a network from an official ``.pth``, a faceprior ``.safetensors`` or a zoo name.

    The architecture and its arguments are recognised from the tensor shapes; the network
    is returned in eval mode with the official forward signature, and its I/O contract is
    available as ``network.conventions``. Pickled Python objects are never executed.
    """
    checkpoint = read_checkpoint(resolve_weights(name_or_path, download=download))
    return build_from_checkpoint(checkpoint, _zoo_arguments(name_or_path)).eval().to(device)


def _zoo_arguments(name_or_path: str | os.PathLike) -> dict:
    """The constructor arguments the zoo states for a model loaded by its zoo name."""
    if Path(name_or_path).expanduser().exists():
        return {}
    entry = entries().get(str(name_or_path))
    return dict(entry.arguments) if entry is not None else {}


def save_model(network: nn.Module, path: str | os.PathLike) -> Path:
    """Save a faceprior network as safetensors with its architecture recorded."""
    return save_safetensors(
        network.state_dict(), path, network.conventions.architecture, network.arguments
    )


def load_restoration_model(
    name_or_path: str | os.PathLike,
    device: str | torch.device = "cpu",
    options: RestorerOptions | None = None,
    download: bool = True,
) -> RestorationModel:
    """Load a restoration network wrapped in the pipeline's batch interface.

    ``options``: the load-time knobs asked for (``RestorerOptions(fidelity=0.7)``); the
    method's restorer turns them into its own options dataclass, which validates them here,
    once, and refuses a knob the method does not have. An ``.onnx`` file written by
    ``faceprior export`` runs in ONNX Runtime instead; its options were fixed at export.
    """
    if str(name_or_path).endswith(".onnx"):
        given = (options or RestorerOptions()).given()
        if given:
            raise ArgumentError(next(iter(given)), "is fixed at export time for .onnx models")
        return load_onnx_restorer(name_or_path)
    network = load_model(name_or_path, device=device, download=download)
    arch = get_architecture(network.conventions.architecture)
    if arch.restorer is None:
        raise CheckpointError(f"{name_or_path}: a {arch.name} network does not restore faces")
    return arch.restorer(network, options).eval().to(device)
