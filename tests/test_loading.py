"""load_model: architecture detection, both file formats, wrappers, clear errors, safety."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

import faceprior
from faceprior.hub.checkpoint import CheckpointError
from faceprior.models.gpen import FullGenerator, FullGeneratorSR, GPENDiscriminator

# Every released configuration, shrunk where the layout allows: detection reads the same
# shapes (size from the encoder depth, narrow from the constant, multiplier from a >=64 px
# layer), so small style_dim / n_mlp keep the test fast without changing what is detected.
GENERATOR_CONFIGS = [
    dict(size=256, channel_multiplier=1, narrow=0.5),  # BFR-256
    dict(size=512, channel_multiplier=2, narrow=1.0),  # BFR-512, Seg2face-512
    dict(size=1024, channel_multiplier=2, narrow=1.0),  # BFR/Colorization/Inpainting-1024
    dict(size=2048, channel_multiplier=2, narrow=1.0),  # BFR-2048
    dict(size=64, channel_multiplier=1, narrow=0.125),  # a small fine-tuned model
]


def _outputs(network, x):
    with torch.no_grad():
        return network(x)[0] if not isinstance(network, GPENDiscriminator) else network(x)


def _round_trip(network, tmp_path, x):
    torch.manual_seed(0)
    expected = _outputs(network.eval(), x)
    paths = [tmp_path / "model.pth", tmp_path / "model.safetensors"]
    torch.save(network.state_dict(), paths[0])
    faceprior.save_model(network, paths[1])
    for path in paths:
        loaded = faceprior.load_model(path)
        assert type(loaded) is type(network)
        assert loaded.arguments == network.arguments
        assert not loaded.training
        for key, value in network.state_dict().items():
            assert torch.equal(loaded.state_dict()[key], value), (path, key)
        # Same weights; the CPU conv kernels may split their sums differently between two
        # calls with 2 threads, so outputs agree to float rounding, not always bit for bit.
        torch.manual_seed(0)
        assert torch.allclose(_outputs(loaded, x), expected, rtol=0, atol=1e-5), path


@pytest.mark.parametrize("config", GENERATOR_CONFIGS, ids=lambda c: f"size{c['size']}")
def test_generator_detection_round_trip(config, tmp_path):
    network = FullGenerator(style_dim=32, n_mlp=2, **config)
    size = config["size"]
    if size > 256:  # large sizes: compare weights only; their forward is slow on CPU
        path = tmp_path / "model.pth"
        torch.save(network.state_dict(), path)
        loaded = faceprior.load_model(path)
        assert loaded.arguments == network.arguments
        assert loaded.conventions.input_size == size
        for key, value in network.state_dict().items():
            assert torch.equal(loaded.state_dict()[key], value), key
        return
    _round_trip(network, tmp_path, torch.rand(1, 3, size, size) * 2 - 1)


def test_training_template_is_kept_in_safetensors_not_in_raw_state_dicts(tmp_path):
    """A model trained on another alignment records it; official files mean GPEN's own."""
    network = FullGenerator(32, style_dim=32, n_mlp=2, channel_multiplier=1, narrow=0.125)
    assert network.conventions.template == "gpen" and "template" not in network.arguments
    celeba = FullGenerator(
        32, style_dim=32, n_mlp=2, channel_multiplier=1, narrow=0.125, template="celeba"
    )
    loaded = faceprior.load_model(faceprior.save_model(celeba, tmp_path / "g.safetensors"))
    assert loaded.conventions.template == "celeba"
    torch.save(celeba.state_dict(), tmp_path / "g.pth")
    assert faceprior.load_model(tmp_path / "g.pth").conventions.template == "gpen"
    with pytest.raises(ValueError, match="unknown template"):
        FullGenerator(32, style_dim=32, n_mlp=2, narrow=0.125, template="celebb")


def test_sr_generator_and_discriminator_round_trip(tmp_path):
    sr = FullGeneratorSR(32, 128, style_dim=32, n_mlp=2, channel_multiplier=1, narrow=0.125)
    _round_trip(sr, tmp_path, torch.rand(1, 3, 32, 32))
    assert faceprior.load_model(tmp_path / "model.pth").conventions.output_size == 128
    discriminator = GPENDiscriminator(256, channel_multiplier=1, narrow=0.5)
    _round_trip(discriminator, tmp_path, torch.rand(3, 3, 256, 256))


def test_training_checkpoint_under_g_ema_and_module_prefix(tmp_path):
    network = FullGenerator(64, style_dim=32, n_mlp=2, channel_multiplier=1, narrow=0.25)
    wrapped = {
        "g": {f"module.{k}": v for k, v in network.state_dict().items()},
        "g_ema": {f"module.{k}": v for k, v in network.state_dict().items()},
        "iteration": 5,
    }
    torch.save(wrapped, tmp_path / "train.pth")
    loaded = faceprior.load_model(tmp_path / "train.pth")
    assert loaded.arguments == network.arguments


def test_shape_mismatch_names_the_tensors(tmp_path):
    network = FullGenerator(64, style_dim=32, n_mlp=2, channel_multiplier=1, narrow=0.25)
    state = network.state_dict()
    state["generator.conv1.conv.weight"] = torch.zeros(1, 128, 128, 2, 2)
    del state["final_linear.0.bias"]
    state["extra.weight"] = torch.zeros(3)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError) as error:
        faceprior.load_model(tmp_path / "bad.pth")
    message = str(error.value)
    assert "final_linear.0.bias" in message and "missing" in message
    assert "extra.weight" in message and "unexpected" in message
    assert "generator.conv1.conv.weight" in message and "expected (1, 128, 128, 3, 3)" in message


def test_unrecognised_checkpoint_says_what_was_found(tmp_path):
    torch.save({"encoder.weight": torch.zeros(2, 2)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="no supported network recognised.*encoder.weight"):
        faceprior.load_model(tmp_path / "other.pth")


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_pickle_that_would_run_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open(tmp_path / "evil.pth", "wb") as handle:
        pickle.dump({"weight": _Exploit()}, handle)
    torch.save({"state_dict": _Exploit()}, tmp_path / "evil_zip.pth")
    for name in ("evil.pth", "evil_zip.pth"):
        with pytest.raises(CheckpointError, match="refused to load"):
            faceprior.load_model(tmp_path / name)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_truncated_file_gives_clear_error(tmp_path, suffix):
    network = FullGenerator(64, style_dim=32, n_mlp=2, channel_multiplier=1, narrow=0.25)
    path = tmp_path / f"model{suffix}"
    if suffix == ".pth":
        torch.save(network.state_dict(), path)
    else:
        faceprior.save_model(network, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or damaged"):
        faceprior.load_model(path)


def test_unknown_name_lists_the_zoo():
    with pytest.raises(FileNotFoundError, match="neither an existing file nor a zoo model"):
        faceprior.load_model("no-such-model")


def test_restoration_wrapper_returns_the_image():
    network = FullGenerator(64, style_dim=32, n_mlp=2, channel_multiplier=1, narrow=0.25).eval()
    from faceprior.models.registry import get_architecture
    from faceprior.models.restorer import RestorerOptions

    restorer = get_architecture("gpen").restorer(network, RestorerOptions())
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(restorer(x), network(x)[0], rtol=0, atol=1e-5)  # 2-thread conv sums
    with pytest.raises(ValueError, match="fidelity is not supported by gpen"):
        get_architecture("gpen").restorer(network, RestorerOptions(fidelity=0.5))
