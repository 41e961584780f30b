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
from typing import Any

import torch
from torch import nn

from ..errors import UnknownNameError
from ..hub.checkpoint import state_dict_candidates

# Modules that declare ARCHITECTURES, in detection order (more specific layouts first).
FAMILY_MODULES = (
    "faceprior.models.mmrb",
    "faceprior.models.gpen_fusion",
    "faceprior.models.gpen",
    "faceprior.models.psfrgan",
    "faceprior.models.panini",
    "faceprior.models.realesrnet",
    "faceprior.models.unet",
    "faceprior.models.retinaface",
)

StateDict = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class Architecture:
    """A network layout faceprior can build and recognise.

    ``detect`` returns the constructor arguments when a state dict has this layout, else
    ``None``. ``candidates`` yields ``(where, state_dict)`` pairs found in a raw checkpoint
    object (override it for wrappers such as MMEditing's prefixed ``state_dict``).
    ``restorer`` (restoration networks only) wraps a loaded network into the batch interface
    the photo pipeline uses, see ``faceprior.models.restorer``. ``example``: constructor
    arguments of a tiny instance (milliseconds per forward pass on a CPU) on which
    tests/test_contracts.py checks the network contract (docs/contributing.md).
    """

    name: str
    build: Callable[..., nn.Module]
    detect: Callable[[StateDict], dict | None]
    candidates: Callable[[object], Iterable[tuple[str, StateDict]]] = state_dict_candidates
    restorer: Callable | None = None
    description: str = ""
    example: Mapping[str, Any] | None = None


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
    raise UnknownNameError(f"unknown architecture {name!r}; known: {known}")


def detect_architecture(content: object) -> tuple[Architecture, dict, str, StateDict] | None:
    """Find the first architecture that recognises a network inside a raw checkpoint.

    Returns ``(architecture, constructor arguments, where in the file, state dict)``.
    """
    for arch in architectures():
        for where, state_dict in arch.candidates(content):
            try:
                arguments = arch.detect(state_dict)
            except (KeyError, IndexError, ValueError, TypeError, AttributeError, ArithmeticError):
                arguments = None  # a damaged state dict of this layout: see nearest_architecture
            if arguments is not None:
                return arch, arguments, where, state_dict
    return None


def count_prefixed(state_dict: StateDict, prefix: str, suffix: str) -> int:
    """Number of consecutive indices ``i`` with key ``f"{prefix}{i}{suffix}"`` (from 0)."""
    index = 0
    while f"{prefix}{index}{suffix}" in state_dict:
        index += 1
    return index


def nearest_architecture(state_dict: StateDict) -> tuple[str, list[str]] | None:
    """For a state dict no architecture recognised: the zoo architecture whose key names it
    shares most (at least half), and the keys of that layout it lacks (numbers as ``#``)."""
    found = _stems(state_dict)
    best: tuple[float, str, list[str]] | None = None
    for name, expected in _zoo_layouts().items():
        share = len(found & expected) / len(expected)
        if best is None or share > best[0]:
            best = (share, name, sorted(expected - found))
    if best is None or best[0] < 0.5:
        return None
    return best[1], best[2]


def _stems(keys) -> frozenset[str]:
    import re

    return frozenset(re.sub(r"\d+", "#", key) for key in keys)


@cache
def _zoo_layouts() -> dict[str, frozenset[str]]:
    """Key names (numbers as ``#``) of each architecture, from its smallest zoo entry built on
    PyTorch's meta device: no memory is used, and layer counts do not change the names."""
    from ..hub.zoo import entries

    smallest: dict[str, object] = {}
    for entry in entries().values():
        known = smallest.get(entry.architecture)
        if known is None or (entry.parameters or 0) < (known.parameters or 0):
            smallest[entry.architecture] = entry
    layouts = {}
    for name, entry in smallest.items():
        try:
            with torch.device("meta"):
                stems = _stems(get_architecture(name).build(**entry.arguments).state_dict())
        except Exception:  # an entry that cannot be built from its arguments alone
            continue
        if stems:
            layouts[name] = stems
    return layouts
