"""The official GPEN/rosinality formulation of the StyleGAN2 ops, for speed comparisons.

Zero insertion + explicit padding + convolution for every FIR filter, per-sample grouped
modulated convolution at every batch size, and out-of-place activations: what the official
CPU path computes step by step. ``use_reference_ops()`` swaps them into faceprior's modules.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from faceprior.models.stylegan2 import layers, ops


def upfirdn2d_reference(x, kernel, up=1, down=1, pad=(0, 0)):
    batch, channels, height, width = x.shape
    if up > 1:
        x = x.reshape(batch, channels, height, 1, width, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(batch, channels, height * up, width * up)
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    weight = torch.flip(kernel, [0, 1]).to(x.dtype)[None, None].expand(channels, 1, *kernel.shape)
    return F.conv2d(x, weight, groups=channels)[:, :, ::down, ::down]


def fused_leaky_relu_reference(x, bias, scale=ops.ACTIVATION_GAIN, inplace=False):
    if bias is not None:
        x = x + bias.view([1, bias.shape[0]] + [1] * (x.ndim - 2)).to(x.dtype)
    return F.leaky_relu(x, ops.LEAKY_SLOPE) * scale


@contextlib.contextmanager
def use_reference_ops():
    saved = (layers.upfirdn2d, layers.fused_leaky_relu, layers.modulated_conv2d)
    grouped = saved[2]
    layers.upfirdn2d = upfirdn2d_reference
    layers.fused_leaky_relu = fused_leaky_relu_reference
    layers.modulated_conv2d = lambda *args, **kw: grouped(*args, **{**kw, "grouped": True})
    try:
        yield
    finally:
        layers.upfirdn2d, layers.fused_leaky_relu, layers.modulated_conv2d = saved
