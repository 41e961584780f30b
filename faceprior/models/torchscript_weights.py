"""Reading the tensors of a TorchScript archive without running any of its code.

``torch.jit.load`` compiles and runs the archive's ``code/`` and unpickles ``data.pkl`` with
classes the archive names; a file from the internet should not get to do either. This reader
opens the zip, unpickles ``data.pkl`` with an unpickler that knows only data constructors
(``torch._utils._rebuild_tensor_v2``, the ``torch.*Storage`` dtype tags,
``collections.OrderedDict``, TorchScript's typed int/float/bool lists, and the archive's own
``__torch__.*`` module classes, which become plain :class:`ScriptModuleState` records) and
refuses every other global, and reads each storage
from ``data/<key>`` as raw bytes. The result is a flat ``{dotted.name: tensor}`` of every
tensor attribute, plus the modules' plain attributes (strides, paddings) for checks.
"""

from __future__ import annotations

import functools
import io
import os
import pickle
import zipfile
from collections import OrderedDict

import torch

from ..hub.checkpoint import CheckpointError

STORAGE_DTYPES = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


class ScriptModuleState:
    """What ``data.pkl`` records for one scripted module: its class name and attributes.

    One subclass per archive class name (:func:`_module_class`), so that pickle's NEWOBJ can
    create it; BUILD then hands over the attribute dict.
    """

    class_name = ""

    def __init__(self) -> None:
        self.attributes: dict = {}

    def __setstate__(self, state: dict) -> None:
        self.attributes = dict(state)


# TorchScript's typed-list constructors: plain lists of numbers once unpickled.
PLAIN_LISTS = ("build_intlist", "build_doublelist", "build_boollist")


@functools.cache
def _module_class(name: str) -> type[ScriptModuleState]:
    return type(name.rsplit(".", 1)[-1], (ScriptModuleState,), {"class_name": name})


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None, *extra):
    # A view of the storage's fresh buffer (no copy): callers copy into their own modules.
    return torch.as_strided(storage, tuple(size), tuple(stride), offset)


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str, source: str):
        super().__init__(io.BytesIO(data))
        self.archive = archive
        self.prefix = prefix
        self.source = source

    def find_class(self, module: str, name: str):
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return STORAGE_DTYPES[name]
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch.jit._pickle" and name in PLAIN_LISTS:
            return list
        if module.startswith("__torch__"):
            return _module_class(f"{module}.{name}")
        raise pickle.UnpicklingError(f"{self.source}: refused global {module}.{name}")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"{self.source}: unexpected persistent id {pid!r}")
        _, dtype, key, _location, numel = pid
        raw = self.archive.read(f"{self.prefix}data/{key}")
        flat = torch.frombuffer(bytearray(raw), dtype=dtype)
        if flat.numel() < numel:
            raise pickle.UnpicklingError(f"{self.source}: storage {key} is truncated")
        return flat[:numel]


def _flatten(state: ScriptModuleState, prefix: str, tensors: dict, attributes: dict) -> None:
    for name, value in state.attributes.items():
        key = f"{prefix}{name}"
        if isinstance(value, torch.Tensor):
            tensors[key] = value
        elif isinstance(value, ScriptModuleState):
            _flatten(value, key + ".", tensors, attributes)
        elif isinstance(value, int | float | bool | list | tuple | str):
            attributes[key] = value


def read_torchscript_tensors(path: str | os.PathLike) -> tuple[dict, dict]:
    """``({name: tensor}, {name: plain attribute})`` of a TorchScript archive, code never run."""
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as error:
        raise CheckpointError(f"{path}: not a TorchScript archive (zip): {error}") from None
    with archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise CheckpointError(f"{path}: no single <name>/data.pkl (not a TorchScript file)")
        prefix = pickles[0][: -len("data.pkl")]
        unpickler = _RestrictedUnpickler(archive.read(pickles[0]), archive, prefix, str(path))
        try:
            root = unpickler.load()
        except (
            pickle.UnpicklingError,
            EOFError,
            LookupError,
            TypeError,
            ValueError,
            RuntimeError,
        ) as error:
            raise CheckpointError(f"{path}: refused or unreadable: {error}") from None
    if not isinstance(root, ScriptModuleState):
        raise CheckpointError(f"{path}: data.pkl does not hold a scripted module")
    tensors: dict[str, torch.Tensor] = {}
    attributes: dict = {}
    _flatten(root, "", tensors, attributes)
    return tensors, attributes
