"""GPEN + fusion head training (``gpen_fusion``): see ``faceprior.models.gpen_fusion``.

The GPEN part starts from a trained GPEN (``init: target: generator.gpen``). With
``train: head`` (the default) only the head learns: GPEN runs without gradients, so a step
costs a GPEN forward plus the small head, and the GPEN inside the exported model is exactly
the one it started from. ``train: all`` fine-tunes both. Losses, optimiser, EMA and data are
``gpen_bfr``'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ...models.gpen_fusion import GPENFusion
from ..task import Batch
from .gpen import GANSchedule, GPENBFROptions, GPENBFRTask, GPENModel, gpen_discriminator

TRAINED_PARTS = ("head", "all")


@dataclass
class GPENFusionModel(GPENModel):
    """``GPENModel`` plus the head's width and residual-block count."""

    head_channels: int = 64
    head_blocks: int = 4


@dataclass
class GPENFusionOptions(GPENBFROptions):
    model: GPENFusionModel = field(default_factory=GPENFusionModel)
    gan: GANSchedule = field(default_factory=lambda: GANSchedule(g_reg_every=0))
    train: str = "head"  # "head": GPEN fixed; "all": both


class GPENFusionTask(GPENBFRTask):
    Options = GPENFusionOptions

    def build(self) -> None:
        model, options = self.options.model, self.options
        if options.train not in TRAINED_PARTS:
            raise ValueError(f"options.train must be one of {TRAINED_PARTS}, got {options.train!r}")
        if options.train == "head" and options.gan.g_reg_every:
            raise ValueError(
                "options.gan.g_reg_every must be 0 with train: head (the decoder is fixed)"
            )
        for name in ("head_channels", "head_blocks"):
            if getattr(model, name) < 1:
                raise ValueError(f"options.model.{name} must be >= 1, got {getattr(model, name)}")
        generator = GPENFusion(
            model.size,
            model.style_dim,
            model.n_mlp,
            model.channel_multiplier,
            model.narrow,
            model.head_channels,
            model.head_blocks,
            template=model.template,
        )
        trained = generator.head if options.train == "head" else None
        self._build_gan(generator, gpen_discriminator(model), trained)
        self._build_losses()

    def generate(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        generator = self.networks["generator"]
        lq = batch["lq"].to(self.device)
        if self.options.train == "all":
            return generator(lq, return_latents=True)
        with torch.no_grad():
            prior, _ = generator.gpen(lq)
        return generator.fuse(lq, prior), None
