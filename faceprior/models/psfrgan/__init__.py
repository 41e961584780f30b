"""PSFR-GAN (Chen et al., CVPR 2021): progressive semantic-aware style transformation.

``ParseNet`` parses the LQ face into 19 CelebAMask-HQ classes; ``PSFRGenerator`` restores it
with SPADE-like blocks driven by the LQ face and its parse map at every scale. State dicts
equal the official ``parse_multi_iter_90000.pth`` and ``psfrgan_epoch15_net_G.pth``; the
networks are recognised from their keys by ``faceprior.load_model``.
"""

from __future__ import annotations

from ..registry import Architecture
from .detect import detect_discriminator, detect_generator, detect_parsenet
from .discriminator import MultiScaleDiscriminator
from .generator import PSFRGenerator
from .parsenet import CLASS_NAMES, ParseNet, hard_onehot
from .parsing import (
    MASK_COLORMAP,
    FaceParsing,
    colorize,
    face_region_mask,
    legend,
    load_parser,
    parse_faces,
    paste_back_mask,
)
from .restorer import PSFROptions, PSFRRestorer, psfrgan_restorer

__all__ = [
    "ARCHITECTURES",
    "CLASS_NAMES",
    "MASK_COLORMAP",
    "FaceParsing",
    "MultiScaleDiscriminator",
    "PSFRGenerator",
    "PSFROptions",
    "PSFRRestorer",
    "ParseNet",
    "colorize",
    "face_region_mask",
    "hard_onehot",
    "legend",
    "load_parser",
    "parse_faces",
    "paste_back_mask",
]


def _architectures():
    return [
        Architecture(
            "psfrgan",
            PSFRGenerator,
            detect_generator,
            restorer=psfrgan_restorer,
            description="PSFR-GAN generator (needs a face parser: psfrgan-parsenet)",
            example=dict(out_size=64, min_feat_size=16, parse_ch=19, ch_range=(16, 16)),
        ),
        Architecture(
            "psfrgan-parsenet",
            ParseNet,
            detect_parsenet,
            description="PSFR-GAN ParseNet face parser (19 CelebAMask-HQ classes)",
            example=dict(
                in_size=64, out_size=64, base_ch=8, parsing_ch=19, res_depth=1, ch_range=(8, 16)
            ),
        ),
        Architecture(
            "psfrgan-discriminator",
            MultiScaleDiscriminator,
            detect_discriminator,
            description="PSFR-GAN multi-scale patch discriminator (training only)",
            example=dict(base_channels=8, n_layers=2, num_scales=2, max_channels=16),
        ),
    ]


ARCHITECTURES = _architectures()
