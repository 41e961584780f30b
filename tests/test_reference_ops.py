"""Every fast path of the StyleGAN2 layers against the reference formulation beside it.

``impl="ref"`` computes each op as the official code does, step by step; the fast routes
(transposed-convolution upsampling, padding folded into the convolution, in-place
activations, shared-weight modulation, noise written into a preallocated tensor) must give
the same numbers at batch 1 and N, with autograd on and off (gradients too), and when traced.
"""

from __future__ import annotations

import pytest
import torch

from faceprior.models.registry import get_architecture
from faceprior.models.stylegan2.layers import implementation, modulated_conv2d
from faceprior.models.stylegan2.ops import (
    fused_leaky_relu,
    fused_leaky_relu_ref,
    make_fir_kernel,
    upfirdn2d,
    upfirdn2d_ref,
)

pytestmark = pytest.mark.usefixtures("one_thread")

# (up, down, pad) of every call the layers make (Blur after an upsampling conv, the ToRGB
# skip Upsample, the discriminator's downsampling blur) plus asymmetric and cropping pads.
RESAMPLING = [(1, 1, (2, 2)), (1, 1, (1, 1)), (2, 1, (2, 1)), (1, 2, (1, 1)), (1, 1, (2, 1))]
RESAMPLING += [(2, 1, (1, 2)), (1, 1, (-1, 0)), (2, 2, (1, 1))]


def _rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize(("up", "down", "pad"), RESAMPLING)
def test_upfirdn2d_fast_routes_equal_the_reference(batch, up, down, pad):
    kernel = make_fir_kernel([1, 3, 3, 1], gain=up**2)
    x = _rand(batch, 4, 8, 8).requires_grad_()
    fast = upfirdn2d(x, kernel, up, down, pad)
    ref = upfirdn2d_ref(x, kernel, up, down, pad)
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-5)
    weights = _rand(*ref.shape, seed=1)
    (grad_fast,) = torch.autograd.grad((fast * weights).sum(), x)
    (grad_ref,) = torch.autograd.grad((ref * weights).sum(), x)
    torch.testing.assert_close(grad_fast, grad_ref, rtol=1e-5, atol=1e-5)
    assert torch.equal(upfirdn2d(x, kernel, up, down, pad, impl="ref"), ref)


@pytest.mark.parametrize("grad", [False, True])
def test_fused_leaky_relu_in_place_equals_the_reference(grad):
    bias = _rand(4, seed=1)
    x = _rand(2, 4, 5, 5)
    ref = fused_leaky_relu_ref(x, bias)
    with torch.set_grad_enabled(grad):
        fast = fused_leaky_relu(x.clone(), bias, inplace=True)
    torch.testing.assert_close(fast, ref)
    assert fused_leaky_relu(x, None, impl="ref").equal(fused_leaky_relu_ref(x, None))


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("upsample", [False, True])
@pytest.mark.parametrize("demodulate", [False, True])
def test_shared_weight_modulation_equals_grouped(batch, upsample, demodulate):
    x = _rand(batch, 4, 6, 6)
    weight = _rand(5, 4, 3, 3, seed=1) * 0.2
    styles = _rand(batch, 4, seed=2) + 1
    padding = 0 if upsample else 1
    ref = modulated_conv2d(x, weight, styles, demodulate, upsample, padding, grouped=True)
    fast = modulated_conv2d(x, weight, styles, demodulate, upsample, padding, grouped=False)
    torch.testing.assert_close(fast, ref, rtol=1e-4, atol=1e-5)


def _gpen():
    arch = get_architecture("gpen")
    torch.manual_seed(0)
    network = arch.build(**arch.example).eval()
    with torch.no_grad():  # fresh noise weights are 0: give the concatenated features weight
        for name, param in network.named_parameters():
            if name.endswith("noise.weight"):
                param.fill_(0.5)
    return network


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("grad", [False, True])
def test_whole_network_fast_equals_reference(batch, grad):
    """GPEN (every StyleGAN2 layer, the noise concatenation included) both ways."""
    network = _gpen()
    faces = _rand(batch, 3, 16, 16, seed=3).clamp(-1, 1)
    with torch.set_grad_enabled(grad):
        fast = network(faces)[0]
        with implementation(network, "ref"):
            ref = network(faces)[0]
    torch.testing.assert_close(fast, ref, rtol=1e-4, atol=1e-4)
    assert fast.requires_grad == grad
    if grad:
        params = [p for p in network.parameters() if p.requires_grad]
        grads_fast = torch.autograd.grad(fast.square().sum(), params, allow_unused=True)
        with implementation(network, "ref"):
            ref = network(faces)[0]
        grads_ref = torch.autograd.grad(ref.square().sum(), params, allow_unused=True)
        for got, want in zip(grads_fast, grads_ref, strict=True):
            if want is not None:
                torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-4)


class _Image(torch.nn.Module):
    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, x):
        return self.network(x)[0]


@pytest.mark.parametrize("grad", [False, True])
def test_traced_fast_network_equals_reference(grad):
    """Traced as ONNX export traces (with autograd on), and as a plain inference trace.

    The per-sample modulation is traced for the batch size it saw (export switches it to the
    shared-weight form for a dynamic batch, tested in test_onnx_export.py).
    """
    network = _gpen()
    with torch.set_grad_enabled(grad):
        traced = torch.jit.trace(_Image(network), _rand(2, 3, 16, 16), check_trace=False)
    faces = _rand(2, 3, 16, 16, seed=4).clamp(-1, 1)
    with torch.no_grad():
        with implementation(network, "ref"):
            ref = network(faces)[0]
        torch.testing.assert_close(traced(faces), ref, rtol=1e-4, atol=1e-4)


def test_implementation_switches_every_layer_and_restores_it():
    network = _gpen()
    layers = [m for m in network.modules() if hasattr(m, "impl")]
    assert layers and all(m.impl == "fast" for m in layers)
    with implementation(network, "ref"):
        assert all(m.impl == "ref" for m in layers)
    assert all(m.impl == "fast" for m in layers)
    with pytest.raises(ValueError, match="impl must be one of"):
        with implementation(network, "cuda"):
            pass
