"""FID: Frechet distance vs a direct SciPy computation, caching, and the Inception network."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import linalg

from faceprior.hub.checkpoint import CheckpointError
from faceprior.metrics.fid import (
    Statistics,
    cached_statistics,
    frechet_distance,
    load_statistics,
    statistics,
)
from faceprior.models.inception import (
    TF_INPUT_RANGE,
    FIDInceptionV3,
    InceptionA,
    InceptionE,
    load_fid_inception,
)


def _scipy_fid(mu1, s1, mu2, s2):
    covmean = linalg.sqrtm(s1 @ s2)
    covmean = covmean.real
    diff = mu1 - mu2
    return diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


@pytest.mark.parametrize("dim", [4, 32])
def test_frechet_distance_matches_scipy_sqrtm(dim):
    rng = np.random.default_rng(dim)
    a = rng.normal(size=(200, dim))
    b = rng.normal(size=(150, dim)) @ rng.normal(size=(dim, dim)) * 0.5 + 1.0
    sa, sb = statistics(a), statistics(b)
    np.testing.assert_allclose(sa.mu, a.mean(0))
    np.testing.assert_allclose(sa.sigma, np.cov(a, rowvar=False))
    want = _scipy_fid(sa.mu, sa.sigma, sb.mu, sb.sigma)
    assert frechet_distance(sa, sb) == pytest.approx(want, rel=1e-8)
    assert frechet_distance(sa, sa) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_stays_real_for_singular_covariances():
    # Fewer samples than dimensions: singular covariances, where sqrtm struggles.
    rng = np.random.default_rng(1)
    sa = statistics(rng.normal(size=(10, 64)))
    sb = statistics(rng.normal(size=(10, 64)) + 0.1)
    value = frechet_distance(sa, sb)
    assert np.isfinite(value) and value > 0


def test_statistics_are_cached_by_content(tmp_path):
    files = []
    for i in range(3):
        path = tmp_path / f"{i}.bin"
        path.write_bytes(bytes([i]) * (i + 1))
        files.append(path)
    calls = []

    def compute(paths):
        calls.append(len(paths))
        return np.arange(len(paths) * 2, dtype=float).reshape(len(paths), 2) ** 2

    cache = tmp_path / "cache"
    first = cached_statistics(files, compute, cache, {"weights": "a"})
    second = cached_statistics(files, compute, cache, {"weights": "a"})
    assert calls == [3]
    np.testing.assert_array_equal(first.sigma, second.sigma)
    cached_statistics(files, compute, cache, {"weights": "b"})
    assert calls == [3, 3]
    assert load_statistics(cache / "missing.npz") is None


def _basic(module, x, stride=1, padding=0):
    bn = module.bn
    y = F.conv2d(x, module.conv.weight, None, stride, padding)
    y = F.batch_norm(y, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, 0.001)
    return F.relu(y)


def _randomise_bn(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def test_inception_a_block_matches_functional_forward():
    torch.manual_seed(0)
    block = InceptionA(16, 8).eval()
    _randomise_bn(block)
    x = torch.randn(1, 16, 9, 9)
    pool = F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
    want = torch.cat(
        [
            _basic(block.branch1x1, x),
            _basic(block.branch5x5_2, _basic(block.branch5x5_1, x), padding=2),
            _basic(
                block.branch3x3dbl_3,
                _basic(block.branch3x3dbl_2, _basic(block.branch3x3dbl_1, x), padding=1),
                padding=1,
            ),
            _basic(block.branch_pool, pool),
        ],
        1,
    )
    torch.testing.assert_close(block(x), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("max_pool", [False, True])
def test_inception_e_block_matches_functional_forward(max_pool):
    torch.manual_seed(0)
    block = InceptionE(16, max_pool=max_pool).eval()
    _randomise_bn(block)
    x = torch.randn(1, 16, 5, 5)
    b3 = _basic(block.branch3x3_1, x)
    d3 = _basic(block.branch3x3dbl_2, _basic(block.branch3x3dbl_1, x), padding=1)
    pooled = (
        F.max_pool2d(x, 3, 1, 1) if max_pool else F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
    )
    want = torch.cat(
        [
            _basic(block.branch1x1, x),
            _basic(block.branch3x3_2a, b3, padding=(0, 1)),
            _basic(block.branch3x3_2b, b3, padding=(1, 0)),
            _basic(block.branch3x3dbl_3a, d3, padding=(0, 1)),
            _basic(block.branch3x3dbl_3b, d3, padding=(1, 0)),
            _basic(block.branch_pool, pooled),
        ],
        1,
    )
    torch.testing.assert_close(block(x), want, rtol=1e-5, atol=1e-5)


def test_inception_layout_stem_and_loading(tmp_path):
    torch.manual_seed(0)
    model = FIDInceptionV3(resize_input=False).eval()
    state = model.state_dict()
    params = sum(v.numel() for k, v in state.items() if "running" not in k and "num_b" not in k)
    assert params == 21_785_568  # torchvision Inception3 minus fc and AuxLogits
    assert "Mixed_7c.branch3x3dbl_3b.bn.running_var" in state
    # The stem by hand from [0, 1] input, and the whole net's output at a small size.
    x = torch.rand(1, 3, 75, 75)
    with torch.no_grad():
        y = _basic(model.Conv2d_1a_3x3, 2 * x - 1, stride=2)
        y = _basic(model.Conv2d_2b_3x3, _basic(model.Conv2d_2a_3x3, y), padding=1)
        stem = model.Conv2d_2b_3x3(model.Conv2d_2a_3x3(model.Conv2d_1a_3x3(model.prepare(x))))
        torch.testing.assert_close(stem, y)
        features = model(x)
    assert features.shape == (1, 2048) and torch.all(features >= 0)
    # A pt_inception-style file with the 1008-way fc loads; one without Mixed_7c does not.
    full = dict(state, **{"fc.weight": torch.zeros(1008, 2048), "fc.bias": torch.zeros(1008)})
    torch.save(full, tmp_path / "pt_inception.pth")
    loaded = load_fid_inception(tmp_path / "pt_inception.pth", resize_input=False)
    assert all(torch.equal(value, state[key]) for key, value in loaded.state_dict().items())
    stem_only = {k: v for k, v in state.items() if k.startswith("Conv2d_1a")}
    torch.save(stem_only, tmp_path / "broken.pth")
    with pytest.raises(CheckpointError, match="missing keys: Conv2d_2a"):
        load_fid_inception(tmp_path / "broken.pth")


def test_inception_resize_option_changes_input():
    model = FIDInceptionV3(resize_input=True)
    x = torch.rand(1, 3, 80, 80)
    want = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False) * 2 - 1
    torch.testing.assert_close(model.prepare(x), want)
    model.resize_input = False
    torch.testing.assert_close(model.prepare(x), 2 * x - 1)
    tf = FIDInceptionV3(resize_input=False, input_range=TF_INPUT_RANGE)
    torch.testing.assert_close(tf.prepare(x), (x * 255 - 128) / 128)


def test_statistics_rejects_too_few_vectors():
    with pytest.raises(ValueError, match="at least 2"):
        statistics(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="differ"):
        frechet_distance(
            Statistics(np.zeros(2), np.eye(2), 2), Statistics(np.zeros(3), np.eye(3), 2)
        )
