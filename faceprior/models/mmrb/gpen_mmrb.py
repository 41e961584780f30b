"""GPEN with MMRB encoder stages: the paper's "plug-and-play" claim as a configuration switch.

With ``encoder_block="mmrb"`` every GPEN encoder stage ``ecd{i}`` (its strided conv, kept as
``ecd{i}.0``) is followed by ``mmrb_blocks`` MMRBs (``ecd{i}.1``, ...), so the features GPEN
concatenates into its StyleGAN2 decoder pass through the blocks. All official GPEN keys keep
their names and shapes: an official checkpoint loads completely and only the MMRB weights start
fresh (see :func:`~faceprior.models.mmrb.transfer.load_gpen_weights`). The default residual
scale is a learnable 0, so the network initialised from GPEN reproduces GPEN exactly and
fine-tuning starts from the released model (ASSUMPTION; the paper gives no recipe for this).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..gpen import FullGenerator
from .block import mmrb_stack

ENCODER_BLOCKS = ("conv", "mmrb")


class GPENMMRB(FullGenerator):
    """GPEN ``FullGenerator`` whose encoder stages end in MMRBs (``encoder_block="mmrb"``).

    ``encoder_block="conv"`` is the unmodified GPEN encoder (the ablation baseline).
    ``forward(x) -> (image, None)`` as GPEN.
    """

    architecture = "gpen-mmrb"

    def __init__(
        self,
        size: int,
        style_dim: int = 512,
        n_mlp: int = 8,
        channel_multiplier: int = 2,
        narrow: float = 1.0,
        encoder_block: str = "mmrb",
        mmrb_blocks: int = 1,
        mmrb_paths: int = 3,
        mmrb_dilations: Sequence[int] = (2, 2),
        mmrb_attention: bool = True,
        mmrb_residual_scale: float = 0.0,
        mmrb_learnable_scale: bool = True,
        template: str = "gpen",
    ):
        if encoder_block not in ENCODER_BLOCKS:
            raise ValueError(
                f"encoder_block must be one of {ENCODER_BLOCKS}, got {encoder_block!r}"
            )
        super().__init__(size, style_dim, n_mlp, channel_multiplier, narrow, template=template)
        self.arguments.update(
            encoder_block=encoder_block,
            mmrb_blocks=mmrb_blocks,
            mmrb_paths=mmrb_paths,
            mmrb_dilations=[int(d) for d in mmrb_dilations],
            mmrb_attention=mmrb_attention,
            mmrb_residual_scale=mmrb_residual_scale,
            mmrb_learnable_scale=mmrb_learnable_scale,
        )
        if encoder_block == "mmrb":
            for name in self.encoder_names:
                stage = getattr(self, name)
                channels = stage[0][-1].bias.shape[0]  # the stage conv's FusedLeakyReLU
                for block in mmrb_stack(
                    channels,
                    mmrb_blocks,
                    mmrb_paths,
                    mmrb_dilations,
                    mmrb_attention,
                    mmrb_residual_scale,
                    mmrb_learnable_scale,
                ):
                    stage.append(block)
