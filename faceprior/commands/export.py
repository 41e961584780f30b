"""Export a restoration model or a face detector to ONNX and verify it against PyTorch.

  faceprior export gpen-bfr-512 -o gpen512.onnx
  faceprior export retinaface-mobilenet0.25 --detector -o retinaface.onnx
  faceprior restore photo.jpg -o out/ --model gpen512.onnx --detector-weights retinaface.onnx

The exported restorer takes a dynamic batch of aligned faces (N, 3, S, S) RGB in [-1, 1]; the
detector takes one BGR-minus-mean image of any size. Both files record their conventions, so
the pipeline runs them with ONNX Runtime when given the .onnx path.
"""

from __future__ import annotations

import argparse

HELP = "export a model or detector to ONNX (verified against the PyTorch outputs)"

# The load-time knobs of restoration methods, baked into the graph: (flag, type, help). Each
# method declares and validates its own (``RestorationModel.Options``); a method's new knob is
# one line here, and a knob given to a method without it is refused when the model loads.
METHOD_KNOBS = (
    (
        "--fidelity",
        float,
        "Panini-Net only: the fidelity baked into the graph (1 stays close to "
        "the input, 0 trusts the GAN prior; default: the released weights' own)",
    ),
    (
        "--parsing-model",
        str,
        "PSFR-GAN only: zoo name or path of the face parser included in "
        "the graph (default: the official one)",
    ),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..face.types import DEFAULT_DETECTOR

    parser.add_argument(
        "model",
        help="zoo name or checkpoint path of a restoration model (or, with --detector, of a "
        "RetinaFace detector)",
    )
    parser.add_argument("-o", "--output", required=True, help="path of the .onnx file to write")
    parser.add_argument(
        "--detector",
        action="store_true",
        help="MODEL is a RetinaFace detector (zoo name, or a checkpoint with --architecture)",
    )
    parser.add_argument(
        "--architecture",
        default=DEFAULT_DETECTOR,
        help="detector architecture for a checkpoint path (default: %(default)s)",
    )
    for flag, kind, text in METHOD_KNOBS:
        parser.add_argument(flag, type=kind, help=text)
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default: %(default)s)")
    parser.add_argument(
        "--tolerance",
        type=float,
        default=1e-3,
        help="largest |ONNX Runtime - PyTorch| accepted on the check's random inputs; a larger "
        "error keeps the file at -o as it was and exits with 1 (default: %(default)s; measured "
        "errors are about 1e-6)",
    )
    parser.add_argument(
        "--no-check", action="store_true", help="skip the ONNX Runtime vs PyTorch comparison"
    )


def run(args: argparse.Namespace) -> int:
    """Export to a temporary file beside ``--output``; only a checked graph replaces it."""
    import os
    from pathlib import Path

    from torch.onnx import _constants

    from faceprior.checks import number
    from faceprior.errors import FacepriorError, OutputError
    from faceprior.io.images import temporary_path

    number("opset", args.opset, _constants.ONNX_MIN_OPSET, _constants.ONNX_MAX_OPSET, integer=True)
    number("tolerance", args.tolerance, 0.0)
    output = Path(args.output)
    if output.resolve() == Path(args.model).resolve():
        raise OutputError(f"{output}: the output would overwrite the input")
    if output.is_dir():
        raise OutputError(f"{output}: is a folder; give the path of the .onnx file to write")
    temporary = temporary_path(output)  # the atomic writers' name: a killed run's is cleaned up
    try:
        code = _export(args, temporary, output)
        if code == 0:
            os.replace(temporary, output)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(output, 0o666 & ~umask)  # like any file the user writes, not 0600
    except FacepriorError:
        raise
    except OSError as error:
        raise OutputError(f"{output}: cannot write: {error.strerror or error}") from None
    finally:
        if temporary.exists():
            temporary.unlink()
    if code == 0:
        print(f"wrote {output}")
    return code


def _export(args: argparse.Namespace, temporary, output) -> int:
    """Write the graph to ``temporary``; 1 if its check exceeds --tolerance, else 0."""
    import sys

    from faceprior.deploy.onnx_export import export_restorer, export_retinaface
    from faceprior.errors import ArgumentError
    from faceprior.models.restorer import RestorerOptions

    knobs = [flag[2:].replace("-", "_") for flag, _, _ in METHOD_KNOBS]
    options = RestorerOptions(**{knob: getattr(args, knob) for knob in knobs})
    if args.detector and options.given():
        raise ArgumentError(next(iter(options.given())), "applies to restoration models only")
    check = not args.no_check
    if args.detector:
        from pathlib import Path

        from faceprior.face.retinaface import load_retinaface

        path, architecture = Path(args.model), args.architecture
        if not path.exists():
            from faceprior.hub.download import fetch
            from faceprior.hub.zoo import get_entry

            entry = get_entry(args.model)
            path, architecture = fetch(entry), entry.architecture
        report = export_retinaface(
            load_retinaface(path, architecture), temporary, args.opset, check
        )
    else:
        report = export_restorer(args.model, temporary, args.opset, check, options)
    if check:
        print(
            f"max |ONNX Runtime - PyTorch| = {report.max_abs_error:.2e} on {report.checked_shapes}"
        )
        if not report.max_abs_error <= args.tolerance:
            kept = "was left as it was" if output.exists() else "was not kept"
            print(
                f"faceprior export: the ONNX graph differs from PyTorch by more than "
                f"--tolerance {args.tolerance:g}; {output} {kept}",
                file=sys.stderr,
            )
            return 1
    return 0
