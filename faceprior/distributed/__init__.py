"""Restoring beyond one process: Ray clusters, and torchrun shards.

- :func:`restore_dataset`: :func:`faceprior.restore_folder` on a Ray cluster or a local Ray
  instance (``pip install 'faceprior[ray]'``), exactly once and resumable; the command line's
  ``faceprior restore ... --ray [ADDRESS]``.
- :func:`shard_from_environment` and :class:`Shard`: the disjoint share of the inputs that
  one of several processes started by ``torchrun`` restores.

Ray is imported only when a Ray run starts. See docs/scale.md.
"""

from __future__ import annotations

from .dataset import MANIFEST_NAME, restore_dataset, write_manifest
from .shards import Shard, shard_from_environment

__all__ = ["MANIFEST_NAME", "Shard", "restore_dataset", "shard_from_environment", "write_manifest"]
