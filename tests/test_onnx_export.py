"""ONNX export of restoration models and RetinaFace, and the ONNX Runtime path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import shared_path

import faceprior
from faceprior.deploy.onnx_export import export_restorer, export_retinaface
from faceprior.models.gpen import FullGenerator

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def tiny_gpen(tmp_path_factory):
    torch.manual_seed(0)
    network = FullGenerator(64, style_dim=64, n_mlp=2, channel_multiplier=1, narrow=0.125)
    path = tmp_path_factory.mktemp("gpen") / "gpen.safetensors"
    faceprior.save_model(network, path)
    return path


def test_gpen_export_matches_pytorch_at_any_batch(tiny_gpen, tmp_path):
    report = export_restorer(str(tiny_gpen), tmp_path / "gpen.onnx")
    assert report.max_abs_error < 1e-4
    onnx_model = faceprior.load_restoration_model(tmp_path / "gpen.onnx")
    torch_model = faceprior.load_restoration_model(tiny_gpen)
    assert onnx_model.conventions == torch_model.conventions
    faces = torch.rand(5, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        expected = torch_model(faces)
    assert torch.allclose(onnx_model(faces), expected, atol=1e-4)


def test_onnx_models_refuse_load_time_options(tiny_gpen, tmp_path):
    from faceprior.models.restorer import RestorerOptions

    export_restorer(str(tiny_gpen), tmp_path / "gpen.onnx", check=False)
    with pytest.raises(ValueError, match="fixed at export time"):
        faceprior.load_restoration_model(
            tmp_path / "gpen.onnx", options=RestorerOptions(fidelity=0.5)
        )


def test_retinaface_export_gives_the_same_detections(tmp_path):
    import cv2

    from faceprior.face.detection import load_detector
    from faceprior.face.retinaface import load_retinaface

    weights = shared_path("data/weights/retinaface_mobilenet0.25_Final.pth")
    photo = cv2.imread(str(shared_path("data/faces/whole/facexlib/test.jpg")))
    network = load_retinaface(weights, "retinaface-mobilenet0.25")
    report = export_retinaface(network, tmp_path / "retinaface.onnx")
    assert report.max_abs_error < 1e-3
    reference = load_detector("retinaface-mobilenet0.25", weights=weights).detect(photo)
    exported = load_detector("retinaface-mobilenet0.25", weights=tmp_path / "retinaface.onnx")
    found = exported.detect(photo)
    assert len(found) == len(reference) > 0
    for a, b in zip(found, reference, strict=True):
        assert np.abs(a.box - b.box).max() < 0.05
        assert np.abs(a.landmarks - b.landmarks).max() < 0.05


def test_export_command_writes_and_verifies(tiny_gpen, tmp_path, capsys):
    from faceprior.cli import main

    assert main(["export", str(tiny_gpen), "-o", str(tmp_path / "m.onnx")]) == 0
    assert "max |ONNX Runtime - PyTorch|" in capsys.readouterr().out
    assert (tmp_path / "m.onnx").stat().st_size > 0
