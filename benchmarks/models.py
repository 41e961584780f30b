"""Seconds per face, throughput, peak memory and MACs of each restoration network.

Each (model, variant) runs in a fresh process so that peak memory is its own. Variants:
``official`` (the official op formulation, fp32), ``fp32`` (faceprior's ops) and ``bf16``
(faceprior's ops under CPU/GPU autocast), the last with its PSNR against the fp32 output.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import (  # noqa: E402
    current_rss_mb,
    machine,
    markdown_table,
    peak_rss_mb,
    save,
    time_call,
)

MODELS = {
    # name: (architecture, constructor arguments) at the released size
    "gpen-bfr-256": ("gpen", dict(size=256, channel_multiplier=1, narrow=0.5)),
    "gpen-bfr-512": ("gpen", dict(size=512, channel_multiplier=2, narrow=1.0)),
    "gpen-bfr-1024": ("gpen", dict(size=1024, channel_multiplier=2, narrow=1.0)),
}
VARIANTS = ("official", "fp32", "bf16")


def build(name: str, device: str):
    import torch

    from faceprior.models.registry import get_architecture
    from faceprior.models.restorer import RestorerOptions

    architecture, arguments = MODELS[name]
    torch.manual_seed(0)
    arch = get_architecture(architecture)
    network = arch.build(**arguments).eval()
    return arch.restorer(network, RestorerOptions()).eval().to(device)


def count_macs(model, x) -> float:
    """Multiply-accumulates of one forward, counted from conv/linear calls."""
    import torch
    import torch.nn.functional as F

    total = 0
    conv, conv_t, linear = F.conv2d, F.conv_transpose2d, F.linear

    def conv_hook(x, w, *args, **kwargs):
        nonlocal total
        out = conv(x, w, *args, **kwargs)
        total += out.numel() * w.shape[1] * w.shape[2] * w.shape[3]
        return out

    def conv_t_hook(x, w, *args, **kwargs):
        nonlocal total
        total += x.numel() * w.shape[1] * w.shape[2] * w.shape[3]
        return conv_t(x, w, *args, **kwargs)

    def linear_hook(x, w, *args, **kwargs):
        nonlocal total
        total += x.numel() // x.shape[-1] * w.numel()
        return linear(x, w, *args, **kwargs)

    F.conv2d, F.conv_transpose2d, F.linear = conv_hook, conv_t_hook, linear_hook
    try:
        with torch.inference_mode():
            model(x)
    finally:
        F.conv2d, F.conv_transpose2d, F.linear = conv, conv_t, linear
    return total / x.shape[0]


def measure(name: str, variant: str, batches: list[int], repeats: int, device: str) -> dict:
    """One process: one model, one variant, every batch size."""
    import contextlib

    import torch
    from reference_ops import use_reference_ops

    model = build(name, device)
    size = model.conventions.input_size
    result = {"model": name, "variant": variant, "device": device}
    autocast = (
        torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16)
        if variant == "bf16"
        else contextlib.nullcontext()
    )
    ops = use_reference_ops() if variant == "official" else contextlib.nullcontext()
    generator = torch.Generator().manual_seed(1)
    with ops, autocast, torch.inference_mode():
        for batch in batches:
            x = (torch.rand(batch, 3, size, size, generator=generator) * 2 - 1).to(device)
            baseline = current_rss_mb()

            def run(x=x):
                model(x)
                if device.startswith("cuda"):
                    torch.cuda.synchronize()

            seconds = time_call(run, repeats=repeats if batch == 1 else 1)
            result[f"b{batch}_s_per_face"] = seconds / batch
            result[f"b{batch}_peak_mb"] = peak_rss_mb() - baseline
        if variant == "bf16":
            x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(2)) * 2 - 1
            x = x.to(device)
            low = model(x).float()
            with torch.autocast(device_type=device.split(":")[0], enabled=False):
                full = model(x).float()
            mse = ((low.clamp(-1, 1) - full.clamp(-1, 1)) / 2).pow(2).mean().item()
            result["psnr_vs_fp32_db"] = 10 * math.log10(1 / mse) if mse > 0 else float("inf")
    x = torch.rand(1, 3, size, size).to(device) * 2 - 1
    result["gmacs_per_face"] = count_macs(model, x) / 1e9
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 4, 8])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs at batch 1")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, variant = args.child.split(":")
        print(json.dumps(measure(name, variant, args.batches, args.repeats, args.device)))
        return 0
    rows = []
    for name in args.models:
        for variant in args.variants:
            command = [sys.executable, __file__, "--child", f"{name}:{variant}",
                       "--device", args.device, "--repeats", str(args.repeats),
                       "--batches", *map(str, args.batches)]  # fmt: skip
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            row = json.loads(output.strip().splitlines()[-1])
            rows.append(row)
            print(json.dumps(row), flush=True)
    table = []
    for row in rows:
        reference = next(
            (r for r in rows if r["model"] == row["model"] and r["variant"] == "official"), None
        )
        line = {
            "model": row["model"],
            "variant": row["variant"],
            "s/face b1": f"{row['b1_s_per_face']:.2f}",
        }
        for batch in args.batches[1:]:
            line[f"faces/s b{batch}"] = f"{1 / row[f'b{batch}_s_per_face']:.2f}"
        line["peak MB b1"] = f"{row['b1_peak_mb']:.0f}"
        line["GMAC/face"] = f"{row['gmacs_per_face']:.1f}"
        line["speed-up b1"] = (
            f"{reference['b1_s_per_face'] / row['b1_s_per_face']:.2f}x" if reference else "-"
        )
        line["PSNR vs fp32"] = (
            f"{row['psnr_vs_fp32_db']:.1f} dB" if "psnr_vs_fp32_db" in row else "-"
        )
        table.append(line)
    print(markdown_table(table))
    path = save("models", {"machine": machine(), "rows": rows})
    print(f"saved to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
