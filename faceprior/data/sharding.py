"""Deterministic splitting of a dataset across DDP ranks (torchrun) and epochs.

Every rank computes the same permutation from ``(seed, epoch)`` without communicating, then
takes every ``world_size``-th element starting at its rank, so the ranks together cover each
index exactly once per epoch.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def shard_indices(
    n: int,
    rank: int,
    world_size: int,
    seed: int,
    epoch: int,
    shuffle: bool = True,
    pad: bool = False,
) -> np.ndarray:
    """Indices of ``range(n)`` that ``rank`` of ``world_size`` visits in ``epoch``.

    Without ``pad`` the shards are disjoint and their lengths differ by at most one. DDP needs
    the same number of steps on every rank, so ``pad=True`` repeats the first indices of the
    permutation until every shard has ``ceil(n / world_size)`` items (a few samples are then
    seen twice per epoch, never skipped).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank {rank}, world_size {world_size}")
    if shuffle:
        order = np.random.default_rng([seed, epoch]).permutation(n)
    else:
        order = np.arange(n)
    if pad and n > 0:
        total = -(-n // world_size) * world_size
        order = np.concatenate([order, np.resize(order, total - n)])
    return order[rank::world_size]


class ShardSampler:
    """A DataLoader ``sampler`` yielding :func:`shard_indices`; call ``set_epoch`` before each
    epoch (as with torch's DistributedSampler) to reshuffle."""

    def __init__(
        self,
        n: int,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        shuffle: bool = True,
        pad: bool = True,
    ) -> None:
        self.n, self.rank, self.world_size = n, rank, world_size
        self.seed, self.shuffle, self.pad = seed, shuffle, pad
        self.epoch = 0
        shard_indices(n, rank, world_size, seed, 0, shuffle, pad)  # validate the arguments now

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _indices(self) -> np.ndarray:
        return shard_indices(
            self.n, self.rank, self.world_size, self.seed, self.epoch, self.shuffle, self.pad
        )

    def __iter__(self) -> Iterator[int]:
        return iter(int(i) for i in self._indices())

    def __len__(self) -> int:
        return len(self._indices())
