"""Score restored faces: PSNR/SSIM (RGB and Y), LPIPS (Alex, VGG), identity similarity and
angle (MobileFaceNet), landmark distance, NIQE and FID.

Restored and ground-truth files are paired by name without extension. Metrics whose weight
files are not given are listed as missing in the report, never computed with random weights.
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
        "--out", type=Path, default=Path("evaluation"), help="report folder (default: evaluation)"
    )
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
            f"--lpips-{net}-linear", type=Path, help=f"LPIPS v0.1 linear weights ({net}.pth)"
        )
    parser.add_argument(
        "--identity-weights", type=Path, help="MobileFaceNet checkpoint for identity similarity"
    )
    parser.add_argument(
        "--inception-weights", type=Path, help="FID Inception-v3 weights (pt_inception layout)"
    )
    parser.add_argument(
        "--fid-reference",
        type=Path,
        help="FID reference: image folder (statistics cached) or statistics .npz (default: --gt)",
    )
    parser.add_argument("--niqe-model", type=Path, help="NIQE pristine model (.npz)")
    parser.add_argument(
        "--niqe-pristine", type=Path, help="folder of pristine images to fit the NIQE model from"
    )
    parser.add_argument(
        "--save-niqe-model", type=Path, help="write the NIQE model fitted from --niqe-pristine"
    )
    parser.add_argument(
        "--detector",
        default="retinaface-mobilenet0.25",
        help="face detector for the landmark metric (default: retinaface-mobilenet0.25; or yunet)",
    )
    parser.add_argument("--detector-weights", type=Path, help="detector weight file")


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
    )


def parse_metrics(text: str) -> list[str]:
    return [m.strip() for m in text.split(",") if m.strip()]


def run(args: argparse.Namespace) -> int:
    import sys

    from ..metrics.evaluation import evaluate_folders, list_images
    from ..metrics.report import markdown, write_report

    metrics = parse_metrics(args.metrics)
    out = args.out.resolve()
    for folder in (args.restored, args.gt, args.inputs):
        if folder is not None and folder.resolve() == out:
            print(f"error: --out must not be an input folder ({folder})", file=sys.stderr)
            return 2
    if args.crop_border < 0 or (args.size is not None and args.size <= 0):
        print("error: --crop-border must be >= 0 and --size > 0", file=sys.stderr)
        return 2
    options = metric_options(args)
    try:
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
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
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
