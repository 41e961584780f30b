"""faceprior.pipeline: geometry of align + paste-back, layouts, batching and every public knob.

Geometry tests use an identity restorer (returns its input) and the ground-truth landmarks of
real photos, so they test alignment and paste-back without a detector; knob tests use a tiny
random-weight GPEN, whose output differs from its input everywhere.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from conftest import GivenFaces, shared_path

import faceprior
from faceprior.face.types import FaceDetection
from faceprior.models.conventions import Conventions
from faceprior.models.restorer import RestorationModel
from faceprior.pipeline import FaceRestorer, ModelUnavailableError

LANDMARKS = "data/faces/landmarks5"
# Photos whose faces are smaller than a 512 crop (alignment enlarges them, so a perfect
# paste-back can reproduce them), from the ground-truth landmark set.
SMALL_FACES = ("000126.jpg", "vd006.png", "vd034.png", "vd051.png")


class IdentityRestorer(RestorationModel):
    """Returns its input: align + paste-back must then give the photo back."""

    def __init__(self, size: int = 512, template: str = "gpen"):
        conventions = Conventions("identity", "restoration", size, size, template=template)
        super().__init__(torch.nn.Identity(), conventions)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return faces


class TintRestorer(IdentityRestorer):
    """Shifts the colour: what colour matching must undo."""

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return (faces * 0.8 + torch.tensor([0.3, -0.1, -0.3]).view(1, 3, 1, 1)).clamp(-1, 1)


def _photo(name: str) -> tuple[np.ndarray, FaceDetection]:
    """RGB photo and its ground-truth face as a detection."""
    image = cv2.imread(str(shared_path(f"{LANDMARKS}/{name}")))[..., ::-1].copy()
    points = np.loadtxt(shared_path(f"{LANDMARKS}/detections/{name.rsplit('.', 1)[0]}.txt"))
    box = np.r_[points.min(axis=0) - 25, points.max(axis=0) + 25]
    return image, FaceDetection(box=box, score=0.99, landmarks=points)


def _footprint(shape, matrix: np.ndarray, size: int) -> np.ndarray:
    """Pixels of the photo that the aligned crop covers (bool mask)."""
    inverse = cv2.invertAffineTransform(matrix)
    corners = np.array([[-0.5, -0.5], [size - 0.5, -0.5], [size - 0.5, size - 0.5], [-0.5, size]])
    polygon = corners @ inverse[:, :2].T + inverse[:, 2]
    region = np.zeros(shape[:2], np.uint8)
    cv2.fillConvexPoly(region, np.round(polygon).astype(np.int32), 1)
    return cv2.dilate(region, np.ones((5, 5), np.uint8)) > 0


def _psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(peak**2 / max(mse, 1e-12)))


@pytest.fixture(scope="module")
def tiny_parser(tmp_path_factory) -> str:
    """A random-weight 64 px ParseNet: its masks differ from the rectangle."""
    from faceprior.models.psfrgan.parsenet import ParseNet

    torch.manual_seed(1)
    network = ParseNet(64, 64, min_feat_size=16, base_ch=8, res_depth=1, ch_range=(8, 16))
    path = tmp_path_factory.mktemp("models") / "tiny-parser.safetensors"
    return str(faceprior.save_model(network, path))


@pytest.fixture(scope="module")
def tiny_model(tiny_gpen):
    """The tiny GPEN loaded once, as the pipeline's batch interface."""
    return faceprior.load_restoration_model(tiny_gpen)


@pytest.fixture(scope="module")
def two_faces() -> tuple[np.ndarray, list[FaceDetection]]:
    """A real photo with its face, and a second, half-size face pasted beside it."""
    image, face = _photo("vd025.png")
    small = cv2.resize(image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    canvas = np.concatenate([image, np.zeros_like(image)], axis=1)
    height, width = small.shape[:2]
    canvas[:height, image.shape[1] : image.shape[1] + width] = small
    second = FaceDetection(
        box=face.box / 2 + [image.shape[1], 0, image.shape[1], 0],
        score=0.95,
        landmarks=face.landmarks / 2 + [image.shape[1], 0],
    )
    return canvas, [face, second]


@pytest.mark.parametrize("name", SMALL_FACES)
def test_identity_paste_back_reproduces_photo(name):
    image, face = _photo(name)
    restorer = FaceRestorer(IdentityRestorer(512), detector=GivenFaces([face]))
    result = restorer.restore(image)
    assert result.image.shape == image.shape and result.image.dtype == np.uint8
    region = _footprint(image.shape, result.faces[0].matrix, 512)
    x0, y0, x1, y1 = face.box.astype(int)
    assert _psnr(result.image[y0:y1, x0:x1], image[y0:y1, x0:x1]) > 40
    assert np.array_equal(result.image[~region], image[~region])
    assert not np.array_equal(result.image[region], image[region])  # it did paste


def test_result_reports_faces_in_input_pixels():
    image, face = _photo("vd034.png")
    result = FaceRestorer(IdentityRestorer(256), detector=GivenFaces([face])).restore(image)
    report = result.to_dict()
    assert report["input_size"] == [image.shape[1], image.shape[0]]
    (entry,) = report["faces"]
    assert np.allclose(entry["box"], face.box, atol=0.01)
    assert np.allclose(entry["landmarks"], face.landmarks, atol=0.01)
    assert entry["score"] == pytest.approx(0.99)
    assert set(report["timings"]) >= {"detect", "align", "restore", "paste"}


def test_overlapping_faces_are_order_independent(two_faces):
    image, (face, second) = two_faces
    shifted = FaceDetection(face.box + 12, 0.9, face.landmarks + [12, 9])
    outputs = []
    for order in ([face, shifted, second], [second, shifted, face]):
        # No colour transfer: the default (wavelet) would undo the tint this test looks for.
        restorer = FaceRestorer(TintRestorer(128), detector=GivenFaces(order), color_match="none")
        outputs.append(restorer.restore(image).image.astype(int))
    assert np.abs(outputs[0] - outputs[1]).max() <= 1
    assert np.abs(outputs[0] - image).max() > 20


def test_zero_faces_returns_upscaled_photo(two_faces):
    image = two_faces[0]
    restorer = FaceRestorer(IdentityRestorer(128), detector=GivenFaces([]), upscale=2)
    result = restorer.restore(image)
    assert result.faces == [] and "no faces" in result.to_dict()["message"]
    expected = cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_LANCZOS4)
    assert np.abs(result.image.astype(int) - expected).max() <= 1
    same = FaceRestorer(IdentityRestorer(128), detector=GivenFaces([])).restore(image).image
    assert np.array_equal(same, image)


def test_default_batch_size_depends_on_the_device(tiny_gpen):
    from faceprior.pipeline import default_batch_size

    assert FaceRestorer(tiny_gpen).batch_size == default_batch_size("cpu") == 1
    assert default_batch_size("cuda:0") == 4
    assert FaceRestorer(tiny_gpen, batch_size=3).batch_size == 3


def test_batch_size_does_not_change_result(two_faces, tiny_gpen):
    image, faces = two_faces
    # No colour transfer: with the default (wavelet) this random network changes the photo by
    # at most 6 levels, too little for the last check to show that the faces were restored.
    results = [
        FaceRestorer(tiny_gpen, detector=GivenFaces(faces), batch_size=size, color_match="none")
        .restore(image)
        .image
        for size in (1, 2)
    ]
    assert np.abs(results[0].astype(int) - results[1]).max() <= 1
    assert np.abs(results[0].astype(int) - image).max() > 20


def _region_change(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(float) - b.astype(float)).mean())


def test_every_knob_changes_the_output(two_faces, tiny_model, tiny_parser):
    image, faces = two_faces

    def run(**options):
        restorer = FaceRestorer(tiny_model, detector=GivenFaces(faces), **options)
        return restorer.restore(image).image

    base = run()
    assert np.array_equal(run(strength=0.0), image)
    half = run(strength=0.5)
    assert 0.3 < _region_change(half, image) / _region_change(base, image) < 0.7
    for choice in (True, "lab", "adain", "none"):  # the default is "wavelet"
        assert _region_change(run(color_match=choice), base) > 0.5, choice
    # Mask shapes: 0.2, since the default colour transfer (wavelet) takes the low frequencies
    # back from the photo, which leaves about 0.39 (parsing) and 0.45 (rectangle) of a change.
    assert _region_change(run(mask="rectangle"), base) > 0.2  # the default is "face"
    assert _region_change(run(mask=lambda f: np.ones(f.shape[:3], np.float32)), base) > 0.5
    assert _region_change(run(mask="parsing", mask_parser=tiny_parser), base) > 0.2
    up = run(upscale=2)
    assert up.shape == (image.shape[0] * 2, image.shape[1] * 2, 3)
    assert (
        _region_change(cv2.resize(up, image.shape[1::-1], interpolation=cv2.INTER_AREA), base) < 8
    )
    one = FaceRestorer(tiny_model, detector=GivenFaces(faces), faces="largest").restore(image)
    assert len(one.faces) == 1 and one.faces[0].score == 0.99
    center = FaceRestorer(tiny_model, detector=GivenFaces(faces), faces="center").restore(image)
    assert len(center.faces) == 1 and center.faces[0].score == 0.95
    big = FaceRestorer(tiny_model, detector=GivenFaces(faces), min_face_size=faces[0].size - 1)
    assert [f.score for f in big.restore(image).faces] == [0.99]


def test_color_match_restores_the_photo_colour():
    image, face = _photo("vd034.png")
    region = slice(int(face.box[1]), int(face.box[3])), slice(int(face.box[0]), int(face.box[2]))
    tinted = [
        FaceRestorer(TintRestorer(256), detector=GivenFaces([face]), color_match=match)
        .restore(image)
        .image[region]
        for match in (False, True)
    ]
    mean = image[region].reshape(-1, 3).mean(axis=0)
    errors = [np.abs(t.reshape(-1, 3).mean(axis=0) - mean).max() for t in tinted]
    assert errors[0] > 20 and errors[1] < 4


@pytest.mark.parametrize("layout", ["grey", "rgba", "uint16"])
def test_layouts_survive_the_pipeline(layout):
    image, face = _photo("vd006.png")
    if layout == "grey":
        pixels = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    elif layout == "rgba":
        alpha = np.tile(np.linspace(0, 255, image.shape[1]).astype(np.uint8), (image.shape[0], 1))
        pixels = np.dstack([image, alpha])
    else:
        pixels = image.astype(np.uint16) * 257 + 100
    result = FaceRestorer(TintRestorer(256), detector=GivenFaces([face])).restore(pixels)
    out = result.image
    assert out.shape == pixels.shape and out.dtype == pixels.dtype
    region = _footprint(image.shape, result.faces[0].matrix, 256)
    assert np.array_equal(out[~region], pixels[~region])
    assert not np.array_equal(out[region], pixels[region])
    if layout == "rgba":
        assert np.array_equal(out[..., 3], pixels[..., 3])
        doubled = FaceRestorer(TintRestorer(256), detector=GivenFaces([face]), upscale=2)
        assert doubled.restore(pixels).image.shape == (image.shape[0] * 2, image.shape[1] * 2, 4)


def test_aligned_mode(tiny_gpen):
    crop = cv2.imread(str(shared_path("data/faces/aligned/CodeFormer_cropped_faces/0143.png")))
    crop = crop[..., ::-1].copy()
    identity = FaceRestorer(IdentityRestorer(256, template="ffhq"), keep_faces=True)
    result = identity.restore_aligned(crop)
    expected = cv2.resize(crop, (256, 256), interpolation=cv2.INTER_AREA)
    assert result.image.shape == (256, 256, 3)
    assert np.abs(result.image.astype(int) - expected).max() <= 1
    (face,) = result.faces
    assert np.allclose(face.box, [0, 0, 512, 512]) and face.landmarks.shape == (5, 2)
    assert 180 < face.landmarks[:2, 0].mean() < 330  # the eyes sit mid-image in the template
    restored = faceprior.restore(crop, model=tiny_gpen, aligned=True)
    assert restored.image.shape == (64, 64, 3)
    assert _region_change(restored.image, cv2.resize(crop, (64, 64), cv2.INTER_AREA)) > 5


def test_missing_weights_and_unsupported_options_are_clear(monkeypatch, tiny_gpen):
    from faceprior.hub import download

    def offline(entry, progress=True):
        raise download.DownloadError(f"could not download {entry.name}: network unreachable")

    monkeypatch.setattr(download, "fetch", offline)
    with pytest.raises(ModelUnavailableError, match="--model PATH"):
        FaceRestorer("gpen-bfr-512")  # named: never replaced by the offline model
    with pytest.raises(ValueError, match="fidelity"):
        FaceRestorer(tiny_gpen, fidelity=0.5)
    with pytest.raises(ValueError, match="upscale"):
        FaceRestorer(tiny_gpen, upscale=0.5)
