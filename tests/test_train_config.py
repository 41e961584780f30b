"""Config loading: YAML + dotted overrides, type checks, clear errors, packaged configs."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceprior.train.config import (
    ConfigError,
    build_config,
    load_config,
    packaged_config,
    parse_override,
)
from faceprior.train.task import TASKS

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "faceprior" / "configs").rglob("*.yaml"))


def test_overrides_are_typed_and_nested():
    config = load_config(
        packaged_config("gpen/gpen_tiny_64.yaml"),
        [
            "train.steps=12",
            "options.gan.lr=1e-3",  # YAML 1.1 reads this as a string; coerced to float
            "options.model.narrow=0.25",
            "data.crop=[1, 2, 30, 40]",
            "train.stop_after=null",
            "init=[{checkpoint: prior/step-1, target: generator.generator}]",
        ],
    )
    assert config.train.steps == 12 and isinstance(config.train.steps, int)
    assert config.options.gan.lr == 0.001 and isinstance(config.options.gan.lr, float)
    assert config.options.model.narrow == 0.25 and config.options.model.size == 64
    assert config.options.gan.d_reg_every == 16  # untouched values keep the file's
    assert config.data.crop == [1, 2, 30, 40]
    assert config.init[0].checkpoint == "prior/step-1" and config.init[0].source == "ema.generator"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.stpes=3", r"unknown config key\(s\) train.stpes"),
        ("options.gan.lrr=3", r"options.gan.lrr"),
        ("train.steps=many", r"train.steps: expected int, got 'many'"),
        ("train.steps=2.5", r"train.steps: expected int"),
        ("options.model.size=true", r"options.model.size: expected int"),
        ("data.crop=[1, x]", r"data.crop"),
        ("train.precision=fp8", r"train.precision must be one of"),
        ("train.batch_size=0", r"train.batch_size must be positive"),
        ("train.lr_schedule=step", r"train.lr_schedule must be one of"),
        ("train.lr_final=1.5", r"train.lr_final must be in \[0, 1\]"),
        ("train=3", r"train: expected a mapping"),
        ("task=nope", r"unknown task 'nope'"),
    ],
)
def test_bad_values_are_clear_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(packaged_config("gpen/gpen_tiny_64.yaml"), [override])


def test_malformed_override_and_missing_task():
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("train.steps")
    with pytest.raises(ConfigError, match="'task' is required"):
        build_config({"train": {"steps": 1}})
    with pytest.raises(ConfigError, match="config not found"):
        load_config("/nonexistent/run.yaml")
    with pytest.raises(ConfigError, match="no packaged config"):
        packaged_config("gpen/nope.yaml")


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_packaged_configs_validate(path):
    import yaml

    task = yaml.safe_load(path.read_text())["task"]
    assert task in TASKS, f"{path.name} names the unregistered task {task!r}"
    config = load_config(path)
    assert config.task == task and config.train.steps > 0


def test_cli_prints_the_resolved_config(capsys):
    from faceprior.cli import main

    code = main(["train", "gpen/gpen_tiny_64.yaml", "train.steps=7", "--print-config"])
    assert code == 0
    out = capsys.readouterr().out
    assert "steps: 7" in out and "task: gpen_bfr" in out
    assert main(["train", "gpen/gpen_tiny_64.yaml", "train.nope=1"]) == 2
    assert "unknown config key(s) train.nope" in capsys.readouterr().err
    assert main(["train", "--list-configs"]) == 0
    assert "gpen/gpen_tiny_64.yaml" in capsys.readouterr().out
