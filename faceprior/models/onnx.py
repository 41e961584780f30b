"""Running exported ``.onnx`` files with ONNX Runtime behind faceprior's network interfaces.

``faceprior export`` (``faceprior.deploy.onnx_export``) writes the graph with metadata: the
kind of network (:data:`KIND_RESTORER`, :data:`KIND_RETINAFACE`), its conventions and the
load-time options baked into it. Loading an ``.onnx`` file here gives a module that stands in
for the PyTorch network wherever faceprior takes one. ONNX Runtime is an optional dependency,
imported when a file is opened.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from ..errors import CheckpointError
from .conventions import Conventions
from .restorer import RestorationModel
from .retinaface import CONFIGS

# ``faceprior.kind`` metadata values of the exported files.
KIND_RESTORER = "restorer"
KIND_RETINAFACE = "retinaface"


def session(path: str | os.PathLike, threads: int | None = None):
    """An ONNX Runtime inference session on every available provider."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ImportError(
            "running .onnx models needs ONNX Runtime: pip install 'faceprior[onnx]'"
        ) from None
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), options, providers=ort.get_available_providers())
    except Exception as error:  # onnxruntime's own exception types are not importable stably
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(f"{path}: not a readable ONNX model ({detail})") from None


class OnnxGraph(nn.Module):
    """An ONNX Runtime session as a module: torch tensors in, torch tensors out (CPU)."""

    def __init__(self, path: str | os.PathLike):
        super().__init__()
        self.path = Path(path)
        self.session = session(path)
        self.input_name = self.session.get_inputs()[0].name

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = self.session.run(None, {self.input_name: x.detach().float().cpu().numpy()})
        return tuple(torch.from_numpy(output).to(x.device) for output in outputs)


class OnnxRestorer(RestorationModel):
    """An exported restoration model, usable wherever the pipeline takes a model.

    :meth:`baked_options` are the load-time options fixed in the graph at export (e.g.
    ``{"fidelity": 0.7}`` for Panini-Net; empty for files written before they were recorded).
    """

    def __init__(self, network: OnnxGraph, conventions: Conventions, baked_options: dict):
        super().__init__(network, conventions)
        self._baked_options = dict(baked_options)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return self.network(faces)[0].to(faces.dtype)

    def baked_options(self) -> dict:
        return dict(self._baked_options)


def load_onnx_restorer(path: str | os.PathLike) -> OnnxRestorer:
    """An exported restoration model with the conventions and baked options it records."""
    graph = OnnxGraph(path)
    info = dict(graph.session.get_modelmeta().custom_metadata_map)
    if info.get("faceprior.kind") != KIND_RESTORER:
        raise CheckpointError(f"{path} is not a restoration model exported by `faceprior export`")
    fields = json.loads(info["faceprior.conventions"])
    fields["value_range"] = tuple(fields["value_range"])
    fields["inputs"] = tuple(fields["inputs"])
    fields["outputs"] = tuple(fields["outputs"])
    baked = json.loads(info.get("faceprior.options", "{}"))
    return OnnxRestorer(graph, Conventions(**fields), baked)


class OnnxRetinaFace(OnnxGraph):
    """An exported RetinaFace network; ``config`` drives the same anchors and decoding."""

    def __init__(self, path: str | os.PathLike, expected_architecture: str):
        super().__init__(path)
        info = dict(self.session.get_modelmeta().custom_metadata_map)
        architecture = info.get("faceprior.architecture")
        if info.get("faceprior.kind") != KIND_RETINAFACE or architecture not in CONFIGS:
            raise CheckpointError(
                f"{path} is not a RetinaFace network exported by `faceprior export`"
            )
        if architecture != expected_architecture:
            raise CheckpointError(f"{path} holds {architecture}, not {expected_architecture}")
        self.config = CONFIGS[architecture]
