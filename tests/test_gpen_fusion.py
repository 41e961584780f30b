"""GPEN + fusion head (``gpen-fusion``): the network, its knobs, and the ``gpen_fusion`` task."""

from __future__ import annotations

import pytest
import torch
from conftest import shared_path

import faceprior
from faceprior.models.gpen import FullGenerator
from faceprior.models.gpen_fusion import GATE_START, GPENFusion
from faceprior.models.stylegan2 import TINY_STYLEGAN2
from faceprior.train.config import load_config, packaged_config
from faceprior.train.trainer import exported_weights, train


def _tiny(**head) -> GPENFusion:
    torch.manual_seed(0)
    return GPENFusion(16, **TINY_STYLEGAN2, **head).eval()


def test_a_new_head_starts_from_the_gpen_output():
    net = _tiny()
    faces = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        prior, _ = net.gpen(faces)
        fused, latents = net(faces)
    assert latents is None and fused.shape == faces.shape
    # out = g + sigmoid(-GATE_START) (x - g): 98 % GPEN, the rest the input.
    mix = torch.sigmoid(torch.tensor(-GATE_START))
    torch.testing.assert_close(fused, prior + mix * (faces - prior), atol=1e-6, rtol=0)


def test_an_open_gate_returns_the_input_and_a_residual_adds_to_it():
    net = _tiny()
    faces = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        net.head.body_out.bias[48:] = 30.0  # gate fully open: keep the input
        torch.testing.assert_close(net(faces)[0], faces, atol=1e-5, rtol=0)
        net.head.body_out.bias[:48] = 0.1  # a constant residual on top
        torch.testing.assert_close(net(faces)[0], faces + 0.1, atol=1e-5, rtol=0)


@pytest.mark.parametrize("knob", [dict(head_channels=16), dict(head_blocks=2)])
def test_head_knobs_change_the_network_and_its_output(knob):
    faces = torch.rand(1, 3, 16, 16) * 2 - 1
    outputs, sizes = [], []
    base = dict(head_channels=8, head_blocks=1)
    for head in (base, {**base, **knob}):
        net = _tiny(**head)
        torch.manual_seed(1)
        torch.nn.init.normal_(net.head.body_out.weight, std=0.05)  # a trained head's last conv
        with torch.no_grad():
            outputs.append(net(faces)[0])
        sizes.append(sum(p.numel() for p in net.head.parameters()))
    assert sizes[1] > sizes[0]
    assert not torch.allclose(outputs[0], outputs[1])


def test_size_must_tile():
    with pytest.raises(ValueError, match="multiple of 4"):
        GPENFusion(18, **TINY_STYLEGAN2)


def test_save_and_load_keep_template_and_output(tmp_path):
    torch.manual_seed(0)
    net = GPENFusion(16, **TINY_STYLEGAN2, head_channels=8, head_blocks=2, template="celeba")
    torch.nn.init.normal_(net.head.body_out.weight, std=0.05)
    net.eval()
    path = faceprior.save_model(net, tmp_path / "fusion.safetensors")
    loaded = faceprior.load_model(path)
    assert isinstance(loaded, GPENFusion) and loaded.arguments == net.arguments
    assert loaded.conventions.template == "celeba"
    restorer = faceprior.load_restoration_model(path)
    faces = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(restorer(faces), net(faces)[0], atol=1e-5, rtol=0)


def test_a_plain_gpen_state_dict_is_not_taken_for_a_fusion_network():
    from faceprior.models.registry import detect_architecture

    torch.manual_seed(0)
    found = detect_architecture(FullGenerator(16, **TINY_STYLEGAN2).state_dict())
    assert found is not None and found[0].name == "gpen"


def _config(tmp_path, *overrides):
    return load_config(
        packaged_config("gpen/gpen_offline_128_v4.yaml"),
        [
            f"output={tmp_path / 'run'}",
            f"data.root={shared_path('data/train/celeba_align_6k')}",
            "data.limit=4",
            "data.num_workers=0",
            "options.model.head_channels=8",
            "options.model.head_blocks=1",
            "train.steps=2",
            "train.batch_size=2",
            "train.sample_every=0",
            "train.checkpoint_every=2",
            "train.progress=false",
            "train.threads=1",
            *overrides,
        ],
    )


def test_head_training_keeps_the_bundled_gpen_exactly(tmp_path):
    result = train(_config(tmp_path))
    v3 = exported_weights("gpen-offline-128-v3")
    exported = faceprior.load_model(tmp_path / "run" / "export" / "generator.safetensors")
    assert isinstance(exported, GPENFusion) and exported.conventions.template == "celeba"
    state = exported.state_dict()
    assert all(torch.equal(state[f"gpen.{k}"], v) for k, v in v3.items())
    raw = result.task.networks["generator"].head.state_dict()
    start = GPENFusion(128, 256, 4, 1, 0.125, 8, 1).head.state_dict()
    assert not torch.equal(raw["body_out.bias"], start["body_out.bias"])


def test_training_all_moves_the_gpen_too(tmp_path):
    result = train(_config(tmp_path, "options.train=all"))
    v3 = exported_weights("gpen-offline-128-v3")
    raw = result.task.networks["generator"].gpen.state_dict()
    assert any(not torch.equal(raw[k], v) for k, v in v3.items())


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("options.train=decoder", "options.train must be one of"),
        ("options.gan.g_reg_every=4", "g_reg_every must be 0"),
        ("options.model.head_blocks=0", "head_blocks must be >= 1"),
    ],
)
def test_bad_settings_are_config_errors(tmp_path, override, message):
    with pytest.raises(ValueError, match=message):
        train(_config(tmp_path, override))
