"""GPEN training: the StyleGAN2 prior (``gpen_prior``) and BFR fine-tuning (``gpen_bfr``).

``gpen_bfr`` follows the released ``train_simple.py``: logistic GAN with R1
(gamma 10) every 16 steps and path-length regularisation (weight 2, decay 0.01) every 4,
SmoothL1 and identity losses, EMA decay ``0.5 ** (32 / 10000)`` and Adam with the lazy-
regularisation scaling of the learning rate and betas. ``gpen_prior`` trains the decoder alone
as an unconditional StyleGAN2 with random maps in GPEN's concatenated-noise layout, so that a
``gpen_bfr`` stage can start its decoder from it (docs/training.md: a StyleGAN2 checkpoint cannot
be loaded into GPEN, the prior has to be trained with the concat layout).

Deviations, on purpose: the path length is measured w.r.t. the single W latent GPEN's
decoder uses (the official code differentiates w.r.t. per-layer copies of it); the prior has
no style mixing (GPEN's decoder only implements the single-latent path).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from ...models.gpen import FullGenerator, GPENDecoder, GPENDiscriminator
from ..distributed import average_tensor
from ..ema import gpen_decay
from ..losses.gan import (
    d_logistic_loss,
    g_nonsaturating_loss,
    path_length_penalty,
    r1_penalty,
)
from ..losses.pixel import pixel_loss
from ..task import Batch, TrainingTask


@dataclass
class GPENModel:
    """Constructor arguments of ``FullGenerator``/``GPENDiscriminator`` (GPEN README)."""

    size: int = 512
    style_dim: int = 512
    n_mlp: int = 8
    channel_multiplier: int = 2
    narrow: float = 1.0
    template: str = "gpen"  # alignment of the training faces, recorded in exported weights


@dataclass
class GANSchedule:
    """StyleGAN2 optimiser and lazy-regularisation settings (train_simple.py defaults)."""

    lr: float = 0.002
    # Adam's beta1: 0 as in StyleGAN2 (momentum fights the adversarial game); a fidelity
    # fine-tune without a GAN term converges faster with momentum (0.9).
    beta1: float = 0.0
    d_reg_every: int = 16
    g_reg_every: int = 4
    r1: float = 10.0
    path_regularize: float = 2.0
    path_decay: float = 0.01
    path_batch_shrink: int = 1
    ema_decay: float = field(default_factory=gpen_decay)


@dataclass
class GPENPriorOptions:
    model: GPENModel = field(default_factory=GPENModel)
    gan: GANSchedule = field(default_factory=lambda: GANSchedule(path_batch_shrink=2))


@dataclass
class GPENBFROptions:
    model: GPENModel = field(default_factory=GPENModel)
    gan: GANSchedule = field(default_factory=GANSchedule)
    adversarial_weight: float = 1.0
    pixel_loss: str = "smooth_l1"
    pixel_weight: float = 1.0
    identity_weight: float = 1.0
    identity_backbone: str = "mobilefacenet"
    identity_weights: str = ""
    perceptual_weight: float = 0.0
    perceptual_weights: str = ""
    perceptual_arch: str = "vgg19"


def gpen_discriminator(model: GPENModel) -> GPENDiscriminator:
    """GPEN's discriminator at the generator's size and widths (any ``model`` with those)."""
    return GPENDiscriminator(model.size, model.channel_multiplier, model.narrow)


def lazy_adam(params, lr: float, reg_every: int, beta1: float = 0.0) -> torch.optim.Adam:
    """Adam with StyleGAN2's lazy-regularisation correction: lr and betas scaled by c/(c+1)."""
    ratio = reg_every / (reg_every + 1) if reg_every > 0 else 1.0
    return torch.optim.Adam(params, lr=lr * ratio, betas=(beta1**ratio, 0.99**ratio))


class _StyleGAN2Task(TrainingTask):
    """The D phase / R1 / G phase / path-length step shared by both GPEN tasks."""

    def _build_gan(
        self,
        generator: torch.nn.Module,
        discriminator: torch.nn.Module,
        trained: torch.nn.Module | None = None,
    ) -> None:
        """Register both networks, their Adams and the generator's EMA; ``trained`` (a part of
        the generator) limits the generator's optimiser to that part."""
        gan = self.options.gan
        for name, every in (("d_reg_every", gan.d_reg_every), ("g_reg_every", gan.g_reg_every)):
            if every < 0:
                raise ValueError(f"options.gan.{name} must be >= 0 (0 disables), got {every}")
        if not 0.0 <= gan.beta1 < 1.0:
            raise ValueError(f"options.gan.beta1 must be in [0, 1), got {gan.beta1}")
        self.add_network("generator", generator)
        self.add_network("discriminator", discriminator)
        self.add_optimizer(
            "generator",
            lazy_adam(
                (generator if trained is None else trained).parameters(),
                gan.lr,
                gan.g_reg_every,
                gan.beta1,
            ),
            ["generator"],
        )
        self.add_optimizer(
            "discriminator",
            lazy_adam(
                self.networks["discriminator"].parameters(), gan.lr, gan.d_reg_every, gan.beta1
            ),
            ["discriminator"],
        )
        self.add_ema("generator", gan.ema_decay)
        self.mean_path_length = torch.zeros((), device=self.device)

    def extra_state(self) -> dict:
        return {"mean_path_length": self.mean_path_length.detach().cpu()}

    def load_extra_state(self, state: dict) -> None:
        self.mean_path_length = state["mean_path_length"].to(self.device)

    # Subclasses: the generator's forward on a batch, returning (image, W latent).
    def generate(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def generator_extra_losses(
        self, fake: torch.Tensor, batch: Batch
    ) -> tuple[torch.Tensor, dict[str, float]]:
        return fake.new_zeros(()), {}

    def adversarial_weight(self) -> float:
        return 1.0

    def train_step(self, micro_batches: Sequence[Batch], step: int) -> dict[str, float]:
        gan = self.options.gan
        generator, discriminator = self.networks["generator"], self.networks["discriminator"]
        logs: dict[str, float] = {}

        adversarial = self.adversarial_weight() > 0  # 0: reconstruction only, no D
        if adversarial:
            self.requires_grad(generator, False)
            self.requires_grad(discriminator, True)
            logs |= self.accumulate("discriminator", micro_batches, self._d_loss)
            self.optimizer_step("discriminator")
        if adversarial and gan.d_reg_every and step % gan.d_reg_every == 0:
            logs |= self.accumulate("discriminator", micro_batches, self._r1_loss)
            self.optimizer_step("discriminator")

        self.requires_grad(generator, True)
        self.requires_grad(discriminator, False)
        logs |= self.accumulate("generator", micro_batches, self._g_loss)
        self.optimizer_step("generator")
        if gan.g_reg_every and step % gan.g_reg_every == 0:
            logs |= self.accumulate("generator", micro_batches, self._path_loss)
            self.optimizer_step("generator")
            # One running mean for all processes (official code keeps one per process).
            self.mean_path_length = average_tensor(self.mean_path_length, self.context.distributed)
        logs["path_length_mean"] = float(self.mean_path_length)
        return logs

    def _d_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        discriminator = self.networks["discriminator"]
        real = batch["hq"].to(self.device)
        with torch.no_grad(), self.autocast():
            fake, _ = self.generate(batch)
        with self.autocast():
            fake_logits = discriminator(fake.detach())
            real_logits = discriminator(real)
            loss = d_logistic_loss(real_logits.float(), fake_logits.float())
        return loss, {
            "d_loss": loss.item(),
            "real_score": real_logits.float().mean().item(),
            "fake_score": fake_logits.float().mean().item(),
        }

    def _r1_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        gan = self.options.gan
        real = batch["hq"].to(self.device).float().requires_grad_(True)
        real_logits = self.networks["discriminator"](real)
        penalty = r1_penalty(real_logits, real)
        # "+ 0 * logit" keeps the final layer in the graph, as in StyleGAN2.
        loss = gan.r1 / 2 * penalty * gan.d_reg_every + 0 * real_logits[0].sum()
        return loss, {"r1": penalty.item()}

    def _g_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        with self.autocast():
            fake, _ = self.generate(batch)
        loss, logs = self.generator_extra_losses(fake.float(), batch)
        if self.adversarial_weight() > 0:
            with self.autocast():
                logits = self.networks["discriminator"](fake)
            adversarial = g_nonsaturating_loss(logits.float())
            loss = loss + self.adversarial_weight() * adversarial
            logs["g_adversarial"] = adversarial.item()
        return loss, {"g_loss": loss.item(), **logs}

    def _path_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        gan = self.options.gan
        shrunk = {
            key: value[: max(1, len(value) // gan.path_batch_shrink)]
            if isinstance(value, torch.Tensor)
            else value
            for key, value in batch.items()
        }
        fake, latents = self.generate(shrunk)
        penalty, self.mean_path_length, length = path_length_penalty(
            fake.float(), latents, self.mean_path_length, gan.path_decay
        )
        loss = gan.path_regularize * gan.g_reg_every * penalty + 0 * fake[0, 0, 0, 0]
        return loss, {"path_penalty": penalty.item(), "path_length": length.item()}


class GPENPriorTask(_StyleGAN2Task):
    """Unconditional StyleGAN2 on HQ faces with GPEN's decoder (random concatenated noise)."""

    Options = GPENPriorOptions

    def build(self) -> None:
        model = self.options.model
        decoder = GPENDecoder(
            model.size, model.style_dim, model.n_mlp, model.channel_multiplier, model.narrow
        )
        self._build_gan(decoder, gpen_discriminator(model))
        generator = torch.Generator().manual_seed(self.context.seed)
        self.sample_z = torch.randn(64, model.style_dim, generator=generator)

    def _noise(self, decoder: GPENDecoder) -> list[None]:
        # None makes every NoiseInjection draw fresh per-channel N(0, 1) maps.
        return [None] * (1 + 2 * len(decoder.to_rgbs))

    def generate(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        decoder = self.networks["generator"]
        count = len(batch["hq"])
        z = torch.randn(count, self.options.model.style_dim, device=self.device)
        return decoder(z, self._noise(decoder))

    @torch.no_grad()
    def sample(self, batch: Batch) -> dict[str, torch.Tensor]:
        decoder = self.ema_network("generator")
        z = self.sample_z[: len(batch["hq"])].to(self.device)
        fake, _ = decoder(z, self._noise(decoder))
        return {"real": batch["hq"], "fake": fake}


class GPENBFRTask(_StyleGAN2Task):
    """GPEN restoration fine-tuning on (LQ, HQ) pairs, official train_simple.py."""

    Options = GPENBFROptions

    def build(self) -> None:
        model = self.options.model
        generator = FullGenerator(
            model.size,
            model.style_dim,
            model.n_mlp,
            model.channel_multiplier,
            model.narrow,
            template=model.template,
        )
        self._build_gan(generator, gpen_discriminator(model))
        self._build_losses()

    def _build_losses(self) -> None:
        self.identity = None
        if self.options.identity_weight > 0:
            from ..losses.identity import IdentityLoss

            self.identity = IdentityLoss(
                self.options.identity_weights, self.options.identity_backbone
            ).to(self.device)
        self.perceptual = None
        if self.options.perceptual_weight > 0:
            from ..losses.perceptual import PerceptualLoss

            self.perceptual = PerceptualLoss(
                self.options.perceptual_weights, self.options.perceptual_arch
            ).to(self.device)

    def generate(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        return self.networks["generator"](batch["lq"].to(self.device), return_latents=True)

    def adversarial_weight(self) -> float:
        return self.options.adversarial_weight

    def generator_extra_losses(
        self, fake: torch.Tensor, batch: Batch
    ) -> tuple[torch.Tensor, dict[str, float]]:
        real = batch["hq"].to(self.device)
        pixel = pixel_loss(self.options.pixel_loss, fake, real)
        total = self.options.pixel_weight * pixel
        logs = {"g_pixel": pixel.item()}
        if self.identity is not None:
            identity = self.identity(fake, real)
            total = total + self.options.identity_weight * identity
            logs["g_identity"] = identity.item()
        if self.perceptual is not None:
            perceptual = self.perceptual(fake, real)
            total = total + self.options.perceptual_weight * perceptual
            logs["g_perceptual"] = perceptual.item()
        return total, logs

    @torch.no_grad()
    def sample(self, batch: Batch) -> dict[str, torch.Tensor]:
        restored, _ = self.ema_network("generator")(batch["lq"].to(self.device))
        return {"lq": batch["lq"], "restored": restored, "hq": batch["hq"]}
