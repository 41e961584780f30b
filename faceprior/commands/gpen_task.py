"""What the ``colorize``, ``inpaint`` and ``seg2face`` commands share (not a command itself).

Each runs one GPEN task (:mod:`faceprior.gpen_tasks`) over image files or folders and writes
``OUTDIR/<name><suffix>.png`` (lossless, atomically; an input is never overwritten), with
``--compare`` also ``OUTDIR/<name><suffix>_compare.png`` (input | output), and a JSON report.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_common_arguments(parser: argparse.ArgumentParser, task: str) -> None:
    from ..face.types import DEFAULT_DETECTOR
    from ..hub.entries.gpen import TASK_MODELS
    from ..runtime import PRECISIONS

    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
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
    """Run ``task`` on every input; exit 1 if some file failed, 0 otherwise."""
    from tqdm import tqdm

    from ..gpen_tasks import GPENTask
    from ..io.images import atomic_write_bytes

    jobs = _plan(args)
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
    entries = []
    for source, target in tqdm(jobs, desc=task, unit="image", disable=args.quiet):
        entry = {"input": str(source), "output": str(target)}
        try:
            entry.update(_run_one(runner, source, target, args.compare, _mask_for(mask, source)))
            entry["status"] = "done"
        except Exception as error:  # one bad file must not stop the others
            tqdm.write(f"faceprior {task}: skipped {source}: {error}", file=sys.stderr)
            entry.update(status="failed", error=str(error) or type(error).__name__)
        entries.append(entry)
    report = {"task": task, "model": runner.model_name, "images": entries}
    report_path = args.output / f"faceprior-{task}-report.json"
    atomic_write_bytes(report_path, (json.dumps(report, indent=2) + "\n").encode())
    failed = sum(entry["status"] == "failed" for entry in entries)
    if not args.quiet:
        print(f"{len(entries) - failed} done, {failed} failed; report: {report_path}")
    return 1 if failed else 0


def _run_one(runner, source: Path, target: Path, compare: bool, mask) -> dict:
    from ..face.compare import side_by_side
    from ..io.images import read_image, write_image

    image = read_image(source)
    result = runner.run(image, mask=mask)
    write_image(target, result.image, result.metadata)
    if compare:
        picture = side_by_side(image.pixels, result)
        write_image(target.with_name(f"{target.stem}_compare.png"), picture)
    return {
        "faces": [face.to_dict() for face in result.faces],
        "timings": {k: round(v, 4) for k, v in result.timings.items()},
    }


def _plan(args: argparse.Namespace) -> list[tuple[Path, Path]]:
    """(input, output) pairs; an unknown input or an output that is an input is an error."""
    from ..errors import InputError, OutputError
    from ..io.images import IMAGE_SUFFIXES

    sources: list[Path] = []
    for name in args.inputs:
        path = Path(name)
        if path.is_dir():
            sources += sorted(
                p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
        elif path.is_file():
            sources.append(path)
        else:
            raise InputError(f"no such file or folder: {name}")
    if not sources:
        raise InputError("no input images found")
    resolved = {source.resolve() for source in sources}
    jobs = []
    for source in sources:
        target = args.output / f"{source.stem}{args.suffix}.png"
        if target.resolve() in resolved:
            raise OutputError(f"{target} would overwrite an input; choose another --suffix")
        jobs.append((source, target))
    return jobs


def _mask_for(mask: Path | None, source: Path) -> Path | None:
    """One mask for every input, or from a folder the mask with the input's file name."""
    if mask is None or not mask.is_dir():
        return mask
    matches = sorted(mask.glob(f"{source.stem}.*"))
    if not matches:
        from ..errors import InputError

        raise InputError(f"no mask named {source.stem}.* in {mask}")
    return matches[0]
