"""Process-group setup for ``torchrun`` and the gradient averaging every task relies on.

Data parallelism is done with one bucketed all-reduce of the gradients right before each
optimiser step instead of wrapping networks in ``DistributedDataParallel``: GAN tasks train
parameter subsets per phase, take double-backward gradients (R1, path length) and skip
regularisation on most steps, all of which break DDP's "every parameter gets a gradient in
every backward" bookkeeping. Averaging once per optimiser step is exact (the update equals a
single process seeing the global batch) and also makes gradient accumulation free of syncs.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class Distributed:
    """Where this process sits in the run; ``world_size == 1`` means no process group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def init_distributed(device_type: str, timeout_s: float = 1800.0) -> Distributed:
    """Join the group ``torchrun`` describes in the environment (NCCL on GPU, gloo on CPU)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Distributed()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(
            backend,
            rank=rank,
            world_size=world_size,
            timeout=datetime.timedelta(seconds=timeout_s),
        )
    return Distributed(rank, world_size, local_rank)


def shutdown(context: Distributed) -> None:
    if context.active and dist.is_initialized():
        dist.destroy_process_group()


def barrier(context: Distributed) -> None:
    if context.active:
        dist.barrier()


def average_gradients(params: Iterable[nn.Parameter], context: Distributed) -> None:
    """Replace every gradient by its mean over processes; a missing gradient counts as zero.

    Gradients are flattened into one buffer per dtype so that a step costs one collective.
    """
    if not context.active:
        return
    params = [p for p in params if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    by_dtype: dict[torch.dtype, list[nn.Parameter]] = {}
    for p in params:
        by_dtype.setdefault(p.grad.dtype, []).append(p)
    for group in by_dtype.values():
        flat = torch.cat([p.grad.reshape(-1) for p in group])
        dist.all_reduce(flat)
        flat /= context.world_size
        offset = 0
        for p in group:
            count = p.grad.numel()
            p.grad.copy_(flat[offset : offset + count].view_as(p.grad))
            offset += count


def broadcast_modules(modules: Iterable[nn.Module], context: Distributed) -> None:
    """Start every process from rank 0's weights (also after loading a checkpoint)."""
    if not context.active:
        return
    for module in modules:
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=0)


def average_scalars(values: dict[str, float], context: Distributed) -> dict[str, float]:
    """Mean of each logged scalar over processes (same keys on every rank)."""
    if not context.active or not values:
        return values
    keys = sorted(values)
    tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor)
    return {k: float(v) / context.world_size for k, v in zip(keys, tensor.tolist(), strict=True)}


def average_tensor(tensor: torch.Tensor, context: Distributed) -> torch.Tensor:
    """Mean of ``tensor`` over processes (a copy; the input is left as it was)."""
    if not context.active:
        return tensor
    tensor = tensor.detach().clone()
    dist.all_reduce(tensor)
    return tensor / context.world_size


def any_flag(flag: bool, context: Distributed) -> bool:
    """True on every process when ``flag`` is true on any (e.g. a stop signal seen by one)."""
    if not context.active:
        return flag
    tensor = torch.tensor([1.0 if flag else 0.0])
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item() > 0)
