"""``faceprior benchmark``: reproducible degradation, restoration, scores and plot."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

import faceprior
from faceprior.metrics.evaluation import load_rgb
from faceprior.metrics.plot import bar_chart
from faceprior.metrics.psnr_ssim import psnr
from faceprior.models.gpen import FullGenerator


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    rng = np.random.default_rng(0)
    (root / "hq").mkdir()
    for i in range(2):
        image = cv2.GaussianBlur(rng.uniform(0, 255, (64, 64, 3)), (7, 7), 2).astype(np.uint8)
        cv2.imwrite(str(root / "hq" / f"face{i}.png"), image)
    torch.manual_seed(0)
    network = FullGenerator(64, style_dim=32, n_mlp=2, channel_multiplier=1, narrow=1 / 16)
    model = faceprior.save_model(network, root / "tiny.safetensors")
    return root, model


def _run(argv):
    from faceprior.cli import main

    return main(["benchmark", *argv])  # through the CLI's error boundary


def test_benchmark_writes_reproducible_data_scores_and_plot(setup):
    root, model = setup
    common = ["--hq", str(root / "hq"), "--model", str(model), "--metrics", "psnr"]
    common += ["--no-progress", "--preset", "gpen"]
    assert _run([*common, "--out", str(root / "a"), "--seed", "3"]) == 0
    assert _run([*common, "--out", str(root / "b"), "--seed", "3"]) == 0
    assert _run([*common, "--out", str(root / "c"), "--seed", "4", "--limit", "1"]) == 0
    lq_a = (root / "a/data/lq/face0.png").read_bytes()
    assert lq_a == (root / "b/data/lq/face0.png").read_bytes()
    assert lq_a != (root / "c/data/lq/face0.png").read_bytes()
    assert sorted(p.name for p in (root / "c/data/lq").iterdir()) == ["face0.png"]
    manifest = json.loads((root / "a/data/manifest.json").read_text())
    assert manifest["seed"] == 3 and manifest["faces"]["face1"]["index"] == 1
    result = json.loads((root / "a/benchmark.json").read_text())
    assert set(result["mean"]) == {"input", "tiny"}
    lq = [load_rgb(root / f"a/data/lq/face{i}.png", 64) for i in range(2)]
    gt = [load_rgb(root / f"a/data/gt/face{i}.png", 64) for i in range(2)]
    want = np.mean([psnr(a, b) for a, b in zip(lq, gt, strict=True)])
    assert result["mean"]["input"]["psnr"] == pytest.approx(want)
    assert result["mean"]["tiny"]["psnr"] != pytest.approx(want)
    assert (root / "a/restored/tiny/face0.png").is_file()
    assert cv2.imread(str(root / "a/benchmark.png")) is not None
    assert "| tiny |" in (root / "a/benchmark.md").read_text()


def test_benchmark_rejects_duplicate_models_and_output_inside_hq(setup, capsys):
    root, model = setup
    common = ["--hq", str(root / "hq"), "--metrics", "psnr", "--no-progress"]
    assert _run([*common, "--model", str(model), "--model", str(model), "--out", "x"]) == 2
    assert "distinct" in capsys.readouterr().err
    assert _run([*common, "--model", str(model), "--out", str(root / "hq" / "out")]) == 2
    assert not (root / "hq" / "out").exists()
    missing = root / "missing.safetensors"
    assert _run([*common, "--model", str(missing), "--out", str(root / "d"), "--limit", "1"]) == 2
    assert "missing.safetensors" in capsys.readouterr().err


def test_bar_chart_shape_and_missing_values():
    chart = bar_chart({"a": {"x": 1.0, "y": float("nan")}, "b": {"x": 2.0, "y": 3.0}}, ["x", "y"])
    assert chart.dtype == np.uint8 and chart.shape[1] == 2 * 260
    assert (chart < 250).any()
