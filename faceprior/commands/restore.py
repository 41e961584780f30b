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
  faceprior restore clip.mp4 home-movies/ -o restored/ --crf 16
  faceprior restore /nfs/archive -o /nfs/restored --recursive --ray auto
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "restore the faces in photos and videos (files, folders or globs)"
# The restoration methods' load-time knobs (docs/contributing.md): flag, type, help. Each goes
# to FaceRestorer's keyword of the same name, which hands it to the method's own options.
METHOD_FLAGS = (
    ("--fidelity", float, "Panini-Net only: 1 stays close to the input, 0 trusts the GAN prior"),
    (
        "--parsing-model",
        str,
        "PSFR-GAN only: zoo name or path of the face-parsing network it takes as input",
    ),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..face.background import BACKGROUNDS, DEFAULT_TILE_SIZE
    from ..face.color import COLOR_MATCHES
    from ..folders import OUTPUT_FORMATS, REPORT_NAME
    from ..io.images import DEFAULT_MAX_PIXELS
    from ..pipeline import (
        DEFAULT_COLOR_MATCH,
        DEFAULT_DETECTOR,
        DEFAULT_MASK,
        DEFAULT_MODEL,
        FACE_SELECTIONS,
        MASK_KINDS,
    )

    parser.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="image or video files, folders or glob patterns"
    )
    parser.add_argument(
        "-o", "--output", type=Path, help="folder for the restored images (required)"
    )
    parser.add_argument("--output-dir", dest="output", type=Path, help=argparse.SUPPRESS)
    model = parser.add_argument_group("model")
    model.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"restoration model: zoo name, local checkpoint or .onnx file (default: "
        f"{DEFAULT_MODEL}: gpen-bfr-512 when its weights are cached or can be downloaded, "
        f"else a cached gpen-bfr-256, else the bundled offline model gpen-offline-128-v5)",
    )
    for flag, kind, text in METHOD_FLAGS:
        model.add_argument(flag, type=kind, help=text)
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
        "slower per face, 4 on a GPU); in a video, the faces of this many frames share the "
        "forward passes; does not change the result",
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
        type=_faces_option,
        default="all",
        metavar="{" + ",".join(FACE_SELECTIONS) + "} or INDICES",
        help="restore all faces, only the largest, only the one nearest the centre, or the "
        "faces listed by index, e.g. 0,2 (indices as in the report and --compare: best "
        "detection score first; stable from run to run)",
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
        help="scale factor for the whole photo (see --background; faces are restored at "
        "model size)",
    )
    paste.add_argument(
        "--background",
        default="lanczos",
        metavar="{" + ",".join(BACKGROUNDS) + "} or NAME_OR_PATH",
        help="how the whole photo is upscaled: lanczos (default), realesrnet (GPEN's released "
        "Real-ESRNet x1/x2/x4 for --upscale; Lanczos with a note when its weights cannot be "
        "had), or a Real-ESRNet/RRDBNet zoo name or checkpoint (GPEN's --use_sr --sr_scale)",
    )
    paste.add_argument(
        "--tile-size",
        type=int,
        default=DEFAULT_TILE_SIZE,
        metavar="PX",
        help=f"with a network --background: run it on overlapping, blended tiles of PX input "
        f"pixels so large photos fit in memory (default: {DEFAULT_TILE_SIZE}; 0: whole photo "
        f"at once; the result stays within 1-2 grey levels of untiled)",
    )
    paste.add_argument(
        "--strength",
        type=_strength_option,
        default=1.0,
        metavar="S[,S...]",
        help="blend of restored (1) and original (0) faces (default: 1); with --faces "
        "INDICES, one value or one per listed face (--faces 0,2 --strength 1,0.5)",
    )
    paste.add_argument(
        "--color-match",
        nargs="?",
        choices=COLOR_MATCHES,
        const="lab",
        default=DEFAULT_COLOR_MATCH,
        help=f"how restored faces keep the photo's colours (default: {DEFAULT_COLOR_MATCH}: "
        f"low frequencies from the input, best on held-out pairs, see docs/restore.md); "
        f"lab: Lab mean/std (what --color-match alone means); adain: RGB mean/std; none",
    )
    paste.add_argument(
        "--mask",
        choices=MASK_KINDS,
        default=DEFAULT_MASK,
        help=f"paste-back mask (default: {DEFAULT_MASK}: a soft ellipse from the five "
        f"landmarks, never pastes the crop's background); rectangle: GPEN's soft square; "
        f"parsing: a face-parsing mask (--mask-parser)",
    )
    paste.add_argument(
        "--keep-grey",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="restore photos without colour (R = G = B, or near-grey/sepia) in luminance only: "
        "grey stays exactly grey, sepia keeps its own tone (default: on)",
    )
    paste.add_argument(
        "--keep-detail",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="for faces larger than the model's resolution, keep the photo's detail wherever "
        "it is sharper than the restoration, so no face comes back blurred (default: on)",
    )
    paste.add_argument(
        "--mask-parser",
        help="ParseNet zoo name or checkpoint for --mask parsing (default: psfrgan-parsenet)",
    )
    output = parser.add_argument_group("output")
    output.add_argument(
        "--format",
        dest="output_format",
        choices=("same", *OUTPUT_FORMATS),
        default="same",
        help="output format (default: same as the input)",
    )
    output.add_argument(
        "--suffix", default="", help="appended to each output file name, e.g. _restored"
    )
    output.add_argument("--quality", type=int, default=95, help="JPEG/WebP quality (default: 95)")
    video = parser.add_argument_group(
        "video (.mp4 .m4v .mov .mkv .webm .avi: faces tracked and kept steady; sound, "
        "subtitles, data and bit depth kept; an interrupted video resumes from its last "
        "finished 250-frame segment when run again; see docs/video.md)"
    )
    video.add_argument(
        "--codec",
        help="FFmpeg video encoder for restored videos (default: libx264; libvpx-vp9 for "
        ".webm), e.g. libx265, libvpx-vp9, mpeg4",
    )
    video.add_argument(
        "--crf",
        type=int,
        help="constant quality of the video encoder, lower is better (default: 18 for libx264, "
        "visually lossless; 20 libx265; 24 libvpx-vp9)",
    )
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
    output.add_argument(
        "--quiet", action="store_true", help="no progress bar and no notices (errors only)"
    )
    output.add_argument(
        "--compare",
        action="store_true",
        help="also write OUTDIR/<name>_compare.png per photo: input | output side by side, "
        "faces boxed and numbered as in the report (the numbers --faces takes)",
    )
    model.add_argument(
        "--offline",
        action="store_true",
        help="never use the network (also FACEPRIOR_OFFLINE=1): cached and bundled weights "
        "only; --model auto then uses a cached official model or the bundled gpen-offline-128-v5",
    )
    _add_scale_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Build the restorer from the options and hand the inputs to :func:`restore_folder`."""
    import warnings

    from ..errors import ArgumentError
    from ..folders import REPORT_NAME, check_options, plan_jobs, preflight, restore_folder
    from ..pipeline import FaceRestorer, OfflineFallbackWarning

    if args.output is None:
        raise ArgumentError("output", "is required (the folder for the restored images)")
    # Options, inputs and outputs are checked before any model is loaded.
    check_options(args.quality, args.max_pixels)
    plan_jobs(
        args.inputs, args.output, args.recursive, args.suffix, args.output_format, args.report
    )
    preflight(args.output, args.report or args.output / REPORT_NAME)
    if args.codec is not None:
        from ..video import check_codec

        check_codec(args.codec)
    shard = _shard(args)
    with warnings.catch_warnings(record=True) as fallback:
        warnings.simplefilter("always", OfflineFallbackWarning)
        options = dict(
            model=args.model,
            detector=args.detector,
            detector_weights=args.detector_weights,
            device=args.device,
            score_threshold=args.score_threshold,
            nms_threshold=args.nms_threshold,
            faces=args.faces,
            min_face_size=args.min_face_size,
            upscale=args.upscale,
            background=args.background,
            tile_size=args.tile_size,
            batch_size=args.batch_size,
            strength=args.strength,
            color_match=args.color_match,
            mask=args.mask,
            mask_parser=args.mask_parser,
            **_method_knobs(args),
            small_model=args.small_model,
            small_face_size=args.small_face_size,
            precision=args.precision,
            compile=args.compile,
            keep_faces=args.save_faces,
            max_pixels=args.max_pixels,
            keep_grey=args.keep_grey,
            keep_detail=args.keep_detail,
            offline=args.offline,
        )
        restorer = FaceRestorer(**_local_options(options, args, shard))
    if not args.aligned:
        restorer.detector  # noqa: B018 - load now: a bad detector must stop the run early
    for warning in fallback[:1] if not args.quiet else ():
        print(f"faceprior restore: {warning.message}", file=sys.stderr)
    if not args.quiet:
        print(f"model: {restorer.model_name}", file=sys.stderr)
        if args.upscale != 1 or args.background != "lanczos":
            print(f"background: {restorer.background_name}", file=sys.stderr)
        if restorer.small_model is not None:
            print(
                f"small model: {restorer.small_model_name} (faces under "
                f"{restorer.small_face_size:g} px in the output)",
                file=sys.stderr,
            )
    run_folder = restore_folder if args.ray is None else _on_ray(args, options)
    report = run_folder(
        args.inputs,
        args.output,
        restorer,
        aligned=args.aligned,
        output_format=args.output_format,
        suffix=args.suffix,
        quality=args.quality,
        recursive=args.recursive,
        skip_existing=args.skip_existing,
        save_faces=args.save_faces,
        report=args.report,
        max_pixels=args.max_pixels,
        settings=_settings(args),
        compare=args.compare,
        progress=not args.quiet,
        log=_log,
        shard=shard,
        **_video_options(args),
    )
    for item in report.ignored:
        _log(f"not processed: {item['input']}: {item['reason']}")
    if not args.quiet:
        print(
            f"{report.count('restored')} restored, {report.count('skipped')} skipped, "
            f"{len(report.failed)} failed; report: {report.path}",
            file=sys.stderr,
        )
    return 1 if report.failed or report.face_errors else 0


def _method_knobs(args: argparse.Namespace) -> dict:
    """The values of :data:`METHOD_FLAGS`, by knob name (``None``: not given)."""
    names = (flag.removeprefix("--").replace("-", "_") for flag, _, _ in METHOD_FLAGS)
    return {name: getattr(args, name) for name in names}


def _faces_option(text: str) -> str | list[int]:
    """``all``/``largest``/``center`` or comma-separated face indices (``0,2``)."""
    from ..pipeline import FACE_SELECTIONS

    if text in FACE_SELECTIONS:
        return text
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected one of {', '.join(FACE_SELECTIONS)} or face indices like 0,2; got {text!r}"
        ) from None


def _strength_option(text: str) -> float | list[float]:
    """One strength, or comma-separated strengths (one per face of --faces INDICES)."""
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number or comma-separated numbers in [0, 1]; got {text!r}"
        ) from None
    return values[0] if len(values) == 1 else values


def _log(line: str) -> None:
    from tqdm import tqdm

    tqdm.write(f"faceprior restore: {line}", file=sys.stderr)


def _settings(args: argparse.Namespace) -> dict:
    """The options of this run, as recorded in the report."""
    return {
        key: (str(value) if isinstance(value, Path) else value)
        for key, value in vars(args).items()
        if not key.startswith("_") and key not in ("inputs", "command")
    }


def _add_scale_arguments(parser: argparse.ArgumentParser) -> None:
    from ..distributed.dataset import DEFAULT_DETECT_BATCH_SIZE

    # Archives are listed more often than foldered: @FILE reads arguments, one per line.
    parser.fromfile_prefix_chars = "@"
    parser.convert_arg_line_to_args = _argument_line
    scale = parser.add_argument_group(
        "scale-out",
        "@FILE as an INPUT reads a list of paths (one per line, blank lines ignored). Ray "
        "clusters, and torchrun: `torchrun --nproc_per_node=N -m faceprior restore ...` "
        "gives each process every N-th input (its own GPU, its own report "
        "faceprior-report.rankR-of-N.json); see docs/scale.md",
    )
    scale.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="run on Ray (pip install 'faceprior[ray]'): alone, on a local Ray instance; "
        "auto: the cluster this machine belongs to; ray://HOST:10001: a remote cluster (paths "
        "must name the same files on every node). Resumable: outputs that exist are kept, and "
        "OUTDIR/faceprior-manifest.jsonl lists every input with its status",
    )
    scale.add_argument(
        "--detect-actors",
        type=int,
        metavar="N",
        help="with --ray: CPU actors that decode photos and detect faces (default: one per "
        "GPU, at least 1)",
    )
    scale.add_argument(
        "--restore-actors",
        type=int,
        metavar="N",
        help="with --ray: actors that restore, paste back and write (default: one per GPU, "
        "each with its own GPU; without GPUs, one per CPU left)",
    )
    scale.add_argument(
        "--restore-actor-cpus",
        type=float,
        default=1.0,
        metavar="N",
        help="with --ray: CPUs (torch threads) each restore actor reserves (default: 1)",
    )
    scale.add_argument(
        "--ray-batch-size",
        type=int,
        default=DEFAULT_DETECT_BATCH_SIZE,
        metavar="N",
        help="with --ray: photos per Ray block, the most a worker that dies loses and redoes "
        f"(default: {DEFAULT_DETECT_BATCH_SIZE}); --batch-size still sets faces per forward pass",
    )


def _argument_line(line: str) -> list[str]:
    """One argument per line of an @FILE, as written (spaces kept); blank lines skipped."""
    return [line] if line.strip() else []


def _shard(args: argparse.Namespace):
    """This process's share of the inputs under torchrun (RANK, WORLD_SIZE), or None."""
    from ..distributed.shards import shard_from_environment
    from ..errors import ArgumentError

    shard = shard_from_environment()
    if not shard.is_split:
        return None
    if args.ray is not None:
        raise ArgumentError("ray", "cannot be combined with torchrun (RANK/WORLD_SIZE are set)")
    return shard


def _local_options(options: dict, args: argparse.Namespace, shard) -> dict:
    """The restorer of this process: a Ray driver loads the models on its CPU only to check
    the options (its actors load their own); a torchrun process takes its own GPU."""
    if args.ray is not None:
        from ..distributed.dataset import driver_options

        return driver_options(options)
    if shard is not None and args.device == "auto":
        import torch

        if torch.cuda.is_available():
            return {**options, "device": f"cuda:{shard.local_rank % torch.cuda.device_count()}"}
    return options


def _video_options(args: argparse.Namespace) -> dict:
    """--codec/--crf for :func:`restore_folder` (and a Ray run), only when given."""
    options = {"video_codec": args.codec, "video_crf": args.crf}
    return {key: value for key, value in options.items() if value is not None}


def _on_ray(args: argparse.Namespace, options: dict):
    """:func:`restore_folder`'s stand-in for --ray: the same call, run by restore_dataset.

    ``restorer`` is not used (each actor builds its own from ``options``), nor
    ``skip_existing`` (a Ray run always keeps the outputs that exist: it resumes).
    """
    from ..distributed import restore_dataset

    def run(
        inputs, output, restorer, *, skip_existing: bool, shard, **folder_options
    ):  # the keywords restore_folder takes, passed on unchanged
        return restore_dataset(
            inputs,
            output,
            options,
            address=None if args.ray == "local" else args.ray,
            detect_actors=args.detect_actors,
            restore_actors=args.restore_actors,
            cpus_per_restore_actor=args.restore_actor_cpus,
            detect_batch_size=args.ray_batch_size,
            **folder_options,
        )

    return run
