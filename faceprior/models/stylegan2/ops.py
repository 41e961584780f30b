"""Pure-PyTorch StyleGAN2 numerics: FIR up/down-sampling and fused bias + leaky ReLU.

These compute what the reference ``upfirdn2d_native`` and ``fused_leaky_relu`` CPU paths
compute (no compiled extension), so they run on any device PyTorch supports. The common
cases take cheaper equivalent routes: symmetric padding goes into the convolution instead of
a padded copy, and 2x upsampling is one depthwise transposed convolution instead of zero
insertion followed by a convolution four times the size.

Each op takes ``impl``: ``"fast"`` (the default, the routes above) or ``"ref"``, the official
formulation computed step by step (zero insertion, explicit padding, convolution, then
subsampling; out-of-place activation), kept beside the fast path as its specification: the
tests check every fast route against it, and ``benchmarks/`` time the two.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LEAKY_SLOPE = 0.2
ACTIVATION_GAIN = math.sqrt(2.0)
IMPLS = ("fast", "ref")


def make_fir_kernel(taps: list[int] | tuple[int, ...], gain: float = 1.0) -> torch.Tensor:
    """Separable 2-D FIR kernel ``outer(taps, taps)`` normalised to sum ``gain``."""
    k = torch.tensor(taps, dtype=torch.float32)
    k = k[None, :] * k[:, None] if k.ndim == 1 else k
    return k / k.sum() * gain


def upfirdn2d(
    x: torch.Tensor,
    kernel: torch.Tensor,
    up: int = 1,
    down: int = 1,
    pad: tuple[int, int] = (0, 0),
    impl: str = "fast",
) -> torch.Tensor:
    """Upsample by zero insertion, pad, convolve with ``kernel`` (true convolution), downsample.

    ``pad`` is (before, after) and applies to both spatial axes; negative values crop.
    ``impl="ref"`` computes it literally, as :func:`upfirdn2d_ref`.
    """
    if impl == "ref":
        return upfirdn2d_ref(x, kernel, up, down, pad)
    channels = int(x.shape[1])  # a constant in traced graphs: exporters need static kernels
    pad0, pad1 = pad
    taps = kernel.shape[-1]
    if up > 1 and down == 1:
        # Zero insertion + padding + convolution is a strided transposed convolution whose
        # full output is cropped by ``taps - 1 - pad0`` in front and by as much at the back
        # when the crop is symmetric (ToRGB's 2x upsampling: pad (2, 1), 4 taps).
        crop = taps - 1 - pad0
        full = (x.shape[-1] - 1) * up + taps
        kept = x.shape[-1] * up + pad0 + pad1 - taps + 1
        if crop >= 0 and full - crop - kept == crop and x.shape[-1] == x.shape[-2]:
            weight = kernel.to(dtype=x.dtype)[None, None].expand(channels, 1, taps, taps)
            return F.conv_transpose2d(x, weight, stride=up, padding=crop, groups=channels)
    if up > 1:
        batch, _, height, width = x.shape
        x = x.reshape(batch, channels, height, 1, width, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(batch, channels, height * up, width * up)
    weight = torch.flip(kernel, [0, 1]).to(dtype=x.dtype)
    weight = weight[None, None].expand(channels, 1, *kernel.shape)
    if pad0 == pad1 and pad0 >= 0:
        return F.conv2d(x, weight, stride=down, padding=pad0, groups=channels)
    x = F.pad(x, [pad0, pad1, pad0, pad1])
    return F.conv2d(x, weight, stride=down, groups=channels)


def upfirdn2d_ref(
    x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1, pad: tuple[int, int] = (0, 0)
) -> torch.Tensor:
    """The reference of :func:`upfirdn2d`: zero insertion, padding, convolution, subsampling,
    each as its own step (the official CPU path)."""
    batch, channels, height, width = x.shape
    if up > 1:
        x = x.reshape(batch, channels, height, 1, width, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(batch, channels, height * up, width * up)
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    weight = torch.flip(kernel, [0, 1]).to(x.dtype)[None, None].expand(channels, 1, *kernel.shape)
    return F.conv2d(x, weight, groups=channels)[:, :, ::down, ::down]


def fused_leaky_relu(
    x: torch.Tensor,
    bias: torch.Tensor | None,
    scale: float = ACTIVATION_GAIN,
    inplace: bool = False,
    impl: str = "fast",
) -> torch.Tensor:
    """``scale * leaky_relu(x + bias, 0.2)`` with the bias broadcast over dim 1.

    ``inplace`` reuses ``x``'s memory when autograd is off (the caller owns ``x``); at
    inference this saves two full passes over the largest activations of the network.
    ``impl="ref"`` never works in place (:func:`fused_leaky_relu_ref`).
    """
    if impl == "ref":
        return fused_leaky_relu_ref(x, bias, scale)
    shape = None if bias is None else [1, bias.shape[0]] + [1] * (x.ndim - 2)
    if inplace and not torch.is_grad_enabled():
        if bias is not None:
            x.add_(bias.view(shape).to(x.dtype))
        return F.leaky_relu_(x, LEAKY_SLOPE).mul_(scale)
    if bias is not None:
        x = x + bias.view(shape).to(x.dtype)
    return F.leaky_relu(x, LEAKY_SLOPE) * scale


def fused_leaky_relu_ref(
    x: torch.Tensor, bias: torch.Tensor | None, scale: float = ACTIVATION_GAIN
) -> torch.Tensor:
    """The reference of :func:`fused_leaky_relu`: bias, activation and gain out of place."""
    if bias is not None:
        x = x + bias.view([1, bias.shape[0]] + [1] * (x.ndim - 2)).to(x.dtype)
    return F.leaky_relu(x, LEAKY_SLOPE) * scale
