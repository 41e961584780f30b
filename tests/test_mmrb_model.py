"""MMRB-GAN reconstruction: the MMRB block, the asymmetric codec network, GPEN-MMRB and their
loading (registry detection, save/load round trips, official GPEN weights)."""

from __future__ import annotations

import pytest
import torch
from tiny_models import make_noise_matter

import faceprior
from faceprior.hub.checkpoint import CheckpointError
from faceprior.models.gpen import FullGenerator
from faceprior.models.mmrb import GPENMMRB, MMRB, MMRBGAN, PRESETS, load_gpen_weights
from faceprior.models.restorer import RestorationModel, RestorerOptions

TINY = dict(style_dim=32, n_mlp=2, channel_multiplier=1, narrow=0.03125)


def _seeded(factory, seed=0):
    torch.manual_seed(seed)
    return factory()


def _faces(size, count=2, seed=1):
    return torch.rand(count, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# -- the block ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        dict(paths=1),
        dict(paths=2),
        dict(dilations=(1, 1)),
        dict(dilations=(2, 3)),
        dict(attention=False),
        dict(residual_scale=0.5),
    ],
)
def test_each_mmrb_option_changes_the_output(options):
    x = _faces(16, seed=3).repeat(1, 4, 1, 1)  # 12 channels
    reference = _seeded(lambda: MMRB(12))(x)
    changed = _seeded(lambda: MMRB(12, **options))(x)
    assert changed.shape == reference.shape == x.shape
    assert not torch.allclose(changed, reference, atol=1e-5)


def test_learnable_residual_scale_trains_and_starts_as_identity():
    x = _faces(16, seed=3).repeat(1, 4, 1, 1)
    fixed = _seeded(lambda: MMRB(12, residual_scale=0.0))
    learnable = _seeded(lambda: MMRB(12, residual_scale=0.0, learnable_scale=True))
    assert torch.equal(learnable(x), x)  # ReZero start: exactly the input
    outputs = []
    for block in (fixed, learnable):
        block(x).square().mean().backward()
        with torch.no_grad():  # one plain SGD step
            for param in block.parameters():
                param -= 0.1 * param.grad
        outputs.append(block(x))
    assert torch.equal(outputs[0], x)  # a fixed beta of 0 never lets the paths in
    assert not torch.allclose(outputs[1], x, atol=1e-6)


def test_mmrb_rejects_bad_options():
    with pytest.raises(ValueError, match="paths"):
        MMRB(8, paths=4)
    with pytest.raises(ValueError, match="dilations"):
        MMRB(8, dilations=(0, 2))


# -- MMRB-GAN and GPEN-MMRB networks -----------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "size"), [("mmrb-gan", 8), ("mmrb-gan", 16), ("mmrb-gan", 32), ("gpen-mmrb", 16)]
)
def test_shapes_and_gradients(family, size):
    cls = MMRBGAN if family == "mmrb-gan" else GPENMMRB
    options = {} if family == "mmrb-gan" else dict(mmrb_residual_scale=0.2)
    network = make_noise_matter(_seeded(lambda: cls(size, **TINY, **options)))
    x = _faces(size).requires_grad_(True)
    image, latent = network(x, return_latents=True)
    assert image.shape == (2, 3, size, size) and latent.shape == (2, TINY["style_dim"])
    image.square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    blocks = [m for m in network.modules() if isinstance(m, MMRB)]
    assert blocks and all(b.fuse.weight.grad.abs().sum() > 0 for b in blocks)
    no_grad = [n for n, p in network.named_parameters() if p.grad is None]
    assert no_grad == []


@pytest.mark.parametrize(
    "options",
    [
        dict(encoder_blocks=[0, 0, 0]),
        dict(encoder_blocks=[2, 1, 1]),
        dict(mmrb_paths=1),
        dict(mmrb_dilations=(1, 1)),
        dict(mmrb_attention=False),
        dict(mmrb_residual_scale=0.5),
        dict(n_mlp=3),
        dict(style_dim=16),
        dict(narrow=0.0625),
    ],
)
def test_each_network_option_changes_the_output(options):
    x = _faces(16)
    arguments = dict(TINY, encoder_blocks=[1, 1, 1])
    reference = make_noise_matter(_seeded(lambda: MMRBGAN(16, **arguments)))(x)[0]
    changed = make_noise_matter(_seeded(lambda: MMRBGAN(16, **{**arguments, **options})))(x)[0]
    assert not torch.allclose(changed, reference, atol=1e-5)


def test_default_encoder_schedule_follows_the_spec():
    network = MMRBGAN(512, channel_multiplier=1, narrow=0.0625, style_dim=32, n_mlp=1)
    assert network.arguments["encoder_blocks"] == [1, 1, 2, 2, 2, 2, 2, 1]
    assert [len(level) for level in network.codec.levels] == [1, 1, 2, 2, 2, 2, 2, 1]


def test_gpen_mmrb_options_change_the_output():
    x = _faces(16)
    base = dict(TINY, mmrb_residual_scale=0.2)
    reference = make_noise_matter(_seeded(lambda: GPENMMRB(16, **base)))(x)[0]
    for options in (dict(mmrb_blocks=2), dict(mmrb_paths=2), dict(encoder_block="conv")):
        changed = make_noise_matter(_seeded(lambda o=options: GPENMMRB(16, **{**base, **o})))
        assert not torch.allclose(changed(x)[0], reference, atol=1e-5), options


def test_conv_encoder_block_is_exactly_gpen():
    plain = _seeded(lambda: FullGenerator(16, **TINY))
    switched = _seeded(lambda: GPENMMRB(16, **TINY, encoder_block="conv"))
    assert list(switched.state_dict()) == list(plain.state_dict())
    x = _faces(16)
    assert torch.allclose(switched(x)[0], plain(x)[0], rtol=0, atol=1e-5)  # 2-thread conv sums


def test_wrong_input_size_is_a_clear_error():
    network = MMRBGAN(16, **TINY)
    with pytest.raises(ValueError, match=r"expects \(B, 3, 16, 16\)"):
        network(_faces(32))


# -- loading: registry, round trips, restorer -------------------------------------------------


def _nondefault_networks():
    return [
        _seeded(
            lambda: MMRBGAN(
                16,
                **TINY,
                encoder_blocks=[2, 0, 1],
                mmrb_paths=2,
                mmrb_dilations=(2, 3),
                mmrb_attention=False,
                mmrb_residual_scale=0.3,
            )
        ),
        _seeded(lambda: GPENMMRB(16, **TINY, mmrb_blocks=2, mmrb_dilations=(3, 1))),
    ]


@pytest.mark.parametrize(("index", "suffix"), [(0, ".pth"), (1, ".pth"), (0, ".safetensors")])
def test_save_and_load_round_trip(tmp_path, index, suffix):
    network = make_noise_matter(_nondefault_networks()[index]).eval()
    path = tmp_path / f"net{suffix}"
    if suffix == ".pth":  # a raw state dict: the layout must be recognised from the tensors
        torch.save({"g_ema": network.state_dict()}, path)
    else:
        faceprior.save_model(network, path)
    loaded = faceprior.load_model(path)
    assert type(loaded) is type(network)
    assert loaded.conventions == network.conventions
    for key in ("encoder_blocks", "mmrb_blocks", "mmrb_paths", "mmrb_dilations", "mmrb_attention"):
        assert loaded.arguments.get(key) == network.arguments.get(key), key
    x = _faces(16)
    with torch.no_grad():
        assert torch.allclose(loaded(x)[0], network(x)[0], rtol=0, atol=1e-5)  # 2-thread conv sums


def test_presets_build():
    for name, arguments in PRESETS.items():
        if arguments["size"] <= 64:  # the full-size ones take seconds to initialise
            assert MMRBGAN(**arguments).conventions.architecture == "mmrb-gan", name


def test_restorer_wraps_both_architectures(tmp_path):
    for index, network in enumerate(_nondefault_networks()):
        path = faceprior.save_model(network, tmp_path / f"net{index}.safetensors")
        restorer = faceprior.load_restoration_model(path)
        assert isinstance(restorer, RestorationModel)
        with torch.no_grad():
            assert restorer(_faces(16)).shape == (2, 3, 16, 16)
        with pytest.raises(ValueError, match="fidelity"):
            faceprior.load_restoration_model(path, options=RestorerOptions(fidelity=0.5))


# -- official GPEN weights (parity pack gpen-bfr-256) -------------------------------------------


@pytest.fixture(scope="module")
def gpen_pack():
    from conftest import load_parity_pack

    return load_parity_pack("gpen-bfr-256")


def _pack_arguments(pack):
    constructor = pack.meta["model"]["constructor"]
    return {
        k: constructor[k] for k in ("size", "style_dim", "n_mlp", "channel_multiplier", "narrow")
    }


def test_gpen_mmrb_takes_every_gpen_weight_and_starts_as_gpen(gpen_pack):
    gpen_state = gpen_pack.torch_state_dict()
    network = GPENMMRB(**_pack_arguments(gpen_pack)).eval()
    own = network.state_dict()
    shared = [k for k in own if k.startswith(("generator.", "final_linear."))]
    assert shared == [k for k in gpen_state if k.startswith(("generator.", "final_linear."))]
    report = load_gpen_weights(network, gpen_state)
    mmrb_keys = [k for k in own if k.split(".")[1] != "0" and k.startswith("ecd")]
    assert list(report.not_loaded) == mmrb_keys and len(mmrb_keys) == 7 * 18
    assert report.not_used == ()
    loaded = network.state_dict()
    assert all(torch.equal(loaded[k], gpen_state[k]) for k in gpen_state)
    # Residual scales start at 0, so the network computes exactly GPEN's function.
    with torch.no_grad():
        image = network(gpen_pack.torch_inputs()["x"])[0]
    ok, error, _ = gpen_pack.check("image", image.numpy())
    assert ok, error


def test_mmrb_gan_takes_the_gpen_decoder_as_prior(gpen_pack):
    gpen_state = gpen_pack.torch_state_dict()
    network = MMRBGAN(**_pack_arguments(gpen_pack))
    report = load_gpen_weights(network, gpen_state)
    decoder = [k for k in gpen_state if k.startswith("generator.")]
    assert list(report.loaded) == decoder
    assert all(k.startswith("codec.") for k in report.not_loaded)
    assert set(report.not_used) == set(gpen_state) - set(decoder)
    loaded = network.state_dict()
    assert all(torch.equal(loaded[k], gpen_state[k]) for k in decoder)


def test_a_gpen_checkpoint_of_another_size_is_refused_untouched(gpen_pack):
    network = MMRBGAN(128, **TINY)
    before = {k: v.clone() for k, v in network.state_dict().items()}
    with pytest.raises(CheckpointError, match="shared part"):
        load_gpen_weights(network, gpen_pack.torch_state_dict())
    after = network.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
