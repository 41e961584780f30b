"""The plain U-Net baseline: its knobs, saving/loading, and training through ``unet_bfr``."""

from __future__ import annotations

import pytest
import torch
from conftest import shared_path

import faceprior
from faceprior.models.unet import UNet
from faceprior.train.config import load_config, packaged_config
from faceprior.train.trainer import train


def test_output_keeps_the_input_size_and_starts_near_the_input():
    torch.manual_seed(0)
    net = UNet(32, (8, 16, 32)).eval()
    faces = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        restored, extra = net(faces)
    assert restored.shape == faces.shape and extra is None
    # The global residual: an untrained U-Net returns a small correction of its input.
    assert 0 < (restored - faces).abs().mean() < 0.5


def test_channels_change_the_network_and_its_output():
    torch.manual_seed(0)
    narrow = UNet(32, (8, 16))
    torch.manual_seed(0)
    wide = UNet(32, (8, 16, 32))
    faces = torch.rand(1, 3, 32, 32) * 2 - 1
    assert sum(p.numel() for p in wide.parameters()) > sum(p.numel() for p in narrow.parameters())
    assert not torch.allclose(narrow(faces)[0], wide(faces)[0])


def test_template_goes_to_the_conventions_the_pipeline_aligns_with():
    assert UNet(32, (8, 16)).conventions.template == "celeba"
    assert UNet(32, (8, 16), template="ffhq").conventions.template == "ffhq"
    with pytest.raises(ValueError, match="unknown template"):
        UNet(32, (8, 16), template="nope")


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="divisible"):
        UNet(36, (8, 16, 32, 64))
    with pytest.raises(ValueError, match="expects"):
        UNet(32, (8, 16))(torch.zeros(1, 3, 64, 64))


def test_save_and_load_round_trip(tmp_path):
    net = UNet(32, (8, 16, 24), template="ffhq").eval()
    path = faceprior.save_model(net, tmp_path / "unet.safetensors")
    loaded = faceprior.load_model(path)
    assert isinstance(loaded, UNet) and loaded.arguments == net.arguments
    for key, value in net.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])
    restorer = faceprior.load_restoration_model(path)
    faces = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(restorer(faces), net(faces)[0], atol=1e-5, rtol=0)


def test_unet_bfr_trains_and_exports_a_loadable_restorer(tmp_path):
    root = shared_path("data/train/celeba_align_6k")
    config = load_config(
        packaged_config("baselines/unet_offline_128.yaml"),
        [
            f"output={tmp_path / 'run'}",
            f"data.root={root}",
            "data.size=32",
            "data.limit=8",
            "data.num_workers=0",
            "options.model.size=32",
            "options.model.channels=[8, 16]",
            "options.identity_weight=0",
            "train.steps=3",
            "train.batch_size=4",
            "train.sample_every=0",
            "train.checkpoint_every=3",
            "train.progress=false",
            "train.threads=1",
        ],
    )
    result = train(config)
    assert result.step == 3
    exported = tmp_path / "run" / "export" / "generator.safetensors"
    network = faceprior.load_model(exported)
    assert isinstance(network, UNet) and network.conventions.template == "celeba"
    # The export is the EMA copy; the optimiser moved the raw generator away from it.
    raw = result.task.networks["generator"].state_dict()
    average = result.task.emas["generator"].average.state_dict()
    assert all(torch.equal(v, average[k]) for k, v in network.state_dict().items())
    assert any(not torch.equal(v, average[k]) for k, v in raw.items())


def test_path_length_regularisation_is_refused(tmp_path):
    root = shared_path("data/train/celeba_align_6k")
    config = load_config(
        packaged_config("baselines/unet_offline_128.yaml"),
        [
            f"output={tmp_path / 'run'}",
            f"data.root={root}",
            "options.gan.g_reg_every=4",
            "options.identity_weight=0",
            "train.progress=false",
        ],
    )
    with pytest.raises(ValueError, match="g_reg_every must be 0"):
        train(config)
