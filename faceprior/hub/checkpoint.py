"""Reading and writing checkpoints without ever executing a pickle.

Official ``.pth`` files are read with ``torch.load(weights_only=True)``, which refuses any
object that is not a tensor or a plain container; faceprior's own files are safetensors with
the architecture and its arguments in the header metadata.
"""

from __future__ import annotations

import inspect
import json
import os
import pickle
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import CheckpointError

SAFETENSORS_SUFFIXES = (".safetensors",)
METADATA_ARCHITECTURE = "faceprior.architecture"
METADATA_ARGUMENTS = "faceprior.arguments"

# Wrappers under which official and training checkpoints keep their network weights.
CONTAINER_KEYS = ("g_ema", "params_ema", "params", "state_dict", "net_state_dict", "model")
STRIPPED_PREFIXES = ("module.",)


@dataclass
class Checkpoint:
    """What a file holds: the raw object, and for our safetensors files the recorded arch."""

    path: Path
    content: object
    architecture: str | None = None
    arguments: dict | None = None


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.suffix in SAFETENSORS_SUFFIXES:
        return _read_safetensors(path)
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if not _holds_python_objects(path, str(error)):
            raise CheckpointError(
                f"{path}: not a readable PyTorch checkpoint (damaged, or not a checkpoint)"
            ) from None
        raise CheckpointError(
            f"{path}: refused to load: the file contains Python objects that could run code "
            f"when unpickled. faceprior only reads tensors (torch.load(weights_only=True)); "
            f"convert the file to safetensors or a plain state dict. Detail: {_first_line(error)}"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError) as error:
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint (truncated or damaged download?): "
            f"{_first_line(error)}"
        ) from None
    return Checkpoint(path, content)


_CODE_OPCODES = {"GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "REDUCE"}


def _holds_python_objects(path: Path, message: str) -> bool:
    """Whether a file torch refused is a well-formed pickle that builds Python objects (the
    dangerous kind) rather than damaged bytes, so that the message says which it is."""
    import io
    import pickletools

    if "Unsupported global" in message:
        return True
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                name = next(n for n in archive.namelist() if n.endswith("data.pkl"))
                data = archive.read(name)
        else:
            data = path.read_bytes()
        opcodes = {op.name for op, _, _ in pickletools.genops(io.BytesIO(data))}
    except Exception:  # not a well-formed pickle at all: damaged
        return False
    return bool(opcodes & _CODE_OPCODES)


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _read_safetensors(path: Path) -> Checkpoint:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path))
        with open(path, "rb") as handle:
            header_len = int.from_bytes(handle.read(8), "little")
            header = json.loads(handle.read(header_len))
    except (SafetensorError, ValueError, OSError) as error:
        raise CheckpointError(
            f"{path}: not a readable safetensors file (truncated or damaged?): {error}"
        ) from None
    metadata = (header.get("__metadata__") or {}) if isinstance(header, dict) else {}
    arguments = metadata.get(METADATA_ARGUMENTS)
    if arguments is not None:
        try:
            arguments = json.loads(arguments)
        except (ValueError, TypeError) as error:
            raise CheckpointError(
                f"{path}: the header's {METADATA_ARGUMENTS} is not valid JSON ({error})"
            ) from None
        if not isinstance(arguments, dict):
            raise CheckpointError(
                f"{path}: the header's {METADATA_ARGUMENTS} must be a JSON object, got "
                f"{type(arguments).__name__}"
            )
    architecture = metadata.get(METADATA_ARCHITECTURE)
    if architecture is not None and not isinstance(architecture, str):
        raise CheckpointError(f"{path}: the header's {METADATA_ARCHITECTURE} must be a string")
    return Checkpoint(path, tensors, architecture=architecture, arguments=arguments or None)


def validated_arguments(
    checkpoint: Checkpoint, architecture: str, build: Callable[..., torch.nn.Module]
) -> dict:
    """The constructor arguments a safetensors header records, checked before anything is
    allocated: known parameter names, plain JSON values, and a network built from them on
    PyTorch's ``meta`` device (shapes without memory) whose tensors match the stored ones. A
    forged ``size`` or ``narrow`` could otherwise ask for terabytes.
    """
    arguments = dict(checkpoint.arguments or {})
    source = str(checkpoint.path)
    parameters = inspect.signature(build).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        unknown = sorted(set(arguments) - set(parameters))
        if unknown:
            raise CheckpointError(
                f"{source}: the header records arguments {unknown} that {architecture} does "
                f"not take (known: {sorted(parameters)})"
            )
    for name, value in arguments.items():
        if not _plain_json(value):
            raise CheckpointError(f"{source}: header argument {name}={value!r} is not plain data")
    try:
        with torch.device("meta"):
            shapes_only = build(**arguments)
    except (TypeError, ValueError, KeyError, IndexError, ZeroDivisionError, OverflowError) as error:
        raise CheckpointError(
            f"{source}: the header's arguments {arguments} do not fit {architecture}: {error}"
        ) from None
    except (NotImplementedError, RuntimeError):
        return arguments  # a constructor that computes on its tensors: checked when loading
    problem = describe_mismatch(shapes_only, checkpoint.content)
    if problem:
        raise CheckpointError(
            f"{source}: the header's arguments {arguments} do not match the stored tensors "
            f"({problem})"
        )
    return arguments


def _plain_json(value: object) -> bool:
    if isinstance(value, list):
        return all(_plain_json(v) for v in value)
    return value is None or isinstance(value, bool | int | float | str)


def is_state_dict(obj: object) -> bool:
    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def state_dict_candidates(obj: object) -> Iterator[tuple[str, dict[str, torch.Tensor]]]:
    """Yield ``(where, state_dict)`` for every plausible network inside a checkpoint.

    Covers a raw state dict and the usual training wrappers (``g_ema``, ``params_ema``,
    ``state_dict``, ...), each also with a DataParallel ``module.`` prefix removed.
    """
    seen: list[tuple[str, Mapping]] = [("", obj)]
    if isinstance(obj, Mapping):
        seen += [(key, obj[key]) for key in CONTAINER_KEYS if key in obj]
    for where, candidate in seen:
        if not is_state_dict(candidate):
            continue
        yield where or "<root>", dict(candidate)
        for prefix in STRIPPED_PREFIXES:
            if all(k.startswith(prefix) for k in candidate):
                stripped = {k[len(prefix) :]: v for k, v in candidate.items()}
                yield f"{where or '<root>'} without '{prefix}'", stripped


def describe_mismatch(module: torch.nn.Module, state_dict: Mapping[str, torch.Tensor]) -> str:
    """Human-readable list of missing/unexpected keys and shape mismatches ('' if none)."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    shapes = [
        f"{k}: expected {tuple(expected[k].shape)}, found {tuple(state_dict[k].shape)}"
        for k in expected
        if k in state_dict and tuple(expected[k].shape) != tuple(state_dict[k].shape)
    ]
    parts = []
    for title, items in (
        ("missing keys", missing),
        ("unexpected keys", unexpected),
        ("shape mismatches", shapes),
    ):
        if items:
            shown = ", ".join(items[:8]) + (
                f", ... ({len(items)} in all)" if len(items) > 8 else ""
            )
            parts.append(f"{title}: {shown}")
    return "; ".join(parts)


def load_state_dict_strict(
    module: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], source: str
) -> None:
    """``load_state_dict(strict=True)`` with an error that says exactly what does not fit."""
    problem = describe_mismatch(module, state_dict)
    if problem:
        raise CheckpointError(f"{source} does not fit {type(module).__name__}: {problem}")
    module.load_state_dict(state_dict, strict=True)


def save_safetensors(
    state_dict: Mapping[str, torch.Tensor],
    path: str | os.PathLike,
    architecture: str,
    arguments: Mapping,
) -> Path:
    """Write ``state_dict`` with its architecture in the header; atomic (temp file + rename)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in state_dict.items()}
    metadata = {
        METADATA_ARCHITECTURE: architecture,
        METADATA_ARGUMENTS: json.dumps(dict(arguments), sort_keys=True),
    }
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        save_file(tensors, tmp, metadata=metadata)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
