"""GPEN: GAN Prior Embedded Network (Yang et al., CVPR 2021).

A U-shaped network whose decoder is a StyleGAN2 generator: a strided encoder turns the
degraded face into a latent (through the mapping MLP) and, at every resolution, into the
feature map that the decoder's noise-injection layers concatenate in place of random noise.
State-dict keys and numerics match the official ``FullGenerator``/``FullGenerator_SR``/
``Discriminator`` (``face_model/gpen_model.py``), see official gpen_model.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from .conventions import Conventions
from .registry import Architecture, count_prefixed
from .restorer import first_output_restorer
from .stylegan2 import TINY_STYLEGAN2
from .stylegan2.discriminator import Discriminator, channel_table
from .stylegan2.layers import (
    DEFAULT_BLUR,
    ConstantInput,
    ConvLayer,
    EqualLinear,
    MappingNetwork,
    StyledConv,
    ToRGB,
)
from .templates import TEMPLATES


class GPENDecoder(nn.Module):
    """StyleGAN2 synthesis network whose noise inputs are concatenated encoder features.

    Registered as ``generator`` inside the full models; only the single-latent, no-truncation
    path that GPEN uses is implemented.
    """

    def __init__(
        self,
        size: int,
        style_dim: int = 512,
        n_mlp: int = 8,
        channel_multiplier: int = 2,
        narrow: float = 1.0,
        blur_kernel=DEFAULT_BLUR,
        lr_mlp: float = 0.01,
    ):
        super().__init__()
        self.size = size
        self.style_dim = style_dim
        self.style = MappingNetwork(style_dim, n_mlp, lr_mul=lr_mlp)
        channels = channel_table(channel_multiplier, narrow)
        self.input = ConstantInput(channels[4])
        self.conv1 = StyledConv(
            channels[4], channels[4], 3, style_dim, blur_kernel=blur_kernel, concat_noise=True
        )
        self.to_rgb1 = ToRGB(channels[4] * 2, style_dim, upsample=False)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        in_channels = channels[4]
        for level in range(3, int(math.log2(size)) + 1):
            out_channels = channels[2**level]
            self.convs.append(
                StyledConv(
                    in_channels * 2,
                    out_channels,
                    3,
                    style_dim,
                    upsample=True,
                    blur_kernel=blur_kernel,
                    concat_noise=True,
                )
            )
            self.convs.append(
                StyledConv(
                    out_channels * 2,
                    out_channels,
                    3,
                    style_dim,
                    blur_kernel=blur_kernel,
                    concat_noise=True,
                )
            )
            self.to_rgbs.append(ToRGB(out_channels * 2, style_dim))
            in_channels = out_channels

    def forward(
        self, z: torch.Tensor, noise: Sequence[torch.Tensor | None]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``noise`` holds one map for ``conv1`` then two per resolution (8, 16, ...)."""
        w = self.style(z)
        out = self.conv1(self.input(w.shape[0]), w, noise=noise[0])
        skip = self.to_rgb1(out, w)
        for level, to_rgb in enumerate(self.to_rgbs):
            out = self.convs[2 * level](out, w, noise=noise[1 + 2 * level])
            out = self.convs[2 * level + 1](out, w, noise=noise[2 + 2 * level])
            skip = to_rgb(out, w, skip)
        return skip, w


class _GPENBase(nn.Module):
    """Encoder (``ecd0..``, ``final_linear``) shared by the full and the SR generator."""

    def _build_encoder(self, in_size: int, style_dim: int, channels: dict[int, int], blur_kernel):
        log_size = int(math.log2(in_size))
        self.encoder_names = [f"ecd{i}" for i in range(log_size - 1)]
        self.ecd0 = nn.Sequential(ConvLayer(3, channels[in_size], 1))
        in_channels = channels[in_size]
        for level in range(log_size, 2, -1):
            out_channels = channels[2 ** (level - 1)]
            setattr(
                self,
                f"ecd{log_size - level + 1}",
                nn.Sequential(ConvLayer(in_channels, out_channels, 3, True, blur_kernel)),
            )
            in_channels = out_channels
        self.final_linear = nn.Sequential(
            EqualLinear(channels[4] * 4 * 4, style_dim, activate=True)
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Return the latent code and the encoder features, finest first."""
        features = []
        for name in self.encoder_names:
            x = getattr(self, name)(x)
            features.append(x)
        return self.final_linear(x.flatten(1)), features

    @staticmethod
    def _noise_schedule(features: list[torch.Tensor | None]) -> list[torch.Tensor | None]:
        # Coarsest feature feeds conv1; both StyledConvs of a resolution share its feature.
        coarse_to_fine = features[::-1]
        return [coarse_to_fine[0]] + [f for f in coarse_to_fine[1:] for _ in range(2)]


class FullGenerator(_GPENBase):
    """The released GPEN restoration network (BFR, colorization, inpainting, seg2face).

    ``forward(x)`` takes a (B, 3, size, size) RGB face in ``value_range`` ([-1, 1]; the
    seg2face weights: [0, 1]) and, like the official model, returns ``(image, None)``;
    ``return_latents=True`` returns the W latent in place of ``None``.
    """

    architecture = "gpen"  # subclasses with another layout (GPEN-MMRB) rename it

    def __init__(
        self,
        size: int,
        style_dim: int = 512,
        n_mlp: int = 8,
        channel_multiplier: int = 2,
        narrow: float = 1.0,
        blur_kernel=DEFAULT_BLUR,
        lr_mlp: float = 0.01,
        template: str = "gpen",
        value_range: tuple[float, float] = (-1.0, 1.0),
    ):
        super().__init__()
        self.arguments = dict(
            size=size,
            style_dim=style_dim,
            n_mlp=n_mlp,
            channel_multiplier=channel_multiplier,
            narrow=narrow,
        )
        # The alignment its training faces had; weights cannot tell it, so it is recorded in
        # faceprior's safetensors (official checkpoints use GPEN's own template).
        if template not in TEMPLATES:
            raise ValueError(f"unknown template {template!r}; known: {sorted(TEMPLATES)}")
        self.template = template
        if template != "gpen":
            self.arguments["template"] = template
        # Seg2face works in [0, 1] (the official is_norm=False); the others in [-1, 1].
        self.value_range = (float(value_range[0]), float(value_range[1]))
        if self.value_range != (-1.0, 1.0):
            self.arguments["value_range"] = self.value_range
        self.generator = GPENDecoder(
            size, style_dim, n_mlp, channel_multiplier, narrow, blur_kernel, lr_mlp
        )
        self._build_encoder(size, style_dim, channel_table(channel_multiplier, narrow), blur_kernel)

    @property
    def conventions(self) -> Conventions:
        size = self.arguments["size"]
        return Conventions(
            architecture=self.architecture,
            task="restoration",
            input_size=size,
            output_size=size,
            value_range=self.value_range,
            template=self.template,
            outputs=("image", None),
        )

    def forward(
        self, x: torch.Tensor, return_latents: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        z, features = self.encode(x)
        image, w = self.generator(z, self._noise_schedule(features))
        return image, (w if return_latents else None)


class FullGeneratorSR(_GPENBase):
    """GPEN with an encoder at ``in_size`` and a decoder at ``out_size`` (official
    ``FullGenerator_SR``).

    Decoder levels above ``in_size`` have no encoder feature; the official code injects fresh
    standard-normal noise there. Pass ``noise`` (one tensor per such StyledConv, in call order)
    to make the output deterministic.
    """

    def __init__(
        self,
        in_size: int,
        out_size: int,
        style_dim: int = 512,
        n_mlp: int = 8,
        channel_multiplier: int = 2,
        narrow: float = 1.0,
        blur_kernel=DEFAULT_BLUR,
        lr_mlp: float = 0.01,
    ):
        super().__init__()
        if out_size <= in_size:
            raise ValueError(f"out_size ({out_size}) must exceed in_size ({in_size})")
        self.arguments = dict(
            in_size=in_size,
            out_size=out_size,
            style_dim=style_dim,
            n_mlp=n_mlp,
            channel_multiplier=channel_multiplier,
            narrow=narrow,
        )
        self.extra_levels = int(math.log2(out_size // in_size))
        self.generator = GPENDecoder(
            out_size, style_dim, n_mlp, channel_multiplier, narrow, blur_kernel, lr_mlp
        )
        self._build_encoder(
            in_size, style_dim, channel_table(channel_multiplier, narrow), blur_kernel
        )

    @property
    def conventions(self) -> Conventions:
        return Conventions(
            architecture="gpen-sr",
            task="super-resolution",
            input_size=self.arguments["in_size"],
            output_size=self.arguments["out_size"],
            template="gpen",
            inputs=("image", "noise"),
            outputs=("image", None),
        )

    def forward(
        self,
        x: torch.Tensor,
        noise: Sequence[torch.Tensor] | None = None,
        return_latents: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        z, features = self.encode(x)
        schedule = self._noise_schedule([None] * self.extra_levels + features)
        if noise is not None:
            free = [i for i, f in enumerate(schedule) if f is None]
            if len(noise) != len(free):
                raise ValueError(f"expected {len(free)} noise tensors, got {len(noise)}")
            for index, tensor in zip(free, noise):
                schedule[index] = tensor
        image, w = self.generator(z, schedule)
        return image, (w if return_latents else None)


class GPENDiscriminator(Discriminator):
    """GPEN's discriminator: StyleGAN2's, with the minibatch-stddev group = whole batch."""

    def __init__(self, size: int, channel_multiplier: int = 2, narrow: float = 1.0):
        super().__init__(size, channel_multiplier, narrow, stddev_group=None)
        self.arguments = dict(size=size, channel_multiplier=channel_multiplier, narrow=narrow)

    @property
    def conventions(self) -> Conventions:
        return Conventions(
            architecture="gpen-discriminator",
            task="discrimination",
            input_size=self.size,
            output_size=None,
            outputs=("logits",),
        )


def _gpen_width(state_dict, prefix: str) -> tuple[int, float]:
    """Recover (channel_multiplier, narrow) from the constant input and a >=64 px layer."""
    narrow = state_dict[f"{prefix}input.input"].shape[1] / 512
    for index in range(count_prefixed(state_dict, f"{prefix}to_rgbs.", ".conv.weight")):
        resolution = 2 ** (index + 3)
        if resolution >= 64:
            base = channel_table(1, 1.0)[resolution]
            width = state_dict[f"{prefix}to_rgbs.{index}.conv.weight"].shape[2] // 2
            return max(1, round(width / (base * narrow))), narrow
    return 1, narrow


def _detect_generator(state_dict, want_sr: bool) -> dict | None:
    if "generator.style.1.weight" not in state_dict or "ecd0.0.0.weight" not in state_dict:
        return None
    n_mlp = 0
    while f"generator.style.{n_mlp + 1}.weight" in state_dict:
        n_mlp += 1
    style_dim = state_dict["generator.style.1.weight"].shape[0]
    n_encoder = 0
    while f"ecd{n_encoder}.0.{0 if n_encoder == 0 else 1}.weight" in state_dict:
        n_encoder += 1
    in_size = 2 ** (n_encoder + 1)
    out_size = 2 ** (count_prefixed(state_dict, "generator.to_rgbs.", ".conv.weight") + 2)
    channel_multiplier, narrow = _gpen_width(state_dict, "generator.")
    common = dict(
        style_dim=style_dim, n_mlp=n_mlp, channel_multiplier=channel_multiplier, narrow=narrow
    )
    if want_sr and out_size > in_size:
        return dict(in_size=in_size, out_size=out_size, **common)
    if not want_sr and out_size == in_size:
        return dict(size=in_size, **common)
    return None


def _detect_discriminator(state_dict) -> dict | None:
    required = ("convs.0.0.weight", "final_conv.0.weight", "final_linear.1.weight")
    if not all(k in state_dict for k in required) or "convs.1.conv1.0.weight" not in state_dict:
        return None
    blocks = 1
    while f"convs.{blocks}.conv1.0.weight" in state_dict:
        blocks += 1
    size = 2 ** (blocks + 1)
    narrow = state_dict["final_conv.0.weight"].shape[0] / 512
    channel_multiplier = 1
    if size >= 64:
        # convs.1 maps size -> size/2; its input width is channels[size].
        width = state_dict["convs.0.0.weight"].shape[0]
        channel_multiplier = max(1, round(width / (channel_table(1, 1.0)[size] * narrow)))
    return dict(size=size, channel_multiplier=channel_multiplier, narrow=narrow)


def _architectures():
    return [
        Architecture(
            "gpen",
            FullGenerator,
            lambda sd: _detect_generator(sd, want_sr=False),
            restorer=first_output_restorer,
            description="GPEN FullGenerator (BFR, colorization, inpainting, seg2face)",
            example=dict(size=16, **TINY_STYLEGAN2),
        ),
        Architecture(
            "gpen-sr",
            FullGeneratorSR,
            lambda sd: _detect_generator(sd, want_sr=True),
            restorer=first_output_restorer,
            description="GPEN FullGenerator_SR (encoder at in_size, decoder at out_size)",
            example=dict(in_size=16, out_size=32, **TINY_STYLEGAN2),
        ),
        Architecture(
            "gpen-discriminator",
            GPENDiscriminator,
            _detect_discriminator,
            description="GPEN StyleGAN2 discriminator (stddev over the whole batch)",
            example=dict(size=16, channel_multiplier=1, narrow=0.03125),
        ),
    ]


ARCHITECTURES = _architectures()
