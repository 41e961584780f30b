"""Panini-Net in the photo pipeline's batch interface, with the fidelity knob."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ...errors import ArgumentError
from ..restorer import MethodOptions, RestorationModel
from .network import _Panini


@dataclass(frozen=True)
class PaniniOptions(MethodOptions):
    """Panini-Net's load-time knob.

    ``fidelity``: the DAFI interpolation moved toward the input features (1) or the GAN prior
    (0); ``None`` keeps the released DAFI weights (see ``PaniniMFR.forward``).
    """

    fidelity: float | None = None

    def validate(self) -> None:
        if self.fidelity is not None and not 0.0 <= self.fidelity <= 1.0:
            raise ArgumentError("fidelity", f"must lie in [0, 1], got {self.fidelity}")


class PaniniRestorer(RestorationModel):
    """Aligned faces (N, 3, S, S) RGB [-1, 1] -> restored (N, 3, S', S') at a fixed fidelity."""

    Options = PaniniOptions
    options: PaniniOptions

    def __init__(self, network: _Panini, options: PaniniOptions | None = None):
        super().__init__(network, network.conventions, options)

    @classmethod
    def from_options(cls, network: _Panini, options: PaniniOptions) -> PaniniRestorer:
        return cls(network, options)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return self.network(faces, fidelity=self.options.fidelity)


# The registry ``restorer`` of the Panini architectures (``faceprior.models.panini``).
panini_restorer = PaniniRestorer.for_network
