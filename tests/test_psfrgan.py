"""PSFR-GAN networks at toy sizes: spectral norm, detection round trips, restorer, parsing."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import faceprior
from faceprior.api import load_restoration_model
from faceprior.hub.checkpoint import CheckpointError
from faceprior.models.psfrgan import (
    CLASS_NAMES,
    MASK_COLORMAP,
    MultiScaleDiscriminator,
    ParseNet,
    PSFRGenerator,
    PSFRRestorer,
    face_region_mask,
    hard_onehot,
    parse_faces,
    paste_back_mask,
)
from faceprior.models.psfrgan.detect import (
    detect_discriminator,
    detect_generator,
    detect_parsenet,
)
from faceprior.models.psfrgan.spectral import SpectralConv2d
from faceprior.models.registry import detect_architecture
from faceprior.models.restorer import RestorerOptions

pytestmark = pytest.mark.usefixtures("one_thread")


def small_parsenet(seed: int = 0) -> ParseNet:
    torch.manual_seed(seed)
    net = ParseNet(128, 128, 32, base_ch=8, parsing_ch=19, res_depth=2, ch_range=(8, 32))
    return net.eval()


def small_generator(seed: int = 0) -> PSFRGenerator:
    torch.manual_seed(seed)
    return PSFRGenerator(out_size=64, min_feat_size=16, parse_ch=19, ch_range=(16, 16)).eval()


def small_discriminator() -> MultiScaleDiscriminator:
    torch.manual_seed(0)
    return MultiScaleDiscriminator(22, base_channels=8, n_layers=2, num_scales=2, max_channels=32)


def faces(n: int = 2, size: int = 64) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1


# --- spectral norm -------------------------------------------------------------------------


def _torch_spectral_twin(conv: SpectralConv2d) -> torch.nn.Module:
    twin = torch.nn.utils.spectral_norm(torch.nn.Conv2d(4, 6, 3, padding=1))
    twin.load_state_dict(conv.state_dict(), strict=True)
    return twin


def test_spectral_conv_train_mode_matches_torch_power_iteration():
    torch.manual_seed(0)
    conv = SpectralConv2d(4, 6, 3, padding=1).train()
    with torch.no_grad():
        conv.weight_u.copy_(torch.nn.functional.normalize(torch.randn(6), dim=0))
    twin = _torch_spectral_twin(conv).train()
    x = torch.randn(2, 4, 8, 8)
    assert torch.allclose(conv(x), twin(x), atol=1e-6)
    assert torch.allclose(conv.weight_u, twin.weight_u, atol=1e-7)


def test_spectral_conv_eval_uses_stored_vectors_without_iterating():
    torch.manual_seed(0)
    conv = SpectralConv2d(4, 6, 3, padding=1).eval()
    u = torch.nn.functional.normalize(torch.randn(6), dim=0)
    v = torch.nn.functional.normalize(torch.randn(36), dim=0)
    with torch.no_grad():
        conv.weight_u.copy_(u)
        conv.weight_v.copy_(v)
    sigma = torch.dot(u, conv.weight_orig.reshape(6, -1) @ v)
    x = torch.randn(1, 4, 5, 5)
    expected = torch.nn.functional.conv2d(x, conv.weight_orig / sigma, conv.bias, padding=1)
    assert torch.allclose(conv(x), expected, atol=1e-5)
    assert torch.equal(conv.weight_u, u) and torch.equal(conv.weight_v, v)


def test_fresh_spectral_conv_starts_near_the_spectral_norm():
    conv = SpectralConv2d(16, 32, 3)
    exact = torch.linalg.matrix_norm(conv.weight_orig.reshape(32, -1), ord=2)
    assert 0.9 * exact < conv.sigma() <= exact * (1 + 1e-5)


# --- networks ------------------------------------------------------------------------------


def test_parsenet_returns_logits_then_image():
    logits, image = small_parsenet()(faces())
    assert logits.shape == (2, 19, 64, 64) and image.shape == (2, 3, 64, 64)


def test_generator_output_depends_on_lq_and_parse():
    gen = small_generator()
    lq = faces()
    parse = hard_onehot(torch.randn(2, 19, 64, 64))
    with torch.no_grad():
        out = gen(lq, parse)
        assert out.shape == (2, 3, 64, 64)
        assert not torch.allclose(out, gen(-lq, parse))
        assert not torch.allclose(out, gen(lq, parse.roll(1, dims=1)))


def test_generator_rejects_wrong_parse_channels():
    with pytest.raises(ValueError, match="19"):
        small_generator()(faces(1), torch.zeros(1, 18, 64, 64))


def test_hard_onehot_is_multi_hot_on_exact_ties():
    logits = torch.zeros(1, 19, 1, 2)
    logits[0, 3, 0, 0] = 1.0
    logits[0, 5, 0, 1] = logits[0, 7, 0, 1] = 2.0
    onehot = hard_onehot(logits)
    assert onehot[0, :, 0, 0].nonzero().flatten().tolist() == [3]
    assert onehot[0, :, 0, 1].nonzero().flatten().tolist() == [5, 7]


def test_multiscale_discriminator_shapes():
    outputs = small_discriminator()(torch.randn(2, 22, 128, 128))
    assert len(outputs) == 2
    (scores0, feats0), (scores1, feats1) = outputs
    assert scores0.shape == (2, 1, 30, 30) and scores1.shape == (2, 1, 14, 14)
    assert [tuple(f.shape[1:]) for f in feats0] == [(8, 128, 128), (16, 64, 64), (32, 32, 32)]
    assert [tuple(f.shape[1:]) for f in feats1] == [(8, 64, 64), (16, 32, 32), (32, 16, 16)]


def test_official_discriminator_parameter_count():
    disc = MultiScaleDiscriminator()
    assert sum(p.numel() for p in disc.parameters()) == 18_872_259


# --- detection and round trips -------------------------------------------------------------


@pytest.mark.parametrize(
    "make, inputs",
    [
        (small_parsenet, lambda: (faces(),)),
        (small_generator, lambda: (faces(), hard_onehot(torch.randn(2, 19, 64, 64)))),
        (small_discriminator, lambda: (torch.randn(1, 22, 64, 64),)),
    ],
)
def test_round_trip_official_pth_and_safetensors(tmp_path, make, inputs):
    network = make()
    args = inputs()
    with torch.no_grad():
        expected = network.eval()(*args)
    pth = tmp_path / "official.pth"
    torch.save(network.state_dict(), pth)
    for path in (pth, faceprior.save_model(network, tmp_path / "ours.safetensors")):
        loaded = faceprior.load_model(path)
        assert type(loaded) is type(network)
        assert loaded.arguments == network.arguments
        assert loaded.conventions == network.conventions
        assert list(loaded.state_dict()) == list(network.state_dict())
        with torch.no_grad():
            got = loaded(*args)
        assert torch.equal(torch.as_tensor(got[0][0] if isinstance(got, list) else got[0]),
                           torch.as_tensor(expected[0][0] if isinstance(expected, list)
                                           else expected[0]))  # fmt: skip


def test_dataparallel_prefix_is_stripped(tmp_path):
    network = small_parsenet()
    path = tmp_path / "dp.pth"
    torch.save({f"module.{k}": v for k, v in network.state_dict().items()}, path)
    found = detect_architecture(torch.load(path, weights_only=True))
    assert found is not None and found[0].name == "psfrgan-parsenet"


def _meta_state_dict(manifest) -> dict[str, torch.Tensor]:
    # Stride-0 views: the official shapes without allocating 67M parameters.
    return {key: torch.zeros(()).expand(shape) for key, shape, _ in manifest}


@pytest.mark.parametrize(
    "pack, detect, zoo_name",
    [
        ("psfrgan-generator", detect_generator, "psfrgan"),
        ("psfrgan-parsenet", detect_parsenet, "psfrgan-parsenet"),
    ],
)
def test_official_layout_is_detected_with_the_zoo_arguments(pack, detect, zoo_name):
    from conftest import shared_path

    from faceprior.hub.zoo import get_entry

    manifest = json.loads(shared_path(f"parity/{pack}/pack.json").read_text())["state_dict"]
    arguments = detect(_meta_state_dict(manifest))
    assert arguments == get_entry(zoo_name).arguments


def test_detectors_reject_other_layouts(tmp_path):
    gen = small_generator().state_dict()
    assert detect_parsenet(gen) is None and detect_discriminator(gen) is None
    assert detect_generator(small_parsenet().state_dict()) is None
    truncated = dict(gen)
    truncated.pop("body.1.2.conv_1.bias")
    torch.save(truncated, tmp_path / "truncated.pth")
    with pytest.raises(CheckpointError, match="body.1.2.conv_1.bias"):
        faceprior.load_model(tmp_path / "truncated.pth")


# --- restorer ------------------------------------------------------------------------------


def _saved(tmp_path, network, name):
    return faceprior.save_model(network, tmp_path / f"{name}.safetensors")


def test_restorer_batches_parser_and_generator(tmp_path):
    gen_path = _saved(tmp_path, small_generator(), "gen")
    parser_path = _saved(tmp_path, small_parsenet(), "parser")
    restorer = load_restoration_model(
        gen_path, options=RestorerOptions(parsing_model=str(parser_path))
    )
    assert isinstance(restorer, PSFRRestorer)
    assert restorer.conventions.template == "ffhq" and restorer.conventions.input_size == 64
    batch = faces(3)
    with torch.no_grad():
        out = restorer(batch)
        manual = restorer.network(batch, hard_onehot(restorer.parser(batch)[0]))
    assert out.shape == (3, 3, 64, 64)
    assert torch.equal(out, manual)


def test_restorer_parsing_model_option_changes_the_output(tmp_path):
    gen_path = _saved(tmp_path, small_generator(), "gen")
    outputs = []
    for seed in (0, 1):
        parser_path = _saved(tmp_path, small_parsenet(seed), f"parser{seed}")
        options = RestorerOptions(parsing_model=str(parser_path))
        with torch.no_grad():
            outputs.append(load_restoration_model(gen_path, options=options)(faces(1)))
    assert not torch.allclose(outputs[0], outputs[1])


def test_restorer_rejects_fidelity_and_non_parser(tmp_path):
    gen_path = _saved(tmp_path, small_generator(), "gen")
    with pytest.raises(ValueError, match="fidelity"):
        load_restoration_model(gen_path, options=RestorerOptions(fidelity=0.5))
    with pytest.raises(ValueError, match="ParseNet"):
        load_restoration_model(gen_path, options=RestorerOptions(parsing_model=str(gen_path)))


# --- parsing helpers -----------------------------------------------------------------------


def test_parse_faces_labels_and_visualisation():
    parser = small_parsenet()
    result = parse_faces(faces(2, 32), parser, size=64, with_legend=False)
    assert result.labels.shape == (2, 32, 32) and result.labels.dtype == torch.int64
    palette = np.asarray(MASK_COLORMAP, dtype=np.uint8)
    assert np.array_equal(result.visualisation, palette[result.labels.numpy()])
    with_legend = parse_faces(faces(2, 32), parser, size=64, with_legend=True)
    assert with_legend.visualisation.shape == (2, 32, 32 + 160, 3)
    assert np.array_equal(with_legend.visualisation[:, :, :32], result.visualisation)


def test_parse_faces_size_changes_the_network_resolution():
    parser = small_parsenet()
    at_64 = parse_faces(faces(1), parser, size=64, with_legend=False).labels
    at_128 = parse_faces(faces(1), parser, size=128, with_legend=False).labels
    assert at_64.shape == at_128.shape == (1, 64, 64)
    assert not torch.equal(at_64, at_128)


def test_face_region_mask_drops_background_hat_and_cloth():
    labels = torch.arange(19).view(1, 1, 19)
    mask = face_region_mask(labels)[0, 0]
    dropped = [CLASS_NAMES[i] for i in range(19) if mask[i] == 0]
    assert dropped == ["background", "hat", "cloth"]
    hard = paste_back_mask(faces(1), small_parsenet(), size=64)
    assert hard.shape == (1, 64, 64) and set(hard.unique().tolist()) <= {0.0, 1.0}
