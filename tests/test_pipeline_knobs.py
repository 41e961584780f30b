"""Knobs of FaceRestorer and `faceprior restore` that each get a test of their own effect:
compile, the detector's thresholds, PSFR-GAN's parsing_model, keep_detail alone, --quality.

Tiny random-weight networks stand in for the released ones; the detector is the bundled
RetinaFace (thresholds), elsewhere the faces are given.
"""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest
import torch
from conftest import GivenFaces, shared_path

import faceprior
from faceprior.face.types import FaceDetection
from faceprior.pipeline import FaceRestorer

pytestmark = pytest.mark.usefixtures("one_thread")
GROUP = "data/faces/whole/CodeFormer_whole_imgs/00.jpg"  # 491 x 310, four faces


@pytest.fixture(scope="module")
def portrait() -> tuple[np.ndarray, FaceDetection]:
    """A real photo whose face spans about 6x the tiny model's 64 px once pasted."""
    image = cv2.imread(str(shared_path("data/faces/landmarks5/vd025.png")))[..., ::-1].copy()
    points = np.loadtxt(shared_path("data/faces/landmarks5/detections/vd025.txt"))
    return image, FaceDetection(np.r_[points.min(0) - 25, points.max(0) + 25], 0.99, points)


def _changed(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(float) - b.astype(float)).mean())


def _most_changed(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(int) - b).max())


@pytest.mark.skipif(shutil.which("g++") is None, reason="torch.compile on CPU needs a C++ compiler")
def test_compile_runs_the_restore_through_torch_compile(portrait, tiny_gpen, monkeypatch):
    """compile=True hands the model to torch.compile and every batch runs through it.

    Dynamo's ``eager`` backend stands in for inductor (the same graph capture, no code
    generation: seconds instead of one to two minutes); inductor's numerics are checked by
    tests/test_runtime.py.
    """
    from torch._dynamo.utils import counters

    import faceprior.runtime

    handed = []

    def compile_eagerly(model):
        handed.append(model)
        return torch.compile(model, backend="eager")

    monkeypatch.setattr(faceprior.runtime, "_compile", compile_eagerly)
    image, face = portrait
    common = dict(detector=GivenFaces([face]), batch_size=2, reuse_memory=False)
    eager = FaceRestorer(tiny_gpen, **common)
    compiled = FaceRestorer(tiny_gpen, compile=True, **common)
    assert handed == [compiled.model] and compiled.runner.model_runner("main").compiled
    assert not eager.runner.model_runner("main").compiled
    torch._dynamo.reset()
    counters.clear()
    result = compiled.restore(image).image
    assert counters["stats"]["unique_graphs"] == 1  # the batch went through the compiled graph
    expected = eager.restore(image).image
    assert np.abs(result.astype(int) - expected).max() <= 1
    x0, y0, x1, y1 = face.box.astype(int)
    assert _changed(expected[y0:y1, x0:x1], image[y0:y1, x0:x1]) > 1


def test_detector_thresholds_go_through_the_pipeline(tiny_gpen):
    photo = cv2.imread(str(shared_path(GROUP)))[..., ::-1].copy()

    def run(**thresholds):
        # No colour matching: the tiny model's changes then show plainly.
        restorer = FaceRestorer(tiny_gpen, color_match="none", reuse_memory=False, **thresholds)
        result = restorer.restore(photo)
        return len(result.faces), result.image

    count, default = run()
    assert count == 4
    strict, only_best = run(score_threshold=0.999)
    assert strict == 1 and _most_changed(only_best, default) > 20
    # Low scores let duplicates through; the overlap allowed decides how many survive.
    loose, suppressed = run(score_threshold=0.5, nms_threshold=0.4)
    looser, duplicated = run(score_threshold=0.5, nms_threshold=0.9)
    assert loose == 4 and looser > 5
    assert np.array_equal(suppressed, default) and _most_changed(duplicated, default) > 20


def test_parsing_model_changes_the_output(portrait, tmp_path):
    from tiny_models import tiny_network

    from faceprior.models.psfrgan import ParseNet

    image, face = portrait
    torch.manual_seed(0)
    generator = faceprior.save_model(tiny_network("psfrgan"), tmp_path / "psfr.safetensors")
    outputs = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        parser = ParseNet(64, 64, 32, base_ch=8, parsing_ch=19, res_depth=1, ch_range=(8, 32))
        path = faceprior.save_model(parser, tmp_path / f"parser-{seed}.safetensors")
        restorer = FaceRestorer(
            str(generator), parsing_model=str(path), detector=GivenFaces([face]), reuse_memory=False
        )
        outputs.append(restorer.restore(image).image)
    assert _changed(outputs[0], outputs[1]) > 0.05
    x0, y0, x1, y1 = face.box.astype(int)
    assert _changed(outputs[0][y0:y1, x0:x1], outputs[1][y0:y1, x0:x1]) > 1


def test_keep_detail_alone_changes_a_large_face(portrait, tiny_gpen):
    image, face = portrait
    results = [
        FaceRestorer(
            tiny_gpen, detector=GivenFaces([face]), keep_detail=keep, reuse_memory=False
        ).restore(image)
        for keep in (True, False)
    ]
    kept, off = (result.faces[0].detail for result in results)
    assert "detail kept" in kept and "keep_detail off" in off
    x0, y0, x1, y1 = face.box.astype(int)
    region = slice(y0, y1), slice(x0, x1)
    assert _changed(results[0].image[region], results[1].image[region]) > 1
    assert np.array_equal(results[0].image[:20], results[1].image[:20])  # far from the face


def test_restore_quality_flag_sets_the_jpeg_quality(tmp_path, tiny_gpen):
    from faceprior.cli import main

    crop = cv2.imread(str(shared_path("data/faces/aligned/CodeFormer_cropped_faces/0143.png")))
    source = tmp_path / "face.png"
    cv2.imwrite(str(source), cv2.resize(crop, (96, 96), interpolation=cv2.INTER_AREA))
    written = {}
    for quality in (20, 95):
        out = tmp_path / f"q{quality}"
        arguments = ["restore", str(source), "-o", str(out), "--aligned", "--quiet"]
        arguments += ["--model", tiny_gpen, "--format", "jpg", "--quality", str(quality)]
        assert main(arguments) == 0
        (path,) = out.glob("*.jpg")
        written[quality] = (path.stat().st_size, cv2.imread(str(path)).astype(int))
    (small, low), (large, high) = written[20], written[95]
    assert small < 0.7 * large
    assert np.abs(low - high).mean() > 1
