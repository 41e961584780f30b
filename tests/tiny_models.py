"""Tiny random-weight instances of every restoration architecture, for fast tests.

Sized so a forward pass takes milliseconds on a CPU while every layer type of the released
networks is present.
"""

from __future__ import annotations

import torch

from faceprior.models.psfrgan import ParseNet, PSFRRestorer
from faceprior.models.registry import get_architecture
from faceprior.models.restorer import RestorerOptions

TINY_PANINI = dict(style_channels=32, rrdb_channels=8, num_rrdbs=1, num_mlps=2, narrow=0.0625)
TINY_STYLEGAN = dict(style_dim=32, n_mlp=2, channel_multiplier=1, narrow=0.03125)
ARCHITECTURES = (
    "psfrgan",
    "panini-mfr",
    "panini-sr",
    "mmrb-gan",
    "gpen-mmrb",
    "gpen-fusion",
    "unet",
)


def make_noise_matter(network: torch.nn.Module) -> torch.nn.Module:
    """Fresh StyleGAN2 layers scale their injected maps by 0 (trained ones do not): give them
    weight, so the encoder maps of GPEN/GPEN-MMRB/MMRB-GAN and Panini's noise buffers count."""
    with torch.no_grad():
        for name, param in network.named_parameters():
            if name.endswith(("noise.weight", "noise_injector.weight")):
                param.fill_(0.5)
    return network


def tiny_network(name: str) -> torch.nn.Module:
    build = get_architecture(name).build
    if name == "psfrgan":
        return build(out_size=64, min_feat_size=16, parse_ch=19, ch_range=(16, 16))
    if name == "panini-mfr":
        return build(in_size=64, out_size=128, degradation_size=32, **TINY_PANINI)
    if name == "panini-sr":
        return build(in_size=64, out_size=128, **TINY_PANINI)
    if name == "mmrb-gan":
        return build(16, **TINY_STYLEGAN)
    if name == "gpen-mmrb":  # residual scale 0 (the default) would make every MMRB an identity
        return build(16, **TINY_STYLEGAN, mmrb_blocks=2, mmrb_residual_scale=0.2)
    if name == "gpen-fusion":  # a fresh head's last conv is 0: give it weight, as trained
        network = build(16, **TINY_STYLEGAN, head_channels=8, head_blocks=1)
        torch.nn.init.normal_(network.head.body_out.weight, std=0.05)
        return network
    assert name == "unet", name
    return build(32, (8, 16, 32))


def tiny_restorer(name: str, options: RestorerOptions | None = None):
    """The pipeline's restorer around ``tiny_network(name)``, seeded, in eval mode."""
    torch.manual_seed(0)
    network = make_noise_matter(tiny_network(name)).eval()
    if name == "psfrgan":  # the registry's factory would fetch the zoo's 512-px parser
        parser = ParseNet(64, 64, 32, base_ch=8, parsing_ch=19, res_depth=1, ch_range=(8, 32))
        return PSFRRestorer(network, parser.eval()).eval()
    return get_architecture(name).restorer(network, options or RestorerOptions()).eval()
