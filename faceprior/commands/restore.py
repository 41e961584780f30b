"""Restore the faces in photos: detect, align, restore with a GAN-prior model, paste back.

INPUT may be image files, folders (their images; --recursive for sub-folders) or glob
patterns. Each output is OUTDIR/<name><suffix>.<ext>, written atomically; an input is never
overwritten. A file that cannot be read is reported and skipped, and the batch goes on (exit
status 1 at the end). A JSON report lists, per image, the faces (box [x0, y0, x1, y1], five
landmarks and score, in input pixels) and the time spent in each stage.

examples:
  faceprior restore photo.jpg -o restored/
  faceprior restore albums/ "scans/*.png" -o restored/ --upscale 2 --color-match
  faceprior restore crops/ -o restored/ --aligned --model my-gpen.safetensors
  faceprior restore big-folder/ -o restored/ --recursive --skip-existing
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

HELP = "restore the faces in photos (files, folders or globs)"
OUTPUT_FORMATS = {"png": ".png", "jpg": ".jpg", "webp": ".webp", "tiff": ".tif"}
REPORT_NAME = "faceprior-report.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..io.images import DEFAULT_MAX_PIXELS
    from ..pipeline import DEFAULT_DETECTOR, DEFAULT_MODEL, FACE_SELECTIONS, MASK_KINDS

    parser.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns"
    )
    parser.add_argument(
        "-o", "--output-dir", required=True, type=Path, help="folder for the restored images"
    )
    model = parser.add_argument_group("model")
    model.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"restoration model: zoo name, local checkpoint or .onnx file (default: "
        f"{DEFAULT_MODEL}: gpen-bfr-512 when its weights are cached or can be downloaded, "
        f"else the bundled offline model gpen-offline-128)",
    )
    model.add_argument(
        "--fidelity",
        type=float,
        help="Panini-Net only: 1 stays close to the input, 0 trusts the GAN prior",
    )
    model.add_argument(
        "--parsing-model",
        help="PSFR-GAN only: zoo name or path of the face-parsing network it takes as input",
    )
    model.add_argument(
        "--small-model",
        metavar="NAME_OR_PATH",
        help="a smaller, faster model (zoo name, checkpoint or .onnx) for the faces too small in "
        "the output for --model's resolution to show; --fidelity/--parsing-model do not apply",
    )
    model.add_argument(
        "--small-face-size",
        type=float,
        metavar="PX",
        help="with --small-model: faces whose aligned crop spans fewer than PX pixels in the "
        "output photo (after --upscale) go through it (default: its output size; 0: never)",
    )
    model.add_argument(
        "--device", default="auto", help="torch device: auto (CUDA if available), cpu, cuda:0..."
    )
    model.add_argument(
        "--batch-size",
        type=int,
        help="faces restored together (default: 1 on a CPU, where batching 512-px models is "
        "slower per face, 4 on a GPU); does not change the result",
    )
    model.add_argument(
        "--precision",
        choices=("fp32", "bf16", "fp16"),
        default="fp32",
        help="arithmetic of the restoration model: fp32 (default), bf16 (1.3-1.5x faster on "
        "CPUs with AVX512-BF16/AMX, 3-5x with --compile, and for GPUs; outputs 44-55 dB "
        "from fp32's) or fp16 (GPUs only); see benchmarks/README.md",
    )
    model.add_argument(
        "--compile",
        action="store_true",
        help="compile the model with torch.compile: the first batch waits for the compilation "
        "(about a minute for GPEN-BFR-512 on a CPU; needs a C++ compiler on CPUs), later "
        "batches run faster; worth it for folders of photos",
    )
    detection = parser.add_argument_group("face detection")
    detection.add_argument(
        "--detector",
        default=DEFAULT_DETECTOR,
        help=f"face detector: zoo or architecture name (default: {DEFAULT_DETECTOR})",
    )
    detection.add_argument(
        "--detector-weights", type=Path, help="local detector weights (.pth or YuNet .onnx)"
    )
    detection.add_argument(
        "--score-threshold",
        type=float,
        help="keep detections scoring above this (default: the detector's, 0.9 for RetinaFace)",
    )
    detection.add_argument(
        "--nms-threshold",
        type=float,
        default=0.4,
        help="overlap (IoU) above which the weaker of two detections is dropped (default: 0.4)",
    )
    detection.add_argument(
        "--faces",
        choices=FACE_SELECTIONS,
        default="all",
        help="restore all faces, only the largest, or only the one nearest the centre",
    )
    detection.add_argument(
        "--min-face-size",
        type=float,
        default=0.0,
        help="skip faces whose box is smaller than this many pixels (shorter side)",
    )
    detection.add_argument(
        "--aligned",
        action="store_true",
        help="inputs are already aligned face crops: resize to the model size and restore",
    )
    paste = parser.add_argument_group("paste-back")
    paste.add_argument(
        "--upscale",
        type=float,
        default=1.0,
        help="scale factor for the whole photo (Lanczos; faces are restored at model size)",
    )
    paste.add_argument(
        "--strength",
        type=float,
        default=1.0,
        help="blend of restored (1) and original (0) faces (default: 1)",
    )
    paste.add_argument(
        "--color-match",
        action="store_true",
        help="match the colour (Lab mean/std) of restored faces to the original",
    )
    paste.add_argument(
        "--mask",
        choices=MASK_KINDS,
        default="rectangle",
        help="paste-back mask: GPEN's soft rectangle, or a face-parsing mask (--mask-parser)",
    )
    paste.add_argument(
        "--mask-parser",
        help="ParseNet zoo name or checkpoint for --mask parsing (default: psfrgan-parsenet)",
    )
    output = parser.add_argument_group("output")
    output.add_argument(
        "--format",
        choices=("same", *OUTPUT_FORMATS),
        default="same",
        help="output format (default: same as the input)",
    )
    output.add_argument(
        "--suffix", default="", help="appended to each output file name, e.g. _restored"
    )
    output.add_argument("--quality", type=int, default=95, help="JPEG/WebP quality (default: 95)")
    output.add_argument(
        "--recursive", action="store_true", help="also restore images in sub-folders"
    )
    output.add_argument(
        "--skip-existing",
        action="store_true",
        help="skip inputs whose output exists (resume an interrupted run)",
    )
    output.add_argument(
        "--save-faces",
        action="store_true",
        help="also write each aligned crop, restored face and mask to OUTDIR/faces/",
    )
    output.add_argument(
        "--report",
        type=Path,
        help=f"JSON report path (default: OUTDIR/{REPORT_NAME})",
    )
    output.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        help=f"refuse images with more pixels (default: {DEFAULT_MAX_PIXELS:,})",
    )
    output.add_argument("--quiet", action="store_true", help="no progress bar")


@dataclass
class Job:
    """One input file and where its result goes."""

    source: Path
    target: Path


def run(args: argparse.Namespace) -> int:
    from ..hub.checkpoint import CheckpointError
    from ..hub.download import DownloadError
    from ..pipeline import FaceRestorer, ModelUnavailableError, OfflineFallbackWarning

    try:
        jobs = plan_jobs(args)
    except ValueError as error:
        print(f"faceprior restore: {error}", file=sys.stderr)
        return 2
    try:
        with warnings.catch_warnings(record=True) as fallback:
            warnings.simplefilter("always", OfflineFallbackWarning)
            restorer = FaceRestorer(
                args.model,
                detector=args.detector,
                detector_weights=args.detector_weights,
                device=_device(args.device),
                score_threshold=args.score_threshold,
                nms_threshold=args.nms_threshold,
                faces=args.faces,
                min_face_size=args.min_face_size,
                upscale=args.upscale,
                batch_size=args.batch_size,
                strength=args.strength,
                color_match=args.color_match,
                mask=args.mask,
                mask_parser=args.mask_parser,
                fidelity=args.fidelity,
                parsing_model=args.parsing_model,
                small_model=args.small_model,
                small_face_size=args.small_face_size,
                precision=args.precision,
                compile=args.compile,
                keep_faces=args.save_faces,
                max_pixels=args.max_pixels,
            )
        if not args.aligned:
            restorer.detector  # noqa: B018 - load now: a bad detector must stop the run early
        for warning in fallback:
            print(f"faceprior restore: {warning.message}", file=sys.stderr)
        if not args.quiet:
            print(f"model: {restorer.model_name}", file=sys.stderr)
            if restorer.small_model is not None:
                print(
                    f"small model: {restorer.small_model_name} (faces under "
                    f"{restorer.small_face_size:g} px in the output)",
                    file=sys.stderr,
                )
    except (
        ModelUnavailableError,
        DownloadError,
        CheckpointError,
        ValueError,
        KeyError,
        OSError,
    ) as error:
        print(f"faceprior restore: {error}", file=sys.stderr)
        return 2
    entries = _process(restorer, jobs, args)
    report_path = args.report or args.output_dir / REPORT_NAME
    _write_report(report_path, entries, args, restorer)
    failed = [e for e in entries if e["status"] == "failed"]
    if not args.quiet:
        counts = {s: sum(e["status"] == s for e in entries) for s in ("restored", "skipped")}
        print(
            f"{counts['restored']} restored, {counts['skipped']} skipped, {len(failed)} failed; "
            f"report: {report_path}",
            file=sys.stderr,
        )
    return 1 if failed else 0


def plan_jobs(args: argparse.Namespace) -> list[Job]:
    """Input files and their outputs; ValueError for missing inputs or clashing outputs."""
    from ..io.images import IMAGE_SUFFIXES

    output_dir = args.output_dir
    found: list[tuple[Path, Path]] = []
    for pattern in args.inputs:
        path = Path(pattern)
        if path.is_dir():
            walk = path.rglob("*") if args.recursive else path.iterdir()
            for file in sorted(walk):
                resolved = file.resolve()
                if (
                    file.is_file()
                    and file.suffix.lower() in IMAGE_SUFFIXES
                    and not file.name.startswith(".")
                    and output_dir.resolve() not in resolved.parents
                ):
                    found.append((file, file.relative_to(path)))
        elif path.is_file():
            found.append((path, Path(path.name)))
        elif glob.has_magic(pattern):
            matches = sorted(Path(m) for m in glob.glob(pattern, recursive=args.recursive))
            found += [(m, Path(m.name)) for m in matches if m.is_file()]
        else:
            raise ValueError(f"no such file or folder: {pattern}")
    if not found:
        raise ValueError("no input images found")
    jobs, targets = [], {}
    inputs = {source.resolve() for source, _ in found}
    for source, relative in found:
        target = output_dir / relative.with_name(
            relative.stem + args.suffix + _suffix(args, source)
        )
        if target.resolve() in inputs:
            raise ValueError(
                f"{target} would overwrite an input; choose another --output-dir or a --suffix"
            )
        if target in targets and targets[target] != source.resolve():
            raise ValueError(f"{targets[target]} and {source} would both be written to {target}")
        if target not in targets:
            targets[target] = source.resolve()
            jobs.append(Job(source, target))
    return jobs


def _suffix(args: argparse.Namespace, source: Path) -> str:
    from ..io.images import FORMAT_BY_SUFFIX

    if args.format != "same":
        return OUTPUT_FORMATS[args.format]
    suffix = source.suffix.lower()
    return suffix if suffix in FORMAT_BY_SUFFIX else ".png"


def _device(name: str) -> str:
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _process(restorer, jobs: list[Job], args: argparse.Namespace) -> list[dict]:
    from tqdm import tqdm

    entries = []
    for job in tqdm(jobs, desc="restoring", unit="image", disable=args.quiet):
        entry: dict = {"input": str(job.source), "output": str(job.target)}
        if args.skip_existing and job.target.exists():
            entries.append({**entry, "status": "skipped", "reason": "output exists"})
            continue
        try:
            entry.update(_restore_one(restorer, job, args))
            entry["status"] = "restored"
        except Exception as error:  # one bad file must not stop the batch
            message = str(error) or type(error).__name__
            if not message.startswith(str(job.source)):
                message = f"{job.source}: {message}"
            tqdm.write(f"faceprior restore: skipped {message}", file=sys.stderr)
            entry.update(status="failed", error=message, output=None)
        entries.append(entry)
    return entries


def _restore_one(restorer, job: Job, args: argparse.Namespace) -> dict:
    from ..io.images import read_image, write_image

    start = time.perf_counter()
    image = read_image(job.source, max_pixels=args.max_pixels)
    read_time = time.perf_counter() - start
    result = restorer.restore_aligned(image) if args.aligned else restorer.restore(image)
    write_start = time.perf_counter()
    write_image(job.target, result.image, result.metadata, quality=args.quality)
    if args.save_faces:
        _save_faces(result, job, args.output_dir / "faces")
    result.timings["read"] = read_time
    result.timings["write"] = time.perf_counter() - write_start
    result.timings["total"] = time.perf_counter() - start
    return result.to_dict()


def _save_faces(result, job: Job, folder: Path) -> None:
    import numpy as np

    from ..io.images import write_image

    def as_uint8(values):
        return np.clip(np.rint(values * 255), 0, 255).astype(np.uint8)

    for index, face in enumerate(result.faces):
        stem = folder / f"{job.target.stem}_face{index:02d}"
        for kind in ("crop", "restored", "mask"):
            values = getattr(face, kind)
            if values is not None:
                write_image(stem.with_name(f"{stem.name}_{kind}.png"), as_uint8(values))


def _write_report(path: Path, entries: list[dict], args: argparse.Namespace, restorer) -> None:
    from .. import __version__
    from ..io.images import atomic_write_bytes

    settings = {
        key: (str(value) if isinstance(value, Path) else value)
        for key, value in vars(args).items()
        if not key.startswith("_") and key not in ("inputs", "command")
    }
    small = {}
    if restorer.small_model is not None:
        small = {
            "small_model": restorer.small_model_name,
            "small_face_size": restorer.small_face_size,
        }
    report = {
        "faceprior": __version__,
        "settings": settings,
        "model": restorer.model_name,
        **small,
        "summary": {
            "images": len(entries),
            "restored": sum(e["status"] == "restored" for e in entries),
            "skipped": sum(e["status"] == "skipped" for e in entries),
            "failed": sum(e["status"] == "failed" for e in entries),
            "faces": sum(len(e.get("faces", [])) for e in entries),
        },
        "images": entries,
    }
    atomic_write_bytes(path, (json.dumps(report, indent=2) + "\n").encode())
