"""The fidelity knob: DAFI interpolation moved toward the input features or the GAN prior.

Direction, measured on the panini-sr-small parity weights: at every DAFI scale k the fused
feature F_k = m_gan * G_k + m_enc * E_k approaches the projected encoder feature E_k as the
fidelity rises; ||F_k - E_k|| / ||E_k|| falls strictly from f = 0 (F_k = G_k, prior only) to
f = 1 (F_k = E_k, input only), and f = 0.5 is the released behaviour.
"""

from __future__ import annotations

import pytest
import torch
from conftest import load_parity_pack

from faceprior.models.panini.dafi import NUM_SCALES, scale_fidelity
from faceprior.models.panini.network import PaniniSR

FIDELITIES = (0.0, 0.25, 0.5, 0.75, 1.0)


@pytest.fixture(scope="module")
def sr_small():
    pack = load_parity_pack("panini-sr-small")
    network = PaniniSR(64, 128, 64, 16, 2).eval()
    network.load_state_dict(pack.torch_state_dict())
    return network, torch.from_numpy(pack.inputs["lq"][:1]), pack


def _run(network, x, fidelity):
    """Output plus, per scale, the prior feature G, the encoder feature E and the fused F."""
    taps: dict[str, torch.Tensor] = {}
    handles = []
    for k in range(NUM_SCALES):
        gan_module = network.generator.conv1 if k == 0 else network.generator.convs[2 * k - 1]
        handles += [
            gan_module.register_forward_hook(lambda m, i, o, k=k: taps.__setitem__(f"G{k}", o)),
            network.fusion_out[k].register_forward_hook(
                lambda m, i, o, k=k: taps.__setitem__(f"E{k}", o)
            ),
            network.generator.convs[2 * k].register_forward_hook(
                lambda m, i, o, k=k: taps.__setitem__(f"F{k}", i[0])
            ),
        ]
    try:
        with torch.no_grad():
            image = network(x, fidelity=fidelity)
    finally:
        for handle in handles:
            handle.remove()
    return image, taps


@pytest.fixture(scope="module")
def sweep(sr_small):
    network, x, _ = sr_small
    return {f: _run(network, x, f) for f in FIDELITIES}


def _distance(taps, k):
    return float((taps[f"F{k}"] - taps[f"E{k}"]).norm() / taps[f"E{k}"].norm())


def test_fused_features_approach_encoder_features_as_fidelity_rises(sweep):
    for k in range(NUM_SCALES):
        distances = [_distance(sweep[f][1], k) for f in FIDELITIES]
        assert all(a > b for a, b in zip(distances, distances[1:])), (k, distances)
        assert distances[-1] < 1e-6
        prior_only = sweep[0.0][1]
        assert torch.allclose(prior_only[f"F{k}"], prior_only[f"G{k}"], atol=1e-6)


def test_half_fidelity_is_the_released_behaviour_and_the_knob_moves_the_image(sr_small, sweep):
    pack = sr_small[2]
    released = torch.from_numpy(pack.outputs["image"][:1])  # the official output
    assert (sweep[0.5][0] - released).abs().max() <= pack.tol("image")[0]
    assert (sweep[0.0][0] - sweep[1.0][0]).abs().max() > 0.1
    assert (sweep[0.75][0] - released).abs().max() > 1e-3


def test_per_scale_fidelity_only_moves_its_scale(sr_small, sweep):
    network, x, _ = sr_small
    _, taps = _run(network, x, [0.5, 0.5, 0.5, 0.5, 1.0])
    released = sweep[0.5][1]
    for k in range(4):
        assert torch.allclose(taps[f"F{k}"], released[f"F{k}"], atol=1e-5)
    assert torch.allclose(taps["F4"], taps["E4"], atol=1e-6)


def test_scale_fidelity_keeps_a_convex_pair_and_rises_monotonically():
    logits = torch.randn(3, NUM_SCALES, 2, 512, 1, 1) * 4
    weights = torch.softmax(logits, dim=2)
    m_gan, m_enc = weights[:, :, 0], weights[:, :, 1]
    previous = None
    for f in torch.linspace(0, 1, 11).tolist():
        gan, enc = scale_fidelity(m_gan, m_enc, f)
        assert torch.allclose(gan + enc, torch.ones_like(enc))
        if previous is not None:
            assert bool((enc >= previous - 1e-7).all())
        previous = enc
    assert torch.equal(scale_fidelity(m_gan, m_enc, 0.0)[1], torch.zeros_like(m_enc))
    assert torch.equal(scale_fidelity(m_gan, m_enc, 1.0)[1], torch.ones_like(m_enc))
    assert torch.allclose(scale_fidelity(m_gan, m_enc, 0.5)[1], m_enc)
    # Saturated softmax entries still reach the end points exactly.
    saturated = torch.zeros_like(m_enc)
    assert torch.equal(scale_fidelity(1 - saturated, saturated, 1.0)[1], torch.ones_like(m_enc))


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), [0.5, 0.5]])
def test_scale_fidelity_rejects_bad_values(bad):
    m = torch.full((1, NUM_SCALES, 512, 1, 1), 0.5)
    with pytest.raises(ValueError, match="fidelity"):
        scale_fidelity(m, m, bad)
