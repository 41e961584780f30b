"""Training checkpoints: complete, atomic, and read back without unpickling objects.

A checkpoint is a directory ``<output>/checkpoints/step-00001000/`` holding ``state.pt``
(networks, optimisers, EMA, task state, step, config) and one ``rng-<rank>.pt`` per process
(CPU/CUDA/NumPy/Python generator states). It is assembled under a temporary name and renamed
into place, so a run killed while saving never leaves a half-written checkpoint that resume
would pick. Files contain only tensors and plain containers and are read with
``faceprior.hub.checkpoint.read_checkpoint`` (``weights_only=True``). The data position needs
no state of its own: the sample order is a pure function of (seed, step).
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..hub.checkpoint import CheckpointError, read_checkpoint
from .distributed import Distributed, barrier

PREFIX = "step-"


def checkpoint_root(output: str | os.PathLike) -> Path:
    return Path(output) / "checkpoints"


def _atomic_torch_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def rng_state() -> dict[str, Any]:
    """Every global random generator this process uses, as tensors and plain values."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    numpy = state["numpy"]
    np.random.set_state(
        (
            numpy["kind"],
            numpy["keys"].numpy().astype(np.uint32),
            numpy["position"],
            numpy["has_gauss"],
            numpy["gauss"],
        )
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    output: str | os.PathLike,
    step: int,
    state: dict[str, Any],
    context: Distributed,
    keep: int,
) -> Path:
    """Write step ``step``: ``state`` from rank 0, the RNG state from every rank.

    Every rank must call this (it synchronises); all ranks must see the same filesystem.
    """
    root = checkpoint_root(output)
    final = root / f"{PREFIX}{step:08d}"
    tmp = root / f".tmp-{PREFIX}{step:08d}"
    if context.is_main:
        root.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
    barrier(context)
    _atomic_torch_save(rng_state(), tmp / f"rng-{context.rank}.pt")
    barrier(context)
    if context.is_main:
        _atomic_torch_save(state, tmp / "state.pt")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        _prune(root, keep)
    barrier(context)
    return final


def _prune(root: Path, keep: int) -> None:
    if keep <= 0:
        return
    for old in list_checkpoints(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def list_checkpoints(root: str | os.PathLike) -> list[Path]:
    """Complete checkpoints under ``root``, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.name.startswith(PREFIX) and (p / "state.pt").is_file()]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX) :]))


def latest_checkpoint(output: str | os.PathLike) -> Path | None:
    found = list_checkpoints(checkpoint_root(output))
    return found[-1] if found else None


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The ``state.pt`` of checkpoint directory ``path`` (or of a ``state.pt`` file)."""
    path = Path(path)
    file = path / "state.pt" if path.is_dir() else path
    content = read_checkpoint(file).content
    if not isinstance(content, dict) or "task" not in content or "step" not in content:
        raise CheckpointError(f"{file}: not a faceprior training checkpoint")
    return content


def load_rng(path: str | os.PathLike, rank: int) -> dict[str, Any] | None:
    """This rank's RNG state, or None when the checkpoint was written by fewer processes."""
    file = Path(path) / f"rng-{rank}.pt"
    if not file.is_file():
        return None
    return read_checkpoint(file).content


def select(state: dict[str, Any], dotted: str, source: str) -> dict[str, torch.Tensor]:
    """Tensors under ``group.network[.submodule]`` of a checkpoint's task state, unprefixed.

    ``group`` is ``networks`` or ``ema``; e.g. ``ema.generator`` is the EMA generator.
    """
    group, _, rest = dotted.partition(".")
    network, _, prefix = rest.partition(".")
    task = state["task"]
    if group not in ("networks", "ema") or network not in task.get(group, {}):
        available = [f"{g}.{n}" for g in ("networks", "ema") for n in task.get(g, {})]
        raise CheckpointError(f"{source}: no {dotted!r} in the checkpoint; has {available}")
    tensors = task[group][network]
    if not prefix:
        return dict(tensors)
    head = prefix + "."
    picked = {k[len(head) :]: v for k, v in tensors.items() if k.startswith(head)}
    if not picked:
        raise CheckpointError(f"{source}: {dotted!r} holds no tensors")
    return picked
