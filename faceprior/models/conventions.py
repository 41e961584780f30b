"""What a loaded network expects and returns, so callers never guess pre/post-processing."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Conventions:
    """The I/O contract of a network as the official code uses it.

    ``template`` names the 5-point alignment template faces must be warped to (see
    ``faceprior.face.align``), or is ``None`` for networks that take no aligned face.
    ``inputs``/``outputs`` name the positional arguments of ``forward`` and the elements of
    its result, in order (``None`` marks an element the official code returns but leaves empty).
    """

    architecture: str
    task: str
    input_size: int | None
    output_size: int | None
    color_order: str = "RGB"
    value_range: tuple[float, float] = (-1.0, 1.0)
    template: str | None = None
    inputs: tuple[str, ...] = ("image",)
    outputs: tuple[str | None, ...] = ("image",)

    def to_dict(self) -> dict:
        return asdict(self)
