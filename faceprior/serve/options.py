"""Request fields -> keyword arguments of :class:`faceprior.pipeline.FaceRestorer`.

The fields a request may send are read from ``FaceRestorer``'s signature, so an option added
to the pipeline is accepted by the server without a change here. Only the server decides the
keywords in :data:`SERVER_ONLY` (device, detector, limits). Fields that name a model take
names from the catalogue the worker publishes, never a path: no request reaches the file
system through an option. A few fields belong to the request itself, not to the restorer
(:data:`OUTPUT_FIELDS`).
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field
from functools import cache

# Decided by the server (ServeSettings), never by a request.
SERVER_ONLY = frozenset(
    {
        "detector",
        "detector_weights",
        "device",
        "batch_size",
        "precision",
        "compile",
        "reuse_memory",
        "keep_faces",
        "max_pixels",
        "offline",
    }
)
# Options whose value names a model: a request may only give a name from the catalogue
# (``GET /v1/models``). Any other keyword that takes a path (``os.PathLike`` in its annotation)
# cannot be set over HTTP at all.
NAME_FIELDS = {
    "model": "models",
    "small_model": "models",
    "mask_parser": "parsers",
    "parsing_model": "parsers",
    "background": "backgrounds",
}
# Fields about the request's answer rather than the restoration.
OUTPUT_FIELDS = {
    "aligned": "bool: the upload is an aligned face crop (restore_aligned)",
    "compare": "bool: also make a PNG of input | output with the faces boxed and numbered",
    "format": "same (default: the input's format), png, jpg, webp or tiff",
    "quality": "int: JPEG/WebP quality, 1-100 (default 95)",
}
OUTPUT_FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP", "tiff": "TIFF"}
_LIST_KINDS = ("list", "tuple", "Sequence")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class OptionError(ValueError):
    """A request field the server cannot accept; the message names the field."""


@dataclass(frozen=True)
class OptionSpec:
    """One request field taken from a ``FaceRestorer`` keyword."""

    name: str
    annotation: str
    default: object

    def describe(self) -> str:
        return f"{self.annotation} (default: {self.default!r})"


@dataclass
class RequestOptions:
    """Parsed fields: ``restorer`` goes to ``FaceRestorer``, the rest shapes the answer."""

    restorer: dict = field(default_factory=dict)
    aligned: bool = False
    compare: bool = False
    format: str = "same"
    quality: int = 95


@cache
def option_specs() -> dict[str, OptionSpec]:
    """The ``FaceRestorer`` keywords a request may set, by name."""
    from ..pipeline import FaceRestorer

    specs = {}
    for name, parameter in inspect.signature(FaceRestorer.__init__).parameters.items():
        if name == "self" or name in SERVER_ONLY:
            continue
        if parameter.kind not in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
            continue
        annotation = parameter.annotation
        if not isinstance(annotation, str):
            annotation = getattr(annotation, "__name__", str(annotation))
        specs[name] = OptionSpec(name, annotation, parameter.default)
    return specs


def parse_options(fields: dict[str, str], names: dict[str, set[str]]) -> RequestOptions:
    """Check and convert form or query fields; :class:`OptionError` for anything wrong.

    ``names``: the names a request may give, by catalogue list (see :data:`NAME_FIELDS`).
    """
    specs = option_specs()
    options = RequestOptions()
    for name, raw in fields.items():
        if name in ("aligned", "compare"):
            setattr(options, name, _parse_bool(name, raw))
        elif name == "format":
            value = raw.strip().lower()
            if value != "same" and value not in OUTPUT_FORMATS:
                known = ", ".join(("same", *OUTPUT_FORMATS))
                raise OptionError(f"format must be one of {known}, got {raw!r}")
            options.format = value
        elif name == "quality":
            options.quality = _parse_number(name, raw, int)
            if not 1 <= options.quality <= 100:
                raise OptionError(f"quality must be in 1-100, got {options.quality}")
        elif name in specs:
            value = parse_value(specs[name], raw)
            if name in NAME_FIELDS:
                if value is not None:
                    _check_name(name, value, names.get(NAME_FIELDS[name], set()))
            elif "PathLike" in specs[name].annotation:
                raise OptionError(f"{name} takes a path, which requests may not give")
            options.restorer[name] = value
        elif name in SERVER_ONLY:
            raise OptionError(
                f"{name} is set by the server (faceprior serve --help), not per request"
            )
        else:
            known = ", ".join(sorted([*specs, *OUTPUT_FIELDS]))
            raise OptionError(f"unknown option {name!r}; known options: {known}")
    return options


def parse_value(spec: OptionSpec, raw: str):
    """Convert ``raw`` by the keyword's annotation (``float | None``, ``bool``, lists...)."""
    kinds = {part.strip() for part in spec.annotation.split("|")}
    text = raw.strip()
    if "None" in kinds and text.lower() in ("", "none", "null"):
        return None
    if "bool" in kinds and ("str" not in kinds or text.lower() in (*_TRUE, *_FALSE)):
        return _parse_bool(spec.name, text)
    if text.startswith("[") and any(kind.split("[")[0] in _LIST_KINDS for kind in kinds):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            raise OptionError(f"{spec.name}: not a JSON list ({error})") from None
        if not isinstance(value, list) or not all(
            isinstance(item, int | float) and not isinstance(item, bool) for item in value
        ):
            raise OptionError(f"{spec.name} must be a JSON list of numbers, got {raw!r}")
        return value
    if "int" in kinds and "float" not in kinds:
        return _parse_number(spec.name, text, int)
    if "float" in kinds:
        return _parse_number(spec.name, text, float)
    if "str" in kinds:
        return text
    raise OptionError(f"{spec.name} cannot be set over HTTP ({spec.annotation})")


def _parse_bool(name: str, text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise OptionError(f"{name} must be true or false, got {text!r}")


def _parse_number(name: str, text: str, kind: type):
    try:
        value = kind(text)
    except ValueError:
        raise OptionError(
            f"{name} must be {'an integer' if kind is int else 'a number'}, got {text!r}"
        ) from None
    if kind is float and value != value or value in (float("inf"), float("-inf")):
        raise OptionError(f"{name} must be a finite number, got {text!r}")
    return value


def _check_name(name: str, value: str, known: set[str]) -> None:
    if value not in known:
        listed = ", ".join(sorted(known)) or "none"
        raise OptionError(
            f"{name} {value!r} is not available on this server; available: {listed} "
            f"(see GET /v1/models)"
        )
