"""Sample order for training: a pure function of (seed, step), so resuming needs no state.

Global sample position ``p`` maps to epoch ``p // N`` and to item ``perm_epoch[p % N]`` where
``perm_epoch`` is a seeded permutation. Step ``s`` consumes positions
``[s * G, (s + 1) * G)`` of the global batch ``G = processes * accumulate * batch_size``;
micro-batch ``m`` of rank ``r`` takes the ``batch_size`` positions starting at
``s * G + (m * processes + r) * batch_size``. Two processes with batch 2 therefore see exactly
the samples of one process with batch 4, and a resumed run continues where it stopped.

Synthetic pairs come from ``faceprior.data.datasets.SyntheticPairDataset``, whose draws depend
only on (seed, index, epoch): the same face gets a different degradation in each epoch, and
the same one again after a resume, whichever process or worker loads it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .config import DataConfig
from .distributed import Distributed


class StepSampler(torch.utils.data.Sampler):
    """Batch sampler yielding this rank's positions, ``accumulate`` lists per step."""

    def __init__(
        self,
        dataset_size: int,
        start_step: int,
        steps: int,
        batch_size: int,
        accumulate: int,
        context: Distributed,
    ):
        if dataset_size <= 0:
            raise ValueError("the training dataset is empty")
        self.start_step = start_step
        self.steps = steps
        self.batch_size = batch_size
        self.accumulate = accumulate
        self.context = context

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.accumulate * self.context.world_size

    def __len__(self) -> int:
        return max(0, self.steps - self.start_step) * self.accumulate

    def __iter__(self) -> Iterator[list[int]]:
        world, rank, batch = self.context.world_size, self.context.rank, self.batch_size
        for step in range(self.start_step, self.steps):
            for micro in range(self.accumulate):
                first = step * self.global_batch + (micro * world + rank) * batch
                yield list(range(first, first + batch))


def epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


class EpochOrder(Dataset):
    """Maps a global position to (epoch, item) with a seeded permutation per epoch.

    ``make_epoch(epoch)`` returns the dataset to read in that epoch (e.g. synthetic pairs
    with that epoch's degradation seed); all epochs must have the same length.
    """

    def __init__(self, make_epoch: Callable[[int], Dataset], size: int, seed: int):
        self.make_epoch = make_epoch
        self.size = size
        self.seed = seed
        self._cache: dict[int, tuple[np.ndarray, Dataset]] = {}

    def __len__(self) -> int:
        return self.size

    def _epoch(self, epoch: int) -> tuple[np.ndarray, Dataset]:
        if epoch not in self._cache:
            self._cache.clear()  # only the current epoch is ever needed
            order = np.random.default_rng(epoch_seed(self.seed, epoch)).permutation(self.size)
            self._cache[epoch] = (order, self.make_epoch(epoch))
        return self._cache[epoch]

    def __getitem__(self, position: int) -> dict[str, Any]:
        epoch, offset = divmod(int(position), self.size)
        order, dataset = self._epoch(epoch)
        return dataset[int(order[offset])]

    def preview(self, count: int) -> list[dict[str, Any]]:
        """The first ``count`` items of epoch 0 in file order (fixed images for the grids)."""
        _, dataset = self._epoch(0)
        return [dataset[i] for i in range(min(count, self.size))]


def collate(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack tensors, turn numbers into tensors, keep anything else as a list."""
    batch: dict[str, Any] = {}
    for key in items[0]:
        values = [item[key] for item in items]
        if isinstance(values[0], torch.Tensor):
            batch[key] = torch.stack(values)
        elif isinstance(values[0], (int, float)):
            batch[key] = torch.tensor(values)
        else:
            batch[key] = values
    return batch


def sample_batch(dataset: Dataset, count: int) -> dict[str, Any]:
    """A fixed batch for the image grids."""
    if isinstance(dataset, EpochOrder):
        return collate(dataset.preview(count))
    return collate([dataset[i] for i in range(min(count, len(dataset)))])


class _FaceItems(Dataset):
    """HQ faces as ``{"hq", "index"}`` items (prior training needs no LQ)."""

    def __init__(self, faces: Dataset):
        self.faces = faces

    def __len__(self) -> int:
        return len(self.faces)

    def __getitem__(self, index: int) -> dict[str, Any]:
        from ..data.datasets import to_tensor

        return {"hq": to_tensor(self.faces[index]), "index": index}


def build_dataset(config: DataConfig, seed: int) -> Dataset:
    """The training dataset ``config`` describes, ordered by :class:`EpochOrder`."""
    from ..data import datasets

    if not config.root:
        raise ValueError("data.root is not set (e.g. data.root=/path/to/aligned/faces)")
    root = Path(config.root)
    if not root.exists():
        raise FileNotFoundError(f"data.root {str(root)!r} does not exist")
    if config.kind == "degradation-pairs":  # UDRL: two faces sharing one degradation
        return _udrl_pairs(config, seed)
    if config.kind == "paired":
        pairs = datasets.PairedFolderDataset(
            root / "lq", root / "hq", size=config.size, lq_size=config.lq_size
        )
        return EpochOrder(lambda epoch: pairs, len(pairs), seed)
    crop = config.crop
    if crop == "manifest":
        crop = datasets.celeba_crop_box(root)
    elif isinstance(crop, str) or (crop is not None and len(crop) != 4):
        raise ValueError(f"data.crop must be [x0, y0, x1, y1] or 'manifest', got {crop!r}")
    files = datasets.celeba_split_files(root, config.split) if config.split else root
    if config.limit is not None and not isinstance(files, Path):
        files = files[: config.limit]
    faces = datasets.FaceFolderDataset(files, config.size, crop_box=crop)
    if config.kind == "faces":
        items = _FaceItems(faces)
        return EpochOrder(lambda epoch: items, len(items), seed)
    if config.kind != "synthetic":
        raise ValueError(
            f"data.kind must be synthetic, paired, faces or degradation-pairs, got {config.kind!r}"
        )
    from ..data.degradations import build_degradation

    try:
        degradation = build_degradation(config.degradation, **config.degradation_options)
    except TypeError as error:
        raise ValueError(f"data.degradation_options: {error}") from None

    def make_epoch(epoch: int) -> Dataset:
        pairs = datasets.SyntheticPairDataset(faces, degradation, seed + 1, config.lq_size)
        pairs.set_epoch(epoch)
        return pairs

    return EpochOrder(make_epoch, len(faces), seed)


def _udrl_pairs(config: DataConfig, seed: int) -> EpochOrder:
    """UDRL pairs (``faceprior.data.pairs``) of the HQ faces in ``config.root`` at
    ``config.size``, brought to ``config.lq_size`` (default 256), with fresh degradations
    each epoch."""
    from ..data.datasets import FaceFolderDataset
    from ..data.degradations import build_degradation
    from ..data.pairs import PAIR_SIZE, DegradationPairDataset

    faces = FaceFolderDataset(config.root, size=config.size)
    degradation = build_degradation(config.degradation, **config.degradation_options)

    def make_epoch(epoch: int) -> DegradationPairDataset:
        seed_epoch = epoch_seed(seed + 1, epoch)
        return DegradationPairDataset(faces, degradation, seed_epoch, config.lq_size or PAIR_SIZE)

    return EpochOrder(make_epoch, len(faces), seed)
