"""Running exported ``.onnx`` files with ONNX Runtime behind faceprior's interfaces."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from ..models.conventions import Conventions
from ..models.restorer import RestorationModel
from .onnx_export import KIND_RESTORER, KIND_RETINAFACE


def session(path: str | os.PathLike, threads: int | None = None):
    try:
        import onnxruntime as ort
    except ImportError:
        raise ImportError(
            "running .onnx models needs ONNX Runtime: pip install 'faceprior[onnx]'"
        ) from None
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=ort.get_available_providers())


def metadata(path: str | os.PathLike) -> dict[str, str]:
    return dict(session(path).get_modelmeta().custom_metadata_map)


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

    ``baked_options`` are the load-time options fixed in the graph at export (e.g.
    ``{"fidelity": 0.7}`` for Panini-Net; empty for files written before they were recorded).
    """

    def __init__(self, network: OnnxGraph, conventions: Conventions, baked_options: dict):
        super().__init__(network, conventions)
        self.baked_options = baked_options

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return self.network(faces)[0].to(faces.dtype)


def load_onnx_restorer(path: str | os.PathLike) -> OnnxRestorer:
    graph = OnnxGraph(path)
    info = dict(graph.session.get_modelmeta().custom_metadata_map)
    if info.get("faceprior.kind") != KIND_RESTORER:
        raise ValueError(f"{path} is not a restoration model exported by `faceprior export`")
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
        from ..face.retinaface import CONFIGS

        info = dict(self.session.get_modelmeta().custom_metadata_map)
        architecture = info.get("faceprior.architecture")
        if info.get("faceprior.kind") != KIND_RETINAFACE or architecture not in CONFIGS:
            raise ValueError(f"{path} is not a RetinaFace network exported by `faceprior export`")
        if architecture != expected_architecture:
            raise ValueError(f"{path} holds {architecture}, not {expected_architecture}")
        self.config = CONFIGS[architecture]
