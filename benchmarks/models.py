"""Seconds per face, throughput, peak memory and MACs of each restoration network.

Each (model, variant) runs in a fresh process so that peak memory (and the process-wide
malloc setting) is its own; the variants are described at ``VARIANTS``. Every variant but
``fp32`` reports its PSNR against faceprior's fp32 output for the same input.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
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

# Released models (zoo entries: their constructor arguments) and faceprior's MMRB-GAN
# reconstruction at 512 px, which has no released checkpoint.
MODELS = (
    "gpen-bfr-256",
    "gpen-bfr-512",
    "gpen-bfr-1024",
    "psfrgan",
    "panini-mfr",
    "panini-sr16x",
    "mmrb-gan-512",
    "gpen-offline-128",
)
DEFAULT_MODELS = ("gpen-bfr-256", "gpen-bfr-512", "psfrgan", "panini-mfr", "mmrb-gan-512")
# official: the official op formulation (the StyleGAN2 layers' impl="ref") with glibc's default
# malloc, as the official code runs; fp32-malloc: faceprior's ops without memory reuse; the
# rest reuse memory (faceprior.runtime.reuse_freed_memory, as the pipeline does); -compile:
# torch.compile with weight freezing; onnx: the `faceprior export` graph in ONNX Runtime (fp32).
VARIANTS = ("official", "fp32-malloc", "fp32", "bf16", "fp32-compile", "bf16-compile", "onnx")
DEFAULT_VARIANTS = ("official", "fp32-malloc", "fp32", "bf16", "bf16-compile", "onnx")


def build(name: str, device: str):
    """The restoration model with random weights (timings do not depend on weight values)."""
    import torch

    from faceprior.hub.zoo import get_entry
    from faceprior.models.registry import get_architecture
    from faceprior.models.restorer import RestorerOptions

    torch.manual_seed(0)
    if name == "mmrb-gan-512":
        architecture, arguments = "mmrb-gan", dict(size=512)
    else:
        entry = get_entry(name)
        architecture, arguments = entry.architecture, entry.arguments
    network = get_architecture(architecture).build(**arguments).eval()
    if architecture == "psfrgan":  # its parser is part of the restorer: random weights too
        from faceprior.models.psfrgan.restorer import PSFRRestorer

        parser_entry = get_entry("psfrgan-parsenet")
        parser = get_architecture(parser_entry.architecture).build(**parser_entry.arguments)
        return PSFRRestorer(network, parser.eval()).eval().to(device)
    restorer = get_architecture(architecture).restorer(network, RestorerOptions())
    return restorer.eval().to(device)


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


def export(name: str, path: str) -> dict:
    """Write the model's ONNX file (in its own process, so its memory is not the runtime's)."""

    from faceprior.deploy.onnx_export import export_restorer

    start = time.perf_counter()
    export_restorer(build(name, "cpu"), path, check=False)
    return {"export_s": time.perf_counter() - start}


def measure(
    name: str, variant: str, batches: list[int], repeats: int, device: str, onnx: str | None
) -> dict:
    """One process: one model, one variant, every batch size."""
    import contextlib

    import torch

    from faceprior.models.stylegan2.layers import implementation
    from faceprior.runtime import ModelRunner, reuse_freed_memory

    if variant not in ("official", "fp32-malloc"):
        reuse_freed_memory()
    model = network = build(name, device)
    size = model.conventions.input_size
    precision = "bf16" if variant.startswith("bf16") else "fp32"
    result = {"model": name, "variant": variant, "device": device}
    if variant == "onnx":
        from faceprior.models.loading import load_restoration_model

        model = load_restoration_model(onnx)
    # Peak memory: the largest resident size while running the batches so far (they grow),
    # above what the process held with the weights loaded and before any forward pass.
    baseline = current_rss_mb()

    def ops():
        return implementation(network, "ref") if variant == "official" else contextlib.nullcontext()

    generator = torch.Generator().manual_seed(1)
    runners = {}
    with ops():
        for batch in batches:
            runner = runners[batch] = ModelRunner(
                model, precision, variant.endswith("-compile"), batch
            )
            x = (torch.rand(batch, 3, size, size, generator=generator) * 2 - 1).to(device)

            def run(x=x, runner=runner):
                runner(x)
                if device.startswith("cuda"):
                    torch.cuda.synchronize()

            if runner.compiled:
                start = time.perf_counter()
                run()
                result[f"b{batch}_compile_s"] = time.perf_counter() - start
            seconds = time_call(run, repeats=repeats if batch == 1 else 1)
            result[f"b{batch}_s_per_face"] = seconds / batch
            result[f"b{batch}_peak_mb"] = peak_rss_mb() - baseline
    probe = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(2)) * 2 - 1
    probe = probe.to(device)
    if variant != "fp32":
        # the batch-1 runner: compiled variants are checked with their compiled graph
        runner = runners.get(1) or ModelRunner(model, precision, variant.endswith("-compile"))
        with ops():
            output = runner(probe).float()
        reference = ModelRunner(network)(probe).float()
        mse = ((output.clamp(-1, 1) - reference.clamp(-1, 1)) / 2).pow(2).mean().item()
        result["psnr_vs_fp32_db"] = 10 * math.log10(1 / mse) if mse > 0 else float("inf")
    result["gmacs_per_face"] = count_macs(network, probe) / 1e9
    return result


def _child(name: str, variant: str, args: argparse.Namespace, onnx: Path) -> dict:
    """Measure one (model, variant) in a fresh process; ``onnx`` is exported first if needed."""

    def last_json(command: list[str]) -> dict:
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        return json.loads(output.strip().splitlines()[-1])

    exported = {}
    if variant == "onnx":
        exported = last_json([sys.executable, __file__, "--child", name, "--export", str(onnx)])
    command = [sys.executable, __file__, "--child", f"{name}:{variant}",
               "--device", args.device, "--repeats", str(args.repeats), "--onnx-file", str(onnx),
               "--batches", *map(str, args.batches)]  # fmt: skip
    return {**last_json(command), **exported}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), choices=MODELS)
    parser.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS), choices=VARIANTS)
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 4, 8])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs at batch 1")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--onnx-file", help=argparse.SUPPRESS)
    parser.add_argument("--export", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.export:
        print(json.dumps(export(args.child, args.export)))
        return 0
    if args.child:
        name, variant = args.child.split(":")
        result = measure(name, variant, args.batches, args.repeats, args.device, args.onnx_file)
        print(json.dumps(result))
        return 0
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for name in args.models:
            for variant in args.variants:
                rows.append(_child(name, variant, args, Path(workdir) / f"{name}.onnx"))
                print(json.dumps(rows[-1]), flush=True)
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
        line["GMAC/face"] = f"{row['gmacs_per_face']:.1f}" if "gmacs_per_face" in row else "-"
        line["speed-up b1"] = (
            f"{reference['b1_s_per_face'] / row['b1_s_per_face']:.2f}x" if reference else "-"
        )
        line["PSNR vs fp32"] = (
            f"{row['psnr_vs_fp32_db']:.1f} dB" if "psnr_vs_fp32_db" in row else "-"
        )
        line["compile s"] = f"{row['b1_compile_s']:.0f}" if "b1_compile_s" in row else "-"
        table.append(line)
    print(markdown_table(table))
    path = save("models", {"machine": machine(), "rows": rows})
    print(f"saved to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
