"""GPEN's colourise / inpaint / seg2face tasks: each task's pre- and post-processing.

The network is GPEN FullGenerator 256 on the gpen-bfr-256 parity pack's weights (the released
task weights are not available here; the tasks differ in processing, not in architecture),
saved to a temporary checkpoint as the official files are (a raw state dict).
"""

from __future__ import annotations

import functools
import json

import cv2
import numpy as np
import pytest
import torch
from conftest import load_parity_pack, shared_path

from faceprior.gpen_tasks import GPENTask, colour_map, labels_from_map, task_network, to_grey
from faceprior.models.gpen import FullGenerator
from faceprior.models.psfrgan.parsing import MASK_COLORMAP

pytestmark = pytest.mark.usefixtures("one_thread")
SIZE = 256


@functools.cache
def _state_dict():
    return load_parity_pack("gpen-bfr-256").torch_state_dict()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("gpen") / "GPEN-task-256.pth"
    torch.save(_state_dict(), path)
    return path


def _network() -> FullGenerator:
    network = FullGenerator(SIZE, channel_multiplier=1, narrow=0.5)
    network.load_state_dict(_state_dict())
    return network.eval()


def _recording(task: GPENTask) -> list[torch.Tensor]:
    """The tensors the GPEN network receives during the task's runs."""
    seen: list[torch.Tensor] = []
    task.model.network.register_forward_pre_hook(lambda _m, args: seen.append(args[0].clone()))
    return seen


def _face(size: int) -> np.ndarray:
    path = shared_path("data/faces/aligned/GFPGAN_cropped_faces/Adele_crop.png")
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return np.ascontiguousarray(
        cv2.resize(bgr, (size, size), interpolation=cv2.INTER_AREA)[..., ::-1]
    )


def _luma(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32), cv2.COLOR_RGB2GRAY)


def test_colorize_feeds_a_grey_face_and_keeps_the_input_luminance(checkpoint):
    task = GPENTask("colorize", checkpoint, aligned=True)
    seen = _recording(task)
    face = _face(200)  # not the model size: resized to 256 for the network
    result = task.run(face)
    (network_input,) = seen
    assert network_input.shape == (1, 3, SIZE, SIZE)
    assert torch.equal(network_input[:, 0], network_input[:, 1])
    assert torch.equal(network_input[:, 1], network_input[:, 2])
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    colour = torch.from_numpy(cv2.resize(face, (SIZE, SIZE), interpolation=cv2.INTER_LANCZOS4))
    expected = (colour.permute(2, 0, 1)[None].float() / 255 * 2 - 1) * weights
    assert (network_input[:, :1] - expected.sum(1, keepdim=True)).abs().max() < 0.02
    image = result.image
    assert image.shape == (SIZE, SIZE, 3) and image.dtype == np.uint8
    original = cv2.resize(face, (SIZE, SIZE), interpolation=cv2.INTER_LANCZOS4)
    # Luminance from the input (except where the network's strong colours leave the gamut).
    luma_error = np.abs(_luma(image) - _luma(original))
    assert np.median(luma_error) <= 1 and luma_error.mean() < 3, luma_error.mean()
    with torch.no_grad():
        raw = task.model.network(network_input)[0][0].permute(1, 2, 0).clamp(-1, 1).numpy()
    assert np.abs(_luma((raw + 1) * 127.5) - _luma(original)).mean() > 3 * luma_error.mean()
    # ... and colour from the network: a grey input comes out with chroma.
    grey = np.repeat(cv2.cvtColor(face, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    coloured = task.run(grey).image.astype(int)
    assert np.abs(coloured[..., 0] - coloured[..., 2]).mean() > 2


def test_colorize_whole_photo_colours_faces_only(checkpoint):
    from faceprior.face.detection import load_detector

    detector = load_detector(
        "retinaface-mobilenet0.25",
        weights=shared_path("data/weights/retinaface_mobilenet0.25_Final.pth"),
    )
    path = shared_path("data/faces/whole/facexlib/test.jpg")
    bgr = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    grey = cv2.resize(bgr, (bgr.shape[1] // 2, bgr.shape[0] // 2), interpolation=cv2.INTER_AREA)
    task = GPENTask("colorize", checkpoint, detector=detector)
    result = task.run(grey)  # a one-channel photo comes back in colour
    assert result.faces and result.image.shape == (*grey.shape, 3)
    image = result.image.astype(int)
    chroma = np.abs(image[..., 0] - image[..., 2]) + np.abs(image[..., 1] - image[..., 2])
    x0, y0, x1, y1 = result.faces[0].box.astype(int)
    assert chroma[y0:y1, x0:x1].mean() > 1
    assert chroma[:, : max(1, x0 // 2)].max() == 0  # far from the faces: exactly grey
    assert np.abs(_luma(result.image) - grey).mean() < 1.5


def test_inpaint_paints_the_mask_white_and_changes_nothing_outside(checkpoint):
    task = GPENTask("inpaint", checkpoint, aligned=True)
    seen = _recording(task)
    face = _face(SIZE)
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[140:180, 60:200] = 255  # white = missing
    result = task.run(face, mask=mask)
    (network_input,) = seen
    assert torch.all(network_input[0, :, 140:180, 60:200] == 1.0)  # white in [-1, 1]
    assert torch.all(network_input[0, :, :120] < 1.0 + 1e-6)
    image = result.image.astype(int)
    assert image.shape == (SIZE, SIZE, 3)
    assert np.abs(image[:100] - face[:100]).max() <= 1  # far from the mask: the input
    assert np.abs(image[150:170, 80:180] - 255).mean() > 20  # the hole is filled, not white
    unmasked = task.run(face).image.astype(int)  # no mask: the whole face is the network's
    assert np.abs(unmasked[:100] - face[:100]).mean() > 2


def test_seg2face_works_in_zero_one_and_accepts_label_and_colour_maps(checkpoint):
    task = GPENTask("seg2face", checkpoint, aligned=True)
    seen = _recording(task)
    labels = np.zeros((SIZE, SIZE), np.uint8)
    labels[40:220, 50:206] = 1  # skin
    labels[90:110, 80:110] = 4  # left eye
    labels[90:110, 146:176] = 5  # right eye
    labels[160:180, 100:156] = 11  # upper lip
    from_labels = task.run(labels).image
    colours = np.rint(colour_map(labels.astype(np.int64)) * 255).astype(np.uint8)
    from_colours = task.run(colours).image
    assert np.array_equal(from_labels, from_colours)
    first = seen[0]
    assert torch.equal(first, seen[1])
    # is_norm=False: the map reaches the network in [0, 1] (black background = 0, not -1).
    assert first.min() == 0.0 and first.max() <= 1.0
    palette = torch.tensor(MASK_COLORMAP, dtype=torch.float32) / 255
    assert torch.allclose(first[0, :, 100, 95], palette[4])
    # ... and its output is read in [0, 1]: clamp(out) * 255, not (out + 1) / 2 * 255.
    with torch.no_grad():
        direct = _network()(first)[0][0].clamp(0, 1).permute(1, 2, 0).numpy()
    assert np.abs(from_labels / 255 - direct).max() <= 1 / 255 + 1e-6


def test_seg2face_parse_draws_from_the_parsers_colour_map(checkpoint, tmp_path):
    """--parse: the photo is parsed first and the network gets the official colours of it."""
    from faceprior.models.psfrgan import ParseNet

    parser_path = tmp_path / "parsenet.pth"
    torch.manual_seed(0)
    small = ParseNet(in_size=128, out_size=128, res_depth=1)  # official layout, small, random
    torch.save(small.state_dict(), parser_path)
    task = GPENTask("seg2face", checkpoint, aligned=True, parse=True, parser=str(parser_path))
    seen = _recording(task)
    task.run(_face(SIZE))
    (network_input,) = seen
    pixels = network_input[0].permute(1, 2, 0).reshape(-1, 3)
    palette = torch.tensor(MASK_COLORMAP, dtype=torch.float32) / 255
    # Made in the pipeline's [-1, 1] and converted by FirstOutputRestorer: float rounding only.
    matches = ((pixels[:, None, :] - palette[None]).abs() <= 1e-6).all(dim=2)
    assert matches.any(dim=1).all()  # every pixel is one class colour, in [0, 1]
    assert matches.any(dim=0).sum() >= 2  # and the parser's map is not one flat class


def test_colour_maps_survive_jpeg_noise():
    labels = np.arange(19, dtype=np.int64).repeat(12).reshape(19, 12)
    colours = colour_map(labels) + np.random.default_rng(0).normal(0, 0.02, (19, 12, 3))
    assert np.array_equal(labels_from_map(np.clip(colours, 0, 1).astype(np.float32)), labels)


def test_to_grey_is_bt601_luma():
    rgb = torch.tensor([1.0, 0.0, -1.0]).view(1, 3, 1, 1)
    assert torch.allclose(to_grey(rgb), torch.full((1, 3, 1, 1), 0.299 - 0.114))


def test_colorize_command_writes_result_compare_and_report(checkpoint, tmp_path):
    from faceprior.cli import main

    source = tmp_path / "face.png"
    cv2.imwrite(str(source), cv2.cvtColor(_face(128), cv2.COLOR_RGB2GRAY))
    out = tmp_path / "out"
    code = main(
        ["colorize", str(source), "-o", str(out), "--aligned", "--compare", "--quiet"]
        + ["--model", str(checkpoint), "--device", "cpu"]
    )
    assert code == 0
    written = cv2.imread(str(out / "face_colorize.png"), cv2.IMREAD_UNCHANGED)
    assert written.shape == (SIZE, SIZE, 3)
    compare = cv2.imread(str(out / "face_colorize_compare.png"))
    assert compare.shape[0] == SIZE and compare.shape[1] > 2 * SIZE
    report = json.loads((out / "faceprior-colorize-report.json").read_text())
    assert report["images"][0]["status"] == "done"


def test_task_options_are_checked():
    from faceprior.errors import ArgumentError

    with pytest.raises(ArgumentError, match="task"):
        GPENTask("sharpen", _network())
    with pytest.raises(ArgumentError, match="aligned"):
        GPENTask("seg2face", _network())
    with pytest.raises(ArgumentError, match="parse"):
        GPENTask("colorize", _network(), parse=True)


def _task_command(task: str, checkpoint, *arguments: str) -> int:
    from faceprior.cli import main

    return main([task, *arguments, "--quiet", "--model", str(checkpoint), "--device", "cpu"])


def test_task_commands_run_on_the_folder_runner(checkpoint, tmp_path, capsys):
    """The guarantees of `faceprior restore`: one bad file never stops the batch, hidden files
    and earlier outputs are listed not processed, an input is never overwritten, a second run
    into a busy folder is refused, and the report is the runner's (summary, journal gone)."""
    import fcntl

    from faceprior.folders import LOCK_NAME

    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "face.png"), _face(96)[..., ::-1])
    (photos / "damaged.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    cv2.imwrite(str(photos / ".hidden.png"), _face(32))
    # Into the input folder itself: outputs are named with the suffix beside the inputs.
    assert _task_command("inpaint", checkpoint, str(photos), "-o", str(photos), "--aligned") == 1
    assert "faceprior inpaint: skipped" in capsys.readouterr().err
    report = json.loads((photos / "faceprior-inpaint-report.json").read_text())
    assert report["task"] == "inpaint" and report["model"] == checkpoint.name
    summary = report["summary"]
    assert (summary["images"], summary["done"], summary["failed"]) == (2, 1, 1)
    done = next(entry for entry in report["images"] if entry["status"] == "done")
    assert done["output"] == str(photos / "face_inpaint.png")
    assert len(done["faces"]) == 1 and done["faces"][0]["box"] == [0, 0, 96, 96]
    assert [item["reason"] for item in report["ignored"]] == ["hidden file"]
    assert not (photos / "faceprior-inpaint-report.jsonl").exists()
    assert cv2.imread(str(photos / "face_inpaint.png")).shape == (SIZE, SIZE, 3)
    # A second run: the output of the first is not taken for an input.
    assert _task_command("inpaint", checkpoint, str(photos), "-o", str(photos), "--aligned") == 1
    report = json.loads((photos / "faceprior-inpaint-report.json").read_text())
    ignored = {item["input"].rsplit("/", 1)[-1] for item in report["ignored"]}
    assert ignored == {".hidden.png", "face_inpaint.png"}
    capsys.readouterr()
    original = (photos / "face.png").read_bytes()
    code = _task_command("inpaint", checkpoint, str(photos), "-o", str(photos), "--suffix", "")
    assert code == 2 and "would overwrite an input" in capsys.readouterr().err
    assert (photos / "face.png").read_bytes() == original
    busy = tmp_path / "busy"
    busy.mkdir()
    with open(busy / LOCK_NAME, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        code = _task_command("inpaint", checkpoint, str(photos / "face.png"), "-o", str(busy))
    assert code == 2 and "another faceprior run" in capsys.readouterr().err
    assert not (busy / "face_inpaint.png").exists()


def test_each_task_runs_its_network_in_the_released_models_value_range():
    """The range is the zoo entry's (seg2face [0, 1]); a network that says otherwise (an
    official .pth loaded by path says [-1, 1]) is rebuilt with it, weights unchanged."""
    network = _network()
    assert task_network("inpaint", network) is network
    seg2face = task_network("seg2face", network)
    assert seg2face.conventions.value_range == (0.0, 1.0)
    faces = torch.rand(1, 3, SIZE, SIZE)
    with torch.no_grad():
        assert torch.equal(seg2face(faces)[0], network(faces)[0])
    assert task_network("colorize", seg2face).conventions.value_range == (-1.0, 1.0)
