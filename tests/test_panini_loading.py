"""Loading Panini-Net files as released (MMEditing / MoCo wrappers), the zoo and save/load."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import load_parity_pack, shared_path

import faceprior
from faceprior.api import load_restoration_model
from faceprior.hub.zoo import get_entry
from faceprior.models.panini.checkpoint import (
    detect_degradation_encoder,
    detect_mfr,
    detect_sr,
    panini_candidates,
)
from faceprior.models.panini.degradation_encoder import DegradationEncoder
from faceprior.models.panini.network import PaniniMFR, PaniniSR
from faceprior.models.registry import get_architecture
from faceprior.models.restorer import RestorerOptions


@pytest.fixture(scope="module")
def sr_small():
    """The panini-sr-small pack and a network holding its weights (built once)."""
    pack = load_parity_pack("panini-sr-small")
    network = PaniniSR(64, 128, 64, 16, 2).eval()
    network.load_state_dict(pack.torch_state_dict())
    return pack, network


def _fake_mmediting_file(state_dict, path):
    """The layout of panini_*_latest.pth: GLEAN state_dict with generator/discriminator/VGG
    entries, mmcv meta and the optimiser state (spec §4)."""
    wrapped = {f"generator.{k}": v for k, v in state_dict.items()}
    wrapped["discriminator.convs.0.0.weight"] = torch.randn(64, 3, 1, 1)
    wrapped["discriminator.final_linear.1.bias"] = torch.zeros(1)
    wrapped["perceptual_loss.vgg.vgg_layers.0.weight"] = torch.randn(64, 3, 3, 3)
    wrapped["perceptual_loss.vgg.mean"] = torch.zeros(1, 3, 1, 1)
    content = {
        "meta": {"mmcv_version": "1.4.8", "iter": 800000, "exp_name": "panini_ffhq_16x"},
        "state_dict": wrapped,
        "optimizer": {"generator": {"state": {}, "param_groups": [{"lr": 1e-7}]}},
    }
    torch.save(content, path)


def test_official_mmediting_file_loads_with_training_entries_ignored(tmp_path, sr_small):
    pack, _ = sr_small
    path = tmp_path / "panini_sr_latest.pth"
    _fake_mmediting_file(sr_small[1].state_dict(), path)
    network = faceprior.load_model(path)
    assert isinstance(network, PaniniSR)
    assert network.arguments == dict(
        in_size=64, out_size=128, style_channels=64, rrdb_channels=16, num_rrdbs=2, num_mlps=8
    )
    assert not network.training
    with torch.no_grad():
        image = network(torch.from_numpy(pack.inputs["lq"][:1]))
    error = (image - torch.from_numpy(pack.outputs["image"][:1])).abs().max()
    assert error <= pack.tol("image")[0]
    where, _ = next(iter(panini_candidates(torch.load(path, weights_only=True))))
    assert "discriminator" in where and "perceptual_loss" in where


def test_save_model_round_trips(tmp_path, sr_small):
    _, network = sr_small
    path = faceprior.save_model(network, tmp_path / "sr.safetensors")
    again = faceprior.load_model(path)
    assert again.arguments == network.arguments
    assert again.conventions == network.conventions
    for key, value in network.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key


def test_mfr_layout_is_detected_from_shapes_alone():
    manifest = json.loads(shared_path("parity/panini-mfr/pack.json").read_text())["state_dict"]
    shapes = {k: torch.empty(s, device="meta") for k, s, _ in manifest}
    expected = dict(
        in_size=512, out_size=1024, style_channels=512, rrdb_channels=8, num_rrdbs=2, num_mlps=8
    )
    assert detect_mfr(shapes) == expected
    assert detect_sr(shapes) is None
    wrapped = {"state_dict": {f"generator.{k}": v for k, v in shapes.items()}}
    where, stripped = next(iter(panini_candidates(wrapped)))
    assert detect_mfr(stripped) == expected and "'generator.'" in where


def test_sr_layout_arguments_are_read_from_shapes():
    network = PaniniSR(64, 256, style_channels=32, rrdb_channels=8, num_rrdbs=3)
    state_dict = network.state_dict()
    assert detect_sr(state_dict) == network.arguments
    assert detect_mfr(state_dict) is None


def test_moco_checkpoint_yields_the_query_encoder(tmp_path):
    pack = load_parity_pack("panini-degradation-encoder")
    encoder_q = pack.torch_state_dict()
    state = {"module.queue": torch.randn(256, 8192), "module.queue_ptr": torch.zeros(1).long()}
    state.update({f"module.encoder_q.{k}": v for k, v in encoder_q.items()})
    state.update({f"module.encoder_k.{k}": torch.zeros_like(v) for k, v in encoder_q.items()})
    path = tmp_path / "moco_checkpoint_0199.pth.tar"
    torch.save({"epoch": 200, "arch": "resnet50", "state_dict": state, "optimizer": {}}, path)
    encoder = faceprior.load_model(path)
    assert isinstance(encoder, DegradationEncoder)
    with torch.no_grad():
        representation = encoder(torch.from_numpy(pack.inputs["x"]))
    ok, err, _ = pack.check("fea", representation.numpy())
    assert ok, err
    assert detect_degradation_encoder(encoder_q) == {}


def test_zoo_entries_name_registered_architectures():
    for name in ("panini-mfr", "panini-sr16x", "panini-degradation-encoder"):
        entry = get_entry(name)
        assert get_architecture(entry.architecture).name == entry.architecture
        assert entry.size_bytes and entry.urls
    assert get_entry("panini-mfr").output_size == 1024


def test_restoration_model_honours_fidelity(tmp_path, sr_small):
    pack, network = sr_small
    path = faceprior.save_model(network, tmp_path / "sr.safetensors")
    x = torch.from_numpy(pack.inputs["lq"][:1])
    restorer = load_restoration_model(path, options=RestorerOptions(fidelity=0.9))
    with torch.no_grad():
        assert torch.allclose(restorer(x), network(x, fidelity=0.9), atol=1e-5)
    with pytest.raises(ValueError, match="parsing_model"):
        load_restoration_model(path, options=RestorerOptions(parsing_model="parsenet"))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        load_restoration_model(path, options=RestorerOptions(fidelity=1.5))


def test_wrong_input_and_constructor_are_rejected(sr_small):
    with pytest.raises(ValueError, match="512"):
        PaniniMFR(in_size=256)
    with pytest.raises(ValueError, match="64 px"):
        PaniniSR(in_size=32)
    _, network = sr_small
    with pytest.raises(ValueError, match=r"\(B, 3, 64, 64\)"):
        network(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="w\\+ codes"):
        network.generator(torch.zeros(1, 3, 64))
