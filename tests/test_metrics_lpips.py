"""LPIPS against a hand-written functional forward on small random weights."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from faceprior.hub.checkpoint import CheckpointError
from faceprior.metrics.lpips import CHANNELS, build_lpips, load_lpips
from faceprior.models.alexnet import AlexNetFeatures
from faceprior.models.vgg import VGGFeatures


def _lins(net, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(1, c, 1, 1, generator=g) for c in CHANNELS[net]]


def _alex_by_hand(sd, x):
    def conv(t, i, stride=1, padding=1):
        return F.conv2d(t, sd[f"features.{i}.weight"], sd[f"features.{i}.bias"], stride, padding)

    r1 = F.relu(conv(x, 0, 4, 2))
    r2 = F.relu(conv(F.max_pool2d(r1, 3, 2), 3, 1, 2))
    r3 = F.relu(conv(F.max_pool2d(r2, 3, 2), 6))
    r4 = F.relu(conv(r3, 8))
    return [r1, r2, r3, r4, F.relu(conv(r4, 10))]


def _vgg_by_hand(sd, x):
    out = []
    for block in [(0, 2), (5, 7), (10, 12, 14), (17, 19, 21), (24, 26, 28)]:
        for idx in block:
            x = F.relu(F.conv2d(x, sd[f"features.{idx}.weight"], sd[f"features.{idx}.bias"], 1, 1))
        out.append(x)
        x = F.max_pool2d(x, 2)
    return out


def _lpips_by_hand(features, lins, a, b):
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
    fa = features((a - shift) / scale)
    fb = features((b - shift) / scale)
    total = 0
    for x, y, w in zip(fa, fb, lins, strict=True):
        x = x / (torch.sqrt(torch.sum(x**2, dim=1, keepdim=True)) + 1e-10)
        y = y / (torch.sqrt(torch.sum(y**2, dim=1, keepdim=True)) + 1e-10)
        total = total + F.conv2d((x - y) ** 2, w).mean(dim=(2, 3)).flatten()
    return total


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_matches_functional_forward(net):
    torch.manual_seed(0)
    backbone = AlexNetFeatures() if net == "alex" else VGGFeatures("vgg16", normalize_input=False)
    lins = _lins(net)
    model = build_lpips(net, backbone, lins)
    size = 64 if net == "alex" else 32
    a = torch.rand(2, 3, size, size) * 2 - 1
    b = (a + 0.3 * torch.randn_like(a)).clamp(-1, 1)
    sd = backbone.state_dict()
    by_hand = _alex_by_hand if net == "alex" else _vgg_by_hand
    want = _lpips_by_hand(lambda t: by_hand(sd, t), lins, a, b)
    got = model(a, b)
    assert got.shape == (2,)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
    assert torch.all(got > 0)
    torch.testing.assert_close(model(a, a), torch.zeros(2))


def test_load_lpips_from_files_and_reject_wrong_linear(tmp_path):
    torch.manual_seed(0)
    backbone = AlexNetFeatures()
    torch.save(backbone.state_dict(), tmp_path / "alex_backbone.pth")
    lins = _lins("alex", 3)
    torch.save({f"lin{k}.model.1.weight": w for k, w in enumerate(lins)}, tmp_path / "alex.pth")
    model = load_lpips("alex", tmp_path / "alex_backbone.pth", tmp_path / "alex.pth")
    a = torch.rand(1, 3, 64, 64) * 2 - 1
    b = torch.rand(1, 3, 64, 64) * 2 - 1
    torch.testing.assert_close(model(a, b), build_lpips("alex", backbone, lins)(a, b))
    with pytest.raises(CheckpointError, match="vgg needs"):
        load_lpips("vgg", tmp_path / "alex_backbone.pth", tmp_path / "alex.pth")
    with pytest.raises(CheckpointError, match="no LPIPS linear"):
        load_lpips("alex", tmp_path / "alex_backbone.pth", tmp_path / "alex_backbone.pth")
