"""Equalized-learning-rate StyleGAN2 layers.

Module and parameter names follow the layout of the reference PyTorch port used by GPEN
(``conv.weight``, ``conv.modulation.*``, ``noise.weight``, ``activate.bias``, ``*.kernel``
buffers), so official checkpoints load with ``strict=True``. Weights are stored N(0, 1) and
rescaled at run time (equalized learning rate), which is why every layer keeps a ``scale``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn import functional as F

from .ops import IMPLS, fused_leaky_relu, make_fir_kernel, upfirdn2d

DEFAULT_BLUR = (1, 3, 3, 1)


class PixelNorm(nn.Module):
    """Normalise each latent vector to unit root-mean-square (eps 1e-8)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(torch.mean(x * x, dim=1, keepdim=True) + 1e-8)


class FusedLeakyReLU(nn.Module):
    """Learned per-channel bias followed by sqrt(2)-scaled leaky ReLU.

    ``inplace=True`` is for layers that own their input (a fresh conv output): at inference
    the activation then overwrites it instead of allocating two more full-size tensors.
    """

    def __init__(self, channels: int, inplace: bool = False):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.inplace = inplace
        self.impl = "fast"  # see implementation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_leaky_relu(x, self.bias, inplace=self.inplace, impl=self.impl)


class Blur(nn.Module):
    """FIR low-pass filter with fixed padding; ``upsample_factor`` rescales the kernel gain."""

    def __init__(self, taps=DEFAULT_BLUR, pad: tuple[int, int] = (0, 0), upsample_factor: int = 1):
        super().__init__()
        self.register_buffer("kernel", make_fir_kernel(taps, gain=upsample_factor**2))
        self.pad = pad
        self.impl = "fast"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad, impl=self.impl)


class Upsample(nn.Module):
    """2x FIR upsampling (zero insertion + blur), used on the ToRGB skip path."""

    def __init__(self, taps=DEFAULT_BLUR, factor: int = 2):
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_fir_kernel(taps, gain=factor**2))
        p = len(taps) - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)
        self.impl = "fast"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad, impl=self.impl)


class EqualLinear(nn.Module):
    """Linear layer with equalized learning rate and an optional fused leaky ReLU."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        bias: bool = True,
        bias_init: float = 0.0,
        lr_mul: float = 1.0,
        activate: bool = False,
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activate = activate
        self.impl = "fast"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias * self.lr_mul
        if self.activate:
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), bias, impl=self.impl)
        return F.linear(x, self.weight * self.scale, bias=bias)


class EqualConv2d(nn.Module):
    """Conv2d with equalized learning rate (weights scaled by 1/sqrt(fan_in) at run time)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.scale = 1 / math.sqrt(in_channels * kernel_size**2)
        self.stride = stride
        self.padding = padding
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(
            x, self.weight * self.scale, bias=self.bias, stride=self.stride, padding=self.padding
        )


class ConvLayer(nn.Sequential):
    """[Blur] -> EqualConv2d -> [FusedLeakyReLU]; ``downsample`` blurs then strides by 2."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        downsample: bool = False,
        blur_kernel=DEFAULT_BLUR,
        bias: bool = True,
        activate: bool = True,
    ):
        layers: list[nn.Module] = []
        if downsample:
            p = (len(blur_kernel) - 2) + (kernel_size - 1)
            layers.append(Blur(blur_kernel, pad=((p + 1) // 2, p // 2)))
            stride, padding = 2, 0
        else:
            stride, padding = 1, kernel_size // 2
        layers.append(
            EqualConv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=padding,
                bias=bias and not activate,
            )
        )
        if activate:
            layers.append(FusedLeakyReLU(out_channels, inplace=True))
        super().__init__(*layers)


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    demodulate: bool,
    upsample: bool = False,
    padding: int = 0,
    grouped: bool | None = None,
) -> torch.Tensor:
    """Per-sample modulated (and optionally demodulated) convolution.

    ``weight`` is (out, in, k, k) already scaled for the equalized learning rate, ``styles``
    is (batch, in). Upsampling uses a stride-2 transposed convolution (output 2H+1); the
    caller applies the anti-aliasing blur.

    Two equal formulations: ``grouped`` modulates a weight copy per sample and runs one
    grouped convolution (the reference formulation); otherwise the input is scaled by the
    styles, one shared-weight convolution runs over the batch, and the output is scaled by
    the demodulation coefficients. ``None`` picks whichever touches less memory: per-sample
    weights for high-resolution layers, activation scaling for the wide low-resolution ones.
    Grouped transposed convolutions are never picked for batches: PyTorch's CPU kernel for
    them is about 8x slower than the shared-weight one (measured, benchmarks/README.md).
    """
    batch = x.shape[0]
    if grouped is None:
        grouped = batch * weight.numel() <= x.numel() and (batch == 1 or not upsample)
    # sum over (in, k, k) of (W * s)^2, without materialising the modulated weights
    demod = None
    if demodulate:
        energy = styles.square() @ weight.square().sum([2, 3]).t()
        demod = torch.rsqrt(energy + 1e-8)
    if not grouped:
        x = x * styles[:, :, None, None].to(x.dtype)
        if upsample:
            out = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)
        else:
            out = F.conv2d(x, weight, padding=padding)
        if demod is not None:
            out = out * demod[:, :, None, None].to(out.dtype)
        return out
    in_channels, height, width = x.shape[1:]
    out_channels, _, k, _ = weight.shape
    scale = styles[:, None, :] if demod is None else styles[:, None, :] * demod[:, :, None]
    w = (weight[None] * scale[..., None, None]).to(x.dtype)
    x = x.reshape(1, batch * in_channels, height, width)
    if upsample:
        w = w.transpose(1, 2).reshape(batch * in_channels, out_channels, k, k)
        out = F.conv_transpose2d(x, w, padding=0, stride=2, groups=batch)
    else:
        w = w.reshape(batch * out_channels, in_channels, k, k)
        out = F.conv2d(x, w, padding=padding, groups=batch)
    return out.reshape(batch, out_channels, out.shape[-2], out.shape[-1])


class ModulatedConv2d(nn.Module):
    """StyleGAN2 weight-modulated convolution; ``upsample`` doubles the resolution."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        style_dim: int,
        demodulate: bool = True,
        upsample: bool = False,
        blur_kernel=DEFAULT_BLUR,
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.demodulate = demodulate
        self.upsample = upsample
        if upsample:
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            pad = ((p + 1) // 2 + factor - 1, p // 2 + 1)
            self.blur = Blur(blur_kernel, pad=pad, upsample_factor=factor)
        self.scale = 1 / math.sqrt(in_channels * kernel_size**2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(
            torch.randn(1, out_channels, in_channels, kernel_size, kernel_size)
        )
        self.modulation = EqualLinear(style_dim, in_channels, bias_init=1.0)
        # None: pick the cheaper formulation per call; False is what graph exporters need
        # (one static weight instead of per-sample weights of a symbolic batch size).
        self.grouped: bool | None = None

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        styles = self.modulation(style)
        out = modulated_conv2d(
            x,
            self.weight[0] * self.scale,
            styles,
            demodulate=self.demodulate,
            upsample=self.upsample,
            padding=self.padding,
            grouped=self.grouped,
        )
        return self.blur(out) if self.upsample else out


class NoiseInjection(nn.Module):
    """Adds (or, with ``concat``, appends as extra channels) a learned-scale noise map.

    GPEN feeds encoder features through this layer instead of random noise and concatenates
    them, doubling the channel count of every StyledConv output.
    """

    def __init__(self, concat: bool = False):
        super().__init__()
        self.concat = concat
        self.weight = nn.Parameter(torch.zeros(1))
        self.impl = "fast"

    def forward(self, image: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if noise is None:
            batch, channels, height, width = image.shape
            noise = image.new_empty(batch, channels if self.concat else 1, height, width).normal_()
        if self.concat:
            if (
                self.impl == "ref"
                or torch.is_grad_enabled()
                or torch.compiler.is_compiling()
                or torch.jit.is_tracing()
            ):
                # The reference; compilers fuse the concatenation themselves, and ``out=``
                # slices break a compiled graph or are dropped by the ONNX tracer.
                return torch.cat([image, self.weight * noise], dim=1)
            # one pass per half instead of a scaled copy followed by a concatenation
            channels = image.shape[1]
            out = torch.empty(
                (image.shape[0], channels + noise.shape[1], *image.shape[2:]),
                dtype=image.dtype,
                device=image.device,
                memory_format=_memory_format(image),
            )
            out[:, :channels].copy_(image)
            torch.mul(noise, self.weight.to(noise.dtype), out=out[:, channels:])
            return out
        return image + self.weight * noise


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    return (
        torch.channels_last
        if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        else torch.contiguous_format
    )


class ConstantInput(nn.Module):
    """Learned 4x4 constant that starts the synthesis network."""

    def __init__(self, channels: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int) -> torch.Tensor:
        return self.input.repeat(batch, 1, 1, 1)


class StyledConv(nn.Module):
    """Modulated conv -> noise injection -> fused leaky ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        style_dim: int,
        upsample: bool = False,
        blur_kernel=DEFAULT_BLUR,
        demodulate: bool = True,
        concat_noise: bool = False,
    ):
        super().__init__()
        self.conv = ModulatedConv2d(
            in_channels,
            out_channels,
            kernel_size,
            style_dim,
            demodulate=demodulate,
            upsample=upsample,
            blur_kernel=blur_kernel,
        )
        self.noise = NoiseInjection(concat=concat_noise)
        self.activate = FusedLeakyReLU(out_channels * (2 if concat_noise else 1), inplace=True)

    def forward(
        self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.activate(self.noise(self.conv(x, style), noise=noise))


class ToRGB(nn.Module):
    """1x1 modulated conv to RGB (no demodulation) plus the upsampled previous RGB skip."""

    def __init__(
        self, in_channels: int, style_dim: int, upsample: bool = True, blur_kernel=DEFAULT_BLUR
    ):
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_channels, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(
        self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None
    ) -> torch.Tensor:
        out = self.conv(x, style) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out


class MappingNetwork(nn.Sequential):
    """PixelNorm followed by ``n_mlp`` equalized linear layers (lr multiplier ``lr_mul``)."""

    def __init__(self, style_dim: int, n_mlp: int, lr_mul: float = 0.01):
        layers: list[nn.Module] = [PixelNorm()]
        layers += [
            EqualLinear(style_dim, style_dim, lr_mul=lr_mul, activate=True) for _ in range(n_mlp)
        ]
        super().__init__(*layers)


@contextmanager
def implementation(network: nn.Module, impl: str) -> Iterator[None]:
    """Run the StyleGAN2 layers of ``network`` with ``impl`` inside the block.

    ``"ref"``: the official formulation of every op (``faceprior.models.stylegan2.ops``),
    per-sample grouped modulated convolutions at every batch size and the noise concatenated
    out of place; ``"fast"``: faceprior's equivalent cheaper routes (the default). The tests
    hold the two to the same outputs; the benchmarks time them. Every layer gets its previous
    setting back on exit.
    """
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    kinds = (FusedLeakyReLU, Blur, Upsample, EqualLinear, NoiseInjection)
    switched = [m for m in network.modules() if isinstance(m, kinds)]
    modulated = [m for m in network.modules() if isinstance(m, ModulatedConv2d)]
    saved = [m.impl for m in switched], [m.grouped for m in modulated]
    for module in switched:
        module.impl = impl
    for module in modulated:
        module.grouped = True if impl == "ref" else module.grouped
    try:
        yield
    finally:
        for module, value in zip(switched, saved[0], strict=True):
            module.impl = value
        for module, value in zip(modulated, saved[1], strict=True):
            module.grouped = value
