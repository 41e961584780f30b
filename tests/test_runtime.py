"""How models run: glibc memory reuse, bf16/fp16 precision and torch.compile.

A tiny random-weight GPEN stands in for the released ones: the settings act on the ops, not on
the weight values. Speed is measured in benchmarks/, not here.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from tiny_models import ARCHITECTURES, tiny_restorer

import faceprior
from faceprior.cli import main
from faceprior.models.gpen import FullGenerator
from faceprior.runtime import ModelRunner, autocast, check_precision


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> str:
    torch.manual_seed(0)
    network = FullGenerator(64, style_dim=32, n_mlp=2, channel_multiplier=1, narrow=1 / 8)
    folder = tmp_path_factory.mktemp("models")
    return str(faceprior.save_model(network, folder / "tiny-gpen-64.safetensors"))


@pytest.fixture(scope="module")
def tiny_model(tiny_checkpoint):
    return faceprior.load_restoration_model(tiny_checkpoint)


def _faces(count: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(count, 3, 64, 64, generator=generator) * 2 - 1


def _psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    return float(10 * np.log10(peak**2 / np.mean((a - b) ** 2)))


MALLINFO_PROBE = """
import ctypes
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
def mapped_blocks_added_by_64_mib():
    block = libc.malloc(64 << 20)
    holding = libc.mallinfo2().hblks
    libc.free(block)
    return holding - libc.mallinfo2().hblks
before = mapped_blocks_added_by_64_mib()
from faceprior.runtime import reuse_freed_memory
enabled = reuse_freed_memory()
print(before, enabled, mapped_blocks_added_by_64_mib())
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc tuning is glibc-only")
def test_reuse_freed_memory_serves_large_blocks_from_the_reused_heap():
    # In a child process: the setting is process-wide and cannot be undone.
    output = subprocess.run(
        [sys.executable, "-c", MALLINFO_PROBE], check=True, capture_output=True, text=True
    ).stdout.split()
    before, enabled, after = int(output[0]), output[1], int(output[2])
    assert before == 1, "glibc should mmap a 64 MiB block by default"
    assert enabled == "True"
    assert after == 0, "with reuse on, large blocks must come from the heap"


def test_bf16_changes_the_output_but_stays_close(tiny_model):
    faces = _faces(2)
    full = ModelRunner(tiny_model, "fp32")(faces).numpy()
    low = ModelRunner(tiny_model, "bf16")(faces).float().numpy()
    assert not np.array_equal(full, low)
    assert _psnr(full.clip(-1, 1), low.clip(-1, 1), peak=2.0) > 35


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_every_architecture_runs_in_bf16_close_to_fp32(name):
    model = tiny_restorer(name)
    size = model.conventions.input_size
    faces = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(3)) * 2 - 1
    full = ModelRunner(model, "fp32")(faces).clamp(-1, 1).numpy()
    low = ModelRunner(model, "bf16")(faces).float().clamp(-1, 1).numpy()
    assert not np.array_equal(full, low)
    assert _psnr(full, low, peak=2.0) > 30


def test_precision_is_checked_before_anything_runs(tiny_model, tiny_checkpoint):
    with pytest.raises(ValueError, match="fp16 is for GPUs"):
        check_precision("fp16", "cpu")
    with pytest.raises(ValueError, match="precision must be one of"):
        autocast("int8", "cpu")
    with pytest.raises(ValueError, match="fp16 is for GPUs"):
        faceprior.FaceRestorer(tiny_checkpoint, precision="fp16")
    check_precision("fp16", "cuda:0")  # allowed where it is fast


def test_exported_graphs_refuse_precision_and_compile(tiny_model, tmp_path):
    from faceprior.deploy.onnx_export import export_restorer

    path = export_restorer(tiny_model, tmp_path / "tiny.onnx", check=False).path
    graph = faceprior.load_restoration_model(path)
    assert ModelRunner(graph, "fp32")(_faces(1)).shape == (1, 3, 64, 64)
    for options in (dict(precision="bf16"), dict(compile=True)):
        with pytest.raises(ValueError, match="exported graph"):
            ModelRunner(graph, **options)


def test_pipeline_precision_option_reaches_the_model(tiny_checkpoint):
    face = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    outputs = {
        precision: faceprior.FaceRestorer(tiny_checkpoint, precision=precision)
        .restore_aligned(face)
        .image.astype(np.float64)
        for precision in ("fp32", "bf16")
    }
    assert not np.array_equal(outputs["fp32"], outputs["bf16"])
    assert _psnr(outputs["fp32"], outputs["bf16"], peak=255.0) > 35


def test_cli_refuses_fp16_on_cpu(tiny_checkpoint, tmp_path, capsys):
    face = tmp_path / "face.png"
    import cv2

    cv2.imwrite(str(face), np.full((64, 64, 3), 128, np.uint8))
    output = str(tmp_path / "out")
    options = ["--aligned", "--device", "cpu", "--precision", "fp16"]
    code = main(["restore", str(face), "-o", output, "--model", tiny_checkpoint, *options])
    assert code == 2
    assert "fp16 is for GPUs" in capsys.readouterr().err
    assert not (tmp_path / "out" / "face.png").exists()


def test_compile_on_cpu_without_a_compiler_is_refused_up_front(tiny_model, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("CXX", raising=False)
    with pytest.raises(ValueError, match="needs a C\\+\\+ compiler"):
        ModelRunner(tiny_model, compile=True)
    assert not ModelRunner(tiny_model).compiled  # eager runs need none


@pytest.mark.skipif(shutil.which("g++") is None, reason="torch.compile on CPU needs a C++ compiler")
def test_compiled_model_matches_eager_and_pads_to_one_graph(tiny_model):
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    eager = ModelRunner(tiny_model, "fp32")
    compiled = ModelRunner(tiny_model, "fp32", compile=True, batch_size=4)
    assert compiled.compiled and not eager.compiled
    for count in (4, 3, 1):  # a photo's last batch is smaller
        faces = _faces(count, seed=count)
        got = compiled(faces)
        assert got.shape == (count, 3, 64, 64)
        torch.testing.assert_close(got, eager(faces), atol=1e-4, rtol=1e-4)
    assert counters["stats"]["unique_graphs"] == 1, "padding should keep one compiled graph"


def test_restorer_turns_memory_reuse_on_unless_told_not_to(tiny_checkpoint, monkeypatch):
    import faceprior.runtime

    calls = []
    monkeypatch.setattr(faceprior.runtime, "reuse_freed_memory", lambda: calls.append(1))
    faceprior.FaceRestorer(tiny_checkpoint, reuse_memory=False)
    assert calls == []
    faceprior.FaceRestorer(tiny_checkpoint)
    assert calls == [1]
