"""Does the default restore help every face it touches? Previous vs default, per photo kind.

Runs a bundled model (--model, default the offline default gpen-offline-128-v5; the only
restoration weights these machines have) through the pipeline twice per photo: ``previous``
(GPEN's soft rectangle, no colour transfer, grey photos restored in colour, faces pasted
upsampled) and ``default`` (face-shaped mask, wavelet
colour transfer, grey in luminance only, the photo's detail kept where sharper). On
degraded/ground-truth pairs it also compares the colour transfers (none, lab, adain, wavelet)
under the default mask. Kinds:

- ``small degraded``: ../shared/data/hq faces (512 px) blurred (sigma 1.2), shrunk 4x and
  JPEG-compressed (q 60), restored with upscale 4; scored against the 512-px ground truth.
- ``large sharp``: the same ground-truth faces as input (the face spans 2-3x the model's
  128 px): sharpness (variance of the Laplacian) in the face, identity with the input.
- ``grey`` / ``sepia``: the degraded faces made R = G = B, or toned sepia: colourfulness of
  the output (Hasler-Suesstrunk) and how far its chroma exceeds the input's.
- ``flat wall``: a ground-truth face on a flat blue wall (elliptic cut-out, feathered):
  colour error (Lab Delta E) of the wall inside the previous paste rectangle.

Faces tuned on (TUNE, the first 40 ``alae_*`` files) are never scored; the held-out faces are
every third file after them (HELD). Results: benchmarks/results/do_no_harm.{json,md}.

    .venv/bin/python benchmarks/do_no_harm.py [--faces 24]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, SHARED, machine, markdown_table, save  # noqa: E402

HQ = SHARED / "data" / "hq"
TUNE = 40  # first alae_* files: used while choosing the defaults, never scored here
PREVIOUS = dict(mask="rectangle", color_match="none", keep_grey=False, keep_detail=False)
COLOR_CHOICES = ("none", "lab", "adain", "wavelet")


def held_out(count: int) -> list[Path]:
    files = sorted(HQ.glob("*.jpg"))
    return files[TUNE::3][:count]


def read_rgb(path: Path) -> np.ndarray:
    return cv2.imread(str(path))[..., ::-1].copy()


def degrade(gt: np.ndarray) -> np.ndarray:
    """Blur sigma 1.2, shrink 4x (area), JPEG q 60: the issue's degradation."""
    blurred = cv2.GaussianBlur(gt, (0, 0), 1.2)
    small = cv2.resize(blurred, (gt.shape[1] // 4, gt.shape[0] // 4), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", small[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 60])
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1].copy()


def sepia(rgb: np.ndarray) -> np.ndarray:
    grey = rgb.astype(np.float32) @ np.float32([0.299, 0.587, 0.114])
    toned = grey[..., None] * np.float32([1.0, 0.93, 0.8]) + np.float32([10, 6, 0])
    return np.clip(np.rint(toned), 0, 255).astype(np.uint8)


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler and Suesstrunk's colourfulness (0 for a grey image)."""
    r, g, b = (rgb[..., c].astype(np.float64) for c in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def chroma(rgb: np.ndarray) -> np.ndarray:
    values = rgb.astype(np.int32)
    return values.max(axis=2) - values.min(axis=2)


def face_region(size: int) -> tuple[slice, slice]:
    """The inner face of an FFHQ-aligned square (eyes to chin, cheek to cheek)."""
    return slice(int(0.35 * size), int(0.85 * size)), slice(int(0.3 * size), int(0.7 * size))


def laplacian_variance(rgb: np.ndarray) -> float:
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(cv2.Laplacian(grey, cv2.CV_32F).var())


def mean_lab_error(a: np.ndarray, b: np.ndarray) -> float:
    """Delta E (CIE76) between the mean Lab colours of two images."""
    lab = [
        cv2.cvtColor(x.astype(np.float32) / 255, cv2.COLOR_RGB2Lab).reshape(-1, 3) for x in (a, b)
    ]
    return float(np.linalg.norm(lab[0].mean(axis=0) - lab[1].mean(axis=0)))


class Scorer:
    """PSNR / SSIM / ST-LPIPS / dlib identity, on uint8 RGB images."""

    def __init__(self) -> None:
        import torch

        from faceprior.metrics.identity_dlib import load_dlib_identity
        from faceprior.metrics.lpips import load_stlpips
        from faceprior.metrics.weights import locate

        self.torch = torch
        self.lpips = load_stlpips("alex", locate("stlpips-alex")).eval()
        self.identity = load_dlib_identity()

    def pair(self, out: np.ndarray, gt: np.ndarray) -> dict[str, float]:
        from faceprior.metrics.psnr_ssim import psnr, ssim

        torch = self.torch
        with torch.inference_mode():
            a, b = (
                torch.from_numpy(x).permute(2, 0, 1)[None].float() / 127.5 - 1 for x in (out, gt)
            )
            distance = float(self.lpips(a, b)[0])
        return {
            "psnr": psnr(out, gt),
            "ssim": ssim(out, gt),
            "st_lpips": distance,
            "id_gt": self.identity.score(out.astype(np.float64), gt.astype(np.float64))["ids_dlib"],
        }

    def id_input(self, out: np.ndarray, photo: np.ndarray) -> float:
        return self.identity.score(out.astype(np.float64), photo.astype(np.float64))["ids_dlib"]


def restorers(detector, model: str):
    from faceprior.pipeline import FaceRestorer

    common = dict(detector=detector)
    made = {
        "previous": FaceRestorer(model, **common, **PREVIOUS),
        "default": FaceRestorer(model, **common),
    }
    for choice in COLOR_CHOICES:
        made[f"color={choice}"] = FaceRestorer(model, **common, color_match=choice)
    return made


def run(restorer, photo: np.ndarray, upscale: float, detections, timings: list) -> np.ndarray:
    restorer.upscale = upscale
    result = restorer.restore(photo, detections=detections)
    timings.append(result.timings)
    return result.image


def summarise(rows: list[dict], keys: list[str]) -> dict:
    return {k: round(statistics.mean(r[k] for r in rows), 4) for k in keys if rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=24, help="held-out faces per kind")
    parser.add_argument("--model", default="gpen-offline-128-v5", help="bundled model to run")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    from faceprior.face.detection import load_detector

    detector = load_detector("retinaface-mobilenet0.25")
    made = restorers(detector, args.model)
    scorer = Scorer()
    files = held_out(args.faces)
    per_kind: dict[str, dict[str, list[dict]]] = {}
    timings: dict[str, list] = {name: [] for name in made}
    missed = 0
    start = time.perf_counter()

    def record(kind: str, config: str, row: dict) -> None:
        per_kind.setdefault(kind, {}).setdefault(config, []).append(row)

    wall = np.zeros((768, 768, 3), np.uint8)
    wall[:] = (70, 110, 190)
    for path in files:
        gt = read_rgb(path)
        low = degrade(gt)
        detections = detector.detect(
            np.ascontiguousarray(cv2.resize(low, None, fx=4, fy=4)[..., ::-1])
        )
        detections = [type(d)(d.box / 4, d.score, d.landmarks / 4) for d in detections[:1]]
        if not detections:
            missed += 1
            continue
        bicubic = cv2.resize(low, (512, 512), interpolation=cv2.INTER_CUBIC)
        record(
            "small degraded",
            "bicubic",
            {
                **scorer.pair(bicubic, gt),
                "delta_e": mean_lab_error(bicubic[face_region(512)], gt[face_region(512)]),
            },
        )
        for name, restorer in made.items():
            out = run(restorer, low, 4.0, detections, timings[name])
            region = face_region(512)
            row = {**scorer.pair(out, gt), "delta_e": mean_lab_error(out[region], gt[region])}
            record("small degraded", name, row)
        # Large sharp: the ground truth itself is the photo.
        found = detector.detect(np.ascontiguousarray(gt[..., ::-1]))[:1]
        if found:
            region = face_region(512)
            for name in ("previous", "default"):
                out = run(made[name], gt, 1.0, found, timings[name])
                record(
                    "large sharp",
                    name,
                    {
                        "sharpness_ratio": laplacian_variance(out[region])
                        / laplacian_variance(gt[region]),
                        "id_input": scorer.id_input(out, gt),
                    },
                )
        # Grey and sepia versions of the degraded face.
        grey = np.repeat(cv2.cvtColor(low, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
        for kind, photo in (("grey", grey), ("sepia", sepia(low))):
            upscaled = cv2.resize(photo, (512, 512), interpolation=cv2.INTER_LANCZOS4)
            for name in ("previous", "default"):
                out = run(made[name], photo, 4.0, detections, timings[name])
                excess = np.maximum(chroma(out) - chroma(upscaled), 0)
                record(
                    kind,
                    name,
                    {
                        "colourfulness": colourfulness(out),
                        "input_colourfulness": colourfulness(upscaled),
                        "max_chroma_excess": float(excess.max()),
                        "exactly_grey": float(np.ptp(out.astype(int), axis=2).max() == 0),
                    },
                )
        # Flat wall: the ground-truth face cut out (soft ellipse) on a flat blue wall.
        scene = wall.copy().astype(np.float32)
        yy, xx = np.mgrid[:512, :512]
        inside = ((xx - 256) / 150.0) ** 2 + ((yy - 300) / 215.0) ** 2
        alpha = np.clip((1.0 - inside) / 0.1, 0, 1)[..., None]
        scene[128:640, 128:640] = alpha * gt + (1 - alpha) * scene[128:640, 128:640]
        scene = np.clip(np.rint(scene), 0, 255).astype(np.uint8)
        found = detector.detect(np.ascontiguousarray(scene[..., ::-1]))[:1]
        if found:
            wall_only = np.zeros(scene.shape[:2], bool)
            wall_only[128:640, 128:640] = alpha[..., 0] == 0
            wall_lab = cv2.cvtColor(wall[:1, :1].astype(np.float32) / 255, cv2.COLOR_RGB2Lab)[0, 0]
            for name in ("previous", "default", "color=lab"):
                out = run(made[name], scene, 1.0, found, timings[name])
                lab = cv2.cvtColor(out.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
                error = np.linalg.norm(lab[wall_only] - wall_lab, axis=1)
                record(
                    "flat wall",
                    name,
                    {
                        "wall_delta_e_mean": float(error.mean()),
                        "wall_delta_e_max": float(error.max()),
                    },
                )
    elapsed = time.perf_counter() - start
    tables = {}
    for kind, configs in per_kind.items():
        tables[kind] = [
            {"config": name, "n": len(rows), **summarise(rows, list(rows[0]))}
            for name, rows in configs.items()
        ]
    step_times = {}
    for name in ("previous", "default"):
        runs = timings[name]
        step_times[name] = {
            stage: round(1000 * statistics.mean(t.get(stage, 0.0) for t in runs), 2)
            for stage in ("restore", "mask", "paste", "colour")
        }
    record_out = {
        "benchmark": "do_no_harm",
        "model": args.model,
        "held_out_faces": [p.name for p in files],
        "missed_detections": missed,
        "tables": tables,
        "step_ms": step_times,
        "elapsed_s": round(elapsed, 1),
        "machine": machine(),
    }
    save("do_no_harm", record_out)
    lines = [f"# Do no harm: previous vs default pipeline ({args.model})", ""]
    lines.append(
        f"{len(files)} held-out faces ({missed} not detected), {elapsed:.0f} s on "
        f"{record_out['machine']['cpu']} ({record_out['machine']['cores']} cores)."
    )
    for kind, rows in tables.items():
        lines += ["", f"## {kind}", "", markdown_table(rows)]
    lines += [
        "",
        "## time per photo (ms; restore is the model)",
        "",
        markdown_table([{"config": k, **v} for k, v in step_times.items()]),
    ]
    (RESULTS / "do_no_harm.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
