"""Panini-Net generators as released: ``Panini_MFR`` (512 -> 1024) and ``Panini_SR`` (16x).

An image encoder (RRDB + CBAM + strided convs) gives features at 64..4 px and, through a
linear head, the 18 w+ codes of a StyleGAN2 prior. Before each of the prior's upsampling
convs at 4..64 px, DAFI mixes the prior's feature with the projected encoder feature using
degradation-aware per-channel weights (official panini.py). State-dict keys and numerics follow
``mmedit/models/backbones/panini.py``; unlike the official code this runs on CPU and GPU and
needs no MoCo file at construction.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..conventions import Conventions
from .cbam import CBAM
from .dafi import FUSED_CHANNELS, NUM_SCALES, DAFIWeightGenerator, Fidelity, scale_fidelity
from .degradation_encoder import REPRESENTATION_DIM, DegradationEncoder
from .prior import StyleGAN2Prior
from .rrdb import RRDBFeatureExtractor

MFR_INPUT_SIZES = (64, 128, 256, 512)  # 512 released; smaller ones for CPU-sized training
OUTPUT_SIZES = (128, 256, 512, 1024)
NUM_HEAD_LATENTS = 18  # the latent head always emits 18 codes; smaller priors use the first ones
DEGRADATION_INPUT = 256


def _conv_act(in_channels: int, out_channels: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, 3, stride, 1), nn.LeakyReLU(0.2, inplace=True)]


class _Panini(nn.Module):
    """What both released models share: down-convs, latent head, DAFI and prior.

    As in the official panini.py.
    """

    in_size: int
    architecture: str
    task: str

    def _set_arguments(self, narrow: float, **arguments) -> None:
        """Record the constructor arguments; ``narrow`` only when it differs from the release,
        so the released models keep their argument sets (and file headers) unchanged."""
        fused = FUSED_CHANNELS * narrow
        if narrow <= 0 or fused != int(fused) or 32 * narrow < 1:
            raise ValueError(
                f"narrow must keep 512 * narrow whole and 32 * narrow >= 1, got {narrow}"
            )
        self.fused_channels = int(fused)
        self.arguments = dict(arguments, **({} if narrow == 1.0 else {"narrow": narrow}))

    def _build_prior(self, out_size: int, style_channels: int, num_mlps: int) -> None:
        narrow = self.arguments.get("narrow", 1.0)
        self.generator = StyleGAN2Prior(out_size, style_channels, num_mlps, narrow=narrow)

    def _build_encoder_and_dafi(self, first_block: nn.Sequential, style_channels: int) -> None:
        fused = self.fused_channels
        blocks = [first_block]
        blocks += [nn.Sequential(*_conv_act(fused, fused, 2)) for _ in range(4)]
        blocks.append(
            nn.Sequential(
                *_conv_act(fused, 256, 1),
                nn.Flatten(),
                nn.Linear(256 * 4 * 4, NUM_HEAD_LATENTS * style_channels),
            )
        )
        self.encoder = nn.ModuleList(blocks)
        self.AFS_maskGen = DAFIWeightGenerator(REPRESENTATION_DIM, fused)
        self.fusion_out = nn.ModuleList(nn.Conv2d(fused, fused, 3, 1, 1) for _ in range(NUM_SCALES))

    @property
    def conventions(self) -> Conventions:
        return Conventions(
            architecture=self.architecture,
            task=self.task,
            input_size=self.arguments["in_size"],
            output_size=self.arguments["out_size"],
            template="ffhq",
        )

    def dafi_weights(self, lq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The learned interpolation weights (m_gan, m_enc), each (B, 5, 512, 1, 1)."""
        return self.AFS_maskGen(self.degradation_representation(lq))

    def _check_input(self, lq: torch.Tensor) -> None:
        size = self.in_size
        if lq.ndim != 4 or lq.shape[1] != 3 or lq.shape[2] != size or lq.shape[3] != size:
            raise ValueError(
                f"{type(self).__name__} takes aligned faces of shape (B, 3, {size}, {size}), "
                f"got {tuple(lq.shape)}; resize/align the face first"
            )

    def forward(self, lq: torch.Tensor, fidelity: Fidelity | None = None) -> torch.Tensor:
        """(B, 3, in, in) RGB in [-1, 1] -> (B, 3, out, out) RGB, nominally [-1, 1], unclamped.

        ``fidelity`` None uses the network's own DAFI weights, as released. A value in [0, 1]
        (or one per scale 4, 8, 16, 32, 64) moves every interpolation toward the input's
        encoder features (1) or the GAN prior (0); 0.5 is the released behaviour, see
        :func:`faceprior.models.panini.dafi.scale_fidelity`.
        """
        self._check_input(lq)
        m_gan, m_enc = self.dafi_weights(lq)
        if fidelity is not None:
            m_gan, m_enc = scale_fidelity(m_gan, m_enc, fidelity)
        features = []
        x = lq
        for block in self.encoder:
            x = block(x)
            features.append(x)
        latents = features[-1].view(lq.shape[0], NUM_HEAD_LATENTS, -1)
        coarse_to_fine = features[-2::-1]  # F4, F8, F16, F32, F64

        def fuse(stage: int, gan_feature: torch.Tensor) -> torch.Tensor:
            if stage >= NUM_SCALES:
                return gan_feature
            encoded = self.fusion_out[stage](coarse_to_fine[stage])
            return m_gan[:, stage] * gan_feature + m_enc[:, stage] * encoded

        return self.generator(latents, fuse)


class PaniniMFR(_Panini):
    """Multi-degradation face restoration: 512 px in, 1024 px out, DAFI driven by the DRE.

    The degradation encoder sees the input box-averaged to 256 px (``resize``) and its pooled
    feature sets the DAFI weights per image. ``in_size`` below 512 (fewer stride-2 convs to
    the 64 px features), ``narrow`` < 1 (all prior/fusion widths scaled) and another
    ``degradation_size`` (the DRE's input side; match the UDRL pairs' size) are not in the
    release; they exist for CPU-sized training runs and tests.
    """

    architecture = "panini-mfr"
    task = "restoration"

    def __init__(
        self,
        in_size: int = 512,
        out_size: int = 1024,
        style_channels: int = 512,
        rrdb_channels: int = 8,
        num_rrdbs: int = 2,
        num_mlps: int = 8,
        narrow: float = 1.0,
        degradation_size: int = DEGRADATION_INPUT,
    ):
        super().__init__()
        if in_size not in MFR_INPUT_SIZES or out_size != 2 * in_size:
            raise ValueError(
                f"Panini_MFR restores x2 from {MFR_INPUT_SIZES} px, got {in_size} -> {out_size}; "
                "the release is 512 -> 1024"
            )
        self.in_size = in_size
        self._set_arguments(
            narrow,
            in_size=in_size,
            out_size=out_size,
            style_channels=style_channels,
            rrdb_channels=rrdb_channels,
            num_rrdbs=num_rrdbs,
            num_mlps=num_mlps,
        )
        if degradation_size != DEGRADATION_INPUT:  # the DRE is fully convolutional + pooled
            self.arguments["degradation_size"] = degradation_size
        self._build_prior(out_size, style_channels, num_mlps)
        self.resize = nn.AdaptiveAvgPool2d((degradation_size, degradation_size))
        self.deg_encoder = DegradationEncoder()
        # Released (512 px): rrdb -> 32 at 512, then stride-2 convs to 64, 128, 512 at 64 px.
        down = int(math.log2(in_size // 64))
        widths = [32 * 2**i for i in range(down)] + [self.fused_channels]
        convs = _conv_act(rrdb_channels, widths[0], 1)
        for narrow_in, wide_out in zip(widths, widths[1:], strict=False):
            convs += _conv_act(narrow_in, wide_out, 2)
        first = nn.Sequential(
            RRDBFeatureExtractor(3, rrdb_channels, num_rrdbs),
            CBAM(rrdb_channels, reduction_ratio=2),
            *convs,
        )
        self._build_encoder_and_dafi(first, style_channels)

    def degradation_representation(self, lq: torch.Tensor) -> torch.Tensor:
        return self.deg_encoder(self.resize(lq))


class PaniniSR(_Panini):
    """16x face super-resolution (64 px in): DAFI weights are a learned constant.

    ``choice_vector`` stands in for the degradation representation, so the interpolation
    weights do not depend on the input (the SR degradation is fixed).
    """

    architecture = "panini-sr"
    task = "super-resolution"

    def __init__(
        self,
        in_size: int = 64,
        out_size: int = 1024,
        style_channels: int = 512,
        rrdb_channels: int = 64,
        num_rrdbs: int = 23,
        num_mlps: int = 8,
        narrow: float = 1.0,
    ):
        super().__init__()
        if in_size != 64 or out_size not in OUTPUT_SIZES:
            raise ValueError(
                f"Panini_SR takes 64 px in and 128/256/512/1024 px out, got {in_size} -> {out_size}"
            )
        self.in_size = in_size
        self._set_arguments(
            narrow,
            in_size=in_size,
            out_size=out_size,
            style_channels=style_channels,
            rrdb_channels=rrdb_channels,
            num_rrdbs=num_rrdbs,
            num_mlps=num_mlps,
        )
        self.choice_vector = nn.Parameter(torch.randn(1, REPRESENTATION_DIM))
        self._build_prior(out_size, style_channels, num_mlps)
        first = nn.Sequential(
            RRDBFeatureExtractor(3, rrdb_channels, num_rrdbs),
            CBAM(rrdb_channels, reduction_ratio=8),
            *_conv_act(rrdb_channels, self.fused_channels, 1),
        )
        self._build_encoder_and_dafi(first, style_channels)

    def degradation_representation(self, lq: torch.Tensor) -> torch.Tensor:
        return self.choice_vector.expand(lq.shape[0], -1)
