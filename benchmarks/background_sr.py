"""Background super-resolution (Real-ESRNet x2/x4): seconds per megapixel and peak memory.

Untiled and tiled (blended tiles, ``faceprior.face.background``), fp32 and bf16, each variant
in a fresh process so that its peak memory is its own. The weights are the realesrnet-x*
parity packs' rule-generated ones when ../shared is present (timings do not depend on the
values; bf16's distance from fp32 is only meaningful with image-like outputs), random ones
otherwise. Seconds per megapixel are per *input* megapixel.

    .venv/bin/python benchmarks/background_sr.py --size 128 --tile 48
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import (  # noqa: E402
    SHARED,
    current_rss_mb,
    machine,
    markdown_table,
    peak_rss_mb,
    save,
)


def _network(scale: int):
    from faceprior.models.realesrnet import RRDBNet

    network = RRDBNet(scale=scale)
    pack = SHARED / "parity" / f"realesrnet-x{scale}"
    if pack.is_dir():
        sys.path.insert(0, str(SHARED / "parity"))
        from packs import load_pack

        network.load_state_dict(load_pack(str(pack)).torch_state_dict())
    return network.eval(), pack.is_dir()


def _photo(size: int) -> np.ndarray:
    import cv2

    path = SHARED / "data/faces/whole/CodeFormer_whole_imgs/00.jpg"
    if path.is_file():
        bgr = cv2.imread(str(path))
        return cv2.resize(bgr, (size, size), interpolation=cv2.INTER_AREA)[..., ::-1] / 255.0
    return np.random.default_rng(0).random((size, size, 3))


def _reset_peak_rss() -> None:
    """Reset the kernel's high-water mark (VmHWM), so that the peak is this call's own and
    not the weight generation's (Linux >= 4.0; elsewhere the lifetime peak is reported)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_rss_since_reset_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mb()


def measure(scale: int, size: int, tile: int, precision: str) -> dict:
    """One variant, in this process: time of one call after a small warm-up call."""
    from faceprior.face.background import BackgroundUpsampler

    network, pack_weights = _network(scale)
    photo = _photo(size).astype(np.float32)
    upsampler = BackgroundUpsampler(network, tile_size=tile, precision=precision)
    upsampler.upsample(photo[:32, :32])  # warm-up: kernel selection, allocator
    baseline = current_rss_mb()
    _reset_peak_rss()
    start = time.perf_counter()
    output = upsampler.upsample(photo)
    seconds = time.perf_counter() - start
    peak = _peak_rss_since_reset_mb()
    exact = tile == 0 and precision == "fp32"  # the reference itself
    reference = output if exact else BackgroundUpsampler(network, tile_size=0).upsample(photo)
    levels = np.abs(np.round(output * 255) - np.round(reference * 255))
    return {
        "scale": scale,
        "input": f"{size}x{size}",
        "tile": tile or "untiled",
        "precision": precision,
        "s/MP": round(seconds / (size * size / 1e6), 1),
        "peak MB": round(peak - baseline),
        "max levels vs fp32 untiled": int(levels.max()),
        "mean levels": round(float(levels.mean()), 3),
        "pack weights": pack_weights,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128, help="input side in pixels")
    parser.add_argument("--tile", type=int, default=48, help="tile side for the tiled rows")
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # scale,size,tile,precision (child)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.one:
        scale, size, tile, precision = args.one.split(",")
        print(json.dumps(measure(int(scale), int(size), int(tile), precision)))
        return
    rows = []
    for scale in args.scales:
        for tile in (0, args.tile):
            for precision in args.precisions:
                one = f"{scale},{args.size},{tile},{precision}"
                command = [sys.executable, __file__, "--one", one, "--threads", str(args.threads)]
                done = subprocess.run(command, capture_output=True, text=True, check=True)
                rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(markdown_table(rows[-1:]).splitlines()[-1], flush=True)
    print(markdown_table(rows))
    print(save("background_sr", {"machine": machine(), "rows": rows}))


if __name__ == "__main__":
    main()
