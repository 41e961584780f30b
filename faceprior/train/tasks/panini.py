"""Panini-Net training: ``panini_mfr`` (multi-degradation restoration) and ``panini_sr`` (16x SR).

The released recipe (official panini configs) is MMEditing's ``GLEAN`` wrapper running
``SRGAN.train_step``: per step the generator is updated once with
``1.0 * L1 + 1e-2 * perceptual(VGG16 conv4_3, MSE) + 1e-2 * BCE(D(G(x)), real)``, then the
StyleGAN2 discriminator (mbstd group 4) once with ``BCE(D(gt), real) + BCE(D(G(x)), fake)`` on
the same, detached, output. Both use Adam(1e-4, betas 0.9/0.99) and one cosine period down to
1e-7 over the run. No EMA, no R1, no path-length term, no identity loss. The two tasks differ
only in their network (``model.architecture``) and data (``panini-mfr`` or ``panini-sr16``).

The released code trains *every* generator part, the StyleGAN2 prior and the UDRL degradation
encoder included, although the paper calls the prior fixed (docs/panini.md); ``freeze`` lists the
generator parts to keep fixed (frozen parts also stay in eval mode, so BatchNorm statistics
do not move). The degradation encoder comes from a ``udrl`` run through ``init:``
(``source: networks.moco.encoder_q``, ``target: generator.deg_encoder``); the prior from an
mmgen StyleGAN2 file or a Panini file through ``prior_weights``.

Deviations, on purpose: the discriminator starts from random weights (the release starts it
from the FFHQ StyleGAN2 discriminator, stored in mmgen's layout, which faceprior's StyleGAN2
core does not read); the VGG16 weights are the user's torchvision-layout file.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from ...hub.checkpoint import (
    CheckpointError,
    load_state_dict_strict,
    read_checkpoint,
    state_dict_candidates,
)
from ...models.loading import resolve_weights
from ...models.panini.network import PaniniMFR, PaniniSR
from ...models.stylegan2.discriminator import Discriminator
from ..losses.gan import d_logistic_loss, g_nonsaturating_loss
from ..losses.pixel import pixel_loss
from ..task import Batch, TrainingTask

NETWORKS = {"panini-mfr": PaniniMFR, "panini-sr": PaniniSR}
PRIOR_PREFIXES = ("generator_ema.", "generator.generator.", "generator.")


@dataclass
class PaniniModel:
    """Constructor arguments of ``PaniniMFR``/``PaniniSR`` (Panini-Net README); MFR's defaults."""

    architecture: str = "panini-mfr"  # panini-mfr | panini-sr
    in_size: int = 512
    out_size: int = 1024
    style_channels: int = 512
    rrdb_channels: int = 8
    num_rrdbs: int = 2
    num_mlps: int = 8
    narrow: float = 1.0  # scales the prior, fusion and discriminator widths (1 = released)
    degradation_size: int = 256  # MFR: side the DRE reads the LQ at (UDRL pairs' size)


@dataclass
class PaniniOptions:
    model: PaniniModel = field(default_factory=PaniniModel)
    lr: float = 1e-4  # both optimisers (official panini configs)
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99])
    min_lr: float = 1e-7  # end of the cosine period
    cosine_steps: int = 800000  # cosine period in steps; 0 keeps lr constant
    pixel_weight: float = 1.0  # L1
    perceptual_weight: float = 1e-2
    perceptual_weights: str = ""  # torchvision-layout VGG16 file; "" turns the term off
    perceptual_layer: str = "conv4_3"  # VGG16 features index 21, before its ReLU
    adversarial_weight: float = 1e-2  # vanilla GAN on the generator; 0 also skips the D phase
    freeze: list[str] = field(default_factory=list)  # generator parts kept fixed
    prior_weights: str = ""  # mmgen StyleGAN2 file or Panini file for ``generator.generator``


def build_generator(model: PaniniModel) -> nn.Module:
    if model.architecture not in NETWORKS:
        raise ValueError(
            f"options.model.architecture must be one of {sorted(NETWORKS)}, "
            f"got {model.architecture!r}"
        )
    extra = {}
    if model.architecture == "panini-mfr":
        extra["degradation_size"] = model.degradation_size
    elif model.degradation_size != PaniniModel.degradation_size:
        raise ValueError("options.model.degradation_size: panini-sr has no degradation encoder")
    return NETWORKS[model.architecture](
        **extra,
        in_size=model.in_size,
        out_size=model.out_size,
        style_channels=model.style_channels,
        rrdb_channels=model.rrdb_channels,
        num_rrdbs=model.num_rrdbs,
        num_mlps=model.num_mlps,
        narrow=model.narrow,
    )


def load_prior(generator: nn.Module, name_or_path: str) -> str:
    """Fill ``generator.generator`` (the StyleGAN2 prior) strictly from a weights file.

    Accepts mmgen's StyleGAN2 checkpoints (``generator_ema.*``, what the release starts from)
    and Panini files (``generator.generator.*`` in MMEditing's wrapper, ``generator.*`` in a
    plain Panini state dict). Returns where in the file the prior was found.
    """
    checkpoint = read_checkpoint(resolve_weights(name_or_path))
    for where, state_dict in state_dict_candidates(checkpoint.content):
        for prefix in PRIOR_PREFIXES:  # most specific first
            picked = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
            if picked:
                load_state_dict_strict(generator.generator, picked, f"{name_or_path}:{prefix}")
                return f"{where}, '{prefix}*'"
    raise CheckpointError(f"{name_or_path}: no StyleGAN2 prior ({', '.join(PRIOR_PREFIXES)})")


class PaniniMFRTask(TrainingTask):
    """The released ``SRGAN.train_step`` for Panini-Net on (LQ, HQ) pairs (official configs)."""

    Options = PaniniOptions

    def build(self) -> None:
        options = self.options
        if len(options.betas) != 2:
            raise ValueError(f"options.betas must be two numbers, got {options.betas}")
        generator = build_generator(options.model)
        if options.prior_weights:
            where = load_prior(generator, options.prior_weights)
            print(f"prior from {options.prior_weights} ({where})", file=sys.stderr)
        self.frozen = [self._submodule(generator, name) for name in options.freeze]
        for module in self.frozen:
            self.requires_grad(module, False)
        discriminator = Discriminator(
            options.model.out_size, channel_multiplier=2, narrow=options.model.narrow
        )
        self.add_network("generator", generator)
        self.add_network("discriminator", discriminator)
        betas = (options.betas[0], options.betas[1])
        trainable = [p for p in generator.parameters() if p.requires_grad]
        self.add_optimizer(
            "generator", torch.optim.Adam(trainable, lr=options.lr, betas=betas), ["generator"]
        )
        self.add_optimizer(
            "discriminator",
            torch.optim.Adam(discriminator.parameters(), lr=options.lr, betas=betas),
            ["discriminator"],
        )
        self.perceptual = None
        if options.perceptual_weight > 0 and options.perceptual_weights:
            from ..losses.perceptual import PerceptualLoss

            self.perceptual = PerceptualLoss(
                options.perceptual_weights,
                "vgg16",
                layers=(options.perceptual_layer,),
                criterion="mse",
            ).to(self.device)
        elif options.perceptual_weight > 0:
            print("perceptual loss off: options.perceptual_weights is not set", file=sys.stderr)

    @staticmethod
    def _submodule(generator: nn.Module, name: str) -> nn.Module:
        try:
            return generator.get_submodule(name)
        except AttributeError:
            children = sorted(n for n, _ in generator.named_children())
            raise ValueError(
                f"options.freeze: the generator has no part {name!r}; parts: {children}"
            ) from None

    def train(self, mode: bool = True) -> None:
        super().train(mode)
        for module in self.frozen:
            module.eval()

    def learning_rate(self, step: int) -> float:
        """mmcv ``CosineRestart`` with one period: ``min + (lr - min) (1 + cos(pi t / T)) / 2``."""
        options = self.options
        if options.cosine_steps <= 0:
            return options.lr
        progress = min(step, options.cosine_steps) / options.cosine_steps
        return options.min_lr + 0.5 * (options.lr - options.min_lr) * (
            1 + math.cos(math.pi * progress)
        )

    def train_step(self, micro_batches: Sequence[Batch], step: int) -> dict[str, float]:
        lr = self.learning_rate(step)
        for optimizer in self.optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = lr
        discriminator = self.networks["discriminator"]
        fakes: list[torch.Tensor] = []
        self.requires_grad(discriminator, False)
        logs = self.accumulate("generator", micro_batches, lambda batch: self._g_loss(batch, fakes))
        self.optimizer_step("generator")
        if self.options.adversarial_weight > 0:
            self.requires_grad(discriminator, True)
            pairs = [dict(batch, fake=fake) for batch, fake in zip(micro_batches, fakes)]
            logs |= self.accumulate("discriminator", pairs, self._d_loss)
            self.optimizer_step("discriminator")
        logs["lr"] = lr
        return logs

    def _g_loss(
        self, batch: Batch, fakes: list[torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        options = self.options
        real = batch["hq"].to(self.device)
        with self.autocast():
            fake = self.networks["generator"](batch["lq"].to(self.device))
        fake = fake.float()
        fakes.append(fake.detach())
        pixel = pixel_loss("l1", fake, real)
        total = options.pixel_weight * pixel
        logs = {"g_pixel": pixel.item()}
        if self.perceptual is not None:
            # MMEditing (norm_img=False) applies the ImageNet normalisation to the [-1, 1]
            # images as they are; PerceptualLoss maps [-1, 1] to [0, 1] first, so undo that.
            perceptual = self.perceptual(2 * fake - 1, 2 * real - 1)
            total = total + options.perceptual_weight * perceptual
            logs["g_perceptual"] = perceptual.item()
        if options.adversarial_weight > 0:
            with self.autocast():
                logits = self.networks["discriminator"](fake)
            adversarial = g_nonsaturating_loss(logits.float())  # BCE(D(fake), 1)
            total = total + options.adversarial_weight * adversarial
            logs["g_adversarial"] = adversarial.item()
        logs["g_loss"] = total.item()
        return total, logs

    def _d_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        discriminator = self.networks["discriminator"]
        with self.autocast():
            real_logits = discriminator(batch["hq"].to(self.device)).float()
            fake_logits = discriminator(batch["fake"]).float()
        # BCE(D(real), 1) + BCE(D(fake), 0), weight 1 (MMEditing's GANLoss with is_disc).
        loss = d_logistic_loss(real_logits, fake_logits)
        return loss, {
            "d_loss": loss.item(),
            "real_score": real_logits.mean().item(),
            "fake_score": fake_logits.mean().item(),
        }

    @torch.no_grad()
    def sample(self, batch: Batch) -> dict[str, torch.Tensor]:
        restored = self.networks["generator"](batch["lq"].to(self.device))
        return {"lq": batch["lq"], "restored": restored, "hq": batch["hq"]}

    def export_networks(self) -> dict[str, nn.Module]:
        return {"generator": self.networks["generator"]}


@dataclass
class PaniniSROptions(PaniniOptions):
    model: PaniniModel = field(
        default_factory=lambda: PaniniModel(
            architecture="panini-sr", in_size=64, rrdb_channels=64, num_rrdbs=23
        )
    )


class PaniniSRTask(PaniniMFRTask):
    """The same recipe with the 16x SR network (official configs: batch 2 per GPU, not 1)."""

    Options = PaniniSROptions
