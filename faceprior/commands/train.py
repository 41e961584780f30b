"""Train a model from a YAML config, with ``key=value`` overrides (dotted keys).

CONFIG is a file, or the name of a packaged config (``faceprior train --list-configs``).
Runs resume from the newest checkpoint in ``output`` unless ``train.resume=never``;
SIGINT/SIGTERM save a checkpoint before exiting. For several processes (GPUs), launch with
torchrun:

  faceprior train gpen/gpen_tiny_64.yaml data.root=/data/celeba_align_6k train.steps=500
  torchrun --nproc_per_node=4 -m faceprior train gpen/gpen_bfr_512.yaml data.root=/data/ffhq
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "train a model from a YAML config (GPEN prior and BFR, MMRB-GAN, Panini-Net UDRL)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "config",
        nargs="?",
        help="YAML file, or a packaged config name such as gpen/gpen_tiny_64.yaml",
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="override a config value, e.g. train.steps=100 options.gan.lr=0.001",
    )
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print the resolved configuration (with overrides and defaults) and exit",
    )
    parser.add_argument(
        "--list-configs", action="store_true", help="list the packaged configs and exit"
    )


def resolve_config_path(name: str) -> Path:
    from ..train.config import packaged_config

    path = Path(name)
    return path if path.is_file() else packaged_config(name)


def run(args: argparse.Namespace) -> int:
    from ..train.config import load_config, to_dict

    if args.list_configs:
        root = Path(__file__).resolve().parents[1] / "configs"
        for path in sorted(root.rglob("*.yaml")):
            print(path.relative_to(root).as_posix())
        return 0
    if not args.config:
        print("faceprior train: a CONFIG is required (see --list-configs)", file=sys.stderr)
        return 2
    config_path = resolve_config_path(args.config)
    config = load_config(config_path, args.overrides)
    if args.print_config:
        import yaml

        print(yaml.safe_dump(to_dict(config), sort_keys=False), end="")
        return 0
    from ..train.trainer import train

    packaged = Path(__file__).resolve().parents[1] / "configs" in config_path.resolve().parents
    _check_paths(config, packaged)
    result = train(config)
    if result.interrupted:
        where = result.checkpoint or "(no checkpoint)"
        print(f"stopped at step {result.step}; checkpoint {where}", file=sys.stderr)
        return 128 + result.signal if result.signal else 0
    print(f"finished {result.step} steps; outputs in {config.output}", file=sys.stderr)
    return 0


def _check_paths(config, packaged: bool) -> None:
    """Files the config names must exist before any network is built (errors name the key).

    Relative paths in a packaged config are written from the project's root (``../shared``
    beside a checkout), so they are tried from there when they do not exist from here.
    """
    import dataclasses

    from ..errors import ConfigError

    def located(value: str) -> str:
        path = Path(value)
        if packaged and not path.is_absolute() and not path.exists():
            beside_package = Path(__file__).resolve().parents[2] / path
            if beside_package.exists():
                return str(beside_package)
        return value

    if not config.data.root:
        raise ConfigError("data.root is required: the folder of training faces")
    config.data.root = located(config.data.root)
    if not Path(config.data.root).is_dir():
        raise ConfigError(f"data.root: no such folder: {config.data.root}")
    # A checkpoint is a step-NNNNNNNN folder (its state.pt is read) or a state.pt file.
    if config.train.resume not in ("auto", "never") and not Path(config.train.resume).exists():
        raise ConfigError(f"train.resume: no such checkpoint: {config.train.resume}")
    from ..hub.zoo import entries

    zoo_names = entries()  # options such as psfrgan's parsenet_weights also take a zoo name
    for index, init in enumerate(config.init):
        from_zoo = init.source == "weights" and init.checkpoint in zoo_names
        if init.checkpoint and not from_zoo and not Path(init.checkpoint).exists():
            raise ConfigError(f"init[{index}].checkpoint: no such checkpoint: {init.checkpoint}")
    if dataclasses.is_dataclass(config.options):
        for option in dataclasses.fields(config.options):
            value = getattr(config.options, option.name)
            if not isinstance(value, str) or not value or value in zoo_names:
                continue
            if option.name.endswith(("weights", "checkpoint")):
                setattr(config.options, option.name, located(value))
                if not Path(getattr(config.options, option.name)).is_file():
                    raise ConfigError(f"options.{option.name}: no such file: {value}")
