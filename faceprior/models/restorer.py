"""The one batch interface the photo pipeline uses for every restoration method.

A :class:`RestorationModel` takes aligned faces as a (N, 3, S, S) RGB tensor in [-1, 1]
(S = ``conventions.input_size``, warped to ``conventions.template``) and returns restored
faces (N, 3, S', S') in the same colour order and range (S' = ``conventions.output_size``).
Method-specific steps (PSFR-GAN's parsing map, Panini-Net's fidelity knob) live inside.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .conventions import Conventions


@dataclass(frozen=True)
class RestorerOptions:
    """Pipeline-level options a method may honour; a method rejects options it cannot apply.

    ``fidelity``: Panini-Net's interpolation toward the input (1) or the GAN prior (0).
    ``parsing_model``: zoo name or path of the face-parsing network (PSFR-GAN).
    """

    fidelity: float | None = None
    parsing_model: str | None = None


class RestorationModel(nn.Module):
    """Base class: holds the wrapped network and its conventions."""

    def __init__(self, network: nn.Module, conventions: Conventions):
        super().__init__()
        self.network = network
        self.conventions = conventions

    def forward(self, faces: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class FirstOutputRestorer(RestorationModel):
    """For networks whose ``forward(image)`` returns the restored image first (GPEN)."""

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return self.network(faces)[0]


def first_output_restorer(network: nn.Module, options: RestorerOptions) -> FirstOutputRestorer:
    """The registry ``restorer`` of methods that take no pipeline option (GPEN, MMRB, U-Net)."""
    reject_unsupported(options, network.conventions.architecture, ())
    return FirstOutputRestorer(network, network.conventions)


def reject_unsupported(options: RestorerOptions, architecture: str, supported: tuple[str, ...]):
    """Raise if an option that this method cannot honour was set."""
    for field in ("fidelity", "parsing_model"):
        if getattr(options, field) is not None and field not in supported:
            raise ValueError(f"{field} is not supported by {architecture} models")
