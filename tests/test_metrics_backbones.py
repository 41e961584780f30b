"""VGG/AlexNet feature stacks: torchvision key layout, loading, and a hand-written forward."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from faceprior.hub.checkpoint import CheckpointError
from faceprior.models.alexnet import AlexNetFeatures, load_alexnet
from faceprior.models.vgg import LPIPS_LAYERS, STYLE_LAYERS, VGGFeatures, load_vgg

# Conv indices of torchvision's cfg D (VGG16) and E (VGG19).
VGG16_CONVS = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
VGG19_CONVS = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)


@pytest.mark.parametrize(("arch", "convs"), [("vgg16", VGG16_CONVS), ("vgg19", VGG19_CONVS)])
def test_vgg_keys_follow_torchvision_layout(arch, convs):
    keys = set(VGGFeatures(arch).state_dict())
    expected = {f"features.{i}.{p}" for i in convs for p in ("weight", "bias")}
    assert keys == expected


def test_alexnet_keys_follow_torchvision_layout():
    keys = set(AlexNetFeatures().state_dict())
    assert keys == {f"features.{i}.{p}" for i in (0, 3, 6, 8, 10) for p in ("weight", "bias")}


def _vgg16_by_hand(model: VGGFeatures, x: torch.Tensor, normalize: bool) -> dict:
    """VGG16 written with functional calls only, reading weights by torchvision index."""
    sd = model.state_dict()
    if normalize:
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        x = (x - mean) / std
    out = {}
    blocks = [(0, 2), (5, 7), (10, 12, 14), (17, 19, 21), (24, 26, 28)]
    for b, convs in enumerate(blocks, start=1):
        for i, idx in enumerate(convs, start=1):
            x = F.relu(F.conv2d(x, sd[f"features.{idx}.weight"], sd[f"features.{idx}.bias"], 1, 1))
            out[f"relu{b}_{i}"] = x
        x = F.max_pool2d(x, 2)
    return out


@pytest.mark.parametrize("normalize", [True, False])
def test_vgg16_matches_functional_forward(normalize):
    torch.manual_seed(0)
    model = VGGFeatures("vgg16", normalize_input=normalize).eval()
    x = torch.rand(1, 3, 32, 32)
    got = model(x, LPIPS_LAYERS + ("relu1_1",))
    want = _vgg16_by_hand(model, x, normalize)
    for name, value in got.items():
        torch.testing.assert_close(value, want[name], rtol=1e-5, atol=1e-5)
    assert list(got) == list(LPIPS_LAYERS) + ["relu1_1"]


def test_vgg_normalize_option_changes_output():
    torch.manual_seed(0)
    a = VGGFeatures("vgg16", normalize_input=True)
    b = VGGFeatures("vgg16", normalize_input=False)
    b.load_state_dict(a.state_dict())
    x = torch.rand(1, 3, 32, 32)
    assert not torch.allclose(a(x, ["relu1_1"])["relu1_1"], b(x, ["relu1_1"])["relu1_1"])


def test_vgg_rejects_unknown_layer():
    with pytest.raises(ValueError, match="relu9_9"):
        VGGFeatures("vgg16")(torch.rand(1, 3, 16, 16), ["relu9_9"])
    with pytest.raises(ValueError, match="vgg11"):
        VGGFeatures("vgg11")


def test_alexnet_matches_functional_forward():
    torch.manual_seed(0)
    model = AlexNetFeatures().eval()
    sd = model.state_dict()
    x = torch.randn(1, 3, 64, 64)

    def conv(t, i, stride=1, padding=1):
        return F.conv2d(t, sd[f"features.{i}.weight"], sd[f"features.{i}.bias"], stride, padding)

    r1 = F.relu(conv(x, 0, 4, 2))
    r2 = F.relu(conv(F.max_pool2d(r1, 3, 2), 3, 1, 2))
    r3 = F.relu(conv(F.max_pool2d(r2, 3, 2), 6))
    r4 = F.relu(conv(r3, 8))
    r5 = F.relu(conv(r4, 10))
    got = model(x)
    for value, want in zip(got.values(), (r1, r2, r3, r4, r5), strict=True):
        torch.testing.assert_close(value, want, rtol=1e-5, atol=1e-5)


def test_load_vgg_from_torchvision_layout_file_ignores_classifier(tmp_path):
    torch.manual_seed(0)
    source = VGGFeatures("vgg19")
    state = dict(source.state_dict())
    state["classifier.0.weight"] = torch.zeros(2, 2)
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)
    loaded = load_vgg(path, "vgg19")
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(
        loaded(x, STYLE_LAYERS)["relu5_1"], source(x, STYLE_LAYERS)["relu5_1"]
    )
    assert not any(p.requires_grad for p in loaded.parameters())


def test_load_vgg_reports_wrong_variant_and_missing_features(tmp_path):
    path = tmp_path / "vgg16.pth"
    torch.save(VGGFeatures("vgg16").state_dict(), path)
    with pytest.raises(CheckpointError, match="vgg19"):
        load_vgg(path, "vgg19")
    other = tmp_path / "other.pth"
    torch.save({"classifier.0.weight": torch.zeros(1)}, other)
    with pytest.raises(CheckpointError, match="features"):
        load_alexnet(other)


def test_load_alexnet_roundtrip(tmp_path):
    torch.manual_seed(1)
    source = AlexNetFeatures()
    path = tmp_path / "alex.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}, path)
    loaded = load_alexnet(path)
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(loaded(x)["relu5"], source(x)["relu5"])
