"""MMRB-GAN (Hu et al., arXiv 2205.14377), reconstructed from its abstract; see docs/mmrb-gan.md.

Two architectures: ``mmrb-gan`` (asymmetric MMRB codec + StyleGAN2 prior) and ``gpen-mmrb``
(GPEN with MMRBs in its encoder stages, loadable from official GPEN weights). Both are
recognised from raw state dicts: tensor shapes give the layout, and the MMRB's stored
``dilation``/``residual_scale`` give the options shapes cannot show.
"""

from __future__ import annotations

from ..gpen import _detect_generator
from ..registry import Architecture, count_prefixed
from ..restorer import first_output_restorer
from ..stylegan2 import TINY_STYLEGAN2
from ..stylegan2.discriminator import channel_table
from .block import MMRB, block_options
from .codec import AsymmetricCodec
from .gpen_mmrb import GPENMMRB
from .network import MMRBGAN, PRESETS
from .transfer import TransferReport, load_gpen_weights

__all__ = [
    "ARCHITECTURES",
    "GPENMMRB",
    "MMRB",
    "MMRBGAN",
    "PRESETS",
    "AsymmetricCodec",
    "TransferReport",
    "load_gpen_weights",
]


def _count_from_one(state_dict, prefix: str, suffix: str) -> int:
    count = 0
    while f"{prefix}{count + 1}{suffix}" in state_dict:
        count += 1
    return count


def _mmrb_arguments(options: dict | None) -> dict:
    if options is None:
        return {}
    return {f"mmrb_{name}": value for name, value in options.items()}


def _detect_mmrb_gan(state_dict) -> dict | None:
    required = ("codec.head.0.weight", "codec.to_latent.weight", "generator.style.1.weight")
    if not all(key in state_dict for key in required):
        return None
    levels = count_prefixed(state_dict, "codec.downs.", ".1.weight") + 1
    size = 2 ** (levels + 1)
    narrow = state_dict["codec.to_latent.weight"].shape[1] / (16 * 512)
    channel_multiplier = 1
    if size >= 64:
        width = state_dict["codec.head.0.weight"].shape[0]
        channel_multiplier = max(1, round(width / (channel_table(1, 1.0)[size] * narrow)))
    blocks = [
        count_prefixed(state_dict, f"codec.levels.{i}.", ".fuse.weight") for i in range(levels)
    ]
    options = next(
        (
            block_options(state_dict, f"codec.levels.{i}.0.")
            for i, count in enumerate(blocks)
            if count
        ),
        None,
    )
    return dict(
        size=size,
        style_dim=state_dict["generator.style.1.weight"].shape[0],
        n_mlp=_count_from_one(state_dict, "generator.style.", ".weight"),
        channel_multiplier=channel_multiplier,
        narrow=narrow,
        encoder_blocks=blocks,
        **_mmrb_arguments(options),
    )


def _detect_gpen_mmrb(state_dict) -> dict | None:
    options = block_options(state_dict, "ecd0.1.")
    if options is None:
        return None
    arguments = _detect_generator(state_dict, want_sr=False)
    if arguments is None:
        return None
    blocks = _count_from_one(state_dict, "ecd0.", ".fuse.weight")
    return dict(arguments, encoder_block="mmrb", mmrb_blocks=blocks, **_mmrb_arguments(options))


def _architectures():
    return [
        Architecture(
            "mmrb-gan",
            MMRBGAN,
            _detect_mmrb_gan,
            restorer=first_output_restorer,
            description="MMRB-GAN reconstruction: asymmetric MMRB codec + StyleGAN2 prior",
            example=dict(size=16, mmrb_residual_scale=0.25, **TINY_STYLEGAN2),
        ),
        Architecture(
            "gpen-mmrb",
            GPENMMRB,
            _detect_gpen_mmrb,
            restorer=first_output_restorer,
            description="GPEN with MMRB encoder stages (loads official GPEN weights)",
            example=dict(size=16, mmrb_blocks=2, mmrb_residual_scale=0.25, **TINY_STYLEGAN2),
        ),
    ]


ARCHITECTURES = _architectures()
