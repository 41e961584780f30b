"""FID: the Frechet distance between Gaussians fitted to Inception-v3 pool features.

Features are those of :class:`faceprior.models.inception.FIDInceptionV3` (pytorch-fid's
convention: RGB in [0, 1], bilinear resize to 299, user-supplied ``pt_inception-2015-12-05``
weights). The statistics of a reference folder are cached in a ``.npz`` keyed by the file
names, sizes and modification times, the weight file and the resize setting, so a benchmark
against the same ground truth computes them once. The distance uses the symmetric form
``tr sqrt(S1 S2) = tr sqrt(sqrt(S1) S2 sqrt(S1))`` evaluated with eigen-decompositions of
symmetric matrices: real and non-negative by construction, where ``scipy.linalg.sqrtm`` of the
non-symmetric product can return complex values and needs an epsilon retry.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError


@dataclass(frozen=True)
class Statistics:
    """Mean (D,) and covariance (D, D) of N feature vectors."""

    mu: np.ndarray
    sigma: np.ndarray
    count: int


def statistics(features: np.ndarray) -> Statistics:
    """Mean and unbiased covariance (``np.cov`` with rowvar=False), as the FID references use."""
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise InputError(f"need at least 2 feature vectors (N, D), got shape {features.shape}")
    return Statistics(features.mean(0), np.cov(features, rowvar=False), features.shape[0])


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (negative rounding clipped)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(a: Statistics, b: Statistics) -> float:
    """``|mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr sqrt(S_a S_b)``."""
    if a.mu.shape != b.mu.shape:
        raise InputError(f"FID feature sizes differ: {a.mu.shape} vs {b.mu.shape}")
    root_a = _sqrt_psd(a.sigma)
    inner = root_a @ b.sigma @ root_a
    values = np.linalg.eigvalsh((inner + inner.T) / 2)
    trace_sqrt = float(np.sqrt(np.clip(values, 0, None)).sum())
    diff = a.mu - b.mu
    return float(diff @ diff + np.trace(a.sigma) + np.trace(b.sigma) - 2 * trace_sqrt)


def folder_key(files: Sequence[Path], extra: dict) -> str:
    """Hash of what the statistics depend on: the files (name, size, mtime) and ``extra``."""
    digest = hashlib.sha256()
    for path in sorted(files):
        stat = path.stat()
        digest.update(f"{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    digest.update(json.dumps(extra, sort_keys=True).encode())
    return digest.hexdigest()[:24]


def save_statistics(path: Path, stats: Statistics, key: str) -> None:
    """Write ``.npz`` atomically (temporary name in the same folder, then rename)."""
    import io

    from ..io.images import atomic_write_bytes

    buffer = io.BytesIO()
    np.savez(buffer, mu=stats.mu, sigma=stats.sigma, count=stats.count, key=key)
    atomic_write_bytes(path, buffer.getvalue())


def load_statistics(path: Path, key: str | None = None) -> Statistics | None:
    """Cached statistics, or ``None`` when absent or computed from different inputs."""
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        if key is not None and str(data["key"]) != key:
            return None
        return Statistics(data["mu"], data["sigma"], int(data["count"]))


def cached_statistics(
    files: Sequence[Path],
    compute: Callable[[Sequence[Path]], np.ndarray],
    cache_dir: Path,
    extra: dict,
) -> Statistics:
    """Statistics of ``files``' features, read from / written to ``cache_dir`` by content key."""
    key = folder_key(files, extra)
    path = Path(cache_dir) / f"fid-stats-{key}.npz"
    cached = load_statistics(path, key)
    if cached is not None:
        return cached
    stats = statistics(compute(files))
    save_statistics(path, stats, key)
    return stats


def weights_identity(path: str | os.PathLike) -> dict:
    """What identifies a weight file for the cache key, without hashing hundreds of MB."""
    stat = Path(path).stat()
    return {"weights": Path(path).name, "size": stat.st_size, "mtime": stat.st_mtime_ns}
