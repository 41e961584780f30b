"""The whole photo pipeline on a multi-face photo, with a per-stage breakdown.

Uses a random-weight restoration network of the released architecture (timings do not depend
on weight values) and the real RetinaFace-MobileNet weights from ``../shared/data/weights``.
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
    parser.add_argument("--model", default="gpen-bfr-512", choices=list(MODELS))
    parser.add_argument("--photo", type=Path, default=PHOTO)
    parser.add_argument("--detector-weights", type=Path, default=DETECTOR)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--upscale", type=float, default=1.0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    from faceprior.pipeline import FaceRestorer

    restorer = FaceRestorer(
        build(args.model, args.device),
        detector_weights=args.detector_weights,
        device=args.device,
        batch_size=args.batch_size,
        upscale=args.upscale,
    )
    started = time.perf_counter()
    result = restorer.restore(args.photo)
    total = time.perf_counter() - started
    row = {
        "photo": args.photo.name,
        "model": args.model,
        "faces": len(result.faces),
        "batch": args.batch_size,
        **{f"{stage} s": f"{seconds:.2f}" for stage, seconds in result.timings.items()},
        "total s": f"{total:.2f}",
        "s/face": f"{total / max(1, len(result.faces)):.2f}",
    }
    print(markdown_table([row]))
    record = {"machine": machine(), "args": {k: str(v) for k, v in vars(args).items()}}
    path = save("pipeline", {**record, "timings": result.timings, "total_s": total, "row": row})
    print(f"saved to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
