"""The whole photo pipeline on a multi-face photo, with a per-stage breakdown.

Uses a random-weight restoration network of the released architecture (timings do not depend
on weight values), or a checkpoint path, and the real RetinaFace-MobileNet weights from
``../shared/data/weights``. With ``--small-model`` the photo is restored twice, with the main
model alone and size-aware (small faces through the small model), to measure the time saved.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import machine, markdown_table, save  # noqa: E402
from models import MODELS, build  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"
PHOTO = SHARED / "data/faces/whole/GPEN_imgs/Solvay_conference_1927.png"
DETECTOR = SHARED / "data/weights/retinaface_mobilenet0.25_Final.pth"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    names = ", ".join(MODELS)
    parser.add_argument(
        "--model", default="gpen-bfr-512", help=f"one of {names} (random weights) or a checkpoint"
    )
    parser.add_argument(
        "--small-model", help=f"also time size-aware restoration with this model ({names} or path)"
    )
    parser.add_argument(
        "--small-face-size",
        type=float,
        help="pasted crop size (px) below which faces take the small model (default: its size)",
    )
    parser.add_argument("--photo", type=Path, default=PHOTO)
    parser.add_argument("--detector-weights", type=Path, default=DETECTOR)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--warmup", type=int, default=1, help="untimed runs of each configuration first"
    )
    parser.add_argument("--upscale", type=float, default=1.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile (the warm-up pays for it)"
    )
    parser.add_argument(
        "--no-reuse-memory", action="store_true", help="keep glibc's default malloc behaviour"
    )
    args = parser.parse_args()

    from faceprior.face.detection import load_detector
    from faceprior.pipeline import DEFAULT_DETECTOR, FaceRestorer

    detector = load_detector(DEFAULT_DETECTOR, weights=args.detector_weights, device=args.device)
    model = _model(args.model, args.device)
    small = {}
    if args.small_model:
        small = {"small_model": _model(args.small_model, args.device)}
        small["small_face_size"] = args.small_face_size
    rows, records = [], []
    for options in ({}, small) if small else ({},):
        restorer = FaceRestorer(
            model,
            detector=detector,
            device=args.device,
            batch_size=args.batch_size,
            upscale=args.upscale,
            precision=args.precision,
            compile=args.compile,
            reuse_memory=not args.no_reuse_memory,
            **options,
        )
        for _ in range(args.warmup):
            restorer.restore(args.photo)
        started = time.perf_counter()
        result = restorer.restore(args.photo)
        total = time.perf_counter() - started
        routed = [face.model == restorer.small_model_name for face in result.faces]
        rows.append(
            {
                "photo": args.photo.name,
                "model": args.model,
                "small model": f"{args.small_model} < {restorer.small_face_size:g} px"
                if options
                else "-",
                "faces (small)": f"{len(result.faces)} ({sum(routed)})",
                "batch": args.batch_size,
                "precision": args.precision + (" compiled" if args.compile else ""),
                **{f"{stage} s": f"{seconds:.2f}" for stage, seconds in result.timings.items()},
                "total s": f"{total:.2f}",
                "s/face": f"{total / max(1, len(result.faces)):.2f}",
            }
        )
        records.append({"timings": result.timings, "total_s": total, "row": rows[-1]})
    print(markdown_table(rows))
    if small:
        saved = records[0]["total_s"] - records[1]["total_s"]
        print(f"size-aware saves {saved:.2f} s ({saved / records[0]['total_s']:.0%})")
    record = {"machine": machine(), "args": {k: str(v) for k, v in vars(args).items()}}
    path = save("pipeline", {**record, **records[0], "runs": records})
    print(f"saved to {path}")
    return 0


def _model(spec: str, device: str):
    """A released architecture with random weights, or a checkpoint path left to the pipeline."""
    return build(spec, device) if spec in MODELS else spec


if __name__ == "__main__":
    sys.exit(main())
