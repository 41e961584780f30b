"""Colour the faces of grey photos with GPEN-Colorization-1024 (GPEN's FaceColorization).

Faces are found, aligned, turned grey, coloured by the network and pasted back; the output
keeps the photo's own luminance and takes only the colour from the network. Only the faces
get colour: the rest of the photo stays grey. The authors call this model "not well trained"
(GPEN issue #6): expect plausible, not faithful, colours. --aligned takes each input as one
aligned face, as the official demo does (output at the model's size, 1024 px).

examples:
  faceprior colorize old-photo.jpg -o coloured/ --compare
  faceprior colorize aligned-faces/ -o coloured/ --aligned
"""

from __future__ import annotations

import argparse

from .gpen_task import add_common_arguments, run_task_command

HELP = "colour the faces of grey photos (GPEN-Colorization-1024)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, "colorize")
    parser.add_argument(
        "--aligned", action="store_true", help="inputs are aligned face crops (official demo)"
    )


def run(args: argparse.Namespace) -> int:
    return run_task_command(args, "colorize", aligned=args.aligned)
