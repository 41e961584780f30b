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


def add_arguments(parser: argparse.ArgumentParser) -> None:
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
        default="retinaface-mobilenet0.25",
        help="detector architecture for a checkpoint path (default: %(default)s)",
    )
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default: %(default)s)")
    parser.add_argument(
        "--no-check", action="store_true", help="skip the ONNX Runtime vs PyTorch comparison"
    )


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from faceprior.deploy.onnx_export import export_restorer, export_retinaface

    if Path(args.output).resolve() == Path(args.model).resolve():
        print("error: the output would overwrite the input")
        return 2
    check = not args.no_check
    if args.detector:
        from faceprior.face.retinaface import load_retinaface

        path, architecture = Path(args.model), args.architecture
        if not path.exists():
            from faceprior.hub.download import fetch
            from faceprior.hub.zoo import get_entry

            entry = get_entry(args.model)
            path, architecture = fetch(entry), entry.architecture
        report = export_retinaface(
            load_retinaface(path, architecture), args.output, args.opset, check
        )
    else:
        report = export_restorer(args.model, args.output, args.opset, check)
    print(f"wrote {report.path}")
    if check:
        print(
            f"max |ONNX Runtime - PyTorch| = {report.max_abs_error:.2e} on {report.checked_shapes}"
        )
    return 0
