"""Score restoration models on the CelebA subset's held-out test faces (issue 10's table).

The test split of ../shared/data/train/celeba_align_6k (599 faces after dropping a duplicate
of a training face), cut with the MANIFEST crop and resized to --size, is degraded with the
GFPGAN/GPEN recipe and a fixed seed (face i uses ``default_rng([seed, i])``). Each model
restores the degraded faces exactly as the training task fed them (bilinear resize back to
--size, as GPEN's recipe does); the table also scores the same degraded faces brought back
with bicubic instead, the usual "no restoration" baseline. Metrics (``--metrics``): PSNR/SSIM
(RGB and Y), ShiftTolerant-LPIPS, identity cosine with MobileFaceNet and with dlib's ResNet
descriptor (plus dlib's distance), NIQE with the MATLAB model, FID against the ground-truth
set (only from --fid-min-faces faces on: below that its covariance estimate is meaningless),
and LPIPS when --lpips-alex-backbone is given. Restoration time is reported in seconds per face.

  python benchmarks/offline_model.py --model gpen=faceprior/weights/gpen-offline-128.safetensors \\
      --model unet=runs/unet_offline_128/export/generator.safetensors

Writes results/offline_model.{json,md}; the degraded and restored faces go to --work.
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

from benchmarks.common import RESULTS, machine  # noqa: E402

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="LABEL=PATH",
        help="a model to score (zoo name or .safetensors); repeat to compare several",
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
    parser.add_argument("--fid-min-faces", type=int, default=50, help="no FID below this")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--work", type=Path, help="folder for the face images (default: temp)")
    parser.add_argument("--name", default="offline_model", help="results file stem")
    return parser.parse_args()


def write_faces(folder: Path, images: list[np.ndarray], names: list[str]) -> None:
    """float32 BGR [0, 1] arrays -> 8-bit RGB PNGs (what a user's files would hold)."""
    from faceprior.io.images import write_image

    for name, image in zip(names, images, strict=True):
        rgb = np.clip(np.rint(image[..., ::-1] * 255.0), 0, 255).astype(np.uint8)
        write_image(folder / f"{name}.png", np.ascontiguousarray(rgb))


def degrade(args: argparse.Namespace, work: Path) -> list[str]:
    """gt/, input-bilinear/ (what models see) and input-bicubic/ under ``work``."""
    from faceprior.data import datasets
    from faceprior.data.degradations import build_degradation

    files = datasets.celeba_split_files(args.root, "test")[: args.limit]
    faces = datasets.FaceFolderDataset(
        files, args.size, crop_box=datasets.celeba_crop_box(args.root)
    )
    names = [f"{index:04d}_{path.stem}" for index, path in enumerate(files)]
    for label, upsample in (("input-bilinear", "linear"), ("input-bicubic", "cubic")):
        pairs = datasets.SyntheticPairDataset(
            faces, build_degradation("gpen", upsample=upsample), seed=args.seed
        )
        samples = [pairs.sample(index) for index in range(len(pairs))]
        write_faces(work / label, [lq for lq, _, _ in samples], names)
    write_faces(work / "gt", [hq for _, hq, _ in samples], names)
    return names


@torch.no_grad()
def restore(model: str, work: Path, label: str, batch_size: int) -> float:
    """Restore every degraded face; return the seconds per face (network time only)."""
    import time

    from faceprior import load_restoration_model
    from faceprior.io.images import read_image, write_image
    from faceprior.metrics.evaluation import list_images

    network = load_restoration_model(model)
    files = list(list_images(work / "input-bilinear").items())
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
            write_image(work / "restored" / label / f"{name}.png", np.ascontiguousarray(image))
    return seconds / len(files)


def main() -> int:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from faceprior.metrics.evaluation import evaluate_folders
    from faceprior.metrics.registry import MetricOptions

    models = dict(item.split("=", 1) for item in args.model)
    work = args.work or Path(tempfile.mkdtemp(prefix="faceprior-offline-"))
    names = degrade(args, work)
    seconds = {}
    for label, model in models.items():
        print(f"restoring {len(names)} faces with {label} ({model})")
        seconds[label] = restore(model, work, label, args.batch_size)
    options = MetricOptions(
        identity_weights=args.identity_weights, lpips_alex_backbone=args.lpips_alex_backbone
    )
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    skipped = {}
    if "fid" in metrics and len(names) < args.fid_min_faces:
        metrics.remove("fid")
        skipped["fid"] = f"{len(names)} faces, fewer than --fid-min-faces {args.fid_min_faces}"
    folders = {
        "input (bicubic)": work / "input-bicubic",
        "input (bilinear)": work / "input-bilinear",
    }
    folders |= {label: work / "restored" / label for label in models}
    rows, missing = {}, {}
    for label, folder in folders.items():
        evaluation = evaluate_folders(
            folder, work / "gt", options, metrics, cache_dir=work / "fid-cache", progress=True
        )
        rows[label] = {**evaluation.means(), **evaluation.dataset}
        if label in seconds:
            rows[label]["s/face"] = seconds[label]
        missing = {**evaluation.missing, **skipped}
        print(label, {k: round(v, 4) for k, v in rows[label].items()})
    columns = list(dict.fromkeys(c for values in rows.values() for c in values))
    table = ["| | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    table += [
        f"| {label} | "
        + " | ".join(f"{values[c]:.4f}" if c in values else "-" for c in columns)
        + " |"
        for label, values in rows.items()
    ]
    table += [f"\n`{name}` not computed: {reason}" for name, reason in missing.items()]
    payload = {
        "faces": len(names),
        "size": args.size,
        "seed": args.seed,
        "degradation": "gpen",
        "models": models,
        "metrics": metrics,
        "mean": rows,
        "missing": missing,
        "machine": machine(),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    (RESULTS / f"{args.name}.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
