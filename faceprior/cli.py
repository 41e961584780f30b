"""``faceprior`` command line: one sub-command per module in ``faceprior.commands``.

Each command module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``; command modules import heavy libraries (torch, cv2) inside ``run`` so
that ``faceprior --help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = ("restore", "models", "degrade", "evaluate", "train", "benchmark", "export")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="faceprior",
        description="Blind face restoration with GAN priors (GPEN, PSFR-GAN, Panini-Net, "
        "MMRB-GAN): restore, train, evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"faceprior {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"faceprior.commands.{name}")
        sub = subparsers.add_parser(
            name,
            help=module.HELP,
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
