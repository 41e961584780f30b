"""RetinaFace: parity with the official release, faces on real photos, options, R50 layout."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from conftest import load_parity_pack, shared_path

from faceprior.errors import UnknownNameError
from faceprior.face.detection import load_detector
from faceprior.face.nms import nms
from faceprior.face.retinaface import (
    RetinaFaceDetector,
    decode_detections,
    load_retinaface,
    prior_boxes,
    select_detections,
)
from faceprior.hub.checkpoint import CheckpointError, save_safetensors
from faceprior.models.retinaface import CONFIGS, RetinaFace

WEIGHTS = "data/weights/retinaface_mobilenet0.25_Final.pth"
PARITY_VIS_THRESHOLD = 0.6  # detect.py draws (and the pack stores) rows scoring >= 0.6


@pytest.fixture(scope="module")
def pack():
    return load_parity_pack("retinaface-mobilenet0.25")


@pytest.fixture(scope="module")
def detector():
    return load_detector(weights=str(shared_path(WEIGHTS)))


def _photo(relative: str) -> np.ndarray:
    image = cv2.imread(str(shared_path(relative)), cv2.IMREAD_COLOR)
    assert image is not None, relative
    return image


def _as_set(rows: np.ndarray) -> np.ndarray:
    """Rows sorted by box corners: candidates with equal scores may come in any order."""
    return rows[np.lexsort(rows[:, :4].T[::-1])]


def test_state_dict_matches_official_manifest(pack):
    model = RetinaFace("mobilenet0.25")
    ours = [(k, list(v.shape)) for k, v in model.state_dict().items()]
    assert ours == [(k, shape) for k, shape, _ in pack.meta["state_dict"]]
    assert sum(p.numel() for p in model.parameters()) == pack.meta["model"]["num_parameters"]


@pytest.mark.parametrize("index", [0, 1, 2])
def test_parity_with_official_outputs(pack, index):
    model = RetinaFace("mobilenet0.25")
    model.load_state_dict(pack.torch_state_dict(), strict=True)
    detector = RetinaFaceDetector(model, score_threshold=0.02, nms_threshold=0.4)
    image = pack.raw[f"in/image{index}"][0]  # BGR uint8 as cv2.imread decoded it
    height, width = image.shape[:2]

    loc, conf, landmarks = detector.raw_outputs(image)
    for name, array in (("loc", loc), ("conf", conf), ("landms", landmarks)):
        ok, max_err, _ = pack.check(f"{name}{index}", array[None])
        assert ok, (name, max_err, pack.tol(f"{name}{index}"))

    priors = prior_boxes(CONFIGS["retinaface-mobilenet0.25"], height, width)
    assert pack.check(f"priors{index}", priors, "intermediates")[0]

    rows = decode_detections(loc, conf, landmarks, model.config, height, width)
    candidates = rows[rows[:, 4] > 0.02]
    expected = pack.intermediates[f"candidates{index}"]
    assert candidates.shape == expected.shape
    atol, _ = pack.tol(f"candidates{index}", "intermediates")
    np.testing.assert_allclose(_as_set(candidates), _as_set(expected), rtol=0, atol=atol)

    kept = select_detections(rows, 0.02, 0.4)
    kept = kept[kept[:, 4] >= PARITY_VIS_THRESHOLD]
    expected = pack.outputs[f"dets{index}"]
    assert kept.shape == expected.shape
    atol, _ = pack.tol(f"dets{index}")
    np.testing.assert_allclose(_as_set(kept), _as_set(expected), rtol=0, atol=atol)


def test_detect_returns_pack_faces_in_input_pixels(pack, detector):
    faces = detector.detect(pack.raw["in/image1"][0])
    expected = pack.outputs["dets1"]
    assert [f.score for f in faces] == sorted((f.score for f in faces), reverse=True)
    assert len(faces) == len(expected)
    for face, row in zip(faces, expected[np.argsort(-expected[:, 4])], strict=True):
        np.testing.assert_allclose(face.box, row[:4], atol=1e-3)
        np.testing.assert_allclose(face.landmarks, row[5:].reshape(5, 2), atol=1e-3)
        assert face.score == pytest.approx(row[4], abs=1e-4)


def test_group_photo_gives_dozens_of_faces(detector):
    faces = detector.detect(_photo("data/faces/whole/GPEN_imgs/Solvay_conference_1927.png"))
    assert 24 <= len(faces) <= 32  # 29 people; all should be found, nothing else
    assert all(f.score > 0.9 for f in faces)
    assert all(10 < f.size < 80 for f in faces)


def test_portraits_give_one_face_each(detector):
    # Blake_Lively.jpg is a side-by-side of two portraits (child, adult): two faces.
    faces = detector.detect(_photo("data/faces/whole/GFPGAN_whole_imgs/Blake_Lively.jpg"))
    assert len(faces) == 2
    assert sorted(f.box[0] < 350 for f in faces) == [False, True]  # one face per half
    # A 2160 px phone selfie: detected after the >1500 px resize, mapped back to full size.
    faces = detector.detect(_photo("data/faces/whole/GPEN_selfie/2020-12-17 185036.jpg"))
    assert len(faces) == 1
    assert faces[0].size > 500


@pytest.mark.parametrize("name", ["000037.jpg", "000050.jpg", "000114.jpg"])
def test_landmarks_match_ground_truth(detector, name):
    truth = np.loadtxt(shared_path(f"data/faces/landmarks5/detections/{name[:-4]}.txt"))
    faces = detector.detect(_photo(f"data/faces/landmarks5/{name}"))
    assert faces
    errors = min((np.linalg.norm(f.landmarks - truth, axis=1) for f in faces), key=np.mean)
    eye_distance = np.linalg.norm(truth[0] - truth[1])
    assert errors.mean() < 4.0, errors  # pixels; the truth comes from another detector
    assert errors.max() < 0.12 * eye_distance, (errors, eye_distance)


def test_thresholds_and_limits_change_the_result(detector):
    image = _photo("data/faces/landmarks5/000033.jpg")  # one face, 52 candidates > 0.02
    model = detector.model
    one = RetinaFaceDetector(model).detect(image)
    assert len(one) == 1
    assert RetinaFaceDetector(model, score_threshold=0.99995).detect(image) == []
    many = RetinaFaceDetector(model, score_threshold=0.02, nms_threshold=1.0).detect(image)
    assert len(many) == 52
    fewer = RetinaFaceDetector(model, score_threshold=0.02, nms_threshold=0.9).detect(image)
    assert 1 < len(fewer) < len(many)
    top = RetinaFaceDetector(model, score_threshold=0.02, nms_threshold=1.0, top_k=3)
    assert len(top.detect(image)) == 3
    keep = RetinaFaceDetector(model, score_threshold=0.02, nms_threshold=1.0, keep_top_k=5)
    assert len(keep.detect(image)) == 5
    # Shrinking changes the numbers but finds the same face in original pixels.
    small = RetinaFaceDetector(model, max_size=200, resize_to=180).detect(image)
    assert len(small) == 1
    assert not np.allclose(small[0].box, one[0].box, atol=0.1)
    np.testing.assert_allclose(small[0].landmarks, one[0].landmarks, atol=6)
    other = RetinaFaceDetector(model, max_size=200, resize_to=150).detect(image)
    assert not np.allclose(other[0].box, small[0].box, atol=0.1)


def test_image_conversions_and_bad_input(detector):
    image = _photo("data/faces/landmarks5/000033.jpg")
    bgra = cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)
    np.testing.assert_array_equal(detector.detect(bgra)[0].box, detector.detect(image)[0].box)
    assert len(detector.detect(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))) == 1
    with pytest.raises(ValueError, match="uint8"):
        detector.detect(image.astype(np.float32))
    with pytest.raises(ValueError, match="shape"):
        detector.detect(image[:, :, :2])
    with pytest.raises(ValueError, match="empty"):
        detector.detect(image[:0])
    with pytest.raises(ValueError, match="score_threshold"):
        RetinaFaceDetector(detector.model, score_threshold=1.5)


def test_nms_uses_inclusive_pixel_areas():
    boxes = np.array([[0, 0, 9, 9], [0, 0, 9, 4]], dtype=np.float32)  # IoU 0.5 with +1 areas
    scores = np.array([0.9, 0.8], dtype=np.float32)
    assert nms(boxes, scores, 0.5).tolist() == [0, 1]
    assert nms(boxes, scores, 0.47).tolist() == [0]  # would be kept with plain areas (0.44)
    assert nms(boxes[::-1], scores, 0.47).tolist() == [0]
    with pytest.raises(ValueError):
        nms(boxes[:, :3], scores, 0.4)


def test_checkpoint_wrappers_and_errors(tmp_path):
    torch.manual_seed(0)
    model = RetinaFace("mobilenet0.25").eval()
    wrapped = {"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}
    path = tmp_path / "wrapped.pth"
    torch.save(wrapped, path)
    loaded = load_retinaface(path, "retinaface-mobilenet0.25")
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    with pytest.raises(CheckpointError, match="retinaface-mobilenet0.25"):
        load_retinaface(path, "retinaface-resnet50")
    broken = dict(model.state_dict())
    broken.pop("fpn.merge1.0.weight")
    torch.save(broken, tmp_path / "broken.pth")
    with pytest.raises(CheckpointError, match="fpn.merge1.0.weight"):
        load_retinaface(tmp_path / "broken.pth", "retinaface-mobilenet0.25")
    with pytest.raises(UnknownNameError, match="unknown face detector"):
        load_detector("no-such-detector", weights=str(path))


def test_zoo_name_downloads_through_the_hub(monkeypatch):
    fetched = []

    def fake_fetch(entry):
        fetched.append(entry.name)
        return shared_path(WEIGHTS)

    monkeypatch.setattr("faceprior.hub.download.fetch", fake_fetch)
    detector = load_detector("retinaface-mobilenet0.25", score_threshold=0.5)
    assert fetched == ["retinaface-mobilenet0.25"]
    assert isinstance(detector, RetinaFaceDetector) and detector.score_threshold == 0.5


def _expected_resnet50_keys() -> set[str]:
    """torchvision resnet50 (minus fc) under ``body.``, written out from its published layout."""
    keys = {"body.conv1.weight"}
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys |= {f"body.bn1.{p}" for p in bn}
    for layer, blocks in enumerate((3, 4, 6, 3), start=1):
        for block in range(blocks):
            prefix = f"body.layer{layer}.{block}"
            for i in (1, 2, 3):
                keys.add(f"{prefix}.conv{i}.weight")
                keys |= {f"{prefix}.bn{i}.{p}" for p in bn}
            if block == 0:
                keys.add(f"{prefix}.downsample.0.weight")
                keys |= {f"{prefix}.downsample.1.{p}" for p in bn}
    return keys


def test_resnet50_layout_and_round_trip(tmp_path):
    torch.manual_seed(0)
    model = RetinaFace("resnet50").eval()
    state = model.state_dict()
    assert {k for k in state if k.startswith("body.")} == _expected_resnet50_keys()
    assert len(state) == 456
    assert sum(p.numel() for p in model.parameters()) == 27_293_600
    shapes = {
        "body.layer2.0.conv2.weight": (128, 128, 3, 3),  # stride on the 3x3 conv
        "body.layer4.2.conv3.weight": (2048, 512, 1, 1),
        "fpn.output1.0.weight": (256, 512, 1, 1),
        "fpn.output3.0.weight": (256, 2048, 1, 1),
        "ssh1.conv3X3.0.weight": (128, 256, 3, 3),
        "ssh3.conv7x7_3.0.weight": (64, 64, 3, 3),
        "LandmarkHead.2.conv1x1.weight": (20, 256, 1, 1),
    }
    for key, shape in shapes.items():
        assert tuple(state[key].shape) == shape, key

    image = np.random.default_rng(0).integers(0, 256, (70, 90, 3), dtype=np.uint8)
    path = save_safetensors(state, tmp_path / "r50.safetensors", "retinaface-resnet50", {})
    detector = load_detector("retinaface-resnet50", weights=str(path), score_threshold=0.0)
    reference = RetinaFaceDetector(model, score_threshold=0.0)
    ours, theirs = detector.raw_outputs(image), reference.raw_outputs(image)
    anchors = sum(2 * -(-70 // s) * -(-90 // s) for s in (8, 16, 32))
    for a, b, width in zip(ours, theirs, (4, 2, 10), strict=True):
        assert a.shape == (anchors, width)
        np.testing.assert_array_equal(a, b)
    with pytest.raises(CheckpointError, match="retinaface-resnet50"):
        load_detector("retinaface-mobilenet0.25", weights=str(path))
