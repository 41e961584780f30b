"""Panini-Net (Wang, Hu, Zhang, AAAI 2022): GAN-prior face restoration with DAFI.

One module per part: ``degradation_encoder`` (DRE), ``rrdb`` and ``cbam`` (image feature
extraction), ``dafi`` (interpolation weights and the fidelity control), ``prior`` (the
StyleGAN2 prior in mmgen's layout, from the shared core), ``network`` (the two released
generators), ``restorer`` (pipeline wrapper), ``moco`` (UDRL training of the DRE) and
``checkpoint`` (recognising the released files). See docs/panini.md.
"""

from __future__ import annotations

from ..registry import Architecture
from .checkpoint import (
    detect_degradation_encoder,
    detect_mfr,
    detect_sr,
    moco_candidates,
    panini_candidates,
)
from .degradation_encoder import DegradationEncoder
from .network import PaniniMFR, PaniniSR
from .restorer import panini_restorer

# A Panini-Net small enough for the registry's contract examples (``Architecture.example``).
_TINY = dict(style_channels=32, rrdb_channels=8, num_rrdbs=1, num_mlps=2, narrow=0.0625)


def _architectures():
    return [
        Architecture(
            "panini-mfr",
            PaniniMFR,
            detect_mfr,
            candidates=panini_candidates,
            restorer=panini_restorer,
            description="Panini-Net multi-degradation face restoration (512 px in, 1024 px out)",
            example=dict(in_size=64, out_size=128, degradation_size=32, **_TINY),
        ),
        Architecture(
            "panini-sr",
            PaniniSR,
            detect_sr,
            candidates=panini_candidates,
            restorer=panini_restorer,
            description="Panini-Net 16x face super-resolution (64 px in, 1024 px out)",
            example=dict(in_size=64, out_size=128, **_TINY),
        ),
        Architecture(
            "panini-degradation-encoder",
            DegradationEncoder,
            detect_degradation_encoder,
            candidates=moco_candidates,
            description="Panini-Net degradation representation encoder (UDRL / MoCo query)",
            example={},
        ),
    ]


ARCHITECTURES = _architectures()
