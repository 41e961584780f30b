"""MMRB-GAN training: the two-stage "self-supervised" strategy (docs/mmrb-gan.md).

The abstract only says a self-supervised strategy fits the output distribution to the target
and stabilises training; the reading adopted here (ASSUMPTION, docs/mmrb-gan.md reading 1):

* ``mmrb_stage1`` trains the whole network as an auto-encoder, HQ -> HQ: the codec learns to
  map real faces onto the StyleGAN2 prior's manifold before it ever sees a degradation.
* ``mmrb_stage2`` fine-tunes on LQ -> HQ pairs and keeps a fraction
  (``self_reconstruction_ratio``) of HQ -> HQ samples in every batch.

Both stages use GPEN's StyleGAN2 step (logistic GAN, lazy R1 and path-length regularisation,
EMA; ``tasks/gpen.py``) with the spec's loss weights (docs/mmrb-gan.md: L1 + 0.1 adversarial, plus
perceptual and identity terms when their weights files are given). ``prior_weights`` (a GPEN
zoo name or checkpoint) initialises the StyleGAN2 prior, and for ``gpen-mmrb`` also GPEN's
encoder convs (:func:`faceprior.models.mmrb.load_gpen_weights`); stage 2 starts from stage 1
through the config's ``init:`` section.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from ...hub.checkpoint import CheckpointError, read_checkpoint, state_dict_candidates
from ...models.loading import resolve_weights
from ...models.mmrb import GPENMMRB, MMRBGAN, load_gpen_weights
from ..task import Batch
from .gpen import GANSchedule, GPENBFROptions, GPENBFRTask, gpen_discriminator

ARCHITECTURES = ("mmrb-gan", "gpen-mmrb")


@dataclass
class MMRBModel:
    """Which network, and its constructor arguments (see ``MMRBGAN`` and ``GPENMMRB``).

    ``encoder_blocks`` applies to ``mmrb-gan`` only (``None``: the spec schedule),
    ``mmrb_blocks`` (MMRBs per GPEN encoder stage) to ``gpen-mmrb`` only.
    """

    architecture: str = "mmrb-gan"
    size: int = 512
    style_dim: int = 512
    n_mlp: int = 8
    channel_multiplier: int = 2
    narrow: float = 1.0
    encoder_blocks: list[int] | None = None
    mmrb_blocks: int = 1
    mmrb_paths: int = 3
    mmrb_dilations: list[int] = field(default_factory=lambda: [2, 2])
    mmrb_attention: bool = True
    mmrb_residual_scale: float = 0.2
    mmrb_learnable_scale: bool = False
    template: str = "gpen"  # gpen-mmrb only: alignment of the training faces (exported)


@dataclass
class MMRBOptions(GPENBFROptions):
    """GPEN's BFR options with the spec's MMRB-GAN defaults (docs/mmrb-gan.md, ASSUMPTION)."""

    model: MMRBModel = field(default_factory=MMRBModel)
    gan: GANSchedule = field(default_factory=GANSchedule)
    adversarial_weight: float = 0.1
    pixel_loss: str = "l1"
    identity_weight: float = 0.0
    prior_weights: str = ""  # GPEN zoo name or checkpoint for the StyleGAN2 prior; "" = none
    self_reconstruction_ratio: float = 0.1  # stage 2: share of HQ -> HQ samples per batch


def build_network(model: MMRBModel) -> torch.nn.Module:
    """The ``mmrb-gan`` or ``gpen-mmrb`` network ``model`` describes."""
    common = dict(
        size=model.size,
        style_dim=model.style_dim,
        n_mlp=model.n_mlp,
        channel_multiplier=model.channel_multiplier,
        narrow=model.narrow,
        mmrb_paths=model.mmrb_paths,
        mmrb_dilations=model.mmrb_dilations,
        mmrb_attention=model.mmrb_attention,
        mmrb_residual_scale=model.mmrb_residual_scale,
        mmrb_learnable_scale=model.mmrb_learnable_scale,
    )
    if model.architecture == "mmrb-gan":
        if model.template != "gpen":
            raise ValueError("options.model.template applies to gpen-mmrb only")
        return MMRBGAN(encoder_blocks=model.encoder_blocks, **common)
    if model.architecture == "gpen-mmrb":
        if model.encoder_blocks is not None:
            raise ValueError("options.model.encoder_blocks applies to mmrb-gan only")
        return GPENMMRB(mmrb_blocks=model.mmrb_blocks, template=model.template, **common)
    raise ValueError(
        f"options.model.architecture must be one of {ARCHITECTURES}, got {model.architecture!r}"
    )


def load_prior(network: torch.nn.Module, name_or_path: str) -> None:
    """Initialise the shared parts of ``network`` from an official GPEN checkpoint."""
    checkpoint = read_checkpoint(resolve_weights(name_or_path))
    for _, state_dict in state_dict_candidates(checkpoint.content):
        if "generator.style.1.weight" in state_dict:
            report = load_gpen_weights(network, state_dict)
            print(f"prior {name_or_path}: {report}", file=sys.stderr)
            return
    raise CheckpointError(f"{name_or_path}: no GPEN generator state dict found")


class MMRBStage2Task(GPENBFRTask):
    """LQ -> HQ fine-tuning with a share of HQ -> HQ self-reconstruction samples."""

    Options = MMRBOptions

    def build(self) -> None:
        options = self.options
        if not 0.0 <= options.self_reconstruction_ratio <= 1.0:
            raise ValueError(
                f"options.self_reconstruction_ratio must be in [0, 1], "
                f"got {options.self_reconstruction_ratio}"
            )
        network = build_network(options.model)
        if options.prior_weights:
            load_prior(network, options.prior_weights)
        self._build_gan(network, gpen_discriminator(options.model))
        self._build_losses()

    def mix_inputs(self, batch: Batch, step: int, micro: int) -> Batch:
        """Replace the LQ input of a seeded random share of samples by their HQ target.

        The choice is a function of (seed, step, micro-batch), so every phase of a step sees
        the same inputs and a resumed run repeats it.
        """
        ratio = self.options.self_reconstruction_ratio
        if ratio >= 1.0:
            return {**batch, "lq": batch["hq"]}
        if ratio <= 0.0:
            return batch
        lq, hq = batch["lq"], batch["hq"]
        if lq.shape != hq.shape:
            raise ValueError(
                f"self-reconstruction needs LQ at the HQ size (set data.lq_size), got "
                f"{tuple(lq.shape)} and {tuple(hq.shape)}"
            )
        seed = (self.context.seed * 1_000_003 + step * 101 + micro) % 2**63
        chosen = torch.rand(len(hq), generator=torch.Generator().manual_seed(seed)) < ratio
        return {**batch, "lq": torch.where(chosen.view(-1, 1, 1, 1), hq, lq)}

    def train_step(self, micro_batches: Sequence[Batch], step: int) -> dict[str, float]:
        mixed = [self.mix_inputs(b, step, i) for i, b in enumerate(micro_batches)]
        return super().train_step(mixed, step)


@dataclass
class MMRBStage1Options(MMRBOptions):
    """Stage 1 defaults to pure self-reconstruction (every input is its own target)."""

    self_reconstruction_ratio: float = 1.0


class MMRBStage1Task(MMRBStage2Task):
    """HQ -> HQ auto-encoding: the self-supervised first stage (docs/mmrb-gan.md)."""

    Options = MMRBStage1Options

    @torch.no_grad()
    def sample(self, batch: Batch) -> dict[str, torch.Tensor]:
        reconstructed, _ = self.ema_network("generator")(batch["hq"].to(self.device))
        return {"hq": batch["hq"], "reconstructed": reconstructed}
