"""MMRB-GAN: the asymmetric MMRB codec conditioning a StyleGAN2 prior (reconstruction).

Verified from the abstract of Hu et al. (arXiv 2205.14377): an asymmetric codec containing MMRBs
feeds a StyleGAN2 generator, which is the "primary generator network". How the two are wired
is not public; following docs/mmrb-gan.md (ASSUMPTION) the codec's encoder
gives one latent code for the mapping MLP and its decoder's map at every resolution replaces
the noise of the two StyleGAN2 convs of that resolution by concatenation, as in GPEN. The
generator is therefore GPEN's decoder (``generator.*`` keys equal), which is why a GPEN
checkpoint of the same size can serve as the pretrained prior (see ``transfer``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..conventions import Conventions
from ..gpen import GPENDecoder
from ..stylegan2.discriminator import channel_table
from .codec import AsymmetricCodec, default_encoder_blocks

# Constructor arguments of the named configurations (512 px is the spec's assumed paper setting).
PRESETS: dict[str, dict] = {
    "mmrb-gan-512": dict(size=512, style_dim=512, n_mlp=8, channel_multiplier=2, narrow=1.0),
    "mmrb-gan-256": dict(size=256, style_dim=512, n_mlp=8, channel_multiplier=1, narrow=0.5),
    "mmrb-gan-tiny": dict(
        size=64,
        style_dim=64,
        n_mlp=2,
        channel_multiplier=1,
        narrow=0.0625,
        encoder_blocks=[1, 1, 1, 1, 1],
    ),
}


class MMRBGAN(nn.Module):
    """Asymmetric MMRB codec + StyleGAN2 (GPEN decoder); ``forward(x) -> (image, None)``.

    ``x`` is an aligned (B, 3, size, size) RGB face in [-1, 1]; for super-resolution the
    low-resolution face is resized to ``size`` first (docs/mmrb-gan.md). ``encoder_blocks``
    lists the MMRBs per encoder level from ``size`` down to 4 (default: the schedule of
    docs/mmrb-gan.md); the ``mmrb_*`` options configure every block (see
    :class:`~faceprior.models.mmrb.block.MMRB`).
    """

    def __init__(
        self,
        size: int,
        style_dim: int = 512,
        n_mlp: int = 8,
        channel_multiplier: int = 2,
        narrow: float = 1.0,
        encoder_blocks: Sequence[int] | None = None,
        mmrb_paths: int = 3,
        mmrb_dilations: Sequence[int] = (2, 2),
        mmrb_attention: bool = True,
        mmrb_residual_scale: float = 0.2,
        mmrb_learnable_scale: bool = False,
    ):
        super().__init__()
        if size < 8 or size & (size - 1):
            raise ValueError(f"size must be a power of two >= 8, got {size}")
        encoder_blocks = (
            default_encoder_blocks(size) if encoder_blocks is None else list(encoder_blocks)
        )
        self.arguments = dict(
            size=size,
            style_dim=style_dim,
            n_mlp=n_mlp,
            channel_multiplier=channel_multiplier,
            narrow=narrow,
            encoder_blocks=encoder_blocks,
            mmrb_paths=mmrb_paths,
            mmrb_dilations=[int(d) for d in mmrb_dilations],
            mmrb_attention=mmrb_attention,
            mmrb_residual_scale=mmrb_residual_scale,
            mmrb_learnable_scale=mmrb_learnable_scale,
        )
        self.size = size
        channels = channel_table(channel_multiplier, narrow)
        self.codec = AsymmetricCodec(
            size,
            style_dim,
            channels,
            encoder_blocks,
            mmrb_paths,
            mmrb_dilations,
            mmrb_attention,
            mmrb_residual_scale,
            mmrb_learnable_scale,
        )
        self.generator = GPENDecoder(size, style_dim, n_mlp, channel_multiplier, narrow)

    @property
    def conventions(self) -> Conventions:
        return Conventions(
            architecture="mmrb-gan",
            task="restoration",
            input_size=self.size,
            output_size=self.size,
            template="gpen",
            outputs=("image", None),
        )

    def forward(
        self, x: torch.Tensor, return_latents: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[-2:] != (self.size, self.size):
            raise ValueError(
                f"MMRB-GAN ({self.size} px) expects (B, 3, {self.size}, {self.size}) faces, "
                f"got {tuple(x.shape)}"
            )
        latent, maps = self.codec(x)
        # conv1 takes the 4x4 map; both StyledConvs of a resolution share its map (as GPEN).
        noise = [maps[0]] + [m for m in maps[1:] for _ in range(2)]
        image, w = self.generator(latent, noise)
        return image, (w if return_latents else None)
