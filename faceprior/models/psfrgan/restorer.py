"""PSFR-GAN as one pipeline restoration model: ParseNet -> hard one-hot map -> generator.

Matches the official aligned-face test path (official test scripts): the parser runs on
the LQ face at its own resolution, its logits become the one-hot map of
:func:`~faceprior.models.psfrgan.parsenet.hard_onehot`, and the generator restores the face.
Every face of a batch goes through both networks in one call each.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ..restorer import MethodOptions, RestorationModel
from .generator import PSFRGenerator
from .parsenet import ParseNet, hard_onehot
from .parsing import load_parser


@dataclass(frozen=True)
class PSFROptions(MethodOptions):
    """PSFR-GAN's load-time knob.

    ``parsing_model``: zoo name or path of the face parser whose map feeds the generator
    (``None``: the zoo's official PSFR-GAN ParseNet).
    """

    parsing_model: str | os.PathLike | None = None


class PSFRRestorer(RestorationModel):
    """Restores aligned 512x512 FFHQ-template faces (RGB, [-1, 1]); output is not clamped."""

    Options = PSFROptions

    def __init__(
        self, network: PSFRGenerator, parser: ParseNet, options: PSFROptions | None = None
    ):
        super().__init__(network, network.conventions, options)
        expected = network.arguments["parse_ch"]
        found = parser.arguments["parsing_ch"]
        if found != expected:
            raise ValueError(
                f"the parser predicts {found} classes, the generator expects {expected}"
            )
        self.parser = parser

    @classmethod
    def from_options(cls, network: PSFRGenerator, options: PSFROptions) -> PSFRRestorer:
        """Load the parser ``options.parsing_model`` names, on the generator's device."""
        device = network.const_input.device
        return cls(network, load_parser(options.parsing_model, device=device), options)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            parse = hard_onehot(self.parser(faces)[0])
        return self.network(faces, parse)

    def baked_options(self) -> dict:
        """The graph contains the face parser (parse map -> one-hot -> generator), so the file
        maps faces to restored faces with no second model."""
        return {
            "parser": self.parser.conventions.architecture,
            "parser_arguments": self.parser.arguments,
        }


# The registry ``restorer`` of the ``psfrgan`` architecture (``faceprior.models.psfrgan``).
psfrgan_restorer = PSFRRestorer.for_network
