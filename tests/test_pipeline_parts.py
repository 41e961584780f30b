"""The pipeline's parts (faceprior.pipeline: FaceFinder, CropRestorer, FacePaster) built and
run on their own, FaceRestorer composed from them, the stage options, the face selection of
find_faces, and restore() pasting each batch as soon as it is restored.

A tiny random-weight GPEN (64 px) stands in for a restoration model; the faces are given
(ground-truth landmarks of a real photo), so no detector runs.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from conftest import GivenFaces, shared_path

import faceprior
from faceprior.errors import ArgumentError
from faceprior.face.types import FaceDetection
from faceprior.models.restorer import RestorerOptions
from faceprior.pipeline import (
    CropRestorer,
    FaceFinder,
    FacePaster,
    FaceRestorer,
    FindOptions,
    PasteOptions,
    PipelineOptions,
    RunOptions,
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def three_faces() -> tuple[np.ndarray, list[FaceDetection]]:
    """A real photo (its face at full size) with a half- and a quarter-size copy beside it."""
    name = "vd025"
    image = cv2.imread(str(shared_path(f"data/faces/landmarks5/{name}.png")))[..., ::-1]
    points = np.loadtxt(shared_path(f"data/faces/landmarks5/detections/{name}.txt"))
    height, width = image.shape[:2]
    canvas = np.zeros((height, width * 2, 3), np.uint8)
    canvas[:, :width] = image
    faces = [FaceDetection(np.r_[points.min(0) - 25, points.max(0) + 25], 0.99, points)]
    left = width
    for scale, score in ((0.5, 0.95), (0.25, 0.9)):
        small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        canvas[: small.shape[0], left : left + small.shape[1]] = small
        shifted = points * scale + [left, 0]
        box = np.r_[shifted.min(0) - 25 * scale, shifted.max(0) + 25 * scale]
        faces.append(FaceDetection(box, score, shifted))
        left += small.shape[1]
    return canvas, faces


def test_each_part_builds_and_runs_alone(three_faces, tiny_gpen):
    image, faces = three_faces
    rgb = image.astype(np.float32) / 255
    finder = FaceFinder(FindOptions(detector=GivenFaces(faces), faces=[2, 0]))
    chosen, numbers = finder.find(rgb)
    assert numbers == [2, 0] and chosen == [faces[2], faces[0]]
    big_only = FaceFinder(FindOptions(detector=GivenFaces(faces), min_face_size=faces[1].size + 1))
    assert big_only.find(image) == ([faces[0]], [0])  # uint8 photos too

    runner = CropRestorer(RunOptions(model=tiny_gpen, batch_size=2, reuse_memory=False))
    plan = runner.plan(faces, upscale=1.0)
    assert [(model, indices) for model, _, indices in plan] == [("main", [0, 1]), ("main", [2])]
    batch = runner.align(rgb, faces, *plan[0])
    assert batch.crops.shape == (2, 64, 64, 3) and batch.valid.shape == (2, 64, 64)
    restored = runner.restore(batch)
    assert restored.shape == (2, 64, 64, 3) and np.abs(restored - batch.crops).mean() > 0.05

    conventions = runner.conventions("main")
    for strength, changed in ((0.0, False), (1.0, True)):
        paster = FacePaster(PasteOptions(strength=strength))
        canvas = paster.canvas(rgb, None)
        masks = paster.masks(faces, batch, restored, conventions)
        paster.paste(canvas, batch, restored, masks, batch.valid, [strength] * 2)
        pasted = paster.result(canvas, "colour")
        assert np.array_equal(pasted, rgb) != changed

    composed = FaceRestorer.from_parts(finder, runner, FacePaster())
    keywords = FaceRestorer(
        tiny_gpen, detector=GivenFaces(faces), faces=[2, 0], batch_size=2, reuse_memory=False
    )
    assert np.array_equal(composed.restore(image).image, keywords.restore(image).image)
    assert composed.options.paste == keywords.options.paste and composed.batch_size == 2


def test_options_are_grouped_by_stage_and_checked_when_built(tiny_gpen):
    options = FaceRestorer(tiny_gpen, faces=[1, 0], strength=[1, 0.5], upscale=2).options
    assert options.find.faces == (1, 0) and options.paste.strength == (1.0, 0.5)
    assert options.paste.upscale == 2.0 and options.device == "cpu"
    assert options.strength_of(0) == 0.5
    with pytest.raises(ArgumentError) as error:
        PipelineOptions(paste=PasteOptions(strength=[1.0, 0.5]))  # needs listed faces
    assert error.value.parameter == "strength"
    for build, parameter in (
        (lambda: FindOptions(nms_threshold=0), "nms_threshold"),
        (lambda: FindOptions(faces=[0, 0]), "faces"),
        (lambda: RunOptions(small_face_size=10), "small_face_size"),
        (lambda: RunOptions(precision="fp64"), "precision"),
        (lambda: PasteOptions(mask="blob"), "mask"),
        (lambda: PasteOptions(color_match="sepia"), "color_match"),
    ):
        with pytest.raises(ArgumentError) as error:
            build()
        assert error.value.parameter == parameter


def test_method_knobs_go_through_the_methods_own_options(three_faces, tmp_path):
    """``fidelity=`` is RunOptions.method; Panini-Net's own options take it, GPEN refuses it."""
    from tiny_models import tiny_network

    image, faces = three_faces
    torch.manual_seed(0)
    path = faceprior.save_model(tiny_network("panini-sr"), tmp_path / "panini-sr.safetensors")
    common = dict(detector=GivenFaces(faces[:1]), reuse_memory=False)

    def method(fidelity: float) -> np.ndarray:
        run = RunOptions(model=str(path), method=RestorerOptions(fidelity=fidelity))
        options = PipelineOptions(FindOptions(detector=GivenFaces(faces[:1])), run)
        restorer = FaceRestorer.from_options(options)
        assert restorer.model.options.fidelity == fidelity  # the method's dataclass holds it
        return restorer.restore(image).image

    keyword = FaceRestorer(str(path), fidelity=0.1, **common).restore(image).image
    assert np.array_equal(keyword, method(0.1))
    assert np.abs(keyword.astype(int) - method(0.9)).max() > 5
    gpen = RunOptions(model="gpen-offline-128", method=RestorerOptions(fidelity=0.5))
    with pytest.raises(ArgumentError, match="fidelity is not supported by gpen"):
        FaceRestorer.from_options(PipelineOptions(run=gpen))


def test_find_faces_applies_listed_face_indices(three_faces, tiny_gpen):
    """The video path restores what find_faces returns: faces=[0, 2] must hold there too."""
    image, faces = three_faces
    restorer = FaceRestorer(tiny_gpen, detector=GivenFaces(faces), faces=[0, 2])
    found = restorer.find_faces(image)
    assert found == [faces[0], faces[2]]
    tracked = restorer.restore(image, detections=found)
    assert np.array_equal(tracked.image, restorer.restore(image).image)
    assert restorer.find_faces(image.astype(np.float32) / 255) == found
    largest = FaceRestorer(tiny_gpen, detector=GivenFaces(faces), faces="largest")
    assert largest.find_faces(image) == [faces[0]]
    per_face = FaceRestorer(tiny_gpen, detector=GivenFaces(faces), faces=[0, 2], strength=[1, 0])
    with pytest.raises(ArgumentError, match="take one value") as error:
        per_face.restore(image, detections=per_face.find_faces(image))
    assert error.value.parameter == "strength"


def test_restore_pastes_each_batch_as_soon_as_it_is_restored(three_faces, tiny_gpen, monkeypatch):
    """restore() streams (restore, paste) per batch and gives exactly the stages' result."""
    image, faces = three_faces
    restorer = FaceRestorer(
        tiny_gpen,
        detector=GivenFaces(faces),
        small_model=tiny_gpen,
        small_face_size=120,  # the quarter-size face goes through the small model
        batch_size=1,
        keep_faces=True,
        reuse_memory=False,
    )
    prepared = restorer.prepare(image)
    staged = restorer.finish(prepared, restorer.restore_crops(prepared))
    events = []
    for part, method in ((restorer.runner, "restore"), (restorer.paster, "paste")):
        original = getattr(part, method)

        def record(*args, _original=original, _name=method):
            events.append(_name)
            return _original(*args)

        monkeypatch.setattr(part, method, record)
    streamed = restorer.restore(image)
    assert events == ["restore", "paste"] * 3
    assert [face.model for face in streamed.faces].count(restorer.small_model_name) == 1
    assert np.array_equal(streamed.image, staged.image)
    ours, theirs = streamed.to_dict(), staged.to_dict()
    assert ours.pop("timings").keys() == theirs.pop("timings").keys()
    assert ours == theirs
    for ours, theirs in zip(streamed.faces, staged.faces, strict=True):
        for name in ("crop", "restored", "mask", "matrix"):
            assert np.array_equal(getattr(ours, name), getattr(theirs, name)), name
