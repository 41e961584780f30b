"""Draw faces from parsing maps with GPEN-Seg2face-512 (GPEN's Segmentation2Face).

Inputs are aligned parsing maps, colour-coded with the 19 CelebAMask-HQ class colours of the
official code (`faceprior.models.psfrgan.MASK_COLORMAP`, RGB) or label maps (grey values
0..18). With --parse the inputs are face photos instead: each face is parsed by ParseNet
(--parser, default psfrgan-parsenet) and a new face is drawn from its map; whole photos are
detected, aligned and pasted back unless --aligned is given too.

examples:
  faceprior seg2face maps/ -o faces/ --compare
  faceprior seg2face portrait.jpg -o redrawn/ --parse --compare
"""

from __future__ import annotations

import argparse

from .gpen_task import add_common_arguments, run_task_command

HELP = "draw faces from face-parsing maps (GPEN-Seg2face-512)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, "seg2face")
    parser.add_argument(
        "--parse",
        action="store_true",
        help="inputs are face photos: parse them with ParseNet first (whole photos unless "
        "--aligned)",
    )
    parser.add_argument(
        "--aligned",
        action="store_true",
        help="with --parse: inputs are aligned face crops (maps are always taken as aligned)",
    )
    parser.add_argument("--parser", help="ParseNet zoo name or checkpoint for --parse")


def run(args: argparse.Namespace) -> int:
    return run_task_command(
        args,
        "seg2face",
        aligned=args.aligned or not args.parse,
        parse=args.parse,
        parser=args.parser,
    )
