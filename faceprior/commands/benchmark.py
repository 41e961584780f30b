"""Benchmark restoration models on synthetically degraded faces.

Degrades every HQ face in --hq with a degradation preset and a fixed seed (face i uses the
generator seeded with [seed, i], so runs are reproducible and the manifest records every
draw), restores the degraded faces with each --model (aligned mode), scores the degraded
input and every model against the HQ faces with `faceprior evaluate`'s metrics, and writes
benchmark.md/.csv/.json (means per model) and benchmark.png (one bar chart per metric).

Layout of --out: data/lq, data/gt, data/manifest.json, restored/<model>/,
evaluations/<model>/evaluation.*, benchmark.*.

example:
  faceprior benchmark --hq hq/ --preset gpen --seed 0 --model gpen-bfr-512 --out bench/ \\
      --identity-weights mobilefacenet_casia_068.ckpt --niqe-pristine hq/
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "degrade HQ faces, restore them with one or more models, and compare the scores"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .evaluate import add_metric_arguments

    parser.add_argument("--hq", type=Path, required=True, help="folder of aligned HQ faces")
    parser.add_argument(
        "--model",
        dest="models",
        action="append",
        required=True,
        help="restoration model (zoo name or checkpoint); repeat to compare several",
    )
    parser.add_argument(
        "--preset", default="gpen", help="degradation preset (see docs/degradations.md)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the degradations")
    parser.add_argument("--limit", type=int, help="use only the first N HQ faces (sorted)")
    parser.add_argument("-o", "--output", dest="out", type=Path, help="benchmark folder (required)")
    parser.add_argument("--out", dest="out", type=Path, help=argparse.SUPPRESS)
    add_metric_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def degrade_folder(hq: Path, out: Path, preset: str, seed: int, limit: int | None) -> list[str]:
    """Write ``out/lq``, ``out/gt`` and ``out/manifest.json``; return the face names."""
    import json

    import numpy as np

    from ..data.degradations import build_degradation
    from ..io.images import atomic_write_bytes, write_image
    from ..metrics.evaluation import list_images, load_rgb

    degradation = build_degradation(preset)
    files = list(list_images(hq).items())[:limit]
    manifest = {"preset": degradation.config(), "seed": seed, "faces": {}}
    for index, (name, path) in enumerate(files):
        bgr = (load_rgb(path)[..., ::-1] / 255.0).astype(np.float32)
        lq, gt, params = degradation(
            np.ascontiguousarray(bgr), np.random.default_rng([seed, index])
        )
        for folder, image in (("lq", lq), ("gt", gt)):
            rgb = np.clip(np.rint(image[..., ::-1] * 255.0), 0, 255).astype(np.uint8)
            write_image(out / folder / f"{name}.png", np.ascontiguousarray(rgb))
        manifest["faces"][name] = {"source": str(path), "index": index, "params": params}
    atomic_write_bytes(out / "manifest.json", (json.dumps(manifest, indent=2) + "\n").encode())
    return [name for name, _ in files]


def model_label(model: str) -> str:
    """Folder-safe label: a checkpoint's file stem, or the zoo name."""
    path = Path(model)
    text = path.stem if path.suffix else model
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def restore_folder(model: str, lq: Path, out: Path, device: str) -> None:
    from ..io.images import write_image
    from ..metrics.evaluation import list_images
    from ..pipeline import FaceRestorer

    restorer = FaceRestorer(model, device=device)
    for name, path in list_images(lq).items():
        write_image(out / f"{name}.png", restorer.restore_aligned(path).image)


def run(args: argparse.Namespace) -> int:
    import json

    from ..checks import number
    from ..errors import ArgumentError, InputError, OutputError
    from ..io.images import atomic_write_bytes, write_image
    from ..metrics.evaluation import evaluate_folders, list_images, load_rgb
    from ..metrics.plot import bar_chart
    from ..metrics.report import format_value, write_report
    from .evaluate import metric_options, parse_metrics

    if args.out is None:
        raise ArgumentError("out", "is required (the benchmark folder)")
    labels = [model_label(m) for m in args.models]
    if len(set(labels)) != len(labels) or "input" in labels:
        raise ArgumentError("models", f"need distinct names other than 'input', got {labels}")
    out = args.out.resolve()
    if out == args.hq.resolve() or args.hq.resolve() in out.parents:
        raise OutputError(f"{args.out}: the benchmark folder must not be inside --hq")
    if args.limit is not None:
        number("limit", args.limit, 1, integer=True)
    try:
        degrade_folder(args.hq, out / "data", args.preset, args.seed, args.limit)
    except (ValueError, FileNotFoundError) as error:  # the HQ folder's problems are the user's
        raise InputError(str(error)) from None
    for model, label in zip(args.models, labels, strict=True):
        print(f"restoring with {model}")
        restore_folder(model, out / "data" / "lq", out / "restored" / label, args.device)
    size = args.size
    if size is None:
        first = load_rgb(next(iter(list_images(out / "data" / "gt").values())))
        size = first.shape[0] if first.shape[0] == first.shape[1] else None
    options = metric_options(args)
    metrics = parse_metrics(args.metrics)
    folders = {"input": out / "data" / "lq"}
    folders.update({label: out / "restored" / label for label in labels})
    means: dict[str, dict[str, float]] = {}
    columns: list[str] = []
    missing: dict[str, str] = {}
    for label, folder in folders.items():
        evaluation = evaluate_folders(
            folder,
            out / "data" / "gt",
            options,
            metrics,
            size=size,
            fid_reference=args.fid_reference,
            progress=not args.no_progress,
        )
        write_report(evaluation, out / "evaluations" / label)
        means[label] = {**evaluation.means(), **evaluation.dataset}
        columns = evaluation.columns + list(evaluation.dataset)
        missing = evaluation.missing
    lines = ["| model | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    lines += [
        f"| {label} | " + " | ".join(format_value(means[label].get(c)) for c in columns) + " |"
        for label in means
    ]
    lines += [f"\n- `{name}` missing: {reason}" for name, reason in missing.items()]
    table = "\n".join(lines) + "\n"
    csv_rows = ["model," + ",".join(columns)]
    csv_rows += [
        label + "," + ",".join(repr(means[label].get(c)) for c in columns) for label in means
    ]
    payload = {
        "preset": args.preset,
        "seed": args.seed,
        "size": size,
        "models": dict(zip(labels, args.models, strict=True)),
        "mean": {
            label: {k: (v if v == v and abs(v) != float("inf") else None) for k, v in m.items()}
            for label, m in means.items()
        },
        "missing": missing,
    }
    atomic_write_bytes(out / "benchmark.md", table.encode())
    atomic_write_bytes(out / "benchmark.csv", ("\n".join(csv_rows) + "\n").encode())
    atomic_write_bytes(out / "benchmark.json", (json.dumps(payload, indent=2) + "\n").encode())
    write_image(out / "benchmark.png", bar_chart(means, columns))
    print(table, end="")
    return 0
