"""Fill damaged or missing parts of faces with GPEN-Inpainting-1024 (GPEN's FaceInpainting).

Missing parts are white: either paint the damage white in the photo (what the official demo
expects) or give --mask, an image that is white where pixels are missing (one mask for every
input, or a folder of masks named like the inputs). With a mask, only the masked parts (grown
a little and feathered) change; without one, the whole face is replaced by the network's.

examples:
  faceprior inpaint scratched.png -o filled/ --mask scratches.png --compare
  faceprior inpaint aligned-faces/ -o filled/ --aligned --mask masks/
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .gpen_task import add_common_arguments, run_task_command

HELP = "fill missing (white or masked) parts of faces (GPEN-Inpainting-1024)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, "inpaint")
    parser.add_argument(
        "--mask",
        type=Path,
        help="image, white where pixels are missing (or a folder of masks named like inputs)",
    )
    parser.add_argument(
        "--aligned", action="store_true", help="inputs are aligned face crops (official demo)"
    )


def run(args: argparse.Namespace) -> int:
    return run_task_command(args, "inpaint", aligned=args.aligned, mask=args.mask)
