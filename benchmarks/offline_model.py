"""Score the bundled models on held-out CelebA faces, per degradation and per yaw (issue 16).

The test split of ../shared/data/train/celeba_align_6k (599 faces after dropping a duplicate
of a training face; never seen in training), cut with the MANIFEST crop and resized to --size,
is degraded under each --condition:

- ``photo-x4`` / ``photo-x2`` / ``photo-x1``: the ``photo`` preset (blur sigma 1.2 / 1.0 / 0.8,
  area downscale 4 / 2 / 1, JPEG 60 / 70 / 50): a face of 32 / 64 / 128 px in a compressed
  photo, every face degraded the same way. ``photo-x4`` is issue 16's headline condition.
- ``gpen``: GPEN's released training recipe (GFPGAN-style, blur up to sigma 10, downsampling
  up to 8x, noise up to 20), one seeded draw per face (``default_rng([seed, i])``): the
  condition of the first bundled model's card.

Models see the degraded face resized back with bilinear interpolation (what the photo
pipeline's affine warp feeds them); the "no restoration" baseline is the same degraded face
resized back with **bicubic**. Metrics (``--metrics``): those of ``faceprior evaluate`` plus
``chroma_shift``, the mean absolute difference of the face's mean Cb and Cr from the ground
truth's (8-bit levels: a colour cast shows here, not in PSNR). FID only under
--fid-condition and from --fid-min-faces faces on. Every face's yaw is estimated once from
the landmarks the bundled detector finds on its ground truth (faceprior.face.pose), and
PSNR / ST-LPIPS / identity are also reported per yaw bucket. Seconds per face: network time.

  python benchmarks/offline_model.py --model gpen-offline-128-v3=gpen-offline-128-v3 \\
      --model mmrb-offline-128=mmrb-offline-128 --threads 2

Writes results/<name>.{json,md}; the degraded and restored faces go to --work. ``--merge``
scores only the --model rows and keeps every other row of results/<name>.json (the faces,
seed and size must match: the degradations are seeded, so the kept rows are what a full rerun
would give), so adding a model does not rescore the others.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import RESULTS, SHARED, machine  # noqa: E402

CONDITIONS = {
    "photo-x4": ("photo", dict(sigma=1.2, downscale=4.0, jpeg_quality=60)),
    "photo-x2": ("photo", dict(sigma=1.0, downscale=2.0, jpeg_quality=70)),
    "photo-x1": ("photo", dict(sigma=0.8, downscale=1.0, jpeg_quality=50)),
    "gpen": ("gpen", {}),
}
YAW_BUCKETS = ((0.0, 15.0), (15.0, 30.0), (30.0, 90.0))  # |yaw| in degrees
BUCKET_COLUMNS = ("psnr", "stlpips_alex", "ids", "ids_dlib")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="LABEL=PATH",
        help="a model to score (zoo name or .safetensors); repeat to compare several",
    )
    parser.add_argument(
        "--condition",
        action="append",
        choices=CONDITIONS,
        help="degradation condition (repeat; default: all)",
    )
    parser.add_argument("--root", type=Path, default=SHARED / "data/train/celeba_align_6k")
    parser.add_argument("--size", type=int, default=128, help="face side in pixels")
    parser.add_argument("--seed", type=int, default=0, help="degradation seed")
    parser.add_argument("--limit", type=int, help="score only the first N test faces")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--identity-weights",
        type=Path,
        default=SHARED / "data/weights/mobilefacenet_casia_068.ckpt",
    )
    parser.add_argument("--lpips-alex-backbone", type=Path)
    parser.add_argument(
        "--metrics",
        default="psnr,ssim,stlpips_alex,identity,identity_dlib,niqe,fid,lpips_alex",
        help="comma-separated metrics of `faceprior evaluate`",
    )
    parser.add_argument("--fid-condition", default="photo-x4", help="the condition with FID")
    parser.add_argument("--fid-min-faces", type=int, default=50, help="no FID below this")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--work", type=Path, help="folder for the face images (default: temp)")
    parser.add_argument("--name", default="offline_model", help="results file stem")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="score only --model and keep the other rows of results/<name>.json",
    )
    return parser.parse_args()


def write_faces(folder: Path, images: list[np.ndarray], names: list[str]) -> None:
    """float32 BGR [0, 1] arrays -> 8-bit RGB PNGs (what a user's files would hold)."""
    from faceprior.io.images import write_image

    for name, image in zip(names, images, strict=True):
        rgb = np.clip(np.rint(image[..., ::-1] * 255.0), 0, 255).astype(np.uint8)
        write_image(folder / f"{name}.png", np.ascontiguousarray(rgb))


def test_faces(args: argparse.Namespace):
    from faceprior.data import datasets

    files = datasets.celeba_split_files(args.root, "test")[: args.limit]
    faces = datasets.FaceFolderDataset(
        files, args.size, crop_box=datasets.celeba_crop_box(args.root)
    )
    return faces, [f"{index:04d}_{path.stem}" for index, path in enumerate(files)]


def degrade(args: argparse.Namespace, faces, names: list[str], folder: Path) -> None:
    """gt/, input-bilinear/ (what models see) and input-bicubic/ under ``folder``."""
    from faceprior.data import datasets
    from faceprior.data.degradations import build_degradation

    preset, knobs = CONDITIONS[folder.name]
    for label, upsample in (("input-bilinear", "linear"), ("input-bicubic", "cubic")):
        pairs = datasets.SyntheticPairDataset(
            faces, build_degradation(preset, **knobs, upsample=upsample), seed=args.seed
        )
        samples = [pairs.sample(index) for index in range(len(pairs))]
        write_faces(folder / label, [lq for lq, _, _ in samples], names)
    write_faces(folder / "gt", [hq for _, hq, _ in samples], names)


def face_yaws(faces, names: list[str]) -> dict[str, float]:
    """Yaw of each ground-truth face (NaN where the detector finds none), from the bundled
    RetinaFace on the face padded by a quarter of its side (a tight crop hides the face's
    outline from the detector)."""
    import cv2

    from faceprior.face.detection import load_detector
    from faceprior.face.pose import estimate_yaw

    detector = load_detector("retinaface-mobilenet0.25", score_threshold=0.5)
    yaws = {}
    for index, name in enumerate(names):
        face = np.clip(np.rint(faces[index] * 255), 0, 255).astype(np.uint8)
        pad = face.shape[0] // 4
        padded = cv2.copyMakeBorder(face, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        found = detector.detect(padded)
        if found:
            best = max(found, key=lambda d: d.score)
            yaws[name] = estimate_yaw(best.landmarks)
        else:
            yaws[name] = float("nan")
    return yaws


@torch.no_grad()
def restore(model: str, folder: Path, label: str, batch_size: int) -> float:
    """Restore every degraded face; return the seconds per face (network time only)."""
    import time

    from faceprior import load_restoration_model
    from faceprior.io.images import read_image, write_image
    from faceprior.metrics.evaluation import list_images

    network = load_restoration_model(model)
    files = list(list_images(folder / "input-bilinear").items())
    seconds = 0.0
    for start in range(0, len(files), batch_size):
        chunk = files[start : start + batch_size]
        faces = np.stack([read_image(path).pixels for _, path in chunk])
        batch = torch.from_numpy(faces).permute(0, 3, 1, 2).float() / 127.5 - 1
        began = time.perf_counter()
        restored = network(batch).clamp(-1, 1)
        seconds += time.perf_counter() - began
        pixels = ((restored + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
        for (name, _), image in zip(chunk, pixels, strict=True):
            write_image(folder / "restored" / label / f"{name}.png", np.ascontiguousarray(image))
    return seconds / len(files)


def chroma_shift(restored: Path, gt: Path) -> dict[str, float]:
    """Per image: |mean Cb - mean Cb of GT| + |mean Cr - ...| in 8-bit levels (BT.601)."""
    import cv2

    from faceprior.io.images import read_image
    from faceprior.metrics.evaluation import list_images

    shifts = {}
    for name, path in list_images(restored).items():
        means = []
        for file in (path, gt / path.name):
            rgb = read_image(file).pixels
            ycrcb = cv2.cvtColor(np.ascontiguousarray(rgb[..., :3]), cv2.COLOR_RGB2YCrCb)
            means.append(ycrcb[..., 1:].reshape(-1, 2).astype(np.float64).mean(axis=0))
        shifts[name] = float(np.abs(means[0] - means[1]).sum())
    return shifts


def bucket_table(rows: dict, yaws: dict[str, float], per_image: dict) -> dict:
    """Mean of BUCKET_COLUMNS per |yaw| bucket, for every row label."""
    table = {}
    for label, images in per_image.items():
        table[label] = {}
        for low, high in YAW_BUCKETS:
            chosen = [n for n, yaw in yaws.items() if low <= abs(yaw) < high and n in images]
            bucket = {"faces": len(chosen)}
            for column in BUCKET_COLUMNS:
                values = [images[n][column] for n in chosen if column in images[n]]
                if values:
                    bucket[column] = float(np.mean(values))
            table[label][f"{low:.0f}-{high:.0f}"] = bucket
    return table


def markdown(condition: str, rows: dict, buckets: dict, missing: dict) -> list[str]:
    columns = list(dict.fromkeys(c for values in rows.values() for c in values))
    lines = [f"### {condition}", "", "| | " + " | ".join(columns) + " |"]
    lines.append("|---" * (len(columns) + 1) + "|")
    lines += [
        f"| {label} | "
        + " | ".join(f"{values[c]:.4f}" if c in values else "-" for c in columns)
        + " |"
        for label, values in rows.items()
    ]
    lines += ["", f"Per |yaw| bucket (degrees; faces per bucket), {', '.join(BUCKET_COLUMNS)}:", ""]
    names = list(next(iter(buckets.values())))
    lines.append("| | " + " | ".join(names) + " |")
    lines.append("|---" * (len(names) + 1) + "|")
    for label, per_bucket in buckets.items():
        cells = [
            " / ".join(f"{b.get(c, float('nan')):.3f}" for c in BUCKET_COLUMNS) + f" ({b['faces']})"
            for b in per_bucket.values()
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [f"\n`{name}` not computed: {reason}" for name, reason in missing.items()]
    return lines + [""]


def previous_results(args: argparse.Namespace, payload: dict) -> dict:
    """results/<name>.json's conditions for --merge, after checking it scored the same faces."""
    path = RESULTS / f"{args.name}.json"
    if not args.merge:
        return {}
    if not path.is_file():
        raise SystemExit(f"--merge: {path} does not exist; run without --merge first")
    previous = json.loads(path.read_text())
    for key in ("faces", "size", "seed"):
        if previous[key] != payload[key]:
            raise SystemExit(f"--merge: {path} has {key} {previous[key]}, this run {payload[key]}")
    first_run = [{"models": previous["models"], "machine": previous["machine"]}]
    payload["runs"] = previous.get("runs", first_run) + [
        {"models": payload["models"], "machine": payload["machine"]}
    ]
    payload["models"] = {**previous["models"], **payload["models"]}
    payload["conditions"] = {**previous["conditions"], **payload["conditions"]}
    return previous["results"]


def main() -> int:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from faceprior.metrics.evaluation import evaluate_folders
    from faceprior.metrics.registry import MetricOptions

    models = dict(item.split("=", 1) for item in args.model)
    conditions = args.condition or list(CONDITIONS)
    work = args.work or Path(tempfile.mkdtemp(prefix="faceprior-offline-"))
    faces, names = test_faces(args)
    yaws = face_yaws(faces, names)
    options = MetricOptions(
        identity_weights=args.identity_weights, lpips_alex_backbone=args.lpips_alex_backbone
    )
    payload = {
        "faces": len(names),
        "size": args.size,
        "seed": args.seed,
        "conditions": {c: CONDITIONS[c] for c in conditions},
        "models": models,
        "yaw_buckets": {
            f"{lo:.0f}-{hi:.0f}": sum(lo <= abs(y) < hi for y in yaws.values())
            for lo, hi in YAW_BUCKETS
        },
        "yaw_undetected": int(sum(np.isnan(y) for y in yaws.values())),
        "results": {},
        "machine": machine(),
    }
    previous = previous_results(args, payload)
    payload["results"] = dict(previous)
    lines = []
    for condition in conditions:
        folder = work / condition
        degrade(args, faces, names, folder)
        seconds = {}
        for label, model in models.items():
            print(f"{condition}: restoring {len(names)} faces with {label} ({model})")
            seconds[label] = restore(model, folder, label, args.batch_size)
        metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
        skipped = {}
        if "fid" in metrics and (
            condition != args.fid_condition or len(names) < args.fid_min_faces
        ):
            metrics.remove("fid")
            skipped["fid"] = f"only under {args.fid_condition} with >= {args.fid_min_faces} faces"
        kept = previous.get(condition, {"mean": {}, "yaw": {}, "missing": {}})
        folders = (
            {}
            if kept["mean"]
            else {
                "input (bicubic)": folder / "input-bicubic",
                "input (bilinear)": folder / "input-bilinear",
            }
        )
        folders |= {label: folder / "restored" / label for label in models}
        rows, per_image, missing = {}, {}, kept["missing"]
        for label, images in folders.items():
            evaluation = evaluate_folders(
                images, folder / "gt", options, metrics, cache_dir=work / "fid-cache", progress=True
            )
            shifts = chroma_shift(images, folder / "gt")
            rows[label] = {
                **evaluation.means(),
                **evaluation.dataset,
                "chroma_shift": float(np.mean(list(shifts.values()))),
            }
            if label in seconds:
                rows[label]["s/face"] = seconds[label]
            per_image[label] = evaluation.rows
            missing = {**evaluation.missing, **skipped}
            print(condition, label, {k: round(v, 4) for k, v in rows[label].items()})
        buckets = {**kept["yaw"], **bucket_table(rows, yaws, per_image)}
        rows = {**kept["mean"], **rows}
        payload["results"][condition] = {"mean": rows, "yaw": buckets, "missing": missing}
    for condition, result in payload["results"].items():
        lines += markdown(condition, result["mean"], result["yaw"], result["missing"])
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    (RESULTS / f"{args.name}.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
