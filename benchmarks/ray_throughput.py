"""Throughput of Ray runs (restore_dataset) against a plain folder run, on this machine.

A folder of real photos from ../shared/data/faces/whole (the small ones, copied ``--repeat``
times under new names) is restored by

- a plain run (:func:`faceprior.restore_folder`, models loaded before the clock starts), with
  1 and with all torch threads;
- Ray runs on a local Ray instance with 1 detection actor and 1..N restore actors of 1 CPU.

For each run: wall time (a Ray run's includes starting its actors and loading their models
once per actor), and the steady rate, photos/s and faces/s, measured from the modification
times of the outputs between the ``--warm``-th output and the last: what a long job sees once
the actors are warm. Ray's own start (``ray.init``) is timed apart.

    .venv/bin/python benchmarks/ray_throughput.py --repeat 3 --actors 1 2

Writes benchmarks/results/ray_throughput.jsonl (one record per invocation) and prints a
Markdown table. On a shared machine the numbers are noisy: the load average is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import RESULTS, machine  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"
PHOTOS = (
    "CodeFormer_whole_imgs/00.jpg",
    "CodeFormer_whole_imgs/01.jpg",
    "CodeFormer_whole_imgs/03.jpg",
    "CodeFormer_whole_imgs/04.jpg",
    "CodeFormer_whole_imgs/05.jpg",
    "DFDNet_TestWhole/test1.jpg",
    "DFDNet_TestWhole/test2.jpg",
    "DFDNet_TestWhole/test3.jpg",
    "DFDNet_TestWhole/test4.jpg",
    "DFDNet_TestWhole/test5.jpg",
    "DFDNet_TestWhole/test6.png",
    "facexlib/test.jpg",
    "facexlib/test2.jpg",
    "GFPGAN_whole_imgs/Blake_Lively.jpg",
)


def build_folder(folder: Path, repeat: int) -> int:
    for copy in range(repeat):
        for relative in PHOTOS:
            source = SHARED / "data/faces/whole" / relative
            name = f"{copy:02d}_{relative.replace('/', '_')}"
            shutil.copy(source, folder / name)
    return repeat * len(PHOTOS)


def steady_rate(report, warm: int, started: float) -> dict:
    """Seconds to the first output, and photos/s and faces/s between the ``warm``-th finished
    output and the last one (``started``: the epoch time the run began)."""
    done = [
        (os.stat(entry["output"]).st_mtime, len(entry.get("faces", [])))
        for entry in report.entries
        if entry["status"] == "restored"
    ]
    done.sort()
    if len(done) <= warm + 1:
        return {}
    window = done[warm:]
    seconds = window[-1][0] - window[0][0]
    photos = len(window) - 1
    faces = sum(count for _, count in window[1:])
    return {
        "first_output_s": done[0][0] - started,
        "steady_photos_per_s": photos / seconds,
        "steady_faces_per_s": faces / seconds,
    }


def plain_run(inputs: Path, output: Path, options: dict, threads: int, warm: int) -> dict:
    import torch

    from faceprior import FaceRestorer
    from faceprior.folders import restore_folder

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        restorer = FaceRestorer(**options)
        restorer.detector  # noqa: B018 - loaded before the clock starts
        started, start = time.time(), time.perf_counter()
        report = restore_folder(inputs, output, restorer, progress=False, log=lambda line: None)
        wall = time.perf_counter() - start
    finally:
        torch.set_num_threads(before)
    faces = sum(len(e.get("faces", [])) for e in report.entries)
    return {
        "run": f"plain, {threads} torch thread{'s' if threads > 1 else ''}",
        "wall_s": wall,
        "photos": report.count("restored"),
        "faces": faces,
        "photos_per_s": report.count("restored") / wall,
        "faces_per_s": faces / wall,
        **steady_rate(report, warm, started),
    }


def ray_run(inputs: Path, output: Path, options: dict, actors: int, warm: int) -> dict:
    from faceprior.distributed import restore_dataset

    started, start = time.time(), time.perf_counter()
    report = restore_dataset(
        inputs,
        output,
        options,
        progress=False,
        log=lambda line: None,
        detect_actors=1,
        restore_actors=actors,
    )
    wall = time.perf_counter() - start
    faces = sum(len(e.get("faces", [])) for e in report.entries)
    return {
        "run": f"Ray, 1 detect + {actors} restore actor{'s' if actors > 1 else ''}",
        "wall_s": wall,
        "photos": report.count("restored"),
        "faces": faces,
        "photos_per_s": report.count("restored") / wall,
        "faces_per_s": faces / wall,
        **steady_rate(report, warm, started),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=2, help="copies of the photo set")
    parser.add_argument("--actors", type=int, nargs="+", default=[1, 2], help="restore actors")
    parser.add_argument("--model", default="gpen-offline-128")
    parser.add_argument("--warm", type=int, default=3, help="outputs before the steady window")
    parser.add_argument(
        "--plain-threads",
        type=int,
        nargs="+",
        help="torch threads of the plain runs (default: 1 and all cores)",
    )
    args = parser.parse_args()
    import ray

    detector = SHARED / "data/weights/retinaface_mobilenet0.25_Final.pth"
    options = {"model": args.model, "detector_weights": str(detector), "device": "cpu"}
    rows = []
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        inputs = root / "in"
        inputs.mkdir()
        photos = build_folder(inputs, args.repeat)
        cores = os.cpu_count() or 1
        for threads in args.plain_threads or sorted({1, cores}):
            rows.append(plain_run(inputs, root / f"plain{threads}", options, threads, args.warm))
            print(rows[-1], flush=True)
        start = time.perf_counter()
        # Logical CPUs: one per actor, even where that is more actors than cores.
        ray.init(num_cpus=max(cores, 1 + max(args.actors)), include_dashboard=False)
        ray_start = time.perf_counter() - start
        try:
            for actors in args.actors:
                rows.append(ray_run(inputs, root / f"ray{actors}", options, actors, args.warm))
                print(rows[-1], flush=True)
        finally:
            ray.shutdown()
    record = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "model": args.model,
        "photos": photos,
        "ray_init_s": ray_start,
        "rows": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / "ray_throughput.jsonl", "a") as handle:
        handle.write(json.dumps(record) + "\n")
    print(f"\n{photos} photos, model {args.model}, ray.init {ray_start:.1f} s, "
          f"load average {record['machine']['load_average']:.1f}\n")  # fmt: skip
    columns = ("first_output_s", "photos_per_s", "faces_per_s")
    columns += ("steady_photos_per_s", "steady_faces_per_s")
    print(
        "| run | wall s | first output s | photos/s | faces/s | steady photos/s | steady faces/s |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        cells = " | ".join(f"{row.get(column, float('nan')):.2f}" for column in columns)
        print(f"| {row['run']} | {row['wall_s']:.1f} | {cells} |")


if __name__ == "__main__":
    main()
