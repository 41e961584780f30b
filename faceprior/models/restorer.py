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

from dataclasses import asdict, dataclass, fields
from typing import ClassVar, get_args, get_type_hints

import torch
from torch import nn

from ..errors import ArgumentError
from .conventions import Conventions


class RestorerOptions:
    """The load-time knobs a caller asks for, by name (``RestorerOptions(fidelity=0.7)``).

    Deliberately generic: a knob belongs to its method, which declares it in its own options
    dataclass (:attr:`RestorationModel.Options`) and validates it there, so a new knob needs
    no edit here. Knobs left ``None`` are not given; reading a knob nobody gave returns ``None``.
    """

    __slots__ = ("_given",)

    def __init__(self, **knobs: object):
        object.__setattr__(self, "_given", {k: v for k, v in knobs.items() if v is not None})

    def given(self) -> dict[str, object]:
        """The knobs that were set, by name."""
        return dict(self._given)

    def __getattr__(self, name: str) -> object:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._given.get(name)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("RestorerOptions is immutable")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RestorerOptions) and self._given == other._given

    def __hash__(self) -> int:
        return hash(tuple(sorted((k, repr(v)) for k, v in self._given.items())))

    def __repr__(self) -> str:
        given = ", ".join(f"{k}={v!r}" for k, v in self._given.items())
        return f"RestorerOptions({given})"


@dataclass(frozen=True)
class MethodOptions:
    """Base of a method's own options dataclass: checks every field against its type hint
    when built, then :meth:`validate` checks values (ranges). Built once, when the model is
    loaded, so a wrong knob fails before any photo is read; nothing downstream re-checks it.

    A field typed ``float`` also takes an ``int`` (stored as ``float``). Errors are
    :class:`~faceprior.errors.ArgumentError` naming the field.
    """

    def __post_init__(self) -> None:
        hints = get_type_hints(type(self))
        for field in fields(self):
            value = getattr(self, field.name)
            allowed = _allowed_types(hints[field.name])
            if value is None and type(None) in allowed:
                continue
            if float in allowed and isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, field.name, float(value))
                continue
            if isinstance(value, bool) and bool not in allowed or not isinstance(value, allowed):
                names = " or ".join(t.__name__ for t in allowed if t is not type(None))
                raise ArgumentError(field.name, f"must be a {names}, got {value!r}")
        self.validate()

    def validate(self) -> None:
        """Check the values (ranges, combinations); override in a method with such limits."""


@dataclass(frozen=True)
class NoOptions(MethodOptions):
    """The options of a method with no load-time knob."""


def _allowed_types(hint: object) -> tuple[type, ...]:
    """``float | None`` -> ``(float, NoneType)``."""
    return tuple(get_args(hint)) if get_args(hint) else (hint,)


def method_options(
    options_type: type[MethodOptions], requested: RestorerOptions | None, architecture: str
) -> MethodOptions:
    """The method's options built from the requested knobs; a knob it lacks is refused."""
    given = (requested or RestorerOptions()).given()
    known = {field.name for field in fields(options_type)}
    for name in given:
        if name not in known:
            raise ArgumentError(name, f"is not supported by {architecture} models")
    return options_type(**given)


class RestorationModel(nn.Module):
    """Base class: holds the wrapped network, its conventions and its load-time options.

    A method with a load-time knob sets :attr:`Options` to its own :class:`MethodOptions`
    dataclass; the registry's ``restorer`` is :meth:`for_network`, which builds and validates
    those options once and refuses knobs the method does not have.
    """

    Options: ClassVar[type[MethodOptions]] = NoOptions

    def __init__(
        self, network: nn.Module, conventions: Conventions, options: MethodOptions | None = None
    ):
        super().__init__()
        self.network = network
        self.conventions = conventions
        self.options = self.Options() if options is None else options

    @classmethod
    def for_network(
        cls, network: nn.Module, requested: RestorerOptions | None = None
    ) -> RestorationModel:
        """The registry's ``restorer`` factory: the requested knobs become :attr:`Options`."""
        options = method_options(cls.Options, requested, network.conventions.architecture)
        return cls.from_options(network, options)

    @classmethod
    def from_options(cls, network: nn.Module, options: MethodOptions) -> RestorationModel:
        """Wrap a network with validated options (override to load a helper network)."""
        return cls(network, network.conventions, options)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def baked_options(self) -> dict:
        """The load-time options this model fixes in an exported graph (JSON-serialisable),
        recorded in the ONNX metadata since they can no longer be changed there. By default
        the fields of :attr:`options`."""
        return asdict(self.options)


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


# The registry ``restorer`` of methods that take no load-time knob (GPEN, MMRB, U-Net).
first_output_restorer = FirstOutputRestorer.for_network
