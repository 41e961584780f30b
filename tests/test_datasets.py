"""Face datasets and pair datasets."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from conftest import shared_path

from faceprior.data.datasets import (
    FaceFolderDataset,
    PairedFolderDataset,
    SyntheticPairDataset,
    celeba_crop_box,
    celeba_split_files,
    read_image,
)
from faceprior.data.degradations import build_degradation


def _write(path, image_u8) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image_u8)


@pytest.fixture
def face_folder(tmp_path):
    """Five small faces of assorted sizes and formats, one in a sub-folder."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "faces"
    shapes = [(40, 40), (64, 64), (50, 70), (32, 32), (48, 48)]
    names = ["a.png", "b.jpg", "c.png", "sub/d.png", "e.bmp"]
    for name, (h, w) in zip(names, shapes):
        _write(folder / name, rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_face_folder_lists_images_recursively_with_size_and_range(face_folder):
    dataset = FaceFolderDataset(face_folder, size=24)
    assert [p.relative_to(face_folder).as_posix() for p in dataset.paths] == [
        "a.png",
        "b.jpg",
        "c.png",
        "e.bmp",
        "sub/d.png",
    ]
    for index in range(len(dataset)):
        item = dataset[index]
        assert item.shape == (24, 24, 3) and item.dtype == np.float32
        assert 0.0 <= item.min() and item.max() <= 1.0
    only_png = FaceFolderDataset(face_folder, size=24, extensions=(".png",))
    assert len(only_png) == 3


def test_face_folder_accepts_a_file_list_and_a_list_file(face_folder, tmp_path):
    files = [face_folder / "c.png", face_folder / "a.png"]
    assert FaceFolderDataset(files, size=16).paths == files
    listing = face_folder / "split.txt"
    listing.write_text("# held out\nc.png\n\nsub/d.png\n")
    assert FaceFolderDataset(listing, size=16).paths == [
        face_folder / "c.png",
        face_folder / "sub/d.png",
    ]


def test_crop_box_is_cut_before_resizing(tmp_path):
    image = np.zeros((60, 80, 3), dtype=np.uint8)
    image[10:30, 20:40] = (255, 0, 0)  # a blue square in BGR
    _write(tmp_path / "x.png", image)
    crop = FaceFolderDataset(tmp_path, size=10, crop_box=(20, 10, 40, 30))[0]
    assert np.allclose(crop[..., 0], 1.0) and np.allclose(crop[..., 1:], 0.0)
    centre = FaceFolderDataset(tmp_path, size=60)[0]  # centre square: x 10..70
    assert np.array_equal(centre, read_image(tmp_path / "x.png")[:, 10:70])
    with pytest.raises(ValueError, match="does not fit"):
        FaceFolderDataset(tmp_path, size=10, crop_box=(0, 0, 100, 10))[0]


def test_bad_folders_and_files_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        FaceFolderDataset(tmp_path / "missing", size=8)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        FaceFolderDataset(tmp_path / "empty", size=8)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot decode.*broken.png"):
        FaceFolderDataset([tmp_path / "broken.png"], size=8)[0]


def test_read_image_keeps_16_bit_precision_and_expands_grey(tmp_path):
    deep = np.full((4, 4, 3), 1000, dtype=np.uint16)
    _write(tmp_path / "deep.png", deep)
    assert np.allclose(read_image(tmp_path / "deep.png"), 1000 / 65535)
    _write(tmp_path / "grey.png", np.full((4, 4), 128, dtype=np.uint8))
    assert read_image(tmp_path / "grey.png").shape == (4, 4, 3)


def test_celeba_split_and_crop_box_from_the_manifest():
    root = shared_path("data/train/celeba_align_6k")
    assert celeba_crop_box(root) == (11, 39, 166, 194)
    train = celeba_split_files(root, "train")
    test = celeba_split_files(root, "test")
    assert len(train) == 4800 and len(test) == 599  # 600 minus the cross-split duplicate
    assert not {p.name for p in test} & {"197961.jpg"}
    face = FaceFolderDataset(test[:1], size=64, crop_box=celeba_crop_box(root))[0]
    assert face.shape == (64, 64, 3)
    with pytest.raises(ValueError, match="unknown split"):
        celeba_split_files(root, "holdout")


class _Faces:
    """In-memory HQ faces (the Sequence a SyntheticPairDataset needs)."""

    def __init__(self, n: int, size: int = 32) -> None:
        rng = np.random.default_rng(1)
        self.faces = [rng.random((size, size, 3)).astype(np.float32) for _ in range(n)]

    def __len__(self) -> int:
        return len(self.faces)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.faces[index]


def test_synthetic_pairs_are_rgb_tensors_in_minus_one_one():
    faces = _Faces(3)
    faces.faces[0] = np.zeros((32, 32, 3), dtype=np.float32)
    faces.faces[0][..., 0] = 1.0  # pure blue in BGR
    dataset = SyntheticPairDataset(faces, build_degradation("gpen", flip_prob=0, gray_prob=0), 0)
    item = dataset[0]
    assert set(item) == {"lq", "hq", "index"} and item["index"] == 0
    assert item["lq"].shape == item["hq"].shape == (3, 32, 32)
    assert item["hq"].dtype == torch.float32
    assert torch.all(item["hq"][2] == 1) and torch.all(item["hq"][:2] == -1)  # RGB order
    assert item["lq"].min() >= -1 and item["lq"].max() <= 1


def test_synthetic_item_depends_only_on_seed_index_and_epoch():
    degradation = build_degradation("psfrgan")
    a = SyntheticPairDataset(_Faces(4), degradation, seed=3)
    b = SyntheticPairDataset(_Faces(4), degradation, seed=3)
    assert torch.equal(a[2]["lq"], b[2]["lq"])  # another instance (another worker)
    expected, _, _ = degradation(_Faces(4)[2], np.random.default_rng([3, 2]))
    assert np.allclose(a.sample(2)[0], expected)  # the documented generator
    assert not torch.equal(a[1]["lq"], a[2]["lq"])
    assert not torch.equal(a[2]["lq"], SyntheticPairDataset(_Faces(4), degradation, 4)[2]["lq"])
    b.set_epoch(1)
    assert not torch.equal(a[2]["lq"], b[2]["lq"])
    b.set_epoch(0)
    assert torch.equal(a[2]["lq"], b[2]["lq"])
    with pytest.raises(IndexError):
        a[4]


def test_synthetic_lq_size_resizes_the_lq():
    dataset = SyntheticPairDataset(_Faces(1), build_degradation("panini-sr16"), 0)
    assert dataset[0]["lq"].shape == (3, 2, 2)
    upsized = SyntheticPairDataset(_Faces(1), build_degradation("panini-sr16"), 0, lq_size=32)
    assert upsized[0]["lq"].shape == (3, 32, 32) and upsized[0]["hq"].shape == (3, 32, 32)


def test_dataloader_workers_reproduce_direct_indexing():
    dataset = SyntheticPairDataset(_Faces(6), build_degradation("gpen"), seed=11)
    sampler = [5, 1, 3, 0]
    loader = torch.utils.data.DataLoader(dataset, batch_size=2, num_workers=2, sampler=sampler)
    batches = list(loader)
    assert [int(i) for batch in batches for i in batch["index"]] == sampler
    for batch in batches:
        for row, index in enumerate(batch["index"]):
            assert torch.equal(batch["lq"][row], dataset[int(index)]["lq"])


def test_paired_folders_match_by_stem_and_resize(tmp_path):
    rng = np.random.default_rng(0)
    for stem in ("x", "sub/y"):
        _write(tmp_path / "lq" / f"{stem}.jpg", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
        _write(tmp_path / "hq" / f"{stem}.png", rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    dataset = PairedFolderDataset(tmp_path / "lq", tmp_path / "hq")
    assert dataset.stems == ["sub/y", "x"] and len(dataset) == 2
    item = dataset[1]
    assert item["lq"].shape == (3, 8, 8) and item["hq"].shape == (3, 32, 32)
    hq = cv2.imread(str(tmp_path / "hq" / "x.png"))[:, :, ::-1]
    expected = torch.from_numpy(hq.transpose(2, 0, 1) / 127.5 - 1).float()
    assert torch.allclose(item["hq"], expected, atol=1e-6)
    resized = PairedFolderDataset(tmp_path / "lq", tmp_path / "hq", size=16, lq_size=16)[0]
    assert resized["lq"].shape == resized["hq"].shape == (3, 16, 16)
    (tmp_path / "hq" / "x.png").unlink()
    with pytest.raises(ValueError, match=r"1 LQ without HQ \['x'\]"):
        PairedFolderDataset(tmp_path / "lq", tmp_path / "hq")
