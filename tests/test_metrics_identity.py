"""MobileFaceNet (vs a functional forward and the real checkpoint) and the identity metric."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import shared_path

from faceprior.hub.checkpoint import CheckpointError
from faceprior.metrics.identity import IdentityScorer
from faceprior.models.mobilefacenet import (
    BOTTLENECK_SETTING,
    SPHEREFACE_TEMPLATE,
    MobileFaceNet,
    embed,
    ffhq_crop_matrix,
    load_mobilefacenet,
    warp_crops,
)
from faceprior.models.templates import similarity_transform


def _randomise(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            if isinstance(m, torch.nn.PReLU):
                m.weight.copy_(torch.rand(m.num_parameters, generator=g) * 0.5)
    return model.eval()


def _forward_by_hand(sd, x):
    def bn(t, p):
        return F.batch_norm(
            t, sd[f"{p}.running_mean"], sd[f"{p}.running_var"], sd[f"{p}.weight"], sd[f"{p}.bias"]
        )

    def block(t, p, stride=1, padding=0, groups=1, act=True):
        t = bn(F.conv2d(t, sd[f"{p}.conv.weight"], None, stride, padding, 1, groups), f"{p}.bn")
        return F.prelu(t, sd[f"{p}.prelu.weight"]) if act else t

    x = block(x, "conv1", 2, 1)
    x = block(x, "dw_conv1", 1, 1, 64)
    index, channels = 0, 64
    for t, c, n, s in BOTTLENECK_SETTING:
        for i in range(n):
            p = f"blocks.{index}.conv"
            stride = s if i == 0 else 1
            hidden = channels * t
            y = F.prelu(bn(F.conv2d(x, sd[f"{p}.0.weight"]), f"{p}.1"), sd[f"{p}.2.weight"])
            y = F.conv2d(y, sd[f"{p}.3.weight"], None, stride, 1, 1, hidden)
            y = F.prelu(bn(y, f"{p}.4"), sd[f"{p}.5.weight"])
            y = bn(F.conv2d(y, sd[f"{p}.6.weight"]), f"{p}.7")
            x = x + y if stride == 1 and channels == c else y
            channels, index = c, index + 1
    x = block(x, "conv2")
    x = block(x, "linear7", groups=512, act=False)
    return block(x, "linear1", act=False).flatten(1)


def test_mobilefacenet_matches_functional_forward():
    torch.manual_seed(0)
    model = _randomise(MobileFaceNet())
    x = torch.randn(2, 3, 112, 96)
    with torch.no_grad():
        got = model(x)
        want = _forward_by_hand(model.state_dict(), x)
    assert got.shape == (2, 128)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_real_checkpoint_loads_strict_and_separates_identities():
    path = shared_path("data/weights/mobilefacenet_casia_068.ckpt")
    model = load_mobilefacenet(path)
    assert sum(t.numel() for t in model.state_dict().values()) == 1_019_186
    faces = [shared_path(f"data/hq/ffhq_0000{i}.jpg") for i in range(4)]
    images = np.stack([cv2.imread(str(p))[..., ::-1] for p in faces]).astype(np.float32) / 255
    crops = warp_crops(torch.from_numpy(images).permute(0, 3, 1, 2), ffhq_crop_matrix(512))
    with torch.no_grad():
        e = embed(model, crops)
        flipped = embed(model, crops.flip(-1))
    same = (e * flipped).sum(1)
    others = (e @ e.T)[~torch.eye(4, dtype=torch.bool)]
    assert torch.all(same > 0.9), same
    assert others.max() < same.min() - 0.2 and others.mean() < 0.3, others
    scorer = IdentityScorer(model)
    result = scorer.score(images[0] * 255.0, images[1] * 255.0)
    assert result["ids"] == pytest.approx(float(e[0] @ e[1]), abs=1e-5)
    assert result["id_angle"] == pytest.approx(np.degrees(np.arccos(result["ids"])))


def test_load_mobilefacenet_rejects_other_files(tmp_path):
    torch.save({"net_state_dict": {"conv1.conv.weight": torch.zeros(64, 3, 3, 3)}}, tmp_path / "x")
    with pytest.raises(CheckpointError, match="missing keys"):
        load_mobilefacenet(tmp_path / "x")


def test_similarity_fit_and_crop_match_opencv():
    angle, scale, shift = 0.3, 1.7, np.array([5.0, -3.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    source = SPHEREFACE_TEMPLATE
    matrix = similarity_transform(source, source @ rot.T + shift)
    np.testing.assert_allclose(matrix, np.hstack([rot, shift[:, None]]), atol=1e-9)
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 1, (160, 160, 3)).astype(np.float32)
    m = ffhq_crop_matrix(160)
    want = cv2.warpAffine(image, m, (96, 112), flags=cv2.INTER_LINEAR)
    got = warp_crops(torch.from_numpy(image).permute(2, 0, 1)[None], m)[0].permute(1, 2, 0)
    np.testing.assert_allclose(got.numpy()[2:-2, 2:-2], want[2:-2, 2:-2], atol=2e-3)


def test_identity_scorer_on_identical_faces_and_bad_shapes():
    torch.manual_seed(0)
    scorer = IdentityScorer(_randomise(MobileFaceNet()))
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 255, (128, 128, 3))
    same = scorer.score(a, a)
    assert same["ids"] == pytest.approx(1.0, abs=1e-5)
    assert same["id_angle"] == pytest.approx(0.0, abs=0.5)
    with pytest.raises(ValueError, match="square"):
        scorer.score(a[:100], a[:100])
