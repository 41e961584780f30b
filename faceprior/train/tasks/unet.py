"""``unet_bfr``: the plain U-Net baseline trained exactly as ``gpen_bfr`` trains GPEN.

Only the generator differs (``faceprior.models.unet.UNet``, no GAN prior); the
discriminator, the losses (pixel, identity, perceptual, adversarial with R1), the optimiser
and the EMA are GPEN's, so a comparison of the two isolates what the prior contributes.
Path-length regularisation needs a latent, which a U-Net has not: ``gan.g_reg_every`` is 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ...models.gpen import GPENDiscriminator
from ...models.unet import UNet
from ..task import Batch
from .gpen import GANSchedule, GPENBFROptions, GPENBFRTask


@dataclass
class UNetModel:
    size: int = 128
    channels: list[int] = field(default_factory=lambda: [32, 64, 128, 208])
    template: str = "celeba"  # alignment of the training faces, recorded in exported weights


@dataclass
class DiscriminatorModel:
    """GPEN's discriminator at ``model.size``; match these to the GPEN run compared with."""

    channel_multiplier: int = 1
    narrow: float = 0.125


@dataclass
class UNetBFROptions(GPENBFROptions):
    model: UNetModel = field(default_factory=UNetModel)
    discriminator: DiscriminatorModel = field(default_factory=DiscriminatorModel)
    gan: GANSchedule = field(default_factory=lambda: GANSchedule(g_reg_every=0))


class UNetBFRTask(GPENBFRTask):
    Options = UNetBFROptions

    def build(self) -> None:
        model, critic = self.options.model, self.options.discriminator
        if self.options.gan.g_reg_every:
            raise ValueError(
                "options.gan.g_reg_every must be 0: a U-Net has no latent to regularise"
            )
        discriminator = GPENDiscriminator(model.size, critic.channel_multiplier, critic.narrow)
        self._build_gan(UNet(model.size, model.channels, model.template), discriminator)
        self._build_losses()

    def generate(self, batch: Batch) -> tuple[torch.Tensor, None]:
        return self.networks["generator"](batch["lq"].to(self.device))
