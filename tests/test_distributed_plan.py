"""Ray runs without Ray running: actor sizing, argument checks, the manifest's lines."""

from __future__ import annotations

import json

import pytest

from faceprior.distributed import restore_dataset, write_manifest
from faceprior.distributed.dataset import _StagePlan, driver_options
from faceprior.errors import ArgumentError


class _Cluster:
    """What :meth:`_StagePlan.choose` asks of Ray: the cluster's resources."""

    def __init__(self, **resources: float) -> None:
        self.resources = resources

    def cluster_resources(self) -> dict:
        return self.resources


def _plan(cluster, device="auto", detect=None, restore=None, cpus=1.0) -> tuple:
    plan = _StagePlan.choose(cluster, {"device": device}, detect, restore, cpus)
    return (plan.detect_actors, plan.restore_actors, plan.restore_gpus, plan.device)


def test_actors_are_sized_to_the_cluster():
    assert _plan(_Cluster(CPU=2)) == (1, 1, 0, "cpu")
    assert _plan(_Cluster(CPU=16)) == (1, 15, 0, "cpu")
    assert _plan(_Cluster(CPU=16), cpus=4) == (1, 3, 0, "cpu")
    assert _plan(_Cluster(CPU=32, GPU=4)) == (4, 4, 1, "cuda")
    assert _plan(_Cluster(CPU=32, GPU=4), cpus=7) == (4, 4, 1, "cuda")
    assert _plan(_Cluster(CPU=6, GPU=4), cpus=2) == (1, 4, 1, "cuda")
    assert _plan(_Cluster(CPU=32, GPU=4), device="cpu") == (1, 31, 0, "cpu")
    assert _plan(_Cluster(CPU=32, GPU=4), detect=2, restore=3) == (2, 3, 1, "cuda")
    with pytest.raises(ArgumentError, match="no GPU"):
        _plan(_Cluster(CPU=8), device="cuda")


def test_finish_actors_default_to_the_prepare_actors_and_share_the_cpus():
    plan = _StagePlan.choose(_Cluster(CPU=16), {"device": "auto"}, 2, None, 1.0)
    assert (plan.detect_actors, plan.finish_actors, plan.restore_actors) == (2, 2, 14)
    plan = _StagePlan.choose(_Cluster(CPU=16), {"device": "auto"}, 2, None, 1.0, 6)
    assert (plan.detect_actors, plan.finish_actors, plan.restore_actors) == (2, 6, 12)
    plan = _StagePlan.choose(_Cluster(CPU=32, GPU=4), {"device": "auto"}, None, None, 1.0, 8)
    assert (plan.detect_actors, plan.finish_actors, plan.restore_actors) == (4, 8, 4)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("detect_batch_size", 0),
        ("max_attempts", 0),
        ("restore_actors", 1.5),
        ("detect_actors", -1),
        ("finish_actors", 0),
        ("cpus_per_restore_actor", 0),
        ("quality", 101),
        ("max_pixels", True),
    ],
)
def test_bad_arguments_are_refused_before_any_work(tmp_path, option, value):
    pytest.importorskip("ray", reason="Ray runs need the faceprior[ray] extra")
    (tmp_path / "in").mkdir()
    with pytest.raises(ArgumentError, match=option):
        restore_dataset(tmp_path / "in", tmp_path / "out", {}, **{option: value})
    assert not (tmp_path / "out").exists()


def test_the_driver_checks_options_on_its_cpu():
    options = {"model": "m", "device": "cuda", "precision": "fp16", "compile": True}
    assert driver_options(options) == {
        "model": "m", "device": "cpu", "precision": "fp32", "compile": False,
    }  # fmt: skip
    assert driver_options({"precision": "bf16"})["precision"] == "bf16"


def test_manifest_lists_every_input_once(tmp_path):
    entries = [
        {"input": "a.jpg", "output": "out/a.jpg", "status": "restored", "faces": [{}, {}]},
        {"input": "b.jpg", "output": None, "status": "failed", "error": "b.jpg: damaged"},
        {
            "input": "c.jpg", "output": "out/c.jpg", "status": "skipped",
            "reason": "output exists", "previous": {"faces": [{}]},
        },
    ]  # fmt: skip
    ignored = [{"input": ".hidden.jpg", "reason": "hidden file"}]
    path = tmp_path / "manifest.jsonl"
    write_manifest(path, entries, ignored)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == [
        {"input": "a.jpg", "output": "out/a.jpg", "status": "restored", "faces": 2},
        {"input": "b.jpg", "output": None, "status": "failed", "faces": 0,
         "error": "b.jpg: damaged"},
        {"input": "c.jpg", "output": "out/c.jpg", "status": "skipped", "faces": 1,
         "reason": "output exists"},
        {"input": ".hidden.jpg", "reason": "hidden file", "output": None, "status": "ignored",
         "faces": 0},
    ]  # fmt: skip
