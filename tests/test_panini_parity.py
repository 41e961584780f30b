"""Panini-Net against the official code: parity packs, outputs and intermediate tensors.

With random weights the encoder branch barely moves the final image, so every recorded
branch tensor (DRE output, DAFI weights, encoder features, latents, fused features, RGB skips)
is compared too. The full-size MFR pack (1024 px output) runs once per session.
"""

from __future__ import annotations

import time

import pytest
import torch
from conftest import load_parity_pack

from faceprior.models.panini.degradation_encoder import DegradationEncoder
from faceprior.models.panini.network import PaniniMFR, PaniniSR

ARGUMENTS = ("in_size", "out_size", "style_channels", "rrdb_channels", "num_rrdbs")


def _build(pack, cls):
    constructor = pack.meta["model"]["constructor"]
    network = cls(**{k: constructor[k] for k in ARGUMENTS}).eval()
    network.load_state_dict(pack.torch_state_dict(), strict=True)
    return network


def _run_with_intermediates(network, pack):
    """Forward the pack input, capturing every recorded official sub-module tensor."""
    modules = dict(network.named_modules())
    captured, handles = {}, []
    for name, spec in pack.meta["intermediates"].items():

        def hook(module, inputs, output, name=name, spec=spec):
            value = inputs if spec["hook"] == "input" else output
            captured[name] = value if spec["index"] is None else value[spec["index"]]

        handles.append(modules[spec["module"]].register_forward_hook(hook))
    try:
        with torch.no_grad():
            image = network(torch.from_numpy(pack.inputs["lq"]))
    finally:
        for handle in handles:
            handle.remove()
    return image, captured


def _assert_pack(pack, image, captured):
    ok, err, _ = pack.check("image", image.numpy())
    assert ok, ("image", err, pack.tol("image"))
    assert set(captured) == set(pack.meta["intermediates"])
    for name, value in captured.items():
        ok, err, _ = pack.check(name, value.numpy(), "intermediates")
        assert ok, (name, err, pack.tol(name, "intermediates"))


@pytest.fixture(scope="module")
def mfr_run():
    pack = load_parity_pack("panini-mfr")
    network = _build(pack, PaniniMFR)
    start = time.perf_counter()
    image, captured = _run_with_intermediates(network, pack)
    seconds = time.perf_counter() - start
    print(f"\npanini-mfr forward (1x3x512x512 -> 1024): {seconds:.1f} s on CPU")
    return pack, network, image, captured


def test_mfr_state_dict_is_the_official_layout(mfr_run):
    pack, network, _, _ = mfr_run
    expected = [(k, tuple(shape)) for k, shape, _ in pack.meta["state_dict"]]
    assert [(k, tuple(v.shape)) for k, v in network.state_dict().items()] == expected
    assert sum(p.numel() for p in network.parameters()) == pack.meta["model"]["num_parameters"]


def test_mfr_matches_official_output_and_intermediates(mfr_run):
    pack, _, image, captured = mfr_run
    _assert_pack(pack, image, captured)


def test_sr_small_matches_official_output_and_intermediates():
    pack = load_parity_pack("panini-sr-small")
    network = _build(pack, PaniniSR)
    expected = [(k, tuple(shape)) for k, shape, _ in pack.meta["state_dict"]]
    assert [(k, tuple(v.shape)) for k, v in network.state_dict().items()] == expected
    image, captured = _run_with_intermediates(network, pack)
    _assert_pack(pack, image, captured)
    # Batch items are modulated independently: the real face and the noise image differ.
    assert (image[0] - image[1]).abs().max() > 0.1


def test_degradation_encoder_matches_moco_copy():
    pack = load_parity_pack("panini-degradation-encoder")
    encoder = DegradationEncoder().eval()
    encoder.load_state_dict(pack.torch_state_dict(), strict=True)
    with torch.no_grad():
        x = torch.from_numpy(pack.inputs["x"])
        representation = encoder(x)
        projected = encoder.project(representation)
    for name, value in (("fea", representation), ("mlp_out", projected)):
        ok, err, _ = pack.check(name, value.numpy())
        assert ok, (name, err, pack.tol(name))
