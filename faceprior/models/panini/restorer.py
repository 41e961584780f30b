"""Panini-Net in the photo pipeline's batch interface, with the fidelity knob."""

from __future__ import annotations

import torch

from ..restorer import RestorationModel, RestorerOptions, reject_unsupported
from .network import _Panini


class PaniniRestorer(RestorationModel):
    """Aligned faces (N, 3, S, S) RGB [-1, 1] -> restored (N, 3, S', S') at a fixed fidelity.

    ``fidelity`` None keeps the released DAFI weights; see ``PaniniMFR.forward``.
    """

    def __init__(self, network: _Panini, fidelity: float | None = None):
        super().__init__(network, network.conventions)
        if fidelity is not None and not 0.0 <= float(fidelity) <= 1.0:
            raise ValueError(f"fidelity must lie in [0, 1], got {fidelity}")
        self.fidelity = None if fidelity is None else float(fidelity)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return self.network(faces, fidelity=self.fidelity)

    def baked_options(self) -> dict:
        """The fidelity becomes constants of the graph (``None``: the released DAFI weights)."""
        return {"fidelity": self.fidelity}


def panini_restorer(network: _Panini, options: RestorerOptions) -> PaniniRestorer:
    """Restorer factory of the Panini architectures: honours ``options.fidelity``."""
    reject_unsupported(options, network.conventions.architecture, ("fidelity",))
    return PaniniRestorer(network, options.fidelity)
