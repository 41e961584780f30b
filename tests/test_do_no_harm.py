"""The default restore never leaves a photo worse (issue 15), with the bundled gpen-offline-128.

Each test also runs the previous behaviour (or the knob switched off) and checks that it fails
the same measurement, so the assertions are known to be able to fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import PROJECT_ROOT, shared_path

from faceprior.face.detail import laplacian_variance
from faceprior.face.types import FaceDetection
from faceprior.pipeline import FaceRestorer

pytestmark = pytest.mark.usefixtures("one_thread")
MODEL = "gpen-offline-128"
PREVIOUS = dict(mask="rectangle", color_match="none", keep_grey=False, keep_detail=False)


@pytest.fixture(scope="module")
def restorer() -> FaceRestorer:
    return FaceRestorer(MODEL)


@pytest.fixture(scope="module")
def previous() -> FaceRestorer:
    return FaceRestorer(MODEL, **PREVIOUS)


def _hq(name: str = "alae_00120.jpg") -> np.ndarray:
    return cv2.imread(str(shared_path(f"data/hq/{name}")))[..., ::-1].copy()


def _small_face() -> np.ndarray:
    """A 128-px degraded face: what the model restores at full strength."""
    small = cv2.resize(
        cv2.GaussianBlur(_hq(), (0, 0), 1.2), (128, 128), interpolation=cv2.INTER_AREA
    )
    return np.pad(small, ((32, 32), (32, 32), (0, 0)), mode="edge")


def _chroma(rgb: np.ndarray) -> np.ndarray:
    values = rgb.astype(np.int32)
    return values.max(axis=2) - values.min(axis=2)


def test_grey_in_exactly_grey_out(restorer, previous):
    grey = np.repeat(cv2.cvtColor(_small_face(), cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    result = restorer.restore(grey)
    assert result.faces and result.colour.startswith("grey")
    assert _chroma(result.image).max() == 0
    assert np.abs(result.image.astype(int) - grey).max() > 10  # the face was restored
    assert _chroma(previous.restore(grey).image).max() > 10  # the model tints grey faces


def test_sepia_stays_within_its_chroma(restorer, previous):
    grey = cv2.cvtColor(_small_face(), cv2.COLOR_RGB2GRAY).astype(np.float32)
    sepia = np.clip(grey[..., None] * np.float32([1.0, 0.93, 0.8]) + 8, 0, 255)
    sepia = np.rint(sepia).astype(np.uint8)
    result = restorer.restore(sepia)
    assert result.colour.startswith("near-grey")
    assert (_chroma(result.image) - _chroma(sepia)).max() <= 1  # rounding only
    assert np.abs(result.image.astype(int) - sepia).max() > 10
    assert (_chroma(previous.restore(sepia).image) - _chroma(sepia)).max() > 10


def test_colour_photo_keeps_its_colour(restorer):
    photo = _small_face()
    result = restorer.restore(photo)
    assert result.colour == "colour"
    face = slice(60, 150), slice(60, 130)
    shift = result.image[face].reshape(-1, 3).mean(0) - photo[face].reshape(-1, 3).mean(0)
    assert np.abs(shift).max() < 3


def _face_on_wall() -> tuple[np.ndarray, np.ndarray]:
    """A real face (soft elliptic cut-out) on a flat blue wall, and where the wall is."""
    wall = np.empty((384, 384, 3), np.float32)
    wall[:] = (70, 110, 190)
    face = cv2.resize(_hq(), (256, 256), interpolation=cv2.INTER_AREA).astype(np.float32)
    yy, xx = np.mgrid[:256, :256]
    alpha = np.clip((1 - ((xx - 128) / 75.0) ** 2 - ((yy - 150) / 107.0) ** 2) / 0.1, 0, 1)
    wall[64:320, 64:320] = alpha[..., None] * face + (1 - alpha[..., None]) * wall[64:320, 64:320]
    flat = np.ones((384, 384), bool)
    flat[64:320, 64:320] = alpha == 0
    return np.rint(wall).astype(np.uint8), flat


def _rectangle_step(image: np.ndarray, flat: np.ndarray, face: FaceDetection, model) -> float:
    """Largest Lab colour step across the previous paste rectangle's border, on the wall."""
    from faceprior.face.align import align_face

    conventions = model.conventions
    _, matrix, _ = align_face(
        image.astype(np.float32) / 255, face.landmarks, conventions.template, 128
    )
    inverse = cv2.invertAffineTransform(matrix)
    lab = cv2.cvtColor(image.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
    steps = []
    # The rectangle's side in crop pixels (band 40/512 of 128), sampled just inside and outside.
    for t in np.linspace(20, 108, 23):
        for inner, outer in (
            ((t, 12), (t, 7)),
            ((t, 116), (t, 121)),
            ((12, t), (7, t)),
            ((116, t), (121, t)),
        ):
            (xi, yi), (xo, yo) = (
                np.array(p) @ inverse[:, :2].T + inverse[:, 2] for p in (inner, outer)
            )
            if (
                all(0 <= v < 384 for v in (xi, yi, xo, yo))
                and flat[int(yi), int(xi)]
                and flat[int(yo), int(xo)]
            ):
                steps.append(np.linalg.norm(lab[int(yi), int(xi)] - lab[int(yo), int(xo)]))
    assert len(steps) > 20
    return float(max(steps))


@pytest.mark.parametrize("color_match", ["wavelet", "lab"])
def test_no_square_on_a_flat_wall(restorer, previous, color_match):
    photo, flat = _face_on_wall()
    restorer.color_match = color_match
    try:
        result = restorer.restore(photo)
    finally:
        restorer.color_match = "wavelet"
    (face,) = result.faces
    detection = FaceDetection(face.box, face.score, face.landmarks)
    assert _rectangle_step(result.image, flat, detection, restorer.model) < 1.0
    assert np.abs(result.image[flat].astype(int) - photo[flat]).max() <= 1
    old = previous.restore(photo).image
    assert _rectangle_step(old, flat, detection, previous.model) > 3.0


def test_large_sharp_face_stays_sharp(restorer, previous):
    photo = _hq("alae_00123.jpg")  # 512 px: the face spans about 3x the model's 128 px
    region = slice(180, 470), slice(150, 360)
    result = restorer.restore(photo)
    (face,) = result.faces
    assert "detail kept" in face.detail
    before = laplacian_variance(photo[region].astype(np.float32) / 255)
    after = laplacian_variance(result.image[region].astype(np.float32) / 255)
    assert after >= 0.85 * before
    blurred = laplacian_variance(previous.restore(photo).image[region].astype(np.float32) / 255)
    assert blurred < 0.5 * before


def test_listed_faces_and_their_strengths_change_exactly_those_faces():
    left, right = _small_face(), cv2.flip(_small_face(), 1)
    photo = np.concatenate([left, np.full_like(left[:, :40], 128), right], axis=1)
    restorer = FaceRestorer(MODEL)
    everything = restorer.restore(photo)
    assert [face.index for face in everything.faces] == [0, 1]
    halves = [slice(None), slice(0, 192)], [slice(None), slice(232, None)]
    order = sorted(range(2), key=lambda i: everything.faces[i].box[0])  # left face first
    boxes = {index: halves[order.index(index)] for index in range(2)}

    def changed(image: np.ndarray, index: int) -> float:
        rows, columns = boxes[index]
        return float(np.abs(image[rows, columns].astype(int) - photo[rows, columns]).max())

    only_one = FaceRestorer(MODEL, faces=[1]).restore(photo)
    assert [face.index for face in only_one.faces] == [1]
    assert changed(only_one.image, 0) == 0 and changed(only_one.image, 1) > 10
    per_face = FaceRestorer(MODEL, faces=[0, 1], strength=[1.0, 0.0]).restore(photo)
    assert [face.strength for face in per_face.faces] == [1.0, 0.0]
    assert changed(per_face.image, 1) == 0 and changed(per_face.image, 0) > 10
    rows, columns = boxes[0]
    assert np.array_equal(per_face.image[rows, columns], everything.image[rows, columns])
    with pytest.raises(ValueError, match="one per listed face"):
        FaceRestorer(MODEL, faces=[0, 1], strength=[1.0, 0.5, 0.2])


def _cli(args: list[str], home, env_extra: dict) -> subprocess.CompletedProcess:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.lower().endswith("_proxy") and key != "FACEPRIOR_OFFLINE"
    }
    # No network: every connection attempt goes to a closed local port and fails at once.
    env.update(
        FACEPRIOR_HOME=str(home), https_proxy="http://127.0.0.1:9", http_proxy="http://127.0.0.1:9"
    )
    env.update(env_extra)
    command = [sys.executable, "-m", "faceprior", "restore", *args]
    return subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=PROJECT_ROOT, timeout=300
    )


def test_offline_restore_with_no_flags_in_a_clean_environment(tmp_path):
    photo = tmp_path / "face.png"
    cv2.imwrite(str(photo), _small_face()[..., ::-1])
    home = tmp_path / "empty-home"
    home.mkdir()
    plain = _cli([str(photo), "-o", str(tmp_path / "plain"), "--compare"], home, {})
    assert plain.returncode == 0, plain.stderr
    assert (tmp_path / "plain" / "face.png").is_file()
    side = cv2.imread(str(tmp_path / "plain" / "face_compare.png"))
    assert side.shape[:2] == (192, 2 * 192 + 8)  # input | gap | output
    notices = [line for line in plain.stderr.splitlines() if "bundled" in line]
    assert len(notices) == 1 and len(notices[0]) < 120
    assert list(home.rglob("*.pth")) == []  # the detector came from the package, not a download
    offline = _cli([str(photo), "-o", str(tmp_path / "offline"), "--offline", "--quiet"], home, {})
    assert offline.returncode == 0, offline.stderr
    assert offline.stderr.strip() == ""
    by_env = _cli(
        [str(photo), "-o", str(tmp_path / "env"), "--faces", "0", "--strength", "0.5"],
        home,
        {"FACEPRIOR_OFFLINE": "1"},
    )
    assert by_env.returncode == 0 and "(offline)" in by_env.stderr
    report = json.loads((tmp_path / "env" / "faceprior-report.json").read_text())
    (face,) = report["images"][0]["faces"]
    assert face["index"] == 0 and face["strength"] == 0.5


def test_the_one_call_restore_takes_every_option_of_face_restorer():
    import inspect

    import faceprior

    options = set(inspect.signature(FaceRestorer.__init__).parameters) - {"self"}
    forwarded = set(inspect.signature(faceprior.restore).parameters) - {"image", "aligned"}
    assert options == forwarded
    grey = np.repeat(cv2.cvtColor(_small_face(), cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    result = faceprior.restore(grey, MODEL, keep_grey=False, color_match="none")
    assert result.colour == "colour" and _chroma(result.image).max() > 10
