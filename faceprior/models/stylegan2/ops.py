"""Pure-PyTorch StyleGAN2 numerics: FIR up/down-sampling and fused bias + leaky ReLU.

These reproduce the reference ``upfirdn2d_native`` and ``fused_leaky_relu`` CPU paths exactly
(no compiled extension), so they run on any device PyTorch supports.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LEAKY_SLOPE = 0.2
ACTIVATION_GAIN = math.sqrt(2.0)


def make_fir_kernel(taps: list[int] | tuple[int, ...], gain: float = 1.0) -> torch.Tensor:
    """Separable 2-D FIR kernel ``outer(taps, taps)`` normalised to sum ``gain``."""
    k = torch.tensor(taps, dtype=torch.float32)
    k = k[None, :] * k[:, None] if k.ndim == 1 else k
    return k / k.sum() * gain


def upfirdn2d(
    x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1, pad: tuple[int, int] = (0, 0)
) -> torch.Tensor:
    """Upsample by zero insertion, pad, convolve with ``kernel`` (true convolution), downsample.

    ``pad`` is (before, after) and applies to both spatial axes; negative values crop.
    """
    batch, channels, height, width = x.shape
    if up > 1:
        x = x.reshape(batch, channels, height, 1, width, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(batch, channels, height * up, width * up)
    pad0, pad1 = pad
    if pad0 != 0 or pad1 != 0:
        x = F.pad(x, [pad0, pad1, pad0, pad1])
    weight = torch.flip(kernel, [0, 1]).to(dtype=x.dtype)
    weight = weight[None, None].expand(channels, 1, *kernel.shape)
    x = F.conv2d(x, weight, groups=channels)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def fused_leaky_relu(x: torch.Tensor, bias: torch.Tensor | None, scale: float = ACTIVATION_GAIN):
    """``scale * leaky_relu(x + bias, 0.2)`` with the bias broadcast over dim 1."""
    if bias is not None:
        shape = [1, bias.shape[0]] + [1] * (x.ndim - 2)
        x = x + bias.view(shape).to(x.dtype)
    return F.leaky_relu(x, LEAKY_SLOPE) * scale
