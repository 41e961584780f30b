"""ArcFace IR-SE-50: the public ``model_ir_se50.pth`` layout, strict loading, GPEN's crop and the
``arcface-ir-se50`` identity loss. The real weights are not available here, so a random network
saved in that layout stands in for them.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from faceprior.hub.checkpoint import CheckpointError
from faceprior.models.arcface import ArcFaceIRSE, gpen_crop, load_arcface

# IR-SE-50 parameters, counted by hand from the architecture (no authoritative published
# figure was found; the ~175 MB size of model_ir_se50.pth is ~43.8 M float32 values):
#   input layer: conv 3*64*9 + BN 2*64 + PReLU 64                              =      1,920
#   unit(c_in, d): BN 2c_in + conv 9c_in*d + PReLU d + conv 9d^2 + BN 2d + SE d^2/8,
#                  + conv c_in*d + BN 2d when c_in != d (the shortcut)
#   stage 1, 3 x unit(64, 64) = 3 x 74,560                                     =    223,680
#   stage 2, unit(64, 128) 232,192 + 3 x unit(128, 128) 297,600                =  1,124,992
#   stage 3, unit(128, 256) 927,232 + 13 x unit(256, 256) 1,189,120            = 16,385,792
#   stage 4, unit(256, 512) 3,705,856 + 2 x unit(512, 512) 4,753,920           = 13,213,696
#   output: BN 2*512 + linear 25088*512 + 512 + BN1d 2*512                     = 12,847,616
IR_SE_50_PARAMETERS = 43_797_696
# 54 BatchNorms x 5 entries + 52 convs outside SE + 24 x 2 SE convs + 25 PReLUs + linear 2.
IR_SE_50_STATE_KEYS = 397


@pytest.fixture(scope="module")
def network() -> ArcFaceIRSE:
    torch.manual_seed(0)
    return ArcFaceIRSE().eval()


@pytest.fixture(scope="module")
def weights(network, tmp_path_factory):
    path = tmp_path_factory.mktemp("arcface") / "model_ir_se50.pth"
    torch.save(network.state_dict(), path)
    return path


def test_parameter_count_and_depths():
    with torch.device("meta"):
        counts = {n: sum(p.numel() for p in ArcFaceIRSE(n).parameters()) for n in (50, 100, 152)}
    assert counts[50] == IR_SE_50_PARAMETERS
    assert counts[50] < counts[100] < counts[152]
    with pytest.raises(ValueError, match="50, 100, 152"):
        ArcFaceIRSE(34)


def test_state_dict_has_the_official_layout(network):
    state = network.state_dict()
    keys = list(state)
    assert len(keys) == IR_SE_50_STATE_KEYS
    assert keys[:2] == ["input_layer.0.weight", "input_layer.1.weight"]
    assert keys[-1] == "output_layer.4.num_batches_tracked"
    # Stage 1 keeps 64 channels: its stride-2 shortcut is a max pool, without weights.
    assert not any(k.startswith("body.0.shortcut_layer") for k in keys)
    # The shortcut is registered before the residual branch, as in the official module.
    assert keys.index("body.3.shortcut_layer.0.weight") < keys.index("body.3.res_layer.0.weight")
    shapes = {
        "input_layer.2.weight": (64,),
        "body.3.shortcut_layer.0.weight": (128, 64, 1, 1),
        "body.3.res_layer.1.weight": (128, 64, 3, 3),
        "body.3.res_layer.2.weight": (128,),
        "body.3.res_layer.3.weight": (128, 128, 3, 3),
        "body.3.res_layer.5.fc1.weight": (8, 128, 1, 1),
        "body.23.res_layer.5.fc2.weight": (512, 32, 1, 1),
        "output_layer.0.running_var": (512,),
        "output_layer.3.weight": (512, 512 * 7 * 7),
        "output_layer.4.bias": (512,),
    }
    assert {k: tuple(state[k].shape) for k in shapes} == shapes
    assert "body.24.res_layer.0.weight" not in state


def test_round_trip_through_load_arcface(network, weights, tmp_path):
    loaded = load_arcface(weights)
    assert not loaded.training
    assert not any(p.requires_grad for p in loaded.parameters())
    expected = network.state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in loaded.state_dict().items())

    # DataParallel prefix and a pre-0.4.1 file without BN counters load as well.
    old = {f"module.{k}": v for k, v in expected.items() if not k.endswith("num_batches_tracked")}
    torch.save(old, tmp_path / "old.pth")
    reloaded = load_arcface(tmp_path / "old.pth")
    assert torch.equal(reloaded.output_layer[3].weight, network.output_layer[3].weight)


def test_wrong_files_give_clear_errors(network, tmp_path):
    truncated = tmp_path / "truncated.pth"
    torch.save({"body.0.res_layer.1.weight": torch.zeros(64, 64, 3, 3)}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_arcface(truncated)

    wrapped = tmp_path / "wrapped.pth"
    torch.save({"epoch": 3, "weights": {"a": torch.zeros(1)}}, wrapped)
    with pytest.raises(CheckpointError, match="plain ArcFace IR-SE state dict"):
        load_arcface(wrapped)

    other_net = tmp_path / "mobilefacenet.pth"
    torch.save({"conv1.conv.weight": torch.zeros(64, 3, 3, 3)}, other_net)
    with pytest.raises(CheckpointError, match="no 'body.N' keys"):
        load_arcface(other_net)

    shallow = tmp_path / "shallow.pth"
    torch.save({f"body.{i}.res_layer.1.weight": torch.zeros(1) for i in range(10)}, shallow)
    with pytest.raises(CheckpointError, match="10 body units fit no IR-SE depth"):
        load_arcface(shallow)

    state = network.state_dict()
    del state["body.5.res_layer.3.weight"]
    state["body.5.res_layer.3.weight_extra"] = torch.zeros(1)
    damaged = tmp_path / "damaged.pth"
    torch.save(state, damaged)
    with pytest.raises(CheckpointError, match="missing keys: body.5.res_layer.3.weight;"):
        load_arcface(damaged)


def test_gpen_crop_region():
    torch.manual_seed(0)
    for size, (top, bottom, left, right) in (
        (256, (35, 33, 32, 36)),
        (512, (70, 66, 64, 72)),
        (1024, (140, 132, 128, 144)),
    ):
        images = torch.rand(1, 3, size, size)
        region = images[..., top : size - bottom, left : size - right]
        expected = F.adaptive_avg_pool2d(region, (112, 112))
        assert torch.equal(gpen_crop(images), expected)
    # Smaller faces: the same face region, scaled (GPEN's H // 256 would be 0 there).
    images = torch.rand(2, 3, 64, 64)
    assert torch.equal(gpen_crop(images), F.adaptive_avg_pool2d(images[..., 9:56, 8:55], 112))


def test_network_rejects_uncropped_input(network):
    with pytest.raises(ValueError, match="112x112"):
        network(torch.zeros(1, 3, 128, 128))


def test_identity_loss_with_arcface(weights):
    from faceprior.train.losses.identity import IdentityLoss

    loss = IdentityLoss(weights, "arcface-ir-se50").train()
    assert not loss.net.training
    torch.manual_seed(0)
    face = torch.rand(1, 3, 256, 256) * 2 - 1
    outside = face.clone()
    outside[..., :35, :] = 1.0  # above the crop
    outside[..., :, 256 - 36 :] = -1.0  # right of the crop
    inside = face.clone()
    inside[..., 100:140, 100:140] = 0.0
    with torch.no_grad():
        embeddings = loss.embed(torch.cat([face, outside, inside]))
    assert embeddings.shape == (3, 512)
    assert torch.allclose(embeddings.norm(dim=1), torch.ones(3), atol=1e-5)
    assert torch.equal(embeddings[0], embeddings[1])
    assert not torch.allclose(embeddings[0], embeddings[2], atol=1e-3)

    assert loss(face, face).item() == pytest.approx(0.0, abs=1e-5)
    other = torch.flip(face, dims=[-1]).requires_grad_(True)
    value = loss(other, face)
    value.backward()
    assert 0 < value.item() <= 2 and other.grad.abs().sum() > 0
    expected = 1 - (loss.embed(other.detach()) * embeddings[0]).sum()
    assert value.item() == pytest.approx(expected.item(), abs=1e-5)


def test_unknown_backbone_lists_both(weights):
    from faceprior.train.losses.identity import IdentityLoss

    with pytest.raises(ValueError, match="'mobilefacenet', 'arcface-ir-se50'"):
        IdentityLoss(weights, "arcface")


def test_gpen_bfr_accepts_the_arcface_backbone(weights):
    from faceprior.train.config import load_config, packaged_config
    from faceprior.train.distributed import Distributed
    from faceprior.train.task import TaskContext, task_class

    config = load_config(
        packaged_config("gpen/gpen_tiny_64.yaml"),
        [
            "options.identity_backbone=arcface-ir-se50",
            f"options.identity_weights={weights}",
            "options.model.narrow=0.0625",
        ],
    )
    task = task_class(config.task)(config.options, TaskContext(torch.device("cpu"), Distributed()))
    task.build()
    assert isinstance(task.identity.net, ArcFaceIRSE)
    assert task.identity.backbone == "arcface-ir-se50"
