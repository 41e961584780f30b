"""MMRB-GAN training: the two-stage self-supervised strategy through the shared trainer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import faceprior
from faceprior.models.mmrb import MMRBGAN, PRESETS
from faceprior.train.config import build_config, load_config, packaged_config
from faceprior.train.data import EpochOrder
from faceprior.train.task import TaskContext
from faceprior.train.tasks.mmrb import MMRBModel, MMRBStage2Task, build_network
from faceprior.train.trainer import train

SIZE = 32
TINY_MODEL = dict(size=SIZE, style_dim=32, n_mlp=2, channel_multiplier=1, narrow=0.03125)


def _faces(count: int = 8) -> list[dict]:
    """``count`` HQ faces from the shared folder at SIZE px; the LQ is a 2x down-up copy."""
    import cv2
    from conftest import shared_path

    files = sorted(shared_path("data/hq").glob("*.jpg"))[:count]
    items = []
    for index, file in enumerate(files):
        image = cv2.resize(cv2.imread(str(file)), (SIZE, SIZE), interpolation=cv2.INTER_AREA)
        hq = torch.from_numpy(image[:, :, ::-1].copy()).permute(2, 0, 1).float() / 127.5 - 1
        lq = torch.nn.functional.interpolate(hq[None], scale_factor=0.5, mode="area")
        lq = torch.nn.functional.interpolate(lq, size=SIZE, mode="bilinear")[0]
        items.append({"lq": lq, "hq": hq, "index": index})
    return items


def _config(task: str, output: Path, steps: int, init: list | None = None, **options) -> object:
    return build_config(
        {
            "task": task,
            "seed": 0,
            "output": str(output),
            "init": init or [],
            "options": {
                "model": dict(TINY_MODEL, encoder_blocks=[1, 1, 1, 1]),
                "gan": {"d_reg_every": 16, "g_reg_every": 0},
                **options,
            },
            "data": {"num_workers": 0},
            "train": {
                "steps": steps,
                "batch_size": 8,
                "device": "cpu",
                "log_every": 10,
                "checkpoint_every": 10_000,
                "sample_every": 0,
                "progress": False,
                "resume": "never",
                "threads": 1,
            },
        }
    )


def _pixel_losses(output: Path) -> list[float]:
    lines = (output / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["g_pixel"] for line in lines]


def test_stage1_self_reconstruction_lowers_the_loss(tmp_path):
    faces = _faces()
    result = train(
        _config("mmrb_stage1", tmp_path, steps=60), EpochOrder(lambda e: faces, len(faces), 0)
    )
    losses = _pixel_losses(tmp_path)
    assert result.step == 60 and len(losses) == 6
    first, last = losses[0], sum(losses[-2:]) / 2
    print(f"stage-1 L1 at step 10: {first:.4f}, mean of steps 50-60: {last:.4f}")
    assert last < 0.6 * first
    network = faceprior.load_model(tmp_path / "export" / "generator.safetensors")
    assert isinstance(network, MMRBGAN) and network.arguments["size"] == SIZE


def test_stage2_starts_from_stage1_and_trains(tmp_path):
    faces = _faces()
    dataset = EpochOrder(lambda e: faces, len(faces), 0)
    first = train(_config("mmrb_stage1", tmp_path / "s1", steps=2), dataset)
    init = [{"checkpoint": str(first.checkpoint), "source": "ema.generator", "target": "generator"}]
    config = _config("mmrb_stage2", tmp_path / "s2", steps=1, init=init)
    config.train.steps, config.train.log_every = 1, 1
    second = train(config, dataset)
    assert second.step == 1 and len(_pixel_losses(tmp_path / "s2")) == 1


def test_self_reconstruction_mixing_is_seeded_per_step():
    options = MMRBStage2Task.Options(self_reconstruction_ratio=0.5)
    task = MMRBStage2Task(options, TaskContext(torch.device("cpu"), None, seed=3))
    lq, hq = torch.zeros(64, 3, 4, 4), torch.ones(64, 3, 4, 4)
    batch = {"lq": lq, "hq": hq}
    chosen = task.mix_inputs(batch, step=5, micro=0)["lq"][:, 0, 0, 0]
    assert 10 < chosen.sum() < 54  # about half the samples are HQ -> HQ
    assert torch.equal(task.mix_inputs(batch, step=5, micro=0)["lq"][:, 0, 0, 0], chosen)
    assert not torch.equal(task.mix_inputs(batch, step=6, micro=0)["lq"][:, 0, 0, 0], chosen)
    task.options.self_reconstruction_ratio = 0.0
    assert task.mix_inputs(batch, 5, 0)["lq"] is lq
    task.options.self_reconstruction_ratio = 1.0
    assert task.mix_inputs({"hq": hq}, 5, 0)["lq"] is hq  # stage 1 needs no LQ at all
    with pytest.raises(ValueError, match="lq_size"):
        task.options.self_reconstruction_ratio = 0.5
        task.mix_inputs({"lq": torch.zeros(2, 3, 2, 2), "hq": torch.zeros(2, 3, 4, 4)}, 0, 0)


def test_tiny_configs_describe_the_tiny_preset():
    reference = MMRBGAN(**PRESETS["mmrb-gan-tiny"]).arguments
    for stage, ratio in (("stage1", 1.0), ("stage2", 0.1)):
        config = load_config(packaged_config(f"mmrb/mmrb_tiny_{stage}.yaml"))
        assert config.task == f"mmrb_{stage}"
        assert config.options.self_reconstruction_ratio == ratio
        assert build_network(config.options.model).arguments == reference


def test_build_network_rejects_mismatched_options():
    with pytest.raises(ValueError, match="architecture"):
        build_network(MMRBModel(architecture="gpen"))
    with pytest.raises(ValueError, match="encoder_blocks"):
        build_network(MMRBModel(architecture="gpen-mmrb", size=16, encoder_blocks=[1, 1, 1]))
    with pytest.raises(ValueError, match="template"):
        build_network(MMRBModel(architecture="mmrb-gan", size=16, template="celeba"))


def test_gpen_mmrb_records_the_alignment_of_its_training_faces():
    """``template`` reaches the network's conventions, so exported weights align faces right."""
    small = dict(architecture="gpen-mmrb", size=16, style_dim=16, n_mlp=1, narrow=1 / 32)
    assert build_network(MMRBModel(**small)).conventions.template == "gpen"
    network = build_network(MMRBModel(**small, template="celeba"))
    assert network.conventions.template == "celeba" and network.arguments["template"] == "celeba"


@pytest.mark.parametrize("architecture", ["mmrb-gan", "gpen-mmrb"])
def test_prior_weights_initialise_the_shared_part(tmp_path, architecture):
    from faceprior.models.gpen import FullGenerator
    from faceprior.train.tasks.mmrb import MMRBStage1Task

    arguments = dict(TINY_MODEL, size=16)
    gpen = FullGenerator(**arguments).state_dict()
    torch.save(gpen, tmp_path / "gpen.pth")
    model = MMRBModel(architecture=architecture, **arguments)
    options = MMRBStage1Task.Options(model=model, prior_weights=str(tmp_path / "gpen.pth"))
    task = MMRBStage1Task(options, TaskContext(torch.device("cpu"), None))
    task.build()
    own = task.networks["generator"].state_dict()
    shared = [k for k in gpen if k.startswith("generator.")]
    if architecture == "gpen-mmrb":
        shared = list(gpen)  # the encoder convs and final_linear too
    assert all(torch.equal(own[k], gpen[k]) for k in shared)
