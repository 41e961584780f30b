"""`faceprior export` writes under the atomic writers' temporary names (faceprior.io.images).

Such a name is removed by remove_stale_temporaries once its process is gone (a killed export
leaves no half graph behind for ever) and is never taken for an input by a folder run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from faceprior.cli import main
from faceprior.folders import is_own_file
from faceprior.io.images import TEMPORARY_SUFFIX, remove_stale_temporaries, temporary_path


def _is_shared_temporary(path, final) -> bool:
    name = os.path.basename(path)
    return (
        name.startswith(f".{final.name}.{os.getpid()}.")
        and name.endswith(TEMPORARY_SUFFIX)
        and os.path.dirname(path) == str(final.parent)
        and is_own_file(name)
    )


def test_export_command_writes_its_graph_under_the_shared_temporary_name(tmp_path, monkeypatch):
    from faceprior.deploy import onnx_export

    given = []

    def export(model, path, opset, check, options):
        given.append(path)
        with open(path, "wb") as handle:
            handle.write(b"graph")
        return SimpleNamespace(path=path, max_abs_error=0.0, checked_shapes=[(1,)])

    monkeypatch.setattr(onnx_export, "export_restorer", export)
    target = tmp_path / "m.onnx"
    assert main(["export", "gpen-offline-128", "-o", str(target)]) == 0
    assert _is_shared_temporary(given[0], target)
    assert target.read_bytes() == b"graph" and os.listdir(tmp_path) == ["m.onnx"]


def test_onnx_writer_uses_the_shared_temporary_name_and_cleans_up(tmp_path, monkeypatch):
    from faceprior.deploy.onnx_export import export_restorer
    from faceprior.models.gpen import FullGenerator
    from faceprior.models.restorer import first_output_restorer

    written = []

    def interrupted_export(module, example, f, **options):
        written.append(f)
        with open(f, "wb") as handle:
            handle.write(b"half a graph")
        raise RuntimeError("the exporter stopped")

    monkeypatch.setattr(torch.onnx, "export", interrupted_export)
    network = FullGenerator(32, style_dim=16, n_mlp=1, channel_multiplier=1, narrow=1 / 32)
    with pytest.raises(RuntimeError, match="stopped"):
        export_restorer(first_output_restorer(network), tmp_path / "g.onnx", check=False)
    assert _is_shared_temporary(written[0], tmp_path / "g.onnx")
    assert os.listdir(tmp_path) == []


def test_a_killed_exports_temporary_is_removed_by_the_next_writer(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    left = temporary_path(tmp_path / "m.onnx")
    stale = left.with_name(left.name.replace(f".{os.getpid()}.", f".{dead.pid}.", 1))
    stale.write_bytes(b"half a graph")
    assert remove_stale_temporaries(tmp_path) == [stale]
