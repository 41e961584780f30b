"""Checkpoints: an interrupted and resumed run ends with exactly the weights of an uninterrupted
one; SIGTERM writes a checkpoint; a BFR stage starts its decoder from a prior's checkpoint; a
cosine learning-rate schedule and Adam's beta1 change the run, and a cosine run resumes exactly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from faceprior.train.checkpointing import list_checkpoints, load_checkpoint
from faceprior.train.config import build_config
from faceprior.train.schedule import lr_factor
from faceprior.train.task import TaskContext, task_class
from faceprior.train.trainer import initialise_from_config, train

PROJECT = Path(__file__).resolve().parents[1]
TINY_MODEL = {"size": 32, "style_dim": 32, "n_mlp": 2, "channel_multiplier": 1, "narrow": 0.0625}


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    """Twelve small smooth random "faces" (enough for the data pipeline, not for learning)."""
    folder = tmp_path_factory.mktemp("faces")
    rng = np.random.default_rng(0)
    for i in range(12):
        image = cv2.resize(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8), (40, 40))
        cv2.imwrite(str(folder / f"{i:02d}.png"), image)
    return folder


def gpen_raw(output: Path, faces: Path, task: str = "gpen_bfr", **train) -> dict:
    options = {"model": TINY_MODEL, "gan": {"d_reg_every": 2, "g_reg_every": 2}}
    if task == "gpen_bfr":
        options["identity_weight"] = 0.0
    return {
        "task": task,
        "output": str(output),
        "seed": 1,
        "options": options,
        "data": {
            "kind": "synthetic" if task == "gpen_bfr" else "faces",
            "root": str(faces),
            "size": 32,
            "num_workers": 0,
        },
        "train": {
            "steps": 4,
            "batch_size": 2,
            "log_every": 1,
            "sample_every": 2,
            "sample_count": 2,
            "checkpoint_every": 100,
            "progress": False,
            "threads": 1,
            **train,
        },
    }


def all_state(task) -> dict[str, torch.Tensor]:
    state = {}
    for name, net in task.networks.items():
        state |= {f"net.{name}.{k}": v for k, v in net.state_dict().items()}
    for name, ema in task.emas.items():
        state |= {f"ema.{name}.{k}": v for k, v in ema.state_dict().items()}
    for name, optim in task.optimizers.items():
        for index, values in optim.state_dict()["state"].items():
            state |= {f"opt.{name}.{index}.{k}": v for k, v in values.items()}
    return state


def test_interrupted_and_resumed_run_matches_uninterrupted(tmp_path, faces):
    whole = train(build_config(gpen_raw(tmp_path / "whole", faces)))
    assert whole.step == 4 and not whole.interrupted

    first = train(build_config(gpen_raw(tmp_path / "split", faces, stop_after=2)))
    assert first.interrupted and first.step == 2 and first.signal is None
    assert first.checkpoint.name == "step-00000002"
    second = train(build_config(gpen_raw(tmp_path / "split", faces)))
    assert second.step == 4 and not second.interrupted

    expected, resumed = all_state(whole.task), all_state(second.task)
    assert set(expected) == set(resumed)
    for key in expected:
        assert torch.equal(resumed[key], expected[key]), key
    mean = whole.task.mean_path_length
    assert float(mean) > 0 and torch.equal(second.task.mean_path_length, mean)

    logs = [json.loads(line) for line in (tmp_path / "split" / "metrics.jsonl").open()]
    assert [row["step"] for row in logs] == [1, 2, 3, 4]
    assert (tmp_path / "split" / "samples" / "step-00000004.png").is_file()
    assert (tmp_path / "split" / "export" / "generator.safetensors").is_file()


def test_bfr_decoder_starts_from_a_trained_prior(tmp_path, faces):
    prior = train(build_config(gpen_raw(tmp_path / "prior", faces, task="gpen_prior", steps=1)))
    raw = gpen_raw(tmp_path / "bfr", faces)
    raw["init"] = [
        {
            "checkpoint": str(prior.checkpoint),
            "source": "ema.generator",
            "target": "generator.generator",
        }
    ]
    config = build_config(raw)
    task = task_class(config.task)(config.options, TaskContext(torch.device("cpu"), _single()))
    task.build()
    decoder = prior.task.emas["generator"].average.state_dict()
    before = task.networks["generator"].ecd0.state_dict()
    initialise_from_config(task, config)
    for module in (task.networks["generator"], task.emas["generator"].average):
        loaded = module.generator.state_dict()
        assert all(torch.equal(loaded[k], decoder[k]) for k in decoder)
    after = task.networks["generator"].ecd0.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # encoder untouched

    raw["init"][0]["source"] = "ema.nothing"
    with pytest.raises(ValueError, match="no 'ema.nothing'"):
        initialise_from_config(task, build_config(raw))


def test_a_run_starts_from_exported_weights(tmp_path, faces):
    """``source: weights``: an exported file (or zoo name) initialises the whole network."""
    import faceprior

    raw = gpen_raw(tmp_path / "bfr", faces)
    config = build_config(raw)
    context = TaskContext(torch.device("cpu"), _single())
    exported = task_class(config.task)(config.options, context)
    torch.manual_seed(7)
    exported.build()
    path = faceprior.save_model(exported.networks["generator"], tmp_path / "g.safetensors")
    raw["init"] = [{"checkpoint": str(path), "source": "weights", "target": "generator"}]
    config = build_config(raw)
    task = task_class(config.task)(config.options, context)
    torch.manual_seed(8)
    task.build()
    expected = exported.networks["generator"].state_dict()
    assert not all(
        torch.equal(task.networks["generator"].state_dict()[k], v) for k, v in expected.items()
    )
    initialise_from_config(task, config)
    for module in (task.networks["generator"], task.emas["generator"].average):
        loaded = module.state_dict()
        assert all(torch.equal(loaded[k], expected[k]) for k in expected)


def _single():
    from faceprior.train.distributed import Distributed

    return Distributed()


def test_sigterm_writes_a_checkpoint_then_exits(tmp_path, faces):
    import yaml

    config = tmp_path / "run.yaml"
    raw = gpen_raw(tmp_path / "run", faces, steps=100000, checkpoint_every=100000)
    raw["data"]["num_workers"] = 1
    config.write_text(yaml.safe_dump(raw))
    env = dict(os.environ, PYTHONPATH=str(PROJECT), OMP_NUM_THREADS="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "faceprior", "train", str(config)],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    metrics = tmp_path / "run" / "metrics.jsonl"
    deadline = time.monotonic() + 600
    while not (metrics.is_file() and metrics.read_text().count("\n") >= 1):
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "training never logged a step"
        time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    (checkpoint,) = list_checkpoints(tmp_path / "run" / "checkpoints")
    state = load_checkpoint(checkpoint)
    assert state["step"] >= 1 and checkpoint.name == f"step-{state['step']:08d}"
    assert (checkpoint / "rng-0.pt").is_file()
    assert not list((tmp_path / "run" / "checkpoints").glob(".tmp-*"))
    assert "saving a checkpoint" in stderr


# Learning-rate schedule and Adam's beta1 (faceprior.train.schedule, options.gan.beta1) ---------
def test_cosine_run_differs_logs_its_factor_and_resumes_exactly(tmp_path, faces):
    constant = train(build_config(gpen_raw(tmp_path / "constant", faces)))
    whole = train(build_config(gpen_raw(tmp_path / "whole", faces, lr_schedule="cosine")))
    changed = [
        key
        for key, value in all_state(whole.task).items()
        if key.startswith("net.generator") and not torch.equal(value, all_state(constant.task)[key])
    ]
    assert changed, "the cosine schedule left the generator as a constant rate does"
    logs = [json.loads(line) for line in (tmp_path / "whole" / "metrics.jsonl").open()]
    assert [round(row["lr_factor"], 6) for row in logs] == [
        round(lr_factor("cosine", step, 4, 0.0), 6) for step in range(4)
    ]

    split = gpen_raw(tmp_path / "split", faces, lr_schedule="cosine", stop_after=2)
    assert train(build_config(split)).interrupted
    split["train"].pop("stop_after")
    resumed = train(build_config(split))
    expected, got = all_state(whole.task), all_state(resumed.task)
    for key in expected:
        assert torch.equal(got[key], expected[key]), key


def _generator_after(tmp_path, face_folder, beta1: float) -> dict[str, torch.Tensor]:
    raw = gpen_raw(tmp_path / f"beta{beta1}", face_folder)
    raw["options"]["gan"]["beta1"] = beta1
    result = train(build_config(raw))
    return {k: v for k, v in all_state(result.task).items() if k.startswith("net.generator")}


def test_beta1_changes_the_run(tmp_path, faces):
    without, with_momentum = (_generator_after(tmp_path, faces, b) for b in (0.0, 0.9))
    assert any(not torch.equal(without[k], with_momentum[k]) for k in without)


def test_beta1_outside_its_range_is_refused(faces):
    raw = gpen_raw(faces / "unused", faces)
    raw["options"]["gan"]["beta1"] = 1.0
    config = build_config(raw)
    task = task_class(config.task)(config.options, TaskContext(torch.device("cpu"), _single()))
    with pytest.raises(ValueError, match=r"options.gan.beta1 must be in \[0, 1\)"):
        task.build()
