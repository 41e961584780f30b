"""The one batch interface the photo pipeline uses for every restoration method.

A :class:`RestorationModel` takes aligned faces as a (N, 3, S, S) RGB tensor in [-1, 1]
(S = ``conventions.input_size``, warped to ``conventions.template``) and returns restored
faces (N, 3, S', S') RGB in [-1, 1] (S' = ``conventions.output_size``), whatever range and
colour order the wrapped network works in (``conventions``; :func:`to_network` and
:func:`from_network` convert, here and nowhere else). :func:`from_unit`/:func:`to_unit` take
photo pixels in [0, 1] to that interface and back. Method-specific steps (PSFR-GAN's parsing
map, Panini-Net's fidelity knob) live inside.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ArgumentError
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

    def baked_options(self) -> dict:
        """The load-time options this model fixes in an exported graph (JSON-serialisable),
        recorded in the ONNX metadata since they can no longer be changed there."""
        return {}


class FirstOutputRestorer(RestorationModel):
    """For networks whose ``forward(image)`` returns the restored image first (GPEN).

    Faces come and go in the pipeline's RGB [-1, 1]; a network that works in another range or
    colour order (its ``conventions``) gets its faces converted here, the one place that does.
    """

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        conventions = self.conventions
        return from_network(self.network(to_network(faces, conventions))[0], conventions)


def from_unit(images: torch.Tensor) -> torch.Tensor:
    """Photo pixels in [0, 1] -> the [-1, 1] every :class:`RestorationModel` takes."""
    return images * 2 - 1


def to_unit(faces: torch.Tensor) -> torch.Tensor:
    """A :class:`RestorationModel`'s output -> photo pixels in [0, 1] (clamped)."""
    return (faces.clamp(-1, 1) + 1) / 2


def to_network(faces: torch.Tensor, conventions: Conventions) -> torch.Tensor:
    """(N, 3, H, W) RGB faces in [-1, 1] -> the network's ``value_range`` and colour order."""
    low, high = conventions.value_range
    if (low, high) != (-1.0, 1.0):
        faces = (faces + 1) * ((high - low) / 2) + low
    return faces.flip(1) if conventions.color_order == "BGR" else faces


def from_network(images: torch.Tensor, conventions: Conventions) -> torch.Tensor:
    """The inverse of :func:`to_network`: network outputs back to RGB in [-1, 1]."""
    images = images.flip(1) if conventions.color_order == "BGR" else images
    low, high = conventions.value_range
    if (low, high) != (-1.0, 1.0):
        images = (images - low) * (2 / (high - low)) - 1
    return images


def first_output_restorer(network: nn.Module, options: RestorerOptions) -> FirstOutputRestorer:
    """The registry ``restorer`` of methods that take no pipeline option (GPEN, MMRB, U-Net)."""
    reject_unsupported(options, network.conventions.architecture, ())
    return FirstOutputRestorer(network, network.conventions)


def reject_unsupported(options: RestorerOptions, architecture: str, supported: tuple[str, ...]):
    """Raise if an option that this method cannot honour was set."""
    for field in ("fidelity", "parsing_model"):
        if getattr(options, field) is not None and field not in supported:
            raise ArgumentError(field, f"is not supported by {architecture} models")
