"""UDRL training pairs: two different faces degraded with one shared degradation.

Panini-Net's degradation representation encoder is trained with MoCo on such pairs
(``faceprior.models.panini.moco``, ``faceprior.train.tasks.udrl``): since content differs
inside a pair and the degradation differs across pairs, the encoder can only tell positives
from negatives by describing the degradation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .datasets import to_tensor
from .degradations.base import check_image
from .degradations.ops import resize_to

PAIR_SIZE = 256  # the degradation encoder's training resolution


class DegradationPairDataset:
    """UDRL pairs made on the fly: ``{"query", "key", "index"}``, RGB (3, 256, 256) in [-1, 1].

    Item ``i`` degrades face ``i`` and a different face ``j`` (drawn per item) with one set of
    parameters drawn from ``degradation`` (a ``faceprior.data.degradations`` recipe, whose
    ``sample``/``apply`` split exists for exactly this), then brings both to ``size`` px
    (256, the DRE's training size) with the area filter, like the box average Panini feeds
    its DRE. The random generator is
    ``default_rng([seed, i, epoch])``, so an item does not depend on worker or order.
    """

    def __init__(
        self, faces: Sequence[np.ndarray], degradation: Any, seed: int, size: int = PAIR_SIZE
    ):
        if len(faces) < 2:
            raise ValueError("UDRL pairs need at least two different faces")
        if size < 1:
            raise ValueError(f"size must be positive, got {size}")
        self.size = int(size)
        self.faces = faces
        self.degradation = degradation
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.faces)

    def sample(self, index: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any], int]:
        """``(query, key, params, partner)`` as float32 HWC BGR [0, 1] arrays."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        rng = np.random.default_rng([self.seed, index, self.epoch])
        partner = int(rng.integers(0, len(self) - 1))
        partner += partner >= index  # any face but this one
        params = self.degradation.sample(rng)
        pair = []
        for face_index in (index, partner):
            face = self.faces[face_index]
            check_image(face)
            lq, _ = self.degradation.apply(face, params)
            pair.append(resize_to(lq, self.size, self.size))
        return pair[0], pair[1], params, partner

    def __getitem__(self, index: int) -> dict[str, Any]:
        query, key, _, _ = self.sample(index)
        return {"query": to_tensor(query), "key": to_tensor(key), "index": index}
