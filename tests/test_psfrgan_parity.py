"""PSFR-GAN parity with the official code at the official size (the only heavy PSFR tests).

Weights come from the parity packs; they are saved as an official-layout ``.pth`` and loaded
through ``faceprior.load_model``, so detection, strict loading and the forward are all checked
on the real checkpoint layout.
"""

from __future__ import annotations

import torch
from conftest import load_parity_pack

import faceprior
from faceprior.models.psfrgan import ParseNet, PSFRGenerator, hard_onehot


def _load_official(pack, tmp_path, cls):
    path = tmp_path / pack.meta["model"]["checkpoint"]
    torch.save(pack.torch_state_dict(), path)
    network = faceprior.load_model(path)
    assert isinstance(network, cls)
    assert list(network.state_dict()) == [key for key, _, _ in pack.meta["state_dict"]]
    assert sum(p.numel() for p in network.parameters()) == pack.meta["model"]["num_parameters"]
    return network


def test_parsenet_matches_official(tmp_path):
    pack = load_parity_pack("psfrgan-parsenet")
    network = _load_official(pack, tmp_path, ParseNet)
    assert network.arguments == pack.meta["model"]["constructor"]
    with torch.no_grad():
        logits, image = network(torch.from_numpy(pack.inputs["x"]))
    for name, value in (("logits", logits), ("image", image)):
        ok, max_err, _ = pack.check(name, value.numpy())
        assert ok, (name, max_err, pack.tol(name))
    # The one-hot map fed to the generator: no exact ties on real logits, so one class a pixel.
    onehot = hard_onehot(logits)
    assert torch.equal(onehot.sum(1), torch.ones_like(onehot[:, 0]))


def test_generator_matches_official(tmp_path):
    pack = load_parity_pack("psfrgan-generator")
    network = _load_official(pack, tmp_path, PSFRGenerator)
    official = pack.meta["model"]["constructor"]
    assert network.arguments == {
        key: official[key] for key in ("out_size", "min_feat_size", "parse_ch", "ch_range")
    }
    stored_u = network.head[0].weight_u.clone()
    with torch.no_grad():
        image = network(*(torch.from_numpy(pack.inputs[k]) for k in ("lq", "parse")))
    ok, max_err, _ = pack.check("image", image.numpy())
    assert ok, (max_err, pack.tol("image"))
    assert torch.equal(network.head[0].weight_u, stored_u)  # eval never iterates
