"""Degradation recipes and ``faceprior degrade``: reproducibility, ranges, measured effects."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
from conftest import shared_path

from faceprior.data.degradations import PRESETS, build_degradation, ops

SIZE = 96


def _face(seed: int = 0, size: int = SIZE) -> np.ndarray:
    """Smooth colour field with sharp-edged shapes: both low and high frequencies."""
    rng = np.random.default_rng(seed)
    image = cv2.resize(rng.random((8, 8, 3)).astype(np.float32), (size, size), cv2.INTER_CUBIC)
    image[size // 4 : size // 2, size // 5 : size // 2] = (0.9, 0.2, 0.1)
    cv2.circle(image, (size * 2 // 3, size * 2 // 3), size // 6, (0.1, 0.8, 0.3), -1)
    return np.clip(image, 0.0, 1.0)


def _run(preset: str, seed=(7, 3), image=None, **knobs):
    image = _face() if image is None else image
    return build_degradation(preset, **knobs)(image, np.random.default_rng(list(seed)))


def _hf_energy(image: np.ndarray) -> float:
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float64)
    return float(np.mean(cv2.Laplacian(gray, cv2.CV_64F) ** 2))


def _blockiness(image: np.ndarray) -> float:
    """Mean jump across 8x8 block borders over the mean jump inside blocks (1 = no blocking)."""
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float64)
    jumps = np.abs(np.diff(gray, axis=1)).mean(axis=0)  # jump between column j and j+1
    border = (np.arange(jumps.size) % 8) == 7
    return float(jumps[border].mean() / jumps[~border].mean())


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_same_seed_and_index_give_identical_bytes(preset):
    lq_a, hq_a, params_a = _run(preset, seed=(7, 3))
    lq_b, hq_b, params_b = _run(preset, seed=(7, 3))
    assert lq_a.tobytes() == lq_b.tobytes() and hq_a.tobytes() == hq_b.tobytes()
    assert params_a == params_b
    assert json.loads(json.dumps(params_a)) == params_a


@pytest.mark.parametrize("preset", ["gpen", "psfrgan", "panini-mfr"])
def test_different_index_gives_different_degradation(preset):
    outputs = {_run(preset, seed=(7, index))[0].tobytes() for index in range(4)}
    assert len(outputs) == 4


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_drawn_parameters_replay_exactly(preset):
    degradation = build_degradation(preset)
    image = _face(1)
    for index in range(3):
        lq, hq, params = degradation(image, np.random.default_rng([1, index]))
        lq_again, hq_again = degradation.apply(image, json.loads(json.dumps(params)))
        assert np.array_equal(lq, lq_again) and np.array_equal(hq, hq_again)


@pytest.mark.parametrize(
    ("preset", "lq_side"), [("gpen", 96), ("psfrgan", 96), ("panini-mfr", 48), ("panini-sr16", 6)]
)
def test_output_shapes_types_and_range(preset, lq_side):
    image = _face()
    lq, hq, _ = _run(preset, image=image)
    assert lq.shape == (lq_side, lq_side, 3) and lq.dtype == np.float32
    assert hq.shape == image.shape and hq.dtype == np.float32
    assert lq.min() >= 0.0 and lq.max() <= 1.0
    assert build_degradation(preset).lq_shape(SIZE, SIZE) == (lq_side, lq_side)


def test_gpen_parameters_stay_in_range():
    degradation = build_degradation("gpen")
    draws = [degradation.sample(np.random.default_rng([0, i])) for i in range(400)]
    for p in draws:
        blur = p["blur"]
        assert 0.1 <= blur["sigma_x"] <= 10 and 0.1 <= blur["sigma_y"] <= 10
        assert -np.pi <= blur["theta"] <= np.pi
        assert 0.8 <= p["downsample"] <= 8 and 0 <= p["noise_sigma"] <= 20
        assert isinstance(p["jpeg_quality"], int) and 60 <= p["jpeg_quality"] <= 100
    assert {p["blur"]["kind"] for p in draws} == {"iso", "aniso"}
    assert 0.13 < np.mean([p["gray"] for p in draws]) < 0.27
    assert 0.42 < np.mean([p["flip"] for p in draws]) < 0.58


def test_log_downsampling_gives_each_octave_the_same_share():
    """Uniform draws over [0.5, 4.5] put a quarter below 1.5; log draws put half below the
    geometric middle 1.5 (sqrt(0.5 * 4.5)), as faces spread over octaves of size."""
    shares = {}
    for sampling in ("uniform", "log"):
        degradation = build_degradation(
            "gpen", downsample_range=(0.5, 4.5), downsample_sampling=sampling
        )
        rngs = (np.random.default_rng([1, i]) for i in range(2000))
        draws = [degradation.sample(rng)["downsample"] for rng in rngs]
        assert 0.5 <= min(draws) and max(draws) <= 4.5
        shares[sampling] = np.mean(np.array(draws) < 1.5)
    assert 0.22 < shares["uniform"] < 0.28
    assert 0.46 < shares["log"] < 0.54


def test_psfrgan_parameters_stay_in_range():
    degradation = build_degradation("psfrgan")
    draws = [degradation.sample(np.random.default_rng([0, i])) for i in range(400)]
    blurs = [p["blur"] for p in draws if p["blur"] is not None]
    assert {b["kind"] for b in blurs} == {"gaussian", "average", "median", "motion"}
    for b in blurs:
        if b["kind"] == "gaussian":
            assert 3 <= b["sigma"] <= 15
        elif b["kind"] == "median":
            assert b["kernel"] % 2 == 1 and 3 <= b["kernel"] <= 15
        elif b["kind"] == "average":
            assert 3 <= b["kernel"] <= 15
        else:
            assert 5 <= b["kernel"] <= 25 and -1 <= b["direction"] <= 1
    assert all(32 <= p["scale_size"] <= 255 for p in draws)
    qualities = [p["jpeg_quality"] for p in draws if p["jpeg_quality"] is not None]
    assert all(37 <= q <= 90 for q in qualities)
    noises = [p["noise"] for p in draws if p["noise"] is not None]
    assert all(0 <= n["sigma"] <= 25.5 for n in noises)
    assert 0.40 < len(blurs) / 400 < 0.60
    assert 0.13 < len(noises) / 400 < 0.27
    assert 0.62 < len(qualities) / 400 < 0.78
    assert 0.23 < np.mean([p["gray"] for p in draws]) < 0.37


def test_panini_mfr_parameters_stay_in_range():
    degradation = build_degradation("panini-mfr")
    for i in range(300):
        p = degradation.sample(np.random.default_rng([0, i]))
        assert 0.2 <= p["sigma"] <= 10 and 1 <= p["downsample"] <= 8
        assert 0 <= p["noise_sigma"] <= 15 and 60 <= p["jpeg_quality"] <= 100


def _gpen_params(**overrides):
    params = {
        "flip": False,
        "gray": False,
        "blur": {"kind": "iso", "sigma_x": 0.1, "sigma_y": 0.1, "theta": 0.0},
        "downsample": 1.0,
        "noise_sigma": 0.0,
        "noise_seed": 0,
        "jpeg_quality": 100,
    }
    return {**params, **overrides}


def test_more_blur_means_less_high_frequency_energy():
    degradation, image = build_degradation("gpen"), _face()
    energies = []
    for sigma in (0.5, 1.0, 2.0, 4.0):
        blur = {"kind": "iso", "sigma_x": sigma, "sigma_y": sigma, "theta": 0.0}
        energies.append(_hf_energy(degradation.apply(image, _gpen_params(blur=blur))[0]))
    assert energies == sorted(energies, reverse=True) and len(set(energies)) == 4
    assert energies[0] > 5 * energies[2]  # below ~1e-4 8-bit quantisation noise dominates


def test_more_downsampling_means_less_high_frequency_energy():
    degradation, image = build_degradation("gpen"), _face()
    energies = [
        _hf_energy(degradation.apply(image, _gpen_params(downsample=factor))[0])
        for factor in (1.0, 2.0, 6.0)
    ]
    assert energies[0] > energies[1] > energies[2]


def test_lower_jpeg_quality_means_more_8x8_blocking():
    degradation, image = build_degradation("gpen"), _face(2, size=128)
    blocking = [
        _blockiness(degradation.apply(image, _gpen_params(jpeg_quality=q))[0]) for q in (95, 40, 10)
    ]
    assert blocking[0] < 1.3 < blocking[1] < blocking[2]


def test_noise_sigma_sets_the_noise_level():
    flat = np.full((64, 64, 3), 0.5, dtype=np.float32)
    for sigma in (5.0, 15.0):
        measured = np.std(ops.gaussian_noise(flat, sigma, seed=0)) * 255
        assert abs(measured - sigma) < 0.05 * sigma
    degradation, image = build_degradation("gpen"), _face()
    clean = degradation.apply(image, _gpen_params())[0]
    residuals = [
        np.std(degradation.apply(image, _gpen_params(noise_sigma=sigma))[0] - clean)
        for sigma in (2.0, 8.0, 20.0)
    ]
    assert residuals == sorted(residuals) and residuals[0] > 0


@pytest.mark.parametrize("preset", ["gpen", "psfrgan"])
def test_grayscale_gives_equal_channels_in_lq_and_hq(preset):
    # noise off: like the official recipes, noise on a greyed face is drawn per channel
    knobs = {"noise_range": (0.0, 0.0)} if preset == "gpen" else {"noise_prob": 0.0}
    lq, hq, params = _run(preset, gray_prob=1.0, **knobs)
    assert params["gray"]
    assert np.array_equal(hq[..., 0], hq[..., 1]) and np.array_equal(hq[..., 1], hq[..., 2])
    assert np.abs(lq - lq[..., :1]).max() <= 1.5 / 255  # JPEG colour-conversion rounding only
    colour = _run(preset, gray_prob=0.0, **knobs)[0]
    assert np.abs(colour - colour[..., :1]).max() > 0.1


def test_flip_mirrors_hq():
    image = _face()
    _, hq, params = _run("gpen", flip_prob=1.0, gray_prob=0.0)
    assert params["flip"] and np.array_equal(hq, image[:, ::-1])


def test_psfrgan_runs_at_its_reference_size_for_other_inputs():
    image = _face(size=64)
    lq, hq, _ = _run(
        "psfrgan", image=image, blur_prob=0.0, noise_prob=0.0, jpeg_prob=0.0, scale_range=(256, 256)
    )
    # a 2x shrink at 512 is mild at 64 px: close to the input, not identical
    assert lq.shape == image.shape and 0 < np.abs(lq - image).mean() < 0.03


def _first_seed_with_kind(kind: str) -> tuple[int, int]:
    degradation = build_degradation("psfrgan", blur_prob=1.0)
    for index in range(100):
        if degradation.sample(np.random.default_rng([0, index]))["blur"]["kind"] == kind:
            return (0, index)
    raise AssertionError(f"no {kind} draw")


KNOBS = [
    ("gpen", "kernel_size", 3, 41, {"sigma_range": (5.0, 5.0)}),
    ("gpen", "sigma_range", (0.5, 0.5), (5.0, 5.0), {}),
    ("gpen", "iso_prob", 0.0, 1.0, {}),
    ("gpen", "downsample_range", (1.0, 1.0), (4.0, 4.0), {}),
    ("gpen", "downsample_sampling", "uniform", "log", {"downsample_range": (1.0, 8.0)}),
    ("gpen", "noise_range", (0.0, 0.0), (20.0, 20.0), {}),
    ("gpen", "jpeg_range", (20, 20), (95, 95), {}),
    ("gpen", "gray_prob", 0.0, 1.0, {}),
    ("gpen", "flip_prob", 0.0, 1.0, {}),
    ("gpen", "upsample", "linear", "cubic", {"downsample_range": (4.0, 4.0)}),
    ("psfrgan", "reference_size", 512, 256, {}),
    ("psfrgan", "gray_prob", 0.0, 1.0, {}),
    ("psfrgan", "blur_prob", 0.0, 1.0, {}),
    ("psfrgan", "gaussian_sigma_range", (3.0, 3.0), (12.0, 12.0), {"blur_prob": 1.0}),
    ("psfrgan", "average_kernel_range", (3, 3), (13, 13), {"blur_prob": 1.0}),
    ("psfrgan", "median_kernel_range", (3, 3), (13, 13), {"blur_prob": 1.0}),
    ("psfrgan", "motion_kernel_range", (5, 5), (25, 25), {"blur_prob": 1.0}),
    ("psfrgan", "scale_range", (32, 32), (200, 200), {}),
    ("psfrgan", "noise_prob", 0.0, 1.0, {}),
    ("psfrgan", "noise_range", (0.0, 0.0), (25.0, 25.0), {"noise_prob": 1.0}),
    ("psfrgan", "jpeg_prob", 0.0, 1.0, {}),
    ("psfrgan", "compression_range", (10, 10), (60, 60), {"jpeg_prob": 1.0}),
    ("panini-mfr", "scale", 2, 4, {}),
    ("panini-mfr", "reference_size", 512, 128, {}),
    ("panini-mfr", "kernel_size", 3, 41, {"sigma_range": (5.0, 5.0)}),
    ("panini-mfr", "sigma_range", (0.5, 0.5), (5.0, 5.0), {}),
    ("panini-mfr", "downsample_range", (1.0, 1.0), (4.0, 4.0), {}),
    ("panini-mfr", "noise_range", (0.0, 0.0), (15.0, 15.0), {}),
    ("panini-mfr", "jpeg_range", (20, 20), (95, 95), {}),
    ("panini-mfr", "flip_prob", 0.0, 1.0, {}),
    ("panini-sr16", "scale", 16, 8, {}),
    ("panini-sr16", "flip_prob", 0.0, 1.0, {}),
    ("photo", "sigma", 0.5, 2.5, {}),
    ("photo", "downscale", 2.0, 4.0, {}),
    ("photo", "noise_sigma", 0.0, 5.0, {}),
    ("photo", "jpeg_quality", 60, 95, {}),
    ("photo", "upsample", "cubic", "linear", {}),
]


@pytest.mark.parametrize(("preset", "knob", "a", "b", "fixed"), KNOBS, ids=lambda v: str(v))
def test_every_knob_changes_the_output(preset, knob, a, b, fixed):
    seed = (7, 3)
    kind = knob.split("_")[0]
    if preset == "psfrgan" and kind in ("gaussian", "average", "median", "motion"):
        seed = _first_seed_with_kind(kind)
    lq_a = _run(preset, seed=seed, **fixed, **{knob: a})[0]
    lq_b = _run(preset, seed=seed, **fixed, **{knob: b})[0]
    assert lq_a.shape != lq_b.shape or not np.array_equal(lq_a, lq_b)


def test_every_knob_is_covered_by_the_knob_test():
    import dataclasses

    for preset, cls in PRESETS.items():
        fields = {f.name for f in dataclasses.fields(cls)}
        assert fields == {knob for p, knob, *_ in KNOBS if p == preset}


def test_bad_presets_knobs_and_inputs_are_refused():
    with pytest.raises(ValueError, match="unknown degradation preset"):
        build_degradation("gfpgan-v9")
    with pytest.raises(TypeError):
        build_degradation("gpen", sigma=3)
    with pytest.raises(ValueError, match="sigma_range"):
        build_degradation("gpen", sigma_range=(5, 1))
    with pytest.raises(ValueError, match="probability"):
        build_degradation("psfrgan", gray_prob=1.5)
    with pytest.raises(ValueError, match="upsample"):
        build_degradation("gpen", upsample="lanczos9")
    with pytest.raises(ValueError, match="downsample_sampling"):
        build_degradation("gpen", downsample_sampling="normal")
    assert build_degradation("gpen", sigma_range=[1, 2]).sigma_range == (1, 2)
    degradation, rng = build_degradation("gpen"), np.random.default_rng(0)
    with pytest.raises(ValueError, match="float32"):
        degradation((_face() * 255).astype(np.uint8), rng)
    with pytest.raises(ValueError, match="HxWx3"):
        degradation(_face()[..., 0], rng)


def test_bicubic_upsample_replays_the_same_draws():
    """Only the resize back differs: the same face, seed and parameters, bicubic at the end."""
    bilinear, bicubic = build_degradation("gpen"), build_degradation("gpen", upsample="cubic")
    lq_a, hq_a, params_a = bilinear(_face(), np.random.default_rng(5))
    lq_b, hq_b, params_b = bicubic(_face(), np.random.default_rng(5))
    assert params_a == params_b and np.array_equal(hq_a, hq_b)
    assert not np.array_equal(lq_a, lq_b)
    assert np.abs(lq_a - lq_b).mean() < 0.02  # the same degradation, brought back differently


def test_antialiased_resize_matches_pillow_bilinear():
    from PIL import Image

    image = np.random.default_rng(0).random((90, 70, 3)).astype(np.float32)
    pixels = ops.to_uint8(image)
    for width, height in ((35, 45), (9, 11), (140, 100)):
        ours = ops.to_uint8(ops.resize_antialiased(pixels.astype(np.float32) / 255, width, height))
        pillow = np.stack(
            [
                np.asarray(Image.fromarray(pixels[..., c]).resize((width, height), Image.BILINEAR))
                for c in range(3)
            ],
            axis=-1,
        )
        assert np.abs(ours.astype(int) - pillow).max() <= 1


def test_panini_sr16_reproduces_the_official_64px_inputs():
    folder = shared_path("data/pairs/panini")
    degradation = build_degradation("panini-sr16")
    psnrs = []
    for gt_path in sorted((folder / "GT").glob("*.jpg")):
        gt = cv2.imread(str(gt_path)).astype(np.float32) / 255
        official = cv2.imread(str(folder / "SR" / f"{gt_path.stem}.png")).astype(np.float64)
        lq, _ = degradation.apply(gt, {"flip": False})
        error = np.mean((ops.to_uint8(lq).astype(np.float64) - official) ** 2)
        psnrs.append(10 * np.log10(255**2 / error))
    assert len(psnrs) == 10 and min(psnrs) > 49 and np.mean(psnrs) > 53


# --- the CLI -------------------------------------------------------------------------------


def _degrade(*argv: str) -> int:
    """Runs `faceprior degrade` through the CLI's error boundary, as a user would."""
    from faceprior.cli import main

    return main(["degrade", *(str(a) for a in argv)])


def test_degrade_is_registered():
    from faceprior import cli

    assert "degrade" in cli.COMMANDS


def test_degrade_cli_writes_pairs_and_manifest(tmp_path):
    hq_dir = shared_path("data/hq")
    out = tmp_path / "bench"
    assert _degrade(hq_dir, "-o", out, "--limit", "3", "--size", "64", "--seed", "5") == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["items"]) == 3 and manifest["degradation"]["preset"] == "gpen"
    assert manifest["seed"] == 5 and manifest["size"] == 64
    for item in manifest["items"]:
        lq, hq = cv2.imread(str(out / item["lq"])), cv2.imread(str(out / item["hq"]))
        assert lq.shape == hq.shape == (64, 64, 3)
        assert (hq_dir / item["source"]).is_file() and "jpeg_quality" in item["params"]
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no temp files left

    again = tmp_path / "again"
    assert _degrade(hq_dir, "-o", again, "--limit", "3", "--size", "64", "--seed", "5") == 0
    for item in manifest["items"]:
        assert (out / item["lq"]).read_bytes() == (again / item["lq"]).read_bytes()


def test_degrade_cli_sr_preset_writes_small_lq(tmp_path):
    out = tmp_path / "sr"
    hq_dir = shared_path("data/hq")
    assert (
        _degrade(hq_dir, "-o", out, "--limit", "1", "--size", "64", "--preset", "panini-sr16") == 0
    )
    item = json.loads((out / "manifest.json").read_text())["items"][0]
    assert cv2.imread(str(out / item["lq"])).shape == (4, 4, 3)
    assert _degrade(hq_dir, "-o", tmp_path / "x", "--size", "100", "--preset", "panini-sr16") == 2
    assert _degrade(hq_dir, "-o", tmp_path / "x", "--limit", "0") == 2
    assert not (tmp_path / "x").exists()


def test_degrade_cli_refuses_to_write_into_the_input_folder(tmp_path, capsys):
    faces = tmp_path / "faces"
    faces.mkdir()
    for path in sorted(shared_path("data/hq").glob("*.jpg"))[:3]:
        shutil.copy(path, faces / path.name)
    before = {p.name: p.read_bytes() for p in faces.iterdir()}
    assert _degrade(faces, "-o", faces, "--size", "32") == 2
    assert _degrade(faces, "-o", faces / "out", "--size", "32") == 2
    assert "input folder" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in faces.iterdir()} == before
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    assert _degrade(faces, "-o", busy, "--size", "32") == 2
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]


def test_photo_preset_degrades_every_face_the_same_way():
    """The evaluation preset draws nothing that matters without noise, and a stronger
    downscale loses more of the face."""
    image = _face(2)
    first = build_degradation("photo")(image, np.random.default_rng(0))[0]
    again = build_degradation("photo")(image, np.random.default_rng(99))[0]
    assert np.array_equal(first, again) and first.shape == image.shape
    error = {
        d: np.abs(
            build_degradation("photo", downscale=d)(image, np.random.default_rng(0))[0] - image
        ).mean()
        for d in (2.0, 4.0, 8.0)
    }
    assert error[2.0] < error[4.0] < error[8.0]
    with pytest.raises(ValueError, match="jpeg_quality"):
        build_degradation("photo", jpeg_quality=0)
