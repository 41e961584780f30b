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
    from ..train.config import ConfigError, load_config, to_dict

    if args.list_configs:
        root = Path(__file__).resolve().parents[1] / "configs"
        for path in sorted(root.rglob("*.yaml")):
            print(path.relative_to(root).as_posix())
        return 0
    if not args.config:
        print("faceprior train: a CONFIG is required (see --list-configs)", file=sys.stderr)
        return 2
    try:
        config = load_config(resolve_config_path(args.config), args.overrides)
    except ConfigError as error:
        print(f"faceprior train: {error}", file=sys.stderr)
        return 2
    if args.print_config:
        import yaml

        print(yaml.safe_dump(to_dict(config), sort_keys=False), end="")
        return 0
    from ..train.trainer import train

    result = train(config)
    if result.interrupted:
        where = result.checkpoint or "(no checkpoint)"
        print(f"stopped at step {result.step}; checkpoint {where}", file=sys.stderr)
        return 128 + result.signal if result.signal else 0
    print(f"finished {result.step} steps; outputs in {config.output}", file=sys.stderr)
    return 0
