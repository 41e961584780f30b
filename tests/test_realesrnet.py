"""Real-ESRNet (GPEN's background super-resolution) computes what the official code computes.

Network and ``RealESRNet.process`` pipeline against ../shared/parity/realesrnet-x{1,2,4}: the
official RRDBNet on rule-generated weights (the released weights are not available here).
"""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
import torch
from conftest import load_parity_pack, shared_path

from faceprior.face.background import BackgroundUpsampler, pad_to_multiple
from faceprior.models.realesrnet import RRDBNet, detect_rrdbnet
from faceprior.models.registry import detect_architecture

pytestmark = pytest.mark.usefixtures("one_thread")
SCALES = ["x1", "x2", "x4"]


def _first_item_ok(pack, name: str, actual: np.ndarray, kind: str = "outputs") -> float:
    """Max error of a batch-1 run against the pack's first item (half the CPU time)."""
    if kind == "intermediates":
        actual = pack.slice_intermediate(name, actual)
    expected = {"outputs": pack.outputs, "intermediates": pack.intermediates}[kind][name][:1]
    assert actual.shape == expected.shape, (name, actual.shape, expected.shape)
    atol, rtol = pack.tol(name, kind)
    error = np.abs(actual.astype(np.float64) - expected)
    assert np.all(error <= atol + rtol * np.abs(expected)), (name, float(error.max()), atol)
    return float(error.max())


@functools.cache
def _pack_and_network(name: str):
    pack = load_parity_pack(f"realesrnet-{name}")
    return pack, _network(pack)


def _network(pack) -> RRDBNet:
    state_dict = pack.torch_state_dict()
    # The official checkpoint keeps the weights under params_ema: detection must find them.
    arch, arguments, where, found = detect_architecture({"params_ema": state_dict})
    assert arch.name == "realesrnet" and where == "params_ema"
    constructor = pack.meta["model"]["constructor"]
    assert arguments == constructor
    network = RRDBNet(**arguments)
    assert list(network.state_dict()) == list(state_dict), "key order differs from official"
    network.load_state_dict(found, strict=True)
    assert sum(p.numel() for p in network.parameters()) == pack.meta["model"]["num_parameters"]
    return network.eval()


# x4 runs its trunk at full resolution (16x the work of x1): the pipeline test covers it.
@pytest.mark.parametrize("name", ["x1", "x2"])
def test_network_matches_official(name):
    pack, network = _pack_and_network(name)
    with torch.no_grad():
        image = network(pack.torch_inputs()["x"][:1])
    _first_item_ok(pack, "image", image.numpy())


def test_network_intermediates_match_official():
    pack, network = _pack_and_network("x1")
    recorded = {}
    hooks = [
        module.register_forward_hook(
            lambda _m, _i, out, name=name: recorded.__setitem__(name, out.clone())
        )
        for name, module in network.named_modules()
        if name in pack.intermediates
    ]
    with torch.no_grad():
        network(pack.torch_inputs()["x"][:1])
    for hook in hooks:
        hook.remove()
    assert set(recorded) == set(pack.intermediates)
    for name, value in recorded.items():
        _first_item_ok(pack, name, value.numpy(), "intermediates")


@pytest.mark.parametrize("name", SCALES)
def test_untiled_pipeline_matches_official_process(name):
    """Reflect padding, crop (with the official x2 odd-size row), clamp and uint8 rounding."""
    pack, network = _pack_and_network(name)
    rgb = pack.pipeline_inputs["x"][0].transpose(1, 2, 0)
    padded = pad_to_multiple(rgb, network.input_multiple)
    ok, max_error, _ = pack.check("padded_input", padded.transpose(2, 0, 1)[None], "pipeline")
    assert ok, (name, max_error)
    upsampler = BackgroundUpsampler(network, tile_size=0)
    unclamped = upsampler.network_output(rgb)
    expected_shape = pack.pipeline_outputs["image"].shape
    cropped = unclamped[: expected_shape[2], : expected_shape[3]].transpose(2, 0, 1)[None]
    ok, max_error, _ = pack.check("image", cropped, "pipeline")
    assert ok, (name, max_error)
    official = upsampler.upsample(rgb, official_size=True)
    np.testing.assert_array_equal(official, np.clip(cropped[0].transpose(1, 2, 0), 0, 1))
    as_uint8 = np.round(official * 255).astype(np.uint8)[..., ::-1]  # official: BGR
    ok, max_error, _ = pack.check("u8", as_uint8, "pipeline")
    assert ok, (name, max_error)
    # The default crop is exactly scale x the input (x2 drops the official extra row/column).
    exact = upsampler.upsample(rgb)
    scale = network.scale
    assert exact.shape == (45 * scale, 59 * scale, 3)
    np.testing.assert_array_equal(exact, official[: 45 * scale, : 59 * scale])
    if name == "x2":  # the official crop keeps one mirrored row and column for odd sizes
        assert official.shape == (91, 119, 3)


def test_detection_reads_widths_and_scale_from_shapes():
    small = RRDBNet(scale=1, num_feat=8, num_block=2, num_grow_ch=4)
    assert detect_rrdbnet(small.state_dict()) == small.arguments
    wide = RRDBNet(scale=4, num_feat=16, num_block=3, num_grow_ch=8)
    assert detect_rrdbnet(wide.state_dict()) == wide.arguments
    assert detect_rrdbnet({"conv_first.weight": torch.zeros(1)}) is None


def test_zoo_entries_point_at_the_official_files():
    from faceprior.hub.zoo import get_entry

    for scale in (1, 2, 4):
        entry = get_entry(f"realesrnet-x{scale}")
        assert entry.architecture == "realesrnet"
        assert entry.urls == (
            "https://public-vigen-video.oss-cn-shanghai.aliyuncs.com/robin/models/"
            f"realesrnet_x{scale}.pth",
        )
        model = json.loads(shared_path(f"parity/realesrnet-x{scale}/pack.json").read_text())
        constructor = model["model"]["constructor"]
        assert {k: constructor[k] for k in entry.arguments} == entry.arguments
        assert entry.parameters == model["model"]["num_parameters"]
