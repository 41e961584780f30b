"""Face datasets for training and benchmarks (map-style, usable with DataLoader workers).

* :class:`FaceFolderDataset`: aligned HQ faces from a folder, a list of files or a list file,
  optionally cropped to a box, resized to the model size; items are float32 HWC BGR in [0, 1].
* :class:`SyntheticPairDataset`: LQ/HQ pairs made on the fly from HQ faces with a degradation.
* :class:`PairedFolderDataset`: LQ/HQ pairs from two folders, matched by file stem (for example
  the output of ``faceprior degrade``).
* :func:`celeba_split_files`, :func:`celeba_crop_box`: the CelebA subset's split and crop.

Pair items are ``{"lq", "hq", "index"}`` with RGB tensors in [-1, 1], the network convention.
Nothing is cached in memory, so worker processes stay small and fork/spawn-safe.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from .degradations import Degradation
from .degradations.ops import resize_to

if TYPE_CHECKING:
    import torch

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
CropBox = tuple[int, int, int, int]


def read_image(path: str | Path) -> np.ndarray:
    """Any image file as float32 HWC BGR in [0, 1] (grey is repeated, alpha dropped,
    16-bit kept at full precision)."""
    from ..io.images import sniff_format

    data = np.fromfile(str(path), dtype=np.uint8)
    if sniff_format(data[:16].tobytes()) is None:  # OpenCV must see only documented formats
        raise ValueError(f"cannot decode image {path}: not a JPEG, PNG, TIFF, WebP, BMP or GIF")
    image = cv2.imdecode(data, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise ValueError(f"cannot decode image {path}")
    scale = 65535.0 if image.dtype == np.uint16 else 255.0
    return image.astype(np.float32) / scale


def list_images(folder: str | Path, extensions: Sequence[str] = IMAGE_EXTENSIONS) -> list[Path]:
    """Image files under ``folder`` (recursive), sorted, so every process sees the same order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"not a folder: {folder}")
    suffixes = {ext.lower() for ext in extensions}
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)


def _read_list_file(path: Path) -> list[Path]:
    """One path per line ('#' comments allowed); relative paths are relative to the file."""
    files = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            entry = Path(line)
            files.append(entry if entry.is_absolute() else path.parent / entry)
    return files


def _crop_square(image: np.ndarray, crop_box: CropBox | None) -> np.ndarray:
    height, width = image.shape[:2]
    if crop_box is None:
        side = min(height, width)  # aligned faces are square; trim any excess evenly
        x0, y0 = (width - side) // 2, (height - side) // 2
        return image[y0 : y0 + side, x0 : x0 + side]
    x0, y0, x1, y1 = (int(v) for v in crop_box)
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise ValueError(f"crop box {crop_box} does not fit a {width}x{height} image")
    return image[y0:y1, x0:x1]


class FaceFolderDataset:
    """Aligned HQ faces, item ``i`` = float32 HWC BGR [0, 1] array of ``size`` x ``size``.

    ``root`` is a folder (searched recursively), a text file listing image paths, or a sequence
    of paths. ``crop_box`` (x0, y0, x1, y1) is cut before resizing; without it a non-square
    image is centre-cropped to a square.
    """

    def __init__(
        self,
        root: str | Path | Sequence[str | Path],
        size: int,
        crop_box: CropBox | None = None,
        extensions: Sequence[str] = IMAGE_EXTENSIONS,
    ) -> None:
        if size < 1:
            raise ValueError(f"size must be positive, got {size}")
        if isinstance(root, (str, Path)):
            root = Path(root)
            if root.is_dir():
                self.paths = list_images(root, extensions)
            elif root.is_file():
                self.paths = _read_list_file(root)
            else:
                raise FileNotFoundError(f"no such folder or list file: {root}")
        else:
            self.paths = [Path(p) for p in root]
        if not self.paths:
            raise ValueError(f"no images found in {root}")
        self.size = int(size)
        self.crop_box = None if crop_box is None else tuple(int(v) for v in crop_box)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> np.ndarray:
        image = _crop_square(read_image(self.paths[index]), self.crop_box)
        return np.ascontiguousarray(resize_to(image, self.size, self.size))


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """float32 HWC BGR [0, 1] -> (3, H, W) RGB [-1, 1] (torch is imported here so that the
    array-only users, such as ``faceprior degrade``, never load it)."""
    import torch

    rgb = np.ascontiguousarray(image[:, :, ::-1].transpose(2, 0, 1))
    return torch.from_numpy(rgb) * 2.0 - 1.0


class SyntheticPairDataset:
    """LQ/HQ pairs synthesised on the fly: item ``i`` degrades ``faces[i]``.

    Item ``i`` of epoch 0 uses ``np.random.default_rng([seed, i])`` and later epochs
    ``default_rng([seed, i, epoch])`` (call :meth:`set_epoch`), so an item does not depend on
    which process, worker or order asked for it, and every epoch draws fresh degradations.
    DataLoader workers copy the dataset when an epoch starts, so call ``set_epoch`` before
    iterating and do not combine it with ``persistent_workers=True``.
    ``lq_size`` resizes the LQ (area/bicubic) for networks that take it at another size than
    the recipe produces, e.g. GPEN's LQ at the HQ size for an SR recipe.
    """

    def __init__(
        self,
        faces: Sequence[np.ndarray],
        degradation: Degradation,
        seed: int,
        lq_size: int | None = None,
    ) -> None:
        self.faces = faces
        self.degradation = degradation
        self.seed = int(seed)
        self.lq_size = lq_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.faces)

    def rng(self, index: int) -> np.random.Generator:
        key = [self.seed, index] if self.epoch == 0 else [self.seed, index, self.epoch]
        return np.random.default_rng(key)

    def sample(self, index: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """``(lq, hq, params)`` as arrays (float32 HWC BGR [0, 1]), for writers and manifests."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        lq, hq, params = self.degradation(self.faces[index], self.rng(index))
        if self.lq_size is not None:
            lq = resize_to(lq, self.lq_size, self.lq_size)
        return lq, hq, params

    def __getitem__(self, index: int) -> dict[str, Any]:
        lq, hq, _ = self.sample(index)
        return {"lq": to_tensor(lq), "hq": to_tensor(hq), "index": index}


class PairedFolderDataset:
    """LQ/HQ pairs from two folders, matched by file stem (relative path without extension).

    ``size`` resizes the HQ and ``lq_size`` the LQ to squares; left ``None`` they keep their
    file sizes. Every LQ needs an HQ and vice versa; a mismatch is an error naming the stems.
    """

    def __init__(
        self,
        lq_dir: str | Path,
        hq_dir: str | Path,
        size: int | None = None,
        lq_size: int | None = None,
    ) -> None:
        lq = {self._stem(p, lq_dir): p for p in list_images(lq_dir)}
        hq = {self._stem(p, hq_dir): p for p in list_images(hq_dir)}
        missing_hq, missing_lq = sorted(set(lq) - set(hq)), sorted(set(hq) - set(lq))
        if missing_hq or missing_lq:
            raise ValueError(
                f"unpaired files: {len(missing_hq)} LQ without HQ {missing_hq[:5]}, "
                f"{len(missing_lq)} HQ without LQ {missing_lq[:5]}"
            )
        if not lq:
            raise ValueError(f"no images found in {lq_dir}")
        self.stems = sorted(lq)
        self.lq_paths = [lq[s] for s in self.stems]
        self.hq_paths = [hq[s] for s in self.stems]
        self.size, self.lq_size = size, lq_size

    @staticmethod
    def _stem(path: Path, root: str | Path) -> str:
        return path.relative_to(root).with_suffix("").as_posix()

    def __len__(self) -> int:
        return len(self.stems)

    def __getitem__(self, index: int) -> dict[str, Any]:
        lq, hq = read_image(self.lq_paths[index]), read_image(self.hq_paths[index])
        if self.size is not None:
            hq = resize_to(hq, self.size, self.size)
        if self.lq_size is not None:
            lq = resize_to(lq, self.lq_size, self.lq_size)
        return {"lq": to_tensor(lq), "hq": to_tensor(hq), "index": index}


def celeba_crop_box(root: str | Path) -> CropBox:
    """The FFHQ-like square crop recorded in ``root/MANIFEST.md`` ("x0=.., y0=.., x1=.., y1=..")."""
    text = (Path(root) / "MANIFEST.md").read_text(encoding="utf-8")
    match = re.search(r"x0=(\d+),\s*y0=(\d+),\s*x1=(\d+),\s*y1=(\d+)", text)
    if match is None:
        raise ValueError(f"no 'x0=.., y0=.., x1=.., y1=..' crop box in {root}/MANIFEST.md")
    x0, y0, x1, y1 = (int(v) for v in match.groups())
    return x0, y0, x1, y1


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def celeba_split_files(root: str | Path, split: str) -> list[Path]:
    """Files of ``split`` (train/validation/test) listed in ``root/labels.tsv``, sorted.

    Held-out splits drop files byte-identical to a training file (the subset has one such
    duplicate across splits), so evaluation never scores a face the model trained on.
    """
    root = Path(root)
    by_split: dict[str, list[Path]] = {}
    with open(root / "labels.tsv", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            by_split.setdefault(row["split"], []).append(root / row["relpath"])
    if split not in by_split:
        raise ValueError(f"unknown split {split!r}; {root}/labels.tsv has {sorted(by_split)}")
    files = sorted(by_split[split])
    if split == "train":
        return files
    train_sizes: dict[int, list[Path]] = {}
    for path in by_split.get("train", []):
        train_sizes.setdefault(path.stat().st_size, []).append(path)
    kept = []
    for path in files:
        candidates = train_sizes.get(path.stat().st_size, [])
        digest = _sha256(path) if candidates else None
        if not any(_sha256(other) == digest for other in candidates):
            kept.append(path)
    return kept
