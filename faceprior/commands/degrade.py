"""Turn a folder of aligned HQ faces into a paired LQ/HQ benchmark.

Writes OUT/lq/<name>.png, OUT/hq/<name>.png (the resized HQ after any flip or grey the recipe
drew) and OUT/manifest.json with the recipe settings and the parameters drawn for every image,
which replay it exactly (Degradation.apply). Image i is degraded with the generator
numpy.random.default_rng([seed, i]) over the sorted file list, so the same command gives the
same bytes. OUT must be new, empty or left by a stopped run (no manifest.json yet), and may
not overlap the input folder; every file is written atomically. An unreadable input is
reported, listed under "failed" in the manifest and skipped (exit status 1). PNG keeps the
recipe's JPEG artefacts unchanged.

example:
  faceprior degrade faces/ -o bench/ --preset psfrgan --size 512 --seed 0
"""

from __future__ import annotations

import argparse

HELP = "make a paired LQ/HQ benchmark from HQ faces with a degradation recipe"
PRESETS = ("gpen", "psfrgan", "panini-mfr", "panini-sr16")


def _crop_box(text: str) -> tuple[int, int, int, int]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4:
        raise argparse.ArgumentTypeError(f"expected x0,y0,x1,y1 integers, got {text!r}")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("hq_dir", help="folder of aligned HQ face images (searched recursively)")
    parser.add_argument(
        "-o", "--output", required=True, help="output folder (new or empty, outside hq_dir)"
    )
    parser.add_argument(
        "--preset", choices=PRESETS, default="gpen", help="degradation recipe (default: gpen)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--size", type=int, default=512, help="HQ side in pixels after resizing (default: 512)"
    )
    parser.add_argument(
        "--crop-box",
        type=_crop_box,
        default=None,
        metavar="X0,Y0,X1,Y1",
        help="crop every input to this box before resizing (default: centre square)",
    )
    parser.add_argument(
        "--limit", type=int, default=None, help="only the first N images of the sorted list"
    )


def _check_folders(hq_dir, output) -> str | None:
    """Why ``output`` may not be used, or None."""
    if not hq_dir.is_dir():
        return f"not a folder: {hq_dir}"
    source, target = hq_dir.resolve(), output.resolve()
    if target == source or source in target.parents or target in source.parents:
        return f"refusing to write into or around the input folder: {output} overlaps {hq_dir}"
    if output.exists() and not output.is_dir():
        return f"output {output} exists and is not a folder"
    if output.is_dir() and not _is_partial_run(output):
        return f"output {output} exists and is neither empty nor an unfinished degrade run"
    return None


def _is_partial_run(output) -> bool:
    """An empty folder, or one that a stopped run left: lq/ and hq/ but no manifest.json."""
    names = {path.name for path in output.iterdir()}
    return names <= {"lq", "hq"}


def _write_atomic(path, data: bytes) -> None:
    import os
    import tempfile

    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise


def _png(image) -> bytes:
    import cv2

    from faceprior.data.degradations.ops import to_uint8

    ok, buffer = cv2.imencode(".png", to_uint8(image))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buffer.tobytes()


def run(args: argparse.Namespace) -> int:
    import json
    import sys
    from collections import Counter
    from pathlib import Path

    from tqdm import tqdm

    from faceprior import __version__
    from faceprior.data.datasets import FaceFolderDataset, SyntheticPairDataset, list_images
    from faceprior.data.degradations import build_degradation
    from faceprior.errors import InputError

    hq_dir, output = Path(args.hq_dir), Path(args.output)
    problem = _check_folders(hq_dir, output)
    if problem is None and args.size < 1:
        problem = f"--size must be positive, got {args.size}"
    if problem is None and args.limit is not None and args.limit < 1:
        problem = f"--limit must be positive, got {args.limit}"
    degradation = build_degradation(args.preset)
    if problem is None and args.size % degradation.scale:
        problem = f"--size {args.size} is not a multiple of the x{degradation.scale} SR scale"
    if problem is None:
        paths = list_images(hq_dir)[: args.limit]
        if not paths:
            problem = f"no images in {hq_dir}"
    if problem is not None:
        raise InputError(problem)

    faces = FaceFolderDataset(paths, args.size, crop_box=args.crop_box)
    pairs = SyntheticPairDataset(faces, degradation, seed=args.seed)
    names = [p.relative_to(hq_dir).with_suffix("").as_posix().replace("/", "__") for p in paths]
    clashes = sorted(name for name, count in Counter(names).items() if count > 1)
    if clashes:
        raise InputError(f"several inputs would be written as {clashes[:5]}")
    (output / "lq").mkdir(parents=True, exist_ok=True)
    (output / "hq").mkdir(exist_ok=True)
    items, failed = [], []
    for index in tqdm(range(len(pairs)), desc=f"degrade ({args.preset})", unit="img"):
        try:
            lq, hq, params = pairs.sample(index)
        except (ValueError, OSError) as error:  # one unreadable face must not stop the set
            tqdm.write(f"faceprior degrade: skipped {paths[index]}: {error}", file=sys.stderr)
            failed.append(
                {"source": paths[index].relative_to(hq_dir).as_posix(), "error": str(error)}
            )
            continue
        _write_atomic(output / "lq" / f"{names[index]}.png", _png(lq))
        _write_atomic(output / "hq" / f"{names[index]}.png", _png(hq))
        items.append(
            {
                "index": index,
                "source": paths[index].relative_to(hq_dir).as_posix(),
                "lq": f"lq/{names[index]}.png",
                "hq": f"hq/{names[index]}.png",
                "params": params,
            }
        )
    manifest = {
        "faceprior_version": __version__,
        "source": str(hq_dir.resolve()),
        "seed": args.seed,
        "size": args.size,
        "lq_size": degradation.lq_shape(args.size, args.size)[0],
        "crop_box": None if args.crop_box is None else list(args.crop_box),
        "rng": "numpy.random.default_rng([seed, index])",
        "degradation": degradation.config(),
        "items": items,
        "failed": failed,
    }
    _write_atomic(output / "manifest.json", json.dumps(manifest, indent=1).encode("utf-8"))
    print(f"wrote {len(items)} LQ/HQ pairs and manifest.json to {output}")
    return 1 if failed else 0
