"""PSFR-GAN training (task ``psfrgan``) through the shared trainer, at 32 px with tiny networks."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch

import faceprior
from faceprior.models.psfrgan import MultiScaleDiscriminator, ParseNet, PSFRGenerator
from faceprior.train.config import build_config, load_config, packaged_config
from faceprior.train.data import EpochOrder
from faceprior.train.distributed import Distributed
from faceprior.train.task import TaskContext
from faceprior.train.tasks.psfrgan import PSFRGANOptions, PSFRGANTask
from faceprior.train.trainer import train

SIZE = 32
GENERATOR = {"out_size": SIZE, "min_feat_size": 8, "ch_range": [8, 16]}
DISCRIMINATOR = {"base_channels": 8, "n_layers": 1, "num_scales": 3, "max_channels": 16}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def parser_file(tmp_path_factory) -> Path:
    """A small random ParseNet (19 classes, 32 px) saved as a user would pass it."""
    torch.manual_seed(1)
    parser = ParseNet(SIZE, SIZE, min_feat_size=8, base_ch=8, res_depth=1, ch_range=(8, 16))
    return faceprior.save_model(parser, tmp_path_factory.mktemp("parser") / "parser.safetensors")


def _faces(count: int = 4) -> list[dict]:
    """Smooth random HQ faces; the LQ is a blurred, noisy copy at the same size."""
    generator = torch.Generator().manual_seed(0)
    items = []
    for index in range(count):
        low = torch.rand(1, 3, 4, 4, generator=generator) * 2 - 1
        hq = torch.nn.functional.interpolate(low, size=SIZE, mode="bicubic").clamp(-1, 1)[0]
        lq = torch.nn.functional.avg_pool2d(hq[None], 3, 1, 1)[0]
        lq = lq + 0.1 * torch.randn(lq.shape, generator=generator)
        items.append({"lq": lq, "hq": hq, "index": index})
    return items


def _options(parser_file: Path, **overrides) -> dict:
    return {
        "generator": dict(GENERATOR),
        "discriminator": dict(DISCRIMINATOR),
        "parsenet_weights": str(parser_file),
        **overrides,
    }


def _task(parser_file: Path, **overrides) -> PSFRGANTask:
    config = build_config({"task": "psfrgan", "options": _options(parser_file, **overrides)})
    torch.manual_seed(0)
    task = PSFRGANTask(config.options, TaskContext(torch.device("cpu"), Distributed()))
    task.build()
    task.train(True)
    return task


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _changed(before: dict, module: torch.nn.Module) -> bool:
    params = dict(module.named_parameters())
    return any(not torch.equal(before[name], param) for name, param in params.items())


def test_training_updates_both_networks_and_exports_a_psfrgan_generator(tmp_path, parser_file):
    config = build_config(
        {
            "task": "psfrgan",
            "output": str(tmp_path),
            "options": _options(parser_file, parser_batch_statistics=True),
            "data": {"num_workers": 0},
            "train": {
                "steps": 3,
                "batch_size": 2,
                "device": "cpu",
                "log_every": 1,
                "checkpoint_every": 10_000,
                "sample_every": 3,
                "sample_count": 2,
                "progress": False,
                "resume": "never",
                "threads": 1,
            },
        }
    )
    torch.manual_seed(config.seed)  # as the trainer does: the same initial weights
    initial = PSFRGANTask(config.options, TaskContext(torch.device("cpu"), Distributed()))
    initial.build()
    faces = _faces()
    result = train(config, EpochOrder(lambda epoch: faces, len(faces), 0))

    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3]
    expected = {"g_loss", "g_pixel", "g_adversarial", "g_feature_matching", "d_loss"}
    for line in lines:
        assert expected <= set(line) and "g_style" not in line
        assert all(math.isfinite(line[key]) for key in expected)
    networks = result.task.networks
    for name in ("generator", "discriminator"):
        assert _changed(_state(initial.networks[name]), networks[name]), name
    # The frozen parser keeps its pretrained weights and BatchNorm statistics.
    stored = faceprior.load_model(parser_file).state_dict()
    assert all(torch.equal(stored[k], v) for k, v in result.task.parser.state_dict().items())

    generator = faceprior.load_model(tmp_path / "export" / "generator.safetensors")
    assert isinstance(generator, PSFRGenerator)
    assert generator.conventions.architecture == "psfrgan"
    assert generator.arguments["out_size"] == SIZE
    critic = faceprior.load_model(tmp_path / "export" / "discriminator.safetensors")
    assert isinstance(critic, MultiScaleDiscriminator)
    assert any((tmp_path / "samples").iterdir())


def _step(task: PSFRGANTask) -> dict[str, float]:
    batch = {key: torch.stack([f[key] for f in _faces(2)]) for key in ("lq", "hq")}
    return task.train_step([batch], 0)


@pytest.mark.parametrize(
    ("option", "entry"),
    [
        ("pixel_weight", "g_pixel"),
        ("adversarial_weight", "g_adversarial"),
        ("feature_matching_weight", "g_feature_matching"),
    ],
)
def test_a_zero_weight_removes_its_term(parser_file, option, entry):
    on, off = _step(_task(parser_file)), _step(_task(parser_file, **{option: 0.0}))
    assert entry in on and entry not in off
    assert on["g_loss"] != pytest.approx(off["g_loss"])


def test_without_adversarial_terms_the_discriminator_is_not_trained(parser_file):
    task = _task(parser_file, adversarial_weight=0.0, feature_matching_weight=0.0)
    before = _state(task.networks["discriminator"])
    logs = _step(task)
    assert "d_loss" not in logs and not _changed(before, task.networks["discriminator"])


@pytest.mark.parametrize("network", ["generator", "discriminator"])
def test_learning_rates_drive_their_network(parser_file, network):
    option = {"generator": "g_lr", "discriminator": "d_lr"}[network]
    task = _task(parser_file, **{option: 0.0})
    other = "discriminator" if network == "generator" else "generator"
    before = {name: _state(task.networks[name]) for name in (network, other)}
    _step(task)
    assert not _changed(before[network], task.networks[network])
    assert _changed(before[other], task.networks[other])


def test_optimiser_settings_follow_the_options(parser_file):
    task = _task(parser_file, betas=[0.9, 0.99], g_lr=2e-4)
    group = task.optimizers["generator"].param_groups[0]
    assert group["betas"] == (0.9, 0.99) and group["lr"] == 2e-4
    assert task.optimizers["discriminator"].param_groups[0]["lr"] == 4e-4


def test_parser_batch_statistics_changes_the_generator_input(parser_file):
    task = _task(parser_file)
    lq = torch.stack([f["lq"] for f in _faces(2)])
    stored = _state(task.parser)
    official = task.parse(lq, batch_statistics=True)
    inference = task.parse(lq, batch_statistics=False)
    assert official.shape == (2, 19, SIZE, SIZE)
    assert not torch.equal(official, inference)
    assert all(torch.equal(stored[k], v) for k, v in task.parser.state_dict().items())


def test_style_loss_needs_a_vgg_file(parser_file, tmp_path, capsys):
    from faceprior.models.vgg import VGGFeatures

    assert _task(parser_file).style is None  # no file: off, and said so
    assert "style loss off" in capsys.readouterr().err
    torch.manual_seed(2)
    torch.save(VGGFeatures("vgg19").state_dict(), tmp_path / "vgg19.pth")
    vgg = str(tmp_path / "vgg19.pth")
    assert _task(parser_file, vgg_weights=vgg, style_weight=0.0).style is None
    logs = _step(_task(parser_file, vgg_weights=vgg, style_min_size=0))
    assert math.isfinite(logs["g_style"]) and logs["g_style"] > 0
    # style_min_size: narrow images are upsized before VGG (official 224): another loss.
    task = _task(parser_file, vgg_weights=vgg, style_min_size=48)
    face = _faces(1)[0]
    output, target = face["lq"][None], face["hq"][None]
    mask = task.parse(target)
    resized = task.style(output, target, mask)
    task.style.min_size = 0
    native = task.style(output, target, mask)
    assert native > 0 and not torch.allclose(resized, native, rtol=1e-2, atol=0)


def test_model_options_shape_the_networks(parser_file):
    task = _task(
        parser_file,
        generator={**GENERATOR, "ch_range": [8, 8]},
        discriminator={**DISCRIMINATOR, "num_scales": 2},
    )
    assert task.networks["generator"].arguments["ch_range"] == [8, 8]
    assert len(task.networks["discriminator"].discriminators) == 2


def test_bad_inputs_are_refused(parser_file, tmp_path):
    with pytest.raises(ValueError, match="parsenet_weights is required"):
        _task(parser_file, parsenet_weights="")
    for option, value in (("style_min_size", -1), ("betas", [0.5]), ("pixel_weight", -1.0)):
        with pytest.raises(ValueError, match=option):
            _task(parser_file, **{option: value})
    with pytest.raises(ValueError, match="every generator loss term is off"):
        _task(parser_file, pixel_weight=0.0, adversarial_weight=0.0, feature_matching_weight=0.0)
    generator_file = faceprior.save_model(
        PSFRGenerator(16, 8, 19, (8, 8)), tmp_path / "g.safetensors"
    )
    with pytest.raises(ValueError, match="ParseNet"):
        _task(parser_file, parsenet_weights=str(generator_file))
    task = _task(parser_file)
    wrong = {"lq": torch.zeros(1, 3, 16, 16), "hq": torch.zeros(1, 3, 16, 16)}
    with pytest.raises(ValueError, match="data.size"):
        task.train_step([wrong], 0)
    with pytest.raises(ValueError, match="lq_size"):
        task.train_step([{"lq": torch.zeros(1, 3, 16, 16), "hq": torch.zeros(1, 3, 32, 32)}], 0)


def test_packaged_configs():
    official = load_config(packaged_config("psfrgan/psfrgan_512.yaml"))
    assert official.task == "psfrgan" and official.data.size == 512
    defaults = dataclasses.asdict(PSFRGANOptions())
    assert dataclasses.asdict(official.options) == defaults
    assert (defaults["g_lr"], defaults["d_lr"], defaults["betas"]) == (1e-4, 4e-4, [0.5, 0.999])
    weights = [defaults[f"{n}_weight"] for n in ("pixel", "feature_matching", "adversarial")]
    assert weights == [10.0, 10.0, 1.0] and defaults["style_weight"] == 1000.0

    tiny = load_config(packaged_config("psfrgan/psfrgan_tiny.yaml"))
    size, model = tiny.data.size, tiny.options.generator
    assert tiny.data.degradation == "psfrgan" and model.out_size == size
    generator = PSFRGenerator(model.out_size, model.min_feat_size, 19, model.ch_range)
    critic = MultiScaleDiscriminator(22, **dataclasses.asdict(tiny.options.discriminator))
    with torch.no_grad():
        fake = generator(torch.zeros(1, 3, size, size), torch.zeros(1, 19, size, size))
        outputs = critic(torch.cat([fake, torch.zeros(1, 19, size, size)], dim=1))
    assert fake.shape == (1, 3, size, size) and len(outputs) == 3
