"""Export restoration models and face detectors to ONNX, verified against PyTorch.

Exported files carry their conventions in the ONNX metadata (``faceprior.kind``,
``faceprior.conventions`` / ``faceprior.architecture``), so ``faceprior.load_restoration_model``
and ``load_detector`` accept the ``.onnx`` file in place of the checkpoint and run it with
ONNX Runtime. A restorer's load-time options (Panini-Net's fidelity, PSFR-GAN's parser) are
traced into the graph as constants/subgraphs; ``faceprior.options`` records which values were
baked, since they can no longer be changed when the file is loaded.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import ArgumentError
from ..io.images import temporary_path
from ..models.loading import load_restoration_model
from ..models.onnx import KIND_RESTORER, KIND_RETINAFACE, session
from ..models.psfrgan.spectral import SpectralConv2d
from ..models.restorer import RestorerOptions
from ..models.retinaface import CONFIGS
from ..models.stylegan2.layers import ModulatedConv2d

DEFAULT_OPSET = 17


@dataclass(frozen=True)
class ExportReport:
    path: Path
    max_abs_error: float  # ONNX Runtime vs PyTorch on random inputs
    checked_shapes: tuple[tuple[int, ...], ...]


@contextmanager
def _shared_weight_modulation(network: nn.Module) -> Iterator[None]:
    """Trace modulated convolutions as input scaling around one shared-weight convolution.

    Per-sample weights of a symbolic batch size cannot be exported as a convolution kernel.
    Both formulations compute the same result; the caller's choice is restored afterwards so
    exporting leaves the PyTorch model as it was.
    """
    modules = [m for m in network.modules() if isinstance(m, ModulatedConv2d)]
    saved = [module.grouped for module in modules]
    for module in modules:
        module.grouped = False
    try:
        yield
    finally:
        for module, grouped in zip(modules, saved, strict=True):
            module.grouped = grouped


@contextmanager
def _frozen_spectral_norm(network: nn.Module) -> Iterator[None]:
    """Trace PSFR-GAN's spectral-normalised convolutions with their eval weight precomputed.

    In eval the weight is ``weight_orig / sigma`` from stored vectors, a constant; traced as
    ops, the exporter stores ``weight_orig`` plus a reshaped copy for ``sigma`` (the file
    grew from ~270 MB to 452 MB at 512 px) and recomputes sigma at every run. The constant is
    computed by the module's own method, so the values are the ones PyTorch uses.
    """
    modules = [m for m in network.modules() if isinstance(m, SpectralConv2d) and not m.training]
    for module in modules:
        with torch.no_grad():
            weight = module.effective_weight()
        module.effective_weight = lambda weight=weight: weight  # shadows the method
    try:
        yield
    finally:
        for module in modules:
            del module.effective_weight


def _export(module, example, path, input_names, output_names, dynamic_axes, metadata, opset):
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = str(temporary_path(path))  # the atomic writers' name (faceprior.io.images)
    try:
        # Traced with autograd on: the StyleGAN2 layers' inference fast paths (in-place
        # activations, GPEN's noise concatenation written through ``out=`` into slices of a
        # preallocated tensor) are taken only without autograd, and the tracer drops writes
        # made through ``out=`` views, which silently lost every encoder map of GPEN/MMRB.
        with warnings.catch_warnings(), torch.enable_grad():
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
    model,
    path: str | os.PathLike,
    opset: int = DEFAULT_OPSET,
    check: bool = True,
    options: RestorerOptions | None = None,
) -> ExportReport:
    """Export a restoration model (zoo name, checkpoint path or ``RestorationModel``).

    The graph maps (N, 3, S, S) RGB faces in [-1, 1] to restored faces, N dynamic.
    ``options`` (with a name or path only) are the load-time options to bake in, e.g.
    ``RestorerOptions(fidelity=0.7)`` for Panini-Net; a ``RestorationModel`` already holds its
    own. The model is exported on the CPU in eval mode.
    """
    if isinstance(model, nn.Module):
        if options is not None:
            raise ArgumentError("options", "apply to a name or path; the given model holds its own")
        restorer = model
    else:
        restorer = load_restoration_model(model, options=options)
    restorer = restorer.eval().cpu()
    conventions = restorer.conventions
    size = conventions.input_size
    example = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    metadata = {
        "faceprior.kind": KIND_RESTORER,
        "faceprior.conventions": json.dumps(conventions.to_dict()),
        "faceprior.options": json.dumps(restorer.baked_options()),
    }
    shapes = ((1, 3, size, size), (3, 3, size, size))
    with _shared_weight_modulation(restorer), _frozen_spectral_norm(restorer):
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
    # Checked against the model as the caller runs it, not the export-time formulation.
    error = _compare(restorer, path, shapes) if check else float("nan")
    return ExportReport(path, error, shapes if check else ())


def export_retinaface(
    network: nn.Module, path: str | os.PathLike, opset: int = DEFAULT_OPSET, check: bool = True
) -> ExportReport:
    """Export a RetinaFace network (raw loc/conf/landmarks; height and width dynamic)."""
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
