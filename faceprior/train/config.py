"""Run configuration: YAML files plus ``key=value`` overrides, checked against dataclasses.

Every section is a dataclass, and the task's ``options`` section is checked against the task's
own ``Options`` dataclass, so a misspelt key or a wrong type fails before any network is
built (with the dotted path of the offending key) instead of being silently ignored.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError


@dataclass
class DataConfig:
    """Where training pairs come from (``faceprior.data``)."""

    # "synthetic": HQ faces degraded on the fly; "paired": lq/hq folders; "faces": HQ only.
    kind: str = "synthetic"
    root: str = ""  # HQ faces folder (synthetic, faces) or folder with lq/ and hq/ (paired)
    size: int = 512  # square training resolution
    split: str | None = None  # split of ``root/labels.tsv`` (CelebA subset: train/validation/test)
    crop: list[int] | str | None = None  # [x0, y0, x1, y1] before resizing, or "manifest"
    # ("manifest": the box in ``root/MANIFEST.md``); None: centre square
    degradation: str = "gpen"  # degradation preset for "synthetic" (faceprior.data.degradations)
    degradation_options: dict[str, Any] = field(default_factory=dict)  # the preset's knobs
    lq_size: int | None = None  # LQ side when it differs from ``size`` (SR tasks)
    num_workers: int = 2
    limit: int | None = None  # use only the first N faces of ``split`` (demos, tests)


@dataclass
class TrainConfig:
    """The loop: how long, how big, how often."""

    steps: int = 1000
    batch_size: int = 4  # per process and micro-batch
    accumulate: int = 1  # micro-batches per optimiser step
    precision: str = "fp32"  # fp32 | bf16 | fp16 (GPU only; CPU always runs fp32)
    device: str = "auto"  # auto | cpu | cuda
    threads: int | None = None  # CPU threads per process (torch.set_num_threads); None: default
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    log_every: int = 50
    sample_every: int = 1000
    sample_count: int = 8
    progress: bool = True
    resume: str = "auto"  # auto (newest checkpoint in output) | never | a checkpoint path
    stop_after: int | None = None  # stop (with a checkpoint) after N steps of this invocation
    lr_schedule: str = "constant"  # constant | cosine (to lr_final x the rate at the last step)
    lr_final: float = 0.0  # cosine: the last step's rate as a fraction of the initial one


@dataclass
class InitConfig:
    """Initialise (part of) a network from an earlier stage's checkpoint."""

    checkpoint: str = ""  # a training checkpoint, or (source "weights") a zoo name/exported file
    source: str = "ema.generator"  # group.network[.submodule] in the checkpoint, or "weights"
    target: str = "generator"  # network[.submodule] in this task (its EMA copy follows)


@dataclass
class RunConfig:
    task: str = ""
    options: Any = None  # the task's Options dataclass
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    init: list[InitConfig] = field(default_factory=list)
    output: str = "runs/default"
    seed: int = 0


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b=value`` -> (["a", "b"], value parsed as YAML, so numbers and lists work)."""
    import yaml

    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} is not of the form key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as error:
        raise ConfigError(f"override {text!r}: value is not valid YAML: {error}") from None
    return key.strip().split("."), value


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    for text in overrides:
        path, value = parse_override(text)
        node = raw
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: {part!r} is not a section")
            node = child
        node[path[-1]] = value
    return raw


# A config is a few kilobytes; these bounds stop hostile YAML before it costs anything: a
# "billion laughs" file nests aliases so that a few lines expand to billions of nodes.
MAX_CONFIG_BYTES = 1 << 20
MAX_EXPANDED_NODES = 100_000


def read_yaml(path: str | os.PathLike) -> dict:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config not found: {path}")
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES:,} bytes; not a config")
        text = path.read_text(encoding="utf-8")
        _check_expansion(yaml.compose(text, Loader=yaml.SafeLoader), path)
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: invalid YAML: {error}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (YAML must be UTF-8)") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror or error}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return raw


def _check_expansion(root, path: Path) -> None:
    """Refuse YAML whose aliases expand to more than MAX_EXPANDED_NODES nodes."""
    import yaml

    sizes: dict[int, int] = {}

    def size(node) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        sizes[id(node)] = 1  # a recursive alias counts once instead of looping
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(key) + size(value) for key, value in node.value)
        sizes[id(node)] = min(total, MAX_EXPANDED_NODES + 1)
        return sizes[id(node)]

    if root is not None and size(root) > MAX_EXPANDED_NODES:
        raise ConfigError(
            f"{path}: its aliases expand to more than {MAX_EXPANDED_NODES:,} values; refused "
            f"(a configuration never needs that many)"
        )


def load_config(path: str | os.PathLike | None, overrides: list[str] = ()) -> RunConfig:
    """Read ``path`` (or start empty), apply overrides, and validate everything."""
    raw = read_yaml(path) if path is not None else {}
    return build_config(apply_overrides(raw, list(overrides)))


def build_config(raw: dict) -> RunConfig:
    from .task import task_class

    raw = dict(raw)
    options = raw.pop("options", None) or {}
    config = from_dict(RunConfig, raw, "")
    if not config.task:
        raise ConfigError("'task' is required (e.g. task: gpen_bfr)")
    try:
        cls = task_class(config.task)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    config.options = from_dict(cls.Options, options, "options")
    _check_train(config.train)
    return config


def _check_train(train: TrainConfig) -> None:
    from ..runtime import PRECISIONS
    from .schedule import LR_SCHEDULES

    positive = ("steps", "batch_size", "accumulate", "checkpoint_every", "log_every")
    for name in positive + ("sample_every",):
        if getattr(train, name) < (1 if name in positive else 0):
            raise ConfigError(f"train.{name} must be positive, got {getattr(train, name)}")
    if train.precision not in PRECISIONS:
        raise ConfigError(f"train.precision must be one of {PRECISIONS}, got {train.precision!r}")
    if train.device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"train.device must be auto, cpu or cuda, got {train.device!r}")
    if train.lr_schedule not in LR_SCHEDULES:
        raise ConfigError(
            f"train.lr_schedule must be one of {LR_SCHEDULES}, got {train.lr_schedule!r}"
        )
    if not 0.0 <= train.lr_final <= 1.0:
        raise ConfigError(f"train.lr_final must be in [0, 1], got {train.lr_final}")


def from_dict(cls: type, raw: Any, where: str) -> Any:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys and wrong types."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        keys = ", ".join(f"{where}.{k}".lstrip(".") for k in unknown)
        raise ConfigError(f"unknown config key(s) {keys}; allowed: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in raw.items():
        values[name] = _coerce(hints[name], value, f"{where}.{name}".lstrip("."))
    return cls(**values)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, where)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: {value!r} fits no type")
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_coerce(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return {str(k): _coerce(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif hint is str:
        if isinstance(value, str):
            return value
    else:
        raise ConfigError(f"{where}: unsupported config type {hint}")
    name = getattr(hint, "__name__", str(hint))
    raise ConfigError(f"{where}: expected {name}, got {value!r} ({type(value).__name__})")


def to_dict(config: RunConfig) -> dict:
    """Plain-data form (saved beside checkpoints, so a run records exactly what it ran)."""
    return dataclasses.asdict(config)


def packaged_config(name: str) -> Path:
    """Path of a config shipped in ``faceprior/configs`` (``gpen/gpen_tiny_64.yaml``)."""
    root = Path(__file__).resolve().parents[1] / "configs"
    path = root / name
    if not path.is_file():
        available = sorted(str(p.relative_to(root)) for p in root.rglob("*.yaml"))
        raise ConfigError(f"no packaged config {name!r}; available: {available}")
    return path
