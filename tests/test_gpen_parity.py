"""GPEN networks compute exactly what the official code computes (shared/parity packs)."""

from __future__ import annotations

import pytest
import torch
from conftest import load_parity_pack

from faceprior.models.gpen import FullGenerator, FullGeneratorSR, GPENDiscriminator


def _constructor(pack) -> dict:
    arguments = dict(pack.meta["model"]["constructor"])
    assert arguments.pop("isconcat", True) is True
    assert arguments.pop("blur_kernel", [1, 3, 3, 1]) == [1, 3, 3, 1]
    assert arguments.pop("lr_mlp", 0.01) == 0.01
    return arguments


def _strict_load(network, pack):
    state_dict = pack.torch_state_dict()
    assert list(network.state_dict()) == list(state_dict), "key order differs from official"
    network.load_state_dict(state_dict, strict=True)
    return network.eval()


@pytest.mark.parametrize("name", ["gpen-bfr-256", "gpen-bfr-512", "gpen-bfr-1024"])
def test_full_generator_matches_official(name):
    pack = load_parity_pack(name)
    network = _strict_load(FullGenerator(**_constructor(pack)), pack)
    assert sum(p.numel() for p in network.parameters()) == pack.meta["model"]["num_parameters"]
    with torch.no_grad():
        image, latent = network(pack.torch_inputs()["x"])
    assert latent is None
    ok, max_error, _ = pack.check("image", image.numpy())
    assert ok, (name, max_error, pack.tol("image"))


def test_full_generator_intermediates_match_official():
    pack = load_parity_pack("gpen-bfr-256")
    network = _strict_load(FullGenerator(**_constructor(pack)), pack)
    recorded = {}
    hooks = [
        module.register_forward_hook(
            lambda _m, _i, out, name=name: recorded.__setitem__(
                name, out[0] if isinstance(out, tuple) else out
            )
        )
        for name, module in network.named_modules()
        if name in pack.intermediates
    ]
    with torch.no_grad():
        network(pack.torch_inputs()["x"])
    for hook in hooks:
        hook.remove()
    assert set(recorded) == set(pack.intermediates)
    for name, value in recorded.items():
        ok, max_error, _ = pack.check(name, value.numpy(), "intermediates")
        assert ok, (name, max_error)


def test_sr_generator_matches_official_with_given_noise():
    pack = load_parity_pack("gpen-sr-64to128")
    network = _strict_load(FullGeneratorSR(**_constructor(pack)), pack)
    inputs = pack.torch_inputs()
    with torch.no_grad():
        image, _ = network(inputs["x"], noise=[inputs["noise0"], inputs["noise1"]])
        other, _ = network(inputs["x"], noise=[inputs["noise1"], inputs["noise0"]])
    ok, max_error, _ = pack.check("image", image.numpy())
    assert ok, max_error
    assert not torch.allclose(image, other), "the injected noise must reach the output"


def test_discriminator_matches_official_whole_batch_stddev():
    pack = load_parity_pack("gpen-discriminator-256")
    arguments = {k: v for k, v in _constructor(pack).items() if k != "blur_kernel"}
    network = _strict_load(GPENDiscriminator(**arguments), pack)
    x = pack.torch_inputs()["x"]
    with torch.no_grad():
        logits = network(x)
        first_half = network(x[:3])
    ok, max_error, _ = pack.check("logits", logits.numpy())
    assert ok, max_error
    # Whole-batch stddev: every logit depends on every item of the call.
    assert not torch.allclose(logits[:3], first_half, atol=1e-6)
