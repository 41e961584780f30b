"""The bundled offline model (gpen-offline-128): shipped intact, restores faces, and is what
``faceprior restore`` falls back to when the official weights cannot be had."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from conftest import shared_path

import faceprior
from faceprior.cli import main
from faceprior.hub import download
from faceprior.hub.zoo import get_entry
from faceprior.models.gpen import FullGenerator

NAME = "gpen-offline-128"
TEST_FACES = 48


@pytest.fixture()
def offline(monkeypatch):
    """No network: every zoo download fails as it does without a connection."""

    def unreachable(entry, progress=True):
        raise download.DownloadError(f"could not download {entry.name}: network unreachable")

    monkeypatch.setattr(download, "fetch", unreachable)


def test_bundled_file_matches_its_zoo_entry():
    entry = get_entry(NAME)
    path = faceprior.api.resolve_weights(NAME)
    assert entry.bundled and path.is_file()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry.sha256
    network = faceprior.load_model(NAME)
    assert isinstance(network, FullGenerator)
    assert sum(p.numel() for p in network.parameters()) == entry.parameters
    assert network.conventions.template == entry.template == "celeba"
    assert network.conventions.input_size == entry.input_size == 128


def psnr(image: torch.Tensor, reference: torch.Tensor) -> float:
    mse = ((image.clamp(-1, 1) - reference) / 2).pow(2).flatten(1).mean(1)
    return float((10 * torch.log10(1.0 / mse)).mean())


def test_restores_held_out_faces_better_than_their_upsampled_input():
    """The model card's protocol on the first held-out faces (the full table: 599 faces)."""
    from faceprior.data import datasets
    from faceprior.data.degradations import build_degradation

    root = shared_path("data/train/celeba_align_6k")
    files = datasets.celeba_split_files(root, "test")[:TEST_FACES]
    faces = datasets.FaceFolderDataset(files, 128, crop_box=datasets.celeba_crop_box(root))
    batches = {}
    for upsample in ("linear", "cubic"):
        pairs = datasets.SyntheticPairDataset(
            faces, build_degradation("gpen", upsample=upsample), 0
        )
        items = [pairs[i] for i in range(len(pairs))]
        batches[upsample] = torch.stack([item["lq"] for item in items])
        hq = torch.stack([item["hq"] for item in items])
    restorer = faceprior.load_restoration_model(NAME)
    with torch.no_grad():
        restored = restorer(batches["linear"])
    scores = {
        "bicubic input": psnr(batches["cubic"], hq),
        "bilinear input": psnr(batches["linear"], hq),
        NAME: psnr(restored, hq),
    }
    print("\nPSNR on", TEST_FACES, "held-out faces:", {k: round(v, 2) for k, v in scores.items()})
    assert scores[NAME] > max(scores["bicubic input"], scores["bilinear input"]) + 0.5


def test_python_api_falls_back_with_a_warning(offline):
    from faceprior.pipeline import FaceRestorer, OfflineFallbackWarning

    with pytest.warns(OfflineFallbackWarning, match="gpen-bfr-512 is unavailable"):
        restorer = FaceRestorer()
    assert restorer.model_name == NAME
    assert restorer.model.conventions.template == "celeba"


def test_restore_command_works_offline_and_says_which_model(tmp_path, offline, capsys):
    photo = shared_path("data/faces/whole/facexlib/test.jpg")
    detector = shared_path("data/weights/retinaface_mobilenet0.25_Final.pth")
    out = tmp_path / "out"
    code = main(["restore", str(photo), "-o", str(out), "--detector-weights", str(detector)])
    error = capsys.readouterr().err
    assert code == 0, error
    assert f"using the bundled offline model {NAME}" in error and f"model: {NAME}" in error
    report = json.loads((out / "faceprior-report.json").read_text())
    assert report["model"] == NAME and report["summary"]["faces"] == 1
    from faceprior.io.images import read_image

    before, after = read_image(photo).pixels, read_image(out / "test.jpg").pixels
    assert before.shape == after.shape
    changed = np.abs(after.astype(int) - before.astype(int)).max(axis=2) > 8
    assert 0.002 < changed.mean() < 0.5  # the face changed, most of the photo did not
