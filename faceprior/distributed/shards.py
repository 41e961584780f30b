"""Disjoint shards of a job list for processes started by torchrun (or Slurm) without Ray.

``torchrun --nproc_per_node=N -m faceprior restore ...`` starts N copies of the same command;
each reads its place from the environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, set by
torchrun and by ``srun`` wrappers that export them) and restores every N-th input. Unlike
torch's ``DistributedSampler``, nothing is padded: a padded shard would restore and write some
photos twice, and two processes writing the same output is exactly what must not happen.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from ..errors import ArgumentError

Item = TypeVar("Item")


@dataclass(frozen=True)
class Shard:
    """This process's place among ``world_size`` processes; ``local_rank`` picks its GPU."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_split(self) -> bool:
        return self.world_size > 1

    def named(self, path: Path) -> Path:
        """``path`` with this shard in its name (``report.json`` -> ``report.rank0-of-4.json``),
        for the files every process writes once: its report, its lock."""
        if not self.is_split:
            return path
        return path.with_name(f"{path.stem}.rank{self.rank}-of-{self.world_size}{path.suffix}")

    def select(self, items: Sequence[Item]) -> list[Item]:
        """Every ``world_size``-th item from ``rank``: disjoint, together exactly ``items``.

        Striding rather than cutting into blocks keeps the shards balanced when a folder's
        sorted order groups large photos together (a scanned album, then phone snapshots).
        """
        return list(items[self.rank :: self.world_size])


def shard_from_environment(environment: dict[str, str] | None = None) -> Shard:
    """The shard that ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` describe; one whole shard if unset."""
    environment = os.environ if environment is None else environment
    values = {}
    for name, default in (("RANK", 0), ("WORLD_SIZE", 1), ("LOCAL_RANK", None)):
        text = environment.get(name)
        if text is None:
            values[name] = default
            continue
        try:
            values[name] = int(text)
        except ValueError:
            raise ArgumentError(name, f"must be an integer, got {text!r}") from None
    rank, world_size = values["RANK"], values["WORLD_SIZE"]
    if world_size < 1 or not 0 <= rank < world_size:
        raise ArgumentError(
            "RANK", f"must be in [0, WORLD_SIZE) with WORLD_SIZE >= 1, got {rank} of {world_size}"
        )
    local_rank = rank if values["LOCAL_RANK"] is None else values["LOCAL_RANK"]
    return Shard(rank, world_size, local_rank)
