"""Real-ESRNet: the RRDBNet that GPEN's ``--use_sr`` runs on the whole photo (GPEN README).

``RRDBNet`` has the official ``sr_model/rrdbnet_arch.py`` layout and numerics: x1 and x2
networks fold the image into channels with ``pixel_unshuffle`` (by 4 / 2) so that every scale
runs its trunk at a quarter of the output resolution or less. State dicts equal the official
``realesrnet_x{1,2,4}.pth`` (weights under ``params_ema``); the layout, scale and widths are
recognised from the tensor shapes, so Real-ESRGAN's own RRDBNet files (64 features) load too.
"""

from __future__ import annotations

from .network import RRDBNet, detect_rrdbnet

__all__ = ["ARCHITECTURES", "RRDBNet", "detect_rrdbnet"]


def _architectures():
    from ..registry import Architecture

    return [
        Architecture(
            "realesrnet",
            RRDBNet,
            detect_rrdbnet,
            description="Real-ESRNet / Real-ESRGAN RRDBNet (background super-resolution x1/x2/x4)",
            example=dict(scale=2, num_feat=8, num_block=1, num_grow_ch=4),
        ),
    ]


ARCHITECTURES = _architectures()
