"""PSFR-GAN training (``psfrgan``): the official recipe of official training code.

Per step: the frozen, pretrained ParseNet parses the LQ face; its hard one-hot map and the LQ
drive the generator (train mode: one spectral-norm power iteration per forward). The generator
is updated first with ``10 L1 + 10 feature matching + 1 hinge + 1000 semantic-aware style``,
then the multi-scale discriminator with the halved hinge loss on the *same* fake (made before
the generator update). Adam, constant learning rates 1e-4 (G) / 4e-4 (D), betas (0.5, 0.999);
no EMA (the official code keeps none).

The discriminator and the style loss need the parse map of the HQ face. The official run read
masks that ParseNet had produced offline from the HQ images (``generate_mask.py``, eval mode);
here the same frozen ParseNet makes them on the fly in eval mode. Deviations, on purpose:

* The LQ is parsed in eval mode by default, as at inference. The official run left ParseNet in
  train mode (BatchNorm batch statistics of 1 image per GPU, inferred from the official code);
  ``parser_batch_statistics: true`` reproduces that without touching the stored statistics.
* When the HQ is greyed by the degradation, its mask is parsed from the grey HQ (the official
  masks came from the colour images).
* The style loss needs a user-supplied torchvision-layout VGG19 file (``vgg_weights``); without
  one (or with ``style_weight: 0``) the term is off and a note is printed at build time.
  The official perceptual term has weight 0 and is not implemented.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from ...models.psfrgan import (
    MultiScaleDiscriminator,
    ParseNet,
    PSFRGenerator,
    hard_onehot,
    load_parser,
)
from ..losses.psfrgan import (
    RegionStyleLoss,
    d_hinge_loss,
    feature_matching_loss,
    g_hinge_loss,
    pixel_loss,
)
from ..task import Batch, TrainingTask


@dataclass
class PSFRGeneratorModel:
    """``PSFRGenerator`` arguments (official psfrnet.py); ``out_size`` must equal ``data.size``."""

    out_size: int = 512
    min_feat_size: int = 16
    ch_range: list[int] = field(default_factory=lambda: [32, 1024])


@dataclass
class PSFRDiscriminatorModel:
    """``MultiScaleDiscriminator`` arguments (official networks.py); input: 3 + parser classes."""

    base_channels: int = 64
    n_layers: int = 4
    num_scales: int = 3
    max_channels: int = 1024


@dataclass
class PSFRGANOptions:
    """The official PSFR-GAN recipe (enhance_model.py, loss.py); weights of 0 switch a term off.

    ``parsenet_weights``: zoo name or file of the pretrained ParseNet (required; the official
    run used ``parse_multi_iter_90000.pth`` = zoo ``psfrgan-parsenet``). ``vgg_weights``: a
    torchvision-layout VGG19 file for the style loss; "" turns the style loss off.
    """

    generator: PSFRGeneratorModel = field(default_factory=PSFRGeneratorModel)
    discriminator: PSFRDiscriminatorModel = field(default_factory=PSFRDiscriminatorModel)
    parsenet_weights: str = "psfrgan-parsenet"
    parser_batch_statistics: bool = False  # True: the official train-mode BatchNorm
    vgg_weights: str = ""
    pixel_weight: float = 10.0
    feature_matching_weight: float = 10.0
    adversarial_weight: float = 1.0
    style_weight: float = 1000.0
    style_min_size: int = 224  # VGG input: narrower images are upsized to this (official); 0: never
    g_lr: float = 1e-4
    d_lr: float = 4e-4
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])


def freeze_parser(parser: ParseNet) -> ParseNet:
    """A parser that never changes: no gradients, eval mode, and BatchNorms that stop tracking,
    so that a train-mode (batch-statistics) forward leaves the stored statistics alone while
    eval mode still normalises with them."""
    parser.requires_grad_(False).eval()
    for module in parser.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.track_running_stats = False
    return parser


class PSFRGANTask(TrainingTask):
    """PSFR-GAN: generator step, then discriminator step on the same fake (official code)."""

    Options = PSFRGANOptions

    def build(self) -> None:
        options = self.options
        if not options.parsenet_weights:
            raise ValueError(
                "options.parsenet_weights is required: the generator is fed the parse map of "
                "a pretrained ParseNet (zoo name psfrgan-parsenet or a file)"
            )
        if options.style_min_size < 0:
            raise ValueError(f"options.style_min_size must be >= 0, got {options.style_min_size}")
        if len(options.betas) != 2:
            raise ValueError(f"options.betas must be [beta1, beta2], got {options.betas}")
        weights = ("pixel", "feature_matching", "adversarial", "style")
        for name in weights:
            if getattr(options, f"{name}_weight") < 0:
                raise ValueError(f"options.{name}_weight must be >= 0")
        parser = load_parser(options.parsenet_weights, device=self.device)
        self.parser = freeze_parser(parser)
        classes = parser.arguments["parsing_ch"]
        model = options.generator
        generator = PSFRGenerator(model.out_size, model.min_feat_size, classes, model.ch_range)
        critic = options.discriminator
        discriminator = MultiScaleDiscriminator(
            3 + classes,
            critic.base_channels,
            critic.n_layers,
            critic.num_scales,
            critic.max_channels,
        )
        self.add_network("generator", generator)
        self.add_network("discriminator", discriminator)
        betas = (options.betas[0], options.betas[1])
        self.add_optimizer(
            "generator",
            torch.optim.Adam(generator.parameters(), lr=options.g_lr, betas=betas),
            ["generator"],
        )
        self.add_optimizer(
            "discriminator",
            torch.optim.Adam(discriminator.parameters(), lr=options.d_lr, betas=betas),
            ["discriminator"],
        )
        self.style = None
        if options.style_weight > 0 and options.vgg_weights:
            style = RegionStyleLoss.from_file(options.vgg_weights, options.style_min_size)
            self.style = style.to(self.device)
        elif options.style_weight > 0:
            print(
                "psfrgan: semantic-aware style loss off (options.vgg_weights is empty; "
                "the official recipe uses it with weight 1000)",
                file=sys.stderr,
            )
        terms = (options.pixel_weight, options.feature_matching_weight, options.adversarial_weight)
        if max(terms) == 0 and self.style is None:
            raise ValueError("every generator loss term is off: set at least one weight > 0")
        self._pending: list[Batch] = []

    def uses_discriminator(self) -> bool:
        options = self.options
        return options.adversarial_weight > 0 or options.feature_matching_weight > 0

    @torch.no_grad()
    def parse(self, faces: torch.Tensor, batch_statistics: bool = False) -> torch.Tensor:
        """Hard one-hot parse map of ``faces`` by the frozen ParseNet (the official G input).

        ``batch_statistics`` normalises with the batch's BatchNorm statistics, as the official
        training's train-mode parser did; otherwise the stored ones, as at inference.
        """
        for module in self.parser.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.train(batch_statistics)
        return hard_onehot(self.parser(faces)[0])

    def _check_sizes(self, lq: torch.Tensor, hq: torch.Tensor) -> None:
        size = self.options.generator.out_size
        if hq.shape[-2:] != (size, size):
            raise ValueError(
                f"HQ faces are {tuple(hq.shape[-2:])}, the generator makes {size}x{size}: "
                f"set data.size to options.generator.out_size"
            )
        if lq.shape[-2:] != hq.shape[-2:]:
            raise ValueError(
                f"LQ {tuple(lq.shape[-2:])} and HQ {tuple(hq.shape[-2:])} differ: PSFR-GAN "
                f"takes the LQ at the HQ size (leave data.lq_size unset)"
            )

    def train_step(self, micro_batches: Sequence[Batch], step: int) -> dict[str, float]:
        generator, discriminator = self.networks["generator"], self.networks["discriminator"]
        self._pending = []
        self.requires_grad(generator, True)
        self.requires_grad(discriminator, False)
        logs = self.accumulate("generator", micro_batches, self._g_loss)
        self.optimizer_step("generator")
        if self.uses_discriminator():
            self.requires_grad(discriminator, True)
            logs |= self.accumulate("discriminator", self._pending, self._d_loss)
            self.optimizer_step("discriminator")
        self._pending = []
        return logs

    def _g_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        options = self.options
        lq, hq = batch["lq"].to(self.device), batch["hq"].to(self.device)
        self._check_sizes(lq, hq)
        lq_parse = self.parse(lq, self.options.parser_batch_statistics)
        mask = self.parse(hq)  # the HQ map for D and the style loss (offline masks: eval mode)
        with self.autocast():
            fake = self.networks["generator"](lq, lq_parse)
        fake = fake.float()
        total = fake.new_zeros(())
        logs: dict[str, float] = {}
        if options.pixel_weight > 0:
            pixel = pixel_loss(fake, hq)
            total = total + options.pixel_weight * pixel
            logs["g_pixel"] = pixel.item()
        if self.uses_discriminator():
            discriminator = self.networks["discriminator"]
            with self.autocast():
                fake_outputs = discriminator(torch.cat([fake, mask], dim=1))
                with torch.no_grad():
                    real_outputs = discriminator(torch.cat([hq, mask], dim=1))
            if options.adversarial_weight > 0:
                adversarial = g_hinge_loss(_as_float(fake_outputs))
                total = total + options.adversarial_weight * adversarial
                logs["g_adversarial"] = adversarial.item()
            if options.feature_matching_weight > 0:
                matching = feature_matching_loss(_as_float(real_outputs), _as_float(fake_outputs))
                total = total + options.feature_matching_weight * matching
                logs["g_feature_matching"] = matching.item()
        if self.style is not None:
            style = self.style(fake, hq, mask)
            total = total + options.style_weight * style
            logs["g_style"] = style.item()
        self._pending.append({"fake": fake.detach(), "hq": hq, "mask": mask})
        return total, {"g_loss": total.item(), **logs}

    def _d_loss(self, pending: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        discriminator = self.networks["discriminator"]
        mask = pending["mask"]
        with self.autocast():
            real_outputs = _as_float(discriminator(torch.cat([pending["hq"], mask], dim=1)))
            fake_outputs = _as_float(discriminator(torch.cat([pending["fake"], mask], dim=1)))
        loss = d_hinge_loss(real_outputs, fake_outputs)
        return loss, {
            "d_loss": loss.item(),
            "real_score": _mean_score(real_outputs),
            "fake_score": _mean_score(fake_outputs),
        }

    @torch.no_grad()
    def sample(self, batch: Batch) -> dict[str, torch.Tensor]:
        lq = batch["lq"].to(self.device)
        restored = self.networks["generator"](lq, self.parse(lq))
        return {"lq": batch["lq"], "restored": restored, "hq": batch["hq"]}


def _as_float(outputs):
    """Discriminator outputs in fp32 for the losses (a no-op outside mixed precision)."""
    return [(scores.float(), [f.float() for f in feats]) for scores, feats in outputs]


def _mean_score(outputs) -> float:
    return float(torch.stack([scores.detach().mean() for scores, _ in outputs]).mean())
