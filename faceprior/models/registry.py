"""Architecture registry: build a network by name, or recognise one from a state dict.

Each method module declares ``ARCHITECTURES``, a list of :class:`Architecture`. Detection
reads tensor shapes only (spandrel-style), so official and fine-tuned checkpoints of any size
load without flags. Family modules are imported on first use, keeping ``import faceprior``
light.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache

import torch
from torch import nn

from ..hub.checkpoint import state_dict_candidates

# Modules that declare ARCHITECTURES, in detection order (more specific layouts first).
FAMILY_MODULES = (
    "faceprior.models.mmrb",
    "faceprior.models.gpen",
    "faceprior.models.psfrgan",
    "faceprior.models.panini",
    "faceprior.models.unet",
)

StateDict = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class Architecture:
    """A network layout faceprior can build and recognise.

    ``detect`` returns the constructor arguments when a state dict has this layout, else
    ``None``. ``candidates`` yields ``(where, state_dict)`` pairs found in a raw checkpoint
    object (override it for wrappers such as MMEditing's prefixed ``state_dict``).
    ``restorer`` (restoration networks only) wraps a loaded network into the batch interface
    the photo pipeline uses, see ``faceprior.models.restorer``.
    """

    name: str
    build: Callable[..., nn.Module]
    detect: Callable[[StateDict], dict | None]
    candidates: Callable[[object], Iterable[tuple[str, StateDict]]] = state_dict_candidates
    restorer: Callable | None = None
    description: str = ""


@cache
def architectures() -> tuple[Architecture, ...]:
    found: list[Architecture] = []
    for module_name in FAMILY_MODULES:
        found.extend(importlib.import_module(module_name).ARCHITECTURES)
    return tuple(found)


def get_architecture(name: str) -> Architecture:
    for arch in architectures():
        if arch.name == name:
            return arch
    known = ", ".join(a.name for a in architectures())
    raise KeyError(f"unknown architecture {name!r}; known: {known}")


def detect_architecture(content: object) -> tuple[Architecture, dict, str, StateDict] | None:
    """Find the first architecture that recognises a network inside a raw checkpoint.

    Returns ``(architecture, constructor arguments, where in the file, state dict)``.
    """
    for arch in architectures():
        for where, state_dict in arch.candidates(content):
            arguments = arch.detect(state_dict)
            if arguments is not None:
                return arch, arguments, where, state_dict
    return None


def count_prefixed(state_dict: StateDict, prefix: str, suffix: str) -> int:
    """Number of consecutive indices ``i`` with key ``f"{prefix}{i}{suffix}"`` (from 0)."""
    index = 0
    while f"{prefix}{index}{suffix}" in state_dict:
        index += 1
    return index
