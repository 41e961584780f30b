"""`faceprior restore` end to end: real photos, real detector, a tiny random-weight GPEN."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
from conftest import shared_path

from faceprior.cli import main
from faceprior.io.images import read_image

DETECTOR_WEIGHTS = "data/weights/retinaface_mobilenet0.25_Final.pth"


@pytest.fixture()
def inputs(tmp_path):
    """A folder with a 4-face photo, a 16-bit RGBA PNG of a 1-face photo, and 3 bad files."""
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(shared_path("data/faces/whole/CodeFormer_whole_imgs/00.jpg"), folder / "group.jpg")
    single = cv2.imread(str(shared_path("data/faces/whole/facexlib/test.jpg")))
    single = cv2.resize(single, (209, 260), interpolation=cv2.INTER_AREA).astype(np.uint16) * 257
    alpha = np.full(single.shape[:2], 40000, np.uint16)
    cv2.imwrite(str(folder / "wide.png"), np.dstack([single, alpha]))
    jpeg = (folder / "group.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    (folder / "noise.png").write_bytes(np.random.default_rng(0).bytes(3000))
    (folder / "notes.txt").write_text("not an image, not picked up")
    return folder


def _restore(*args: str) -> int:
    return main(["restore", *args, "--quiet", "--device", "cpu"])


def test_folder_end_to_end(tmp_path, inputs, tiny_gpen, capsys):
    out = tmp_path / "out"
    weights = str(shared_path(DETECTOR_WEIGHTS))
    before = {p.name: p.read_bytes() for p in inputs.iterdir()}
    code = _restore(
        str(inputs), "-o", str(out), "--model", tiny_gpen, "--detector-weights", weights,
        "--upscale", "2", "--save-faces", "--batch-size", "3",
    )  # fmt: skip
    assert code == 1  # two unreadable files, reported
    assert "truncated.jpg" in capsys.readouterr().err
    report = json.loads((out / "faceprior-report.json").read_text())
    status = {entry["input"].rsplit("/", 1)[-1]: entry for entry in report["images"]}
    assert set(status) == {"group.jpg", "wide.png", "truncated.jpg", "noise.png"}
    assert status["truncated.jpg"]["status"] == "failed"
    assert "truncated" in status["truncated.jpg"]["error"]
    assert "not a readable image" in status["noise.png"]["error"]
    group = status["group.jpg"]
    assert group["status"] == "restored" and len(group["faces"]) == 4
    assert group["output_size"] == [2 * s for s in group["input_size"]]
    assert {"detect", "align", "restore", "paste", "read", "write"} <= set(group["timings"])
    for face in group["faces"]:
        x0, y0, x1, y1 = face["box"]
        points = np.array(face["landmarks"])
        assert points.shape == (5, 2) and face["score"] > 0.9
        assert (points >= [x0, y0]).all() and (points <= [x1, y1]).all()
    photo = cv2.imread(str(inputs / "group.jpg"))
    restored = cv2.imread(str(out / "group.jpg"))
    assert restored.shape == (2 * photo.shape[0], 2 * photo.shape[1], 3)
    wide = read_image(out / "wide.png").pixels
    assert wide.dtype == np.uint16 and wide.shape == (520, 418, 4)
    assert (wide[..., 3] == 40000).all()
    assert len(status["wide.png"]["faces"]) == 1
    assert len(list((out / "faces").glob("group_face*_restored.png"))) == 4
    assert report["summary"] == {
        "images": 4, "restored": 2, "skipped": 0, "failed": 2, "faces": 5, "face_errors": 0,
        "ignored": 0, "interrupted": False, "earlier_runs": 0,
    }  # fmt: skip
    assert {p.name: p.read_bytes() for p in inputs.iterdir()} == before

    code = _restore(
        str(inputs / "group.jpg"), "-o", str(out), "--model", tiny_gpen,
        "--detector-weights", weights, "--skip-existing",
    )  # fmt: skip
    assert code == 0
    (entry,) = json.loads((out / "faceprior-report.json").read_text())["images"]
    assert entry["status"] == "skipped"


def test_never_overwrites_an_input(tmp_path, inputs, tiny_gpen, capsys):
    before = (inputs / "group.jpg").read_bytes()
    code = _restore(str(inputs / "group.jpg"), "-o", str(inputs), "--model", tiny_gpen)
    assert code == 2 and "would overwrite an input" in capsys.readouterr().err
    assert (inputs / "group.jpg").read_bytes() == before
    assert _restore(str(tmp_path / "missing.jpg"), "-o", str(tmp_path), "--model", tiny_gpen) == 2


def test_aligned_mode_and_glob(tmp_path, tiny_gpen):
    crops = tmp_path / "crops"
    crops.mkdir()
    for name in ("0143.png", "0240.png"):
        source = shared_path(f"data/faces/aligned/CodeFormer_cropped_faces/{name}")
        shutil.copy(source, crops / name)
    out = tmp_path / "out"
    code = _restore(
        str(crops / "*.png"), "-o", str(out), "--model", tiny_gpen, "--aligned",
        "--detector", "no-such-detector", "--format", "jpg", "--suffix", "_r",
    )  # fmt: skip
    assert code == 0
    assert sorted(p.name for p in out.glob("*.jpg")) == ["0143_r.jpg", "0240_r.jpg"]
    assert cv2.imread(str(out / "0143_r.jpg")).shape == (64, 64, 3)


def test_missing_default_weights_say_what_to_do(tmp_path, inputs, monkeypatch, capsys):
    from faceprior.hub import download

    def offline(entry, progress=True):
        raise download.DownloadError(f"could not download {entry.name}: network unreachable")

    monkeypatch.setattr(download, "fetch", offline)
    out = tmp_path / "out"
    # Asked for by name, an unavailable model is an error, never silently replaced.
    assert _restore(str(inputs / "group.jpg"), "-o", str(out), "--model", "gpen-bfr-512") == 2
    error = capsys.readouterr().err
    assert "gpen-bfr-512" in error and "--model PATH" in error
    assert not out.exists()


def test_missing_detector_weights_stop_the_run(tmp_path, inputs, tiny_gpen, monkeypatch, capsys):
    from faceprior.hub import download

    def offline(entry, progress=True):
        raise download.DownloadError(f"could not download {entry.name}: network unreachable")

    monkeypatch.setattr(download, "fetch", offline)
    out = tmp_path / "out"
    assert _restore(str(inputs / "group.jpg"), "-o", str(out), "--model", tiny_gpen) == 2
    assert "retinaface" in capsys.readouterr().err
    assert not out.exists()
