"""ONNX export of restoration models and RetinaFace, and the ONNX Runtime path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import shared_path
from tiny_models import make_noise_matter, tiny_network, tiny_restorer

import faceprior
from faceprior.deploy.onnx_export import export_restorer, export_retinaface
from faceprior.models.gpen import FullGenerator
from faceprior.models.psfrgan import ParseNet, PSFRRestorer
from faceprior.models.restorer import RestorerOptions

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def tiny_gpen(tmp_path_factory):
    torch.manual_seed(0)
    network = FullGenerator(64, style_dim=64, n_mlp=2, channel_multiplier=1, narrow=0.125)
    make_noise_matter(network)  # else the encoder maps GPEN concatenates are multiplied by 0
    path = tmp_path_factory.mktemp("gpen") / "gpen.safetensors"
    faceprior.save_model(network, path)
    return path


def test_gpen_export_matches_pytorch_at_any_batch(tiny_gpen, tmp_path):
    report = export_restorer(str(tiny_gpen), tmp_path / "gpen.onnx")
    assert report.max_abs_error < 1e-4
    onnx_model = faceprior.load_restoration_model(tmp_path / "gpen.onnx")
    torch_model = faceprior.load_restoration_model(tiny_gpen)
    assert onnx_model.conventions == torch_model.conventions
    faces = torch.rand(5, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        expected = torch_model(faces)
    assert torch.allclose(onnx_model(faces), expected, atol=1e-4)


def test_onnx_models_refuse_load_time_options(tiny_gpen, tmp_path):
    export_restorer(str(tiny_gpen), tmp_path / "gpen.onnx", check=False)
    with pytest.raises(ValueError, match="fixed at export time"):
        faceprior.load_restoration_model(
            tmp_path / "gpen.onnx", options=RestorerOptions(fidelity=0.5)
        )


def test_retinaface_export_gives_the_same_detections(tmp_path):
    import cv2

    from faceprior.face.detection import load_detector
    from faceprior.face.retinaface import load_retinaface

    weights = shared_path("data/weights/retinaface_mobilenet0.25_Final.pth")
    photo = cv2.imread(str(shared_path("data/faces/whole/facexlib/test.jpg")))
    network = load_retinaface(weights, "retinaface-mobilenet0.25")
    report = export_retinaface(network, tmp_path / "retinaface.onnx")
    assert report.max_abs_error < 1e-3
    reference = load_detector("retinaface-mobilenet0.25", weights=weights).detect(photo)
    exported = load_detector("retinaface-mobilenet0.25", weights=tmp_path / "retinaface.onnx")
    found = exported.detect(photo)
    assert len(found) == len(reference) > 0
    for a, b in zip(found, reference, strict=True):
        assert np.abs(a.box - b.box).max() < 0.05
        assert np.abs(a.landmarks - b.landmarks).max() < 0.05


def test_export_command_writes_and_verifies(tiny_gpen, tmp_path, capsys):
    from faceprior.cli import main

    assert main(["export", str(tiny_gpen), "-o", str(tmp_path / "m.onnx")]) == 0
    assert "max |ONNX Runtime - PyTorch|" in capsys.readouterr().out
    assert (tmp_path / "m.onnx").stat().st_size > 0


def test_export_command_refuses_a_graph_outside_the_tolerance(tiny_gpen, tmp_path, capsys):
    from faceprior.cli import main

    target = tmp_path / "strict.onnx"
    # ORT and PyTorch order float32 reductions differently: never bit-identical here
    assert main(["export", str(tiny_gpen), "-o", str(target), "--tolerance", "1e-12"]) == 1
    assert "was not kept" in capsys.readouterr().err
    assert not target.exists()


def test_export_command_bakes_options_and_refuses_misplaced_ones(tmp_path, capsys):
    from faceprior.cli import main
    from faceprior.models.onnx import load_onnx_restorer

    torch.manual_seed(0)
    source = faceprior.save_model(tiny_network("panini-sr"), tmp_path / "panini.safetensors")
    target = tmp_path / "panini.onnx"
    assert main(["export", str(source), "-o", str(target), "--fidelity", "0.25"]) == 0
    assert load_onnx_restorer(target).baked_options() == {"fidelity": 0.25}
    code = main(["export", str(source), "-o", str(tmp_path / "x.onnx"), "--parsing-model", "p"])
    assert code == 2
    assert "--parsing-model is not supported" in capsys.readouterr().err


# --- every restoration architecture ---------------------------------------------------------

# ORT and PyTorch run the same float32 graph with differently ordered reductions: measured
# errors are 2e-7..7e-6 on these outputs (|x| up to ~9: random weights, unclamped), so 1e-4
# leaves over 10x headroom, while a wrong or dropped op (a batch size fixed at trace time, a
# lost write, a traced-away branch) gives errors of 1e-1 and more (the lost GPEN/MMRB encoder
# maps of the first exporter: 1.0-3.1).
TOLERANCE = 1e-4


def _faces(count: int, size: int) -> torch.Tensor:
    return torch.rand(count, 3, size, size, generator=torch.Generator().manual_seed(7)) * 2 - 1


RESTORERS = [
    ("psfrgan", RestorerOptions()),
    ("panini-mfr", RestorerOptions()),
    ("panini-mfr", RestorerOptions(fidelity=0.3)),
    ("panini-sr", RestorerOptions(fidelity=0.8)),
    ("mmrb-gan", RestorerOptions()),
    ("gpen-mmrb", RestorerOptions()),
    ("gpen-fusion", RestorerOptions()),
    ("unet", RestorerOptions()),
]


@pytest.mark.parametrize(
    ("name", "options"), RESTORERS, ids=[f"{n}-{o.fidelity}" for n, o in RESTORERS]
)
def test_every_restoration_architecture_exports_and_matches_pytorch(name, options, tmp_path):
    restorer = tiny_restorer(name, options)
    size = restorer.conventions.input_size
    report = export_restorer(restorer, tmp_path / f"{name}.onnx")
    assert report.checked_shapes == ((1, 3, size, size), (3, 3, size, size))
    assert report.max_abs_error < TOLERANCE, report.max_abs_error
    exported = faceprior.load_restoration_model(report.path)
    assert exported.conventions == restorer.conventions
    for count in (1, 3):
        faces = _faces(count, size)
        with torch.no_grad():
            expected = restorer(faces)
        got = exported(faces)
        assert got.shape == expected.shape
        assert (got - expected).abs().max() < TOLERANCE
    # The faces of a batch are restored independently in the graph as in PyTorch.
    assert torch.allclose(exported(faces[1:2]), got[1:2], atol=TOLERANCE)


def test_psfrgan_graph_parses_the_faces_itself(tmp_path):
    """One input: the parser, its hard one-hot map and the generator are all in the graph."""
    import onnx

    restorer = tiny_restorer("psfrgan")
    report = export_restorer(restorer, tmp_path / "psfrgan.onnx")
    graph = onnx.load(report.path).graph
    assert [i.name for i in graph.input] == ["faces"]
    assert {"ReduceMax", "Equal"} <= {node.op_type for node in graph.node}  # hard one-hot
    # Spectral-normalised weights are stored once, as their eval value (no weight_orig copy).
    stored = sum(np.prod(t.dims, dtype=np.int64) for t in graph.initializer)
    stored += sum(
        np.prod(a.t.dims, dtype=np.int64)
        for node in graph.node
        if node.op_type == "Constant"
        for a in node.attribute
    )
    assert stored <= sum(p.numel() for p in restorer.parameters())
    assert not any("effective_weight" in vars(m) for m in restorer.modules())  # method again
    exported = faceprior.load_restoration_model(report.path)
    assert exported.baked_options() == {
        "parser": "psfrgan-parsenet",
        "parser_arguments": restorer.parser.arguments,
    }
    # A different parser changes the exported restorer: the map is computed, not traced in.
    torch.manual_seed(5)
    other = ParseNet(64, 64, 32, base_ch=8, parsing_ch=19, res_depth=1, ch_range=(8, 32))
    export_restorer(PSFRRestorer(restorer.network, other.eval()), tmp_path / "other.onnx")
    faces = _faces(2, 64)
    other_output = faceprior.load_restoration_model(tmp_path / "other.onnx")(faces)
    assert (other_output - exported(faces)).abs().max() > 1e-2


def test_panini_fidelity_is_baked_into_the_graph_and_recorded(tmp_path):
    faces = _faces(2, 64)
    outputs = {}
    for fidelity in (0.0, 1.0, None):
        restorer = tiny_restorer("panini-sr", RestorerOptions(fidelity=fidelity))
        path = export_restorer(restorer, tmp_path / f"sr-{fidelity}.onnx").path
        exported = faceprior.load_restoration_model(path)
        assert exported.baked_options() == {"fidelity": fidelity}
        outputs[fidelity] = exported(faces)
        with torch.no_grad():
            assert (outputs[fidelity] - restorer(faces)).abs().max() < TOLERANCE
    for fidelity in (0.0, 1.0):
        with pytest.raises(ValueError, match="fixed at export time"):
            faceprior.load_restoration_model(
                tmp_path / f"sr-{fidelity}.onnx", options=RestorerOptions(fidelity=fidelity)
            )
    assert (outputs[0.0] - outputs[1.0]).abs().max() > 1e-2
    assert (outputs[None] - outputs[1.0]).abs().max() > 1e-2


def test_export_options_choose_what_a_saved_model_bakes_in(tmp_path):
    torch.manual_seed(0)
    network = make_noise_matter(tiny_network("panini-sr")).eval()
    saved = faceprior.save_model(network, tmp_path / "sr.safetensors")
    faces = _faces(1, 64)
    outputs = []
    for fidelity in (0.1, 0.9):
        options = RestorerOptions(fidelity=fidelity)
        path = export_restorer(str(saved), tmp_path / f"{fidelity}.onnx", options=options).path
        exported = faceprior.load_restoration_model(path)
        assert exported.baked_options() == {"fidelity": fidelity}
        outputs.append(exported(faces))
    assert (outputs[0] - outputs[1]).abs().max() > 1e-2
    restorer = faceprior.load_restoration_model(saved)
    with pytest.raises(ValueError, match="holds its own"):
        export_restorer(restorer, tmp_path / "x.onnx", options=RestorerOptions(fidelity=0.5))


def test_export_leaves_the_pytorch_model_as_it_was(tmp_path):
    from faceprior.models.stylegan2.layers import ModulatedConv2d

    restorer = tiny_restorer("mmrb-gan")
    convs = [m for m in restorer.modules() if isinstance(m, ModulatedConv2d)]
    convs[0].grouped = True
    export_restorer(restorer, tmp_path / "m.onnx", check=False)
    assert convs[0].grouped is True and all(m.grouped is None for m in convs[1:])
