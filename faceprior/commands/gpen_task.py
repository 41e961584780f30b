"""What the ``colorize``, ``inpaint`` and ``seg2face`` commands share (not a command itself).

Each runs one GPEN task (:mod:`faceprior.gpen_tasks`) over image files, folders or globs and
writes ``OUTDIR/<name><suffix>.png`` (lossless), with ``--compare`` also
``OUTDIR/<name><suffix>_compare.png`` (input | output), and the JSON report
``OUTDIR/faceprior-<task>-report.json``. The files are planned, written and reported by the
folder runner of ``faceprior restore`` (:func:`faceprior.folders.run_jobs`), with its
guarantees: atomic writes, no input ever overwritten, one bad file never stops the batch,
a lock against a second run into the same folder, and a journal that survives interruption.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_common_arguments(parser: argparse.ArgumentParser, task: str) -> None:
    from ..face.types import DEFAULT_DETECTOR
    from ..hub.entries.gpen import TASK_MODELS
    from ..runtime import PRECISIONS

    parser.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns"
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="folder for results")
    parser.add_argument(
        "--model",
        default=TASK_MODELS[task],
        help=f"GPEN model: zoo name or checkpoint (default: {TASK_MODELS[task]})",
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help="also write <name><suffix>_compare.png: the input beside the result",
    )
    parser.add_argument(
        "--suffix", default=f"_{task}", help=f"appended to output names (default: _{task})"
    )
    parser.add_argument(
        "--upscale",
        type=float,
        default=1.0,
        help="whole photos: scale factor of the output photo (Lanczos; default 1)",
    )
    parser.add_argument(
        "--detector",
        default=DEFAULT_DETECTOR,
        help=f"face detector for whole photos (default: {DEFAULT_DETECTOR})",
    )
    parser.add_argument(
        "--device", default="auto", help="torch device: auto (CUDA if available), cpu, cuda:0..."
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="arithmetic of the network: fp32 (default), bf16 (CPUs with AVX512-BF16/AMX, "
        "GPUs) or fp16 (GPUs only)",
    )
    parser.add_argument(
        "--offline", action="store_true", help="never download: cached weights only"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run_task_command(args: argparse.Namespace, task: str, **options) -> int:
    """Run ``task`` on every input with the folder runner's guarantees; exit 1 if some file
    failed, 0 otherwise."""
    from tqdm import tqdm

    from ..folders import (
        JobOptions,
        check_output_folders,
        plan_jobs,
        process_image,
        protected_inputs,
        run_jobs,
    )
    from ..gpen_tasks import GPENTask

    report_path = args.output / f"faceprior-{task}-report.json"
    plan = plan_jobs(
        args.inputs, args.output, suffix=args.suffix, output_format="png", report=report_path,
        videos=False,
    )  # fmt: skip
    check_output_folders(args.output, report_path)
    mask = options.pop("mask", None)
    runner = GPENTask(
        task,
        args.model,
        upscale=args.upscale,
        detector=args.detector,
        device=args.device,
        precision=args.precision,
        offline=args.offline,
        **options,
    )
    files = JobOptions(output=args.output, protected=protected_inputs(plan), compare=args.compare)

    def run_one(job) -> dict:
        return process_image(
            job, lambda image: runner.run(image, mask=_mask_for(mask, job.source)), files
        )

    report = run_jobs(
        plan,
        args.output,
        run_one,
        report=report_path,
        header={"task": task, "model": runner.model_name},
        progress=not args.quiet,
        log=lambda line: tqdm.write(f"faceprior {task}: {line}", file=sys.stderr),
        desc=task,
        done_status="done",
    )
    failed = len(report.failed)
    if not args.quiet:
        print(f"{len(report.entries) - failed} done, {failed} failed; report: {report_path}")
    return 1 if failed else 0


def _mask_for(mask: Path | None, source: Path) -> Path | None:
    """One mask for every input, or from a folder the mask with the input's file name."""
    if mask is None or not mask.is_dir():
        return mask
    matches = sorted(mask.glob(f"{source.stem}.*"))
    if not matches:
        from ..errors import InputError

        raise InputError(f"no mask named {source.stem}.* in {mask}")
    return matches[0]
