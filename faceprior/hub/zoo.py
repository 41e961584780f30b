"""The model zoo: named, pinned weight files with their licence and input conventions.

Entries are plain data declared per family in ``faceprior.hub.entries.<family>``; nothing
here imports torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from functools import cache

from ..errors import UnknownNameError

# Modules that declare ENTRIES (a list of ZooEntry).
ENTRY_MODULES = (
    "faceprior.hub.entries.gpen",
    "faceprior.hub.entries.psfrgan",
    "faceprior.hub.entries.panini",
    "faceprior.hub.entries.retinaface",
    "faceprior.hub.entries.realesrnet",
    "faceprior.hub.entries.bundled",
)


@dataclass(frozen=True)
class ZooEntry:
    """One downloadable weight file and how to use it.

    ``urls`` are tried in order. ``sha256`` pins the content when known; otherwise the size is
    checked and the hash seen at first download is recorded and enforced afterwards.
    ``arguments`` are the network's constructor arguments; ``load_model`` uses them for what
    the weights cannot tell. The conventions (sizes, template, colour order, value range) and
    ``parameters`` repeat what the built network states, for ``faceprior models`` to list
    without building it; tests/test_contracts.py checks that they agree.
    """

    name: str
    architecture: str
    filename: str
    urls: tuple[str, ...]
    licence: str
    description: str
    arguments: dict = field(default_factory=dict)
    size_bytes: int | None = None
    sha256: str | None = None
    parameters: int | None = None
    input_size: int | None = None
    output_size: int | None = None
    color_order: str = "RGB"
    value_range: tuple[float, float] = (-1.0, 1.0)
    template: str | None = None
    bundled: bool = False


@cache
def entries() -> dict[str, ZooEntry]:
    found: dict[str, ZooEntry] = {}
    for module_name in ENTRY_MODULES:
        for entry in importlib.import_module(module_name).ENTRIES:
            if entry.name in found:
                raise RuntimeError(f"duplicate zoo entry {entry.name!r} in {module_name}")
            found[entry.name] = entry
    return found


def get_entry(name: str) -> ZooEntry:
    try:
        return entries()[name]
    except KeyError:
        known = ", ".join(sorted(entries()))
        raise UnknownNameError(
            f"no model named {name!r} in the zoo; known models: {known}"
        ) from None
