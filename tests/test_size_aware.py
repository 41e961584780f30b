"""Size-aware restoration: small faces through a smaller model (``small_model``).

A real 4-face photo, the real RetinaFace detector and two tiny random-weight GPENs (64 px main,
32 px small): their outputs differ from each other and from the photo everywhere, so a face sent
to the wrong model, aligned with the wrong size or pasted at the wrong size shows.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from conftest import shared_path

import faceprior
from faceprior.cli import main
from faceprior.io.images import read_image
from faceprior.models.gpen import FullGenerator
from faceprior.pipeline import FaceRestorer, ModelUnavailableError

DETECTOR_WEIGHTS = "data/weights/retinaface_mobilenet0.25_Final.pth"
# Four faces whose 64-px GPEN crops span 62, 71, 80 and 79 px of the photo.
PHOTO = "data/faces/whole/CodeFormer_whole_imgs/00.jpg"
THRESHOLD = 75.0


def _tiny_gpen(folder, size: int, seed: int) -> str:
    torch.manual_seed(seed)
    network = FullGenerator(size, style_dim=32, n_mlp=2, channel_multiplier=1, narrow=1 / 16)
    return str(faceprior.save_model(network, folder / f"tiny-gpen-{size}.safetensors"))


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> tuple[str, str]:
    """(main 64 px, small 32 px) GPEN checkpoints, loaded by path like real models."""
    folder = tmp_path_factory.mktemp("models")
    return _tiny_gpen(folder, 64, 0), _tiny_gpen(folder, 32, 1)


@pytest.fixture(scope="module")
def detector():
    from faceprior.face.detection import load_detector

    return load_detector("retinaface-mobilenet0.25", weights=shared_path(DETECTOR_WEIGHTS))


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return read_image(shared_path(PHOTO)).pixels


def _footprints(shape, faces, sizes) -> np.ndarray:
    """Photo pixels that any of these faces' crops (``sizes`` px) can reach when pasted."""
    region = np.zeros(shape[:2], np.uint8)
    for face, size in zip(faces, sizes, strict=True):
        inverse = cv2.invertAffineTransform(face.matrix)
        corners = np.array([[-0.5, -0.5], [size, -0.5], [size, size], [-0.5, size]])
        polygon = corners @ inverse[:, :2].T + inverse[:, 2]
        cv2.fillConvexPoly(region, np.round(polygon).astype(np.int32), 1)
    return cv2.dilate(region, np.ones((7, 7), np.uint8)) > 0


def test_small_faces_go_through_the_small_model(models, detector, photo):
    big, small = models

    def run(model, **options):
        restorer = FaceRestorer(
            model, detector=detector, batch_size=2, color_match="none", **options
        )
        return restorer, restorer.restore(photo)

    restorer, mixed = run(big, small_model=small, small_face_size=THRESHOLD)
    _, big_only = run(big)
    _, small_only = run(small)
    sizes = [restorer.pasted_size(d) for d in detector.detect(photo[..., ::-1].copy())]
    expected = [small if size < THRESHOLD else big for size in sizes]
    assert [face.model for face in mixed.faces] == expected == [small, small, big, big]
    assert [face["model"] for face in mixed.to_dict()["faces"]] == expected
    is_small = np.array([face.model == small for face in mixed.faces])
    # Each face is aligned with its own model's template and size.
    for index, face in enumerate(mixed.faces):
        alone = (small_only if is_small[index] else big_only).faces[index]
        assert np.array_equal(face.matrix, alone.matrix)
    # Away from the other group's faces, the photo is exactly what each model alone gives.
    for group, alone, other_size in ((~is_small, big_only, 32), (is_small, small_only, 64)):
        others = [face for face, chosen in zip(mixed.faces, group, strict=True) if not chosen]
        outside = ~_footprints(photo.shape, others, [other_size] * len(others))
        assert np.array_equal(mixed.image[outside], alone.image[outside])
        assert np.abs(mixed.image[outside].astype(int) - photo[outside]).max() > 20
    assert not np.array_equal(mixed.image, big_only.image)


def test_threshold_and_upscale_decide_the_route(models, detector, photo):
    big, small = models
    never = FaceRestorer(big, detector=detector, small_model=small, small_face_size=0)
    result = never.restore(photo)
    assert {face.model for face in result.faces} == {big}
    assert np.array_equal(result.image, FaceRestorer(big, detector=detector).restore(photo).image)
    default = FaceRestorer(big, detector=detector, small_model=small)
    assert default.small_face_size == 32.0  # the small model's output size
    first = detector.detect(photo[..., ::-1].copy())[0]
    doubled = FaceRestorer(
        big, detector=detector, small_model=small, small_face_size=THRESHOLD, upscale=2
    )
    assert doubled.pasted_size(first) == pytest.approx(2 * default.pasted_size(first))
    assert {face.model for face in doubled.restore(photo).faces} == {big}


def test_bad_small_model_options_are_clear(models, tmp_path):
    big, small = models
    with pytest.raises(ValueError, match="small_face_size must be >= 0"):
        FaceRestorer(big, small_model=small, small_face_size=-1)
    with pytest.raises(ValueError, match="small_face_size must be >= 0"):
        FaceRestorer(big, small_model=small, small_face_size=float("nan"))
    with pytest.raises(ValueError, match="needs a small_model"):
        FaceRestorer(big, small_face_size=100)
    with pytest.raises(ModelUnavailableError, match="missing.safetensors"):
        FaceRestorer(big, small_model=tmp_path / "missing.safetensors")
    loaded = faceprior.load_restoration_model(big)
    same_class = FaceRestorer(loaded, small_model=faceprior.load_restoration_model(small))
    assert same_class.small_model_name == f"{same_class.model_name} (small)"


def test_cli_records_the_model_per_face(tmp_path, models, capsys):
    big, small = models
    out = tmp_path / "out"
    weights = str(shared_path(DETECTOR_WEIGHTS))
    common = [str(shared_path(PHOTO)), "-o", str(out), "--model", big, "--device", "cpu"]
    common += ["--detector-weights", weights]
    code = main(["restore", *common, "--small-model", small, "--small-face-size", "75"])
    assert code == 0
    assert f"small model: {small} (faces under 75 px" in capsys.readouterr().err
    report = json.loads((out / "faceprior-report.json").read_text())
    assert report["small_model"] == small and report["small_face_size"] == 75.0
    (entry,) = report["images"]
    assert [face["model"] for face in entry["faces"]] == [small, small, big, big]
    assert main(["restore", *common, "--quiet", "--small-face-size", "75"]) == 2
    assert "needs a small_model" in capsys.readouterr().err
    code = main(["restore", *common, "--quiet", "--small-model", small, "--small-face-size", "-5"])
    assert code == 2 and "--small-face-size must be >= 0" in capsys.readouterr().err
