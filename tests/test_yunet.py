"""YuNet through OpenCV: same faces as RetinaFace, landmark order, options, bad files."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import shared_path

from faceprior.face.detection import load_detector
from faceprior.face.yunet import YuNetDetector

YUNET = "data/weights/face_detection_yunet_2023mar.onnx"
RETINAFACE = "data/weights/retinaface_mobilenet0.25_Final.pth"


def _photo(relative: str) -> np.ndarray:
    image = cv2.imread(str(shared_path(relative)), cv2.IMREAD_COLOR)
    assert image is not None, relative
    return image


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union


@pytest.fixture(scope="module")
def yunet():
    return load_detector("yunet", weights=str(shared_path(YUNET)))


def test_same_single_face_as_retinaface(yunet):
    image = _photo("data/faces/landmarks5/000033.jpg")
    ours = yunet.detect(image)
    reference = load_detector(weights=str(shared_path(RETINAFACE))).detect(image)
    assert len(ours) == len(reference) == 1
    face, ref = ours[0], reference[0]
    assert _iou(face.box, ref.box) > 0.7
    eye_distance = np.linalg.norm(ref.landmarks[1] - ref.landmarks[0])
    # Same order as RetinaFace (image-left eye first): every point lands near its partner.
    errors = np.linalg.norm(face.landmarks - ref.landmarks, axis=1)
    assert errors.max() < 0.15 * eye_distance, errors
    assert face.landmarks[0, 0] < face.landmarks[1, 0]
    assert face.landmarks[3, 0] < face.landmarks[4, 0]


def test_two_portraits_best_first(yunet):
    faces = yunet.detect(_photo("data/faces/whole/GFPGAN_whole_imgs/Blake_Lively.jpg"))
    assert len(faces) == 2
    assert faces[0].score >= faces[1].score
    assert all(f.landmarks[0, 0] < f.landmarks[1, 0] for f in faces)
    for face in faces:  # landmarks inside their own box
        assert (face.landmarks >= face.box[:2]).all() and (face.landmarks <= face.box[2:]).all()


def test_options_change_the_result(yunet):
    weights = shared_path(YUNET)
    image = _photo("data/faces/whole/GFPGAN_whole_imgs/Blake_Lively.jpg")  # scores 0.95, 0.91
    assert len(YuNetDetector(weights, score_threshold=0.93).detect(image)) == 1
    loose = YuNetDetector(weights, score_threshold=0.3, nms_threshold=1.0).detect(image)
    assert len(loose) > 2
    assert len(YuNetDetector(weights, score_threshold=0.3, nms_threshold=0.3).detect(image)) < len(
        loose
    )
    assert (
        len(YuNetDetector(weights, score_threshold=0.3, nms_threshold=1.0, top_k=2).detect(image))
        == 2
    )
    full = yunet.detect(image)
    shrunk = YuNetDetector(weights, max_size=500, resize_to=450).detect(image)
    assert len(shrunk) == 2
    assert not np.allclose(shrunk[0].box, full[0].box, atol=0.1)
    np.testing.assert_allclose(shrunk[0].box, full[0].box, atol=15)  # still in input pixels


def test_missing_or_invalid_model(tmp_path):
    with pytest.raises(FileNotFoundError):
        YuNetDetector(tmp_path / "absent.onnx")
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"not an onnx model")
    with pytest.raises(ValueError, match="YuNet"):
        YuNetDetector(bogus)
