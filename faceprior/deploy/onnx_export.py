"""Export restoration models and face detectors to ONNX, verified against PyTorch.

Exported files carry their conventions in the ONNX metadata (``faceprior.kind``,
``faceprior.conventions`` / ``faceprior.architecture``), so ``faceprior.load_restoration_model``
and ``load_detector`` accept the ``.onnx`` file in place of the checkpoint and run it with
ONNX Runtime.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..models.stylegan2.layers import ModulatedConv2d

KIND_RESTORER = "restorer"
KIND_RETINAFACE = "retinaface"
DEFAULT_OPSET = 17


@dataclass(frozen=True)
class ExportReport:
    path: Path
    max_abs_error: float  # ONNX Runtime vs PyTorch on random inputs
    checked_shapes: tuple[tuple[int, ...], ...]


def _shared_weight_modulation(network: nn.Module) -> None:
    # Per-sample weights of a symbolic batch size cannot be exported as a convolution kernel.
    for module in network.modules():
        if isinstance(module, ModulatedConv2d):
            module.grouped = False


def _export(module, example, path, input_names, output_names, dynamic_axes, metadata, opset):
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about Python ints are expected
            torch.onnx.export(
                module,
                example,
                tmp,
                dynamo=False,
                input_names=input_names,
                output_names=output_names,
                dynamic_axes=dynamic_axes,
                opset_version=opset,
            )
        graph = onnx.load(tmp)
        for key, value in metadata.items():
            graph.metadata_props.add(key=key, value=value)
        onnx.save(graph, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def export_restorer(
    model, path: str | os.PathLike, opset: int = DEFAULT_OPSET, check: bool = True
) -> ExportReport:
    """Export a restoration model (zoo name, checkpoint path or ``RestorationModel``).

    The graph maps (N, 3, S, S) RGB faces in [-1, 1] to restored faces, N dynamic.
    """
    from ..api import load_restoration_model

    restorer = model if isinstance(model, nn.Module) else load_restoration_model(model)
    restorer = restorer.eval().cpu()
    _shared_weight_modulation(restorer)
    conventions = restorer.conventions
    size = conventions.input_size
    example = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    metadata = {
        "faceprior.kind": KIND_RESTORER,
        "faceprior.conventions": json.dumps(conventions.to_dict()),
    }
    path = _export(
        restorer,
        (example,),
        path,
        ["faces"],
        ["restored"],
        {"faces": {0: "batch"}, "restored": {0: "batch"}},
        metadata,
        opset,
    )
    shapes = ((1, 3, size, size), (3, 3, size, size))
    error = _compare(restorer, path, shapes) if check else float("nan")
    return ExportReport(path, error, shapes if check else ())


def export_retinaface(
    network: nn.Module, path: str | os.PathLike, opset: int = DEFAULT_OPSET, check: bool = True
) -> ExportReport:
    """Export a RetinaFace network (raw loc/conf/landmarks; height and width dynamic)."""
    from ..face.retinaface import CONFIGS

    network = network.eval().cpu()
    example = torch.rand(1, 3, 320, 256) * 255 - 117
    architecture = next(name for name, config in CONFIGS.items() if config == network.config)
    metadata = {"faceprior.kind": KIND_RETINAFACE, "faceprior.architecture": architecture}
    dynamic = {"image": {2: "height", 3: "width"}}
    dynamic.update({name: {1: "anchors"} for name in ("loc", "conf", "landmarks")})
    path = _export(
        network, (example,), path, ["image"], ["loc", "conf", "landmarks"], dynamic, metadata, opset
    )
    shapes = ((1, 3, 320, 256), (1, 3, 480, 640))
    error = _compare(network, path, shapes) if check else float("nan")
    return ExportReport(path, error, shapes if check else ())


def _compare(module: nn.Module, path: Path, shapes) -> float:
    from .onnx_runtime import session

    runtime = session(path)
    worst = 0.0
    generator = torch.Generator().manual_seed(1)
    for shape in shapes:
        x = torch.rand(shape, generator=generator) * 2 - 1
        with torch.no_grad():
            expected = module(x)
        expected = expected if isinstance(expected, tuple) else (expected,)
        got = runtime.run(None, {runtime.get_inputs()[0].name: x.numpy()})
        for want, have in zip(expected, got, strict=True):
            worst = max(worst, float(np.abs(want.numpy() - have).max()))
    return worst
