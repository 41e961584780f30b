"""Learning-rate schedules and Adam's beta1: each changes the run, a cosine run resumes exactly."""

from __future__ import annotations

import json

import pytest
import torch
from test_train_resume import all_state, faces, gpen_raw  # noqa: F401 (faces: a fixture)

from faceprior.train.config import build_config
from faceprior.train.distributed import Distributed
from faceprior.train.schedule import apply_lr_factor, lr_factor
from faceprior.train.task import TaskContext, task_class
from faceprior.train.trainer import train


def test_cosine_falls_from_one_to_the_final_fraction():
    factors = [lr_factor("cosine", step, 11, 0.1) for step in range(11)]
    assert factors[0] == pytest.approx(1.0) and factors[-1] == pytest.approx(0.1)
    assert factors[5] == pytest.approx(0.55)  # half way: the mean of the two ends
    assert all(a > b for a, b in zip(factors, factors[1:]))
    assert {lr_factor("constant", step, 11, 0.1) for step in range(11)} == {1.0}
    with pytest.raises(ValueError, match="unknown lr schedule"):
        lr_factor("linear", 0, 11, 0.0)


def test_factor_scales_the_rate_each_group_was_built_with():
    weights = torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.Adam([{"params": [weights], "lr": 0.5}])
    apply_lr_factor([optimizer], 0.2)
    apply_lr_factor([optimizer], 0.5)  # a factor of the initial rate, not of the current one
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.25)


def test_cosine_run_differs_logs_its_factor_and_resumes_exactly(tmp_path, faces):  # noqa: F811
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


def test_beta1_changes_the_run(tmp_path, faces):  # noqa: F811
    without, with_momentum = (_generator_after(tmp_path, faces, b) for b in (0.0, 0.9))
    assert any(not torch.equal(without[k], with_momentum[k]) for k in without)


def test_beta1_outside_its_range_is_refused(faces):  # noqa: F811
    raw = gpen_raw(faces / "unused", faces)
    raw["options"]["gan"]["beta1"] = 1.0
    config = build_config(raw)
    task = task_class(config.task)(config.options, TaskContext(torch.device("cpu"), Distributed()))
    with pytest.raises(ValueError, match=r"options.gan.beta1 must be in \[0, 1\)"):
        task.build()
