"""Panini-Net training (``panini_mfr``/``panini_sr``) through the shared trainer, CPU-sized."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

import faceprior
from faceprior.hub.checkpoint import CheckpointError
from faceprior.models.panini.checkpoint import detect_mfr
from faceprior.models.panini.degradation_encoder import DegradationEncoder
from faceprior.models.panini.network import PaniniMFR, PaniniSR
from faceprior.models.panini.prior import StyleGAN2Prior
from faceprior.train.config import build_config, load_config, packaged_config
from faceprior.train.data import EpochOrder
from faceprior.train.distributed import Distributed
from faceprior.train.task import TaskContext
from faceprior.train.tasks.panini import (
    PaniniMFRTask,
    PaniniModel,
    PaniniSRTask,
    build_generator,
)
from faceprior.train.trainer import train

TINY = dict(
    in_size=64,
    out_size=128,
    style_channels=32,
    rrdb_channels=8,
    num_rrdbs=1,
    num_mlps=2,
    narrow=0.0625,
    degradation_size=32,
)
CPU = TaskContext(torch.device("cpu"), Distributed())


def _pairs(count: int = 4, lq_size: int = 64) -> list[dict]:
    generator = torch.Generator().manual_seed(1)
    hq = torch.rand(count, 3, 128, 128, generator=generator) * 2 - 1
    lq = torch.nn.functional.interpolate(hq, size=lq_size, mode="area")
    return [{"lq": lq[i], "hq": hq[i], "index": i} for i in range(count)]


def _batch(lq_size: int = 64) -> dict:
    items = _pairs(2, lq_size)
    return {key: torch.stack([item[key] for item in items]) for key in ("lq", "hq")}


def _task(cls=PaniniMFRTask, **options) -> PaniniMFRTask:
    model = options.pop("model", PaniniModel(**TINY))
    torch.manual_seed(0)
    task = cls(cls.Options(model=model, **options), CPU)
    task.build()
    task.train(True)
    return task


def _udrl_checkpoint(folder: Path) -> dict[str, torch.Tensor]:
    """A trainer checkpoint as a ``udrl`` run writes it (MoCo query encoder under ``moco``)."""
    torch.manual_seed(5)
    encoder = DegradationEncoder()
    for buffer in encoder.buffers():  # non-default BN statistics, to see that they arrive
        buffer.add_(1)
    state = {f"encoder_q.{k}": v for k, v in encoder.state_dict().items()}
    folder.mkdir()
    torch.save({"task": {"networks": {"moco": state}}, "step": 10}, folder / "state.pt")
    return encoder.state_dict()


def _mmgen_file(path: Path) -> dict[str, torch.Tensor]:
    """An mmgen-style StyleGAN2 checkpoint holding a prior of the tiny network's shape."""
    torch.manual_seed(7)
    prior = StyleGAN2Prior(128, 32, 2, narrow=0.0625).state_dict()
    content = {f"generator_ema.{k}": v for k, v in prior.items()}
    content |= {f"generator.{k}": torch.zeros_like(v) for k, v in prior.items()}  # non-EMA
    torch.save({"meta": {"iter": 1}, "state_dict": content}, path)
    return prior


def test_trainer_runs_freezes_initialises_and_exports(tmp_path):
    udrl = _udrl_checkpoint(tmp_path / "udrl")
    prior = _mmgen_file(tmp_path / "stylegan2.pth")
    config = build_config(
        {
            "task": "panini_mfr",
            "output": str(tmp_path / "run"),
            "init": [
                {
                    "checkpoint": str(tmp_path / "udrl"),
                    "source": "networks.moco.encoder_q",
                    "target": "generator.deg_encoder",
                }
            ],
            "options": {
                "model": TINY,
                "freeze": ["deg_encoder", "generator"],
                "prior_weights": str(tmp_path / "stylegan2.pth"),
                "cosine_steps": 2,
            },
            "data": {"num_workers": 0},
            "train": {
                "steps": 2,
                "batch_size": 2,
                "device": "cpu",
                "log_every": 1,
                "checkpoint_every": 100,
                "sample_every": 0,
                "progress": False,
                "resume": "never",
                "threads": 1,
            },
        }
    )
    torch.manual_seed(config.seed)  # the trainer builds the generator first from this seed
    initial = build_generator(config.options.model).state_dict()
    items = _pairs()
    result = train(config, EpochOrder(lambda epoch: items, len(items), 0))
    assert result.step == 2

    logs = [json.loads(line) for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert len(logs) == 2
    for entry in logs:
        for key in ("g_pixel", "g_adversarial", "g_loss", "d_loss"):
            assert math.isfinite(entry[key]), key
    assert logs[0]["lr"] == pytest.approx(1e-4) and logs[1]["lr"] == pytest.approx(5.005e-5)

    trained = result.task.networks["generator"].state_dict()
    for key, value in udrl.items():  # frozen, BN statistics included
        assert torch.equal(trained[f"deg_encoder.{key}"], value), key
    for key, value in prior.items():
        assert torch.equal(trained[f"generator.{key}"], value), key
    changed = [k for k in trained if k.startswith(("encoder.", "fusion_out.", "AFS_maskGen."))]
    assert changed and all(not torch.equal(trained[k], initial[k]) for k in changed)

    network = faceprior.load_model(tmp_path / "run/export/generator.safetensors")
    assert isinstance(network, PaniniMFR)
    assert network.conventions.architecture == "panini-mfr"
    assert network.arguments == result.task.networks["generator"].arguments
    assert not (tmp_path / "run/export/discriminator.safetensors").exists()


def test_without_freeze_every_generator_part_trains():
    task = _task()
    before = {k: v.clone() for k, v in task.networks["generator"].state_dict().items()}
    task.train_step([_batch()], 0)
    after = task.networks["generator"].state_dict()
    moved = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert {"generator", "deg_encoder", "encoder", "AFS_maskGen", "fusion_out"} <= moved


def test_adversarial_weight_zero_skips_the_discriminator():
    task = _task(adversarial_weight=0.0)
    before = [p.clone() for p in task.networks["discriminator"].parameters()]
    logs = task.train_step([_batch()], 0)
    assert "d_loss" not in logs and "g_adversarial" not in logs
    assert logs["g_loss"] == pytest.approx(logs["g_pixel"])
    after = list(task.networks["discriminator"].parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_loss_weights_scale_their_terms():
    batch = _batch()
    values = {}
    for pixel, adversarial in ((1.0, 0.0), (2.0, 0.0), (1.0, 0.5)):
        task = _task(pixel_weight=pixel, adversarial_weight=adversarial)
        loss, logs = task._g_loss(batch, [])
        values[pixel, adversarial] = (loss.item(), logs)
    single, _ = values[1.0, 0.0]
    assert values[2.0, 0.0][0] == pytest.approx(2 * single)
    loss, logs = values[1.0, 0.5]
    assert loss == pytest.approx(single + 0.5 * logs["g_adversarial"])


def test_perceptual_term_uses_vgg16_on_minus_one_one_images(tmp_path):
    from faceprior.models.vgg import VGGFeatures, layer_names

    torch.manual_seed(3)
    vgg = VGGFeatures("vgg16")
    path = tmp_path / "vgg16.pth"
    torch.save({f"features.{k}": v for k, v in vgg.features.state_dict().items()}, path)
    batch = _batch()
    assert _task(perceptual_weights="").perceptual is None  # no file: off
    assert _task(perceptual_weight=0.0, perceptual_weights=str(path)).perceptual is None
    found = {}
    for layer in ("conv4_3", "conv1_2"):
        task = _task(perceptual_weights=str(path), perceptual_layer=layer, adversarial_weight=0)
        loss, logs = task._g_loss(batch, [])
        found[layer] = logs["g_perceptual"]
        assert loss.item() == pytest.approx(logs["g_pixel"] + 0.01 * logs["g_perceptual"])
    assert found["conv4_3"] != pytest.approx(found["conv1_2"])
    assert "conv4_3" in layer_names("vgg16")
    # MMEditing normalises the [-1, 1] images directly (norm_img=False).
    with torch.no_grad():
        fake = task.networks["generator"](batch["lq"])
        features = task.perceptual.vgg
        mean, std = features.mean, features.std
        direct = features.features[:3]((fake - mean) / std)
        target = features.features[:3]((batch["hq"] - mean) / std)
    assert found["conv1_2"] == pytest.approx(float(torch.mean((direct - target) ** 2)), rel=1e-4)


def test_learning_rate_is_one_cosine_period():
    task = _task(cosine_steps=100, lr=1e-3, min_lr=1e-5)
    assert task.learning_rate(0) == pytest.approx(1e-3)
    assert task.learning_rate(50) == pytest.approx((1e-3 + 1e-5) / 2)
    assert task.learning_rate(100) == task.learning_rate(500) == pytest.approx(1e-5)
    task.options.cosine_steps = 0
    assert task.learning_rate(50) == 1e-3
    task.train_step([_batch()], 0)
    assert all(g["lr"] == 1e-3 for o in task.optimizers.values() for g in o.param_groups)


def test_betas_and_freeze_reach_the_optimisers():
    task = _task(betas=[0.5, 0.9], freeze=["generator"])
    prior = set(map(id, task.networks["generator"].generator.parameters()))
    for optimizer in task.optimizers.values():
        assert optimizer.param_groups[0]["betas"] == (0.5, 0.9)
    in_generator_optimizer = {id(p) for p in task.optimizers["generator"].param_groups[0]["params"]}
    assert not prior & in_generator_optimizer
    task.train(True)
    assert not task.networks["generator"].generator.training
    assert task.networks["generator"].encoder.training


def test_bad_options_fail_clearly(tmp_path):
    with pytest.raises(ValueError, match="no part 'decoder'"):
        _task(freeze=["decoder"])
    with pytest.raises(ValueError, match="architecture"):
        build_generator(PaniniModel(architecture="gpen"))
    with pytest.raises(ValueError, match="betas"):
        _task(betas=[0.9])
    torch.save({"state_dict": {"encoder.weight": torch.zeros(1)}}, tmp_path / "x.pth")
    with pytest.raises(CheckpointError, match="no StyleGAN2 prior"):
        _task(prior_weights=str(tmp_path / "x.pth"))


def test_panini_sr_task_trains_the_sr_network():
    model = PaniniModel(architecture="panini-sr", **dict(TINY, degradation_size=256))
    task = _task(PaniniSRTask, model=model)
    assert isinstance(task.networks["generator"], PaniniSR)
    logs = task.train_step([_batch()], 0)
    assert math.isfinite(logs["g_loss"]) and math.isfinite(logs["d_loss"])
    assert PaniniSRTask.Options().model.architecture == "panini-sr"
    with pytest.raises(ValueError, match="no degradation encoder"):
        build_generator(PaniniModel(architecture="panini-sr", degradation_size=32))


def test_small_network_options_change_the_network():
    torch.manual_seed(0)
    base = PaniniMFR(**TINY)
    assert detect_mfr(base.state_dict()) == {
        k: v for k, v in base.arguments.items() if k != "degradation_size"
    }
    lq = torch.rand(1, 3, 64, 64) * 2 - 1
    torch.manual_seed(0)
    other = PaniniMFR(**dict(TINY, degradation_size=16))
    other.load_state_dict(base.state_dict())
    with torch.no_grad():
        assert not torch.equal(base.dafi_weights(lq)[0], other.dafi_weights(lq)[0])
    wider = PaniniMFR(**dict(TINY, narrow=0.125, in_size=128, out_size=256, degradation_size=256))
    assert wider.fusion_out[0].weight.shape[0] == 64
    assert detect_mfr(wider.state_dict()) == wider.arguments  # 256: not recorded
    with pytest.raises(ValueError, match="narrow"):
        PaniniMFR(**dict(TINY, narrow=0.001))


def test_packaged_configs_follow_the_spec():
    full = load_config(packaged_config("panini/panini_mfr_512.yaml"))
    options = full.options
    assert full.task == "panini_mfr" and full.train.batch_size == 1
    assert full.train.steps == options.cosine_steps == 800000
    assert (options.lr, options.min_lr, options.betas) == (1e-4, 1e-7, [0.9, 0.99])
    assert (options.pixel_weight, options.perceptual_weight, options.adversarial_weight) == (
        1.0,
        0.01,
        0.01,
    )
    assert options.model == PaniniModel() and options.freeze == []
    assert full.data.degradation == "panini-mfr" and full.data.size == 1024
    tiny = load_config(packaged_config("panini/panini_mfr_tiny.yaml"))
    assert tiny.options.model == PaniniModel(architecture="panini-mfr", **TINY)
    assert tiny.data.degradation == "panini-mfr" and tiny.data.size == 2 * TINY["in_size"]


@pytest.mark.parametrize("wrapped", [False, True])
def test_prior_weights_read_panini_files(tmp_path, wrapped):
    torch.manual_seed(9)
    source = PaniniMFR(**TINY).state_dict()
    content = source
    if wrapped:  # MMEditing GLEAN checkpoint: generator.<panini key>, plus the discriminator
        content = {f"generator.{k}": v for k, v in source.items()}
        content["discriminator.final_linear.1.bias"] = torch.zeros(1)
        content = {"state_dict": content}
    torch.save(content, tmp_path / "panini.pth")
    prior = _task(prior_weights=str(tmp_path / "panini.pth")).networks["generator"].generator
    for key, value in prior.state_dict().items():
        assert torch.equal(value, source[f"generator.{key}"]), key
