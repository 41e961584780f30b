"""Video restoration: temporal stability, quality, speed and memory, frame-by-frame vs stabilised.

Test clips are made from real photos in ../shared with a known camera motion (so the clean
frame, the true landmarks and the motion between frames are known exactly), degraded afresh
every frame (2x downscale, Gaussian noise, JPEG 45: an old tape) and encoded as H.264:

- ``static``: one face, still camera (only the degradation changes);
- ``pan``: one face, pan + zoom + rotation of the camera;
- ``multi``: three faces, slow pan and zoom;
- ``enter``: a wide pan across two faces, which enter and leave the frame;
- ``cut``: ``static`` then a cut to ``pan``.

Each clip is restored by :func:`faceprior.video.restore_video` with ``stabilize=False``
(every frame on its own, as a photo) and ``True`` (tracks, One-Euro landmarks, temporal
blending), with the bundled gpen-offline-128 and RetinaFace. Measured per face and frame, in
the face's FFHQ-aligned crop warped with the *true* landmarks (which compensates the known
motion): the mean absolute change between consecutive frames (``flicker``, 0-255; the
clean frames' value is the floor from resampling alone), PSNR against the clean frame and
MobileFaceNet identity cosine against it; and the landmarks the pipeline aligned with against
the truth (``lm_error`` px, ``lm_jitter``: error of the frame-to-frame motion, px).

``--memory`` restores the ``pan`` clip at several lengths, each in a fresh process, and
reports frames per second and peak resident memory (which must stay flat).

``--network`` times the network stage alone on 8 prepared frames: their faces restored a
frame at a time (batch 1) or together (:func:`faceprior.video.batching.restore_together`,
batch 4), alternately.

``--speed`` restores clips with faces batched across frames or not (``batch_size`` and
``batch_frames``), the settings interleaved over ``--rounds`` so that a shared machine's load
falls on all alike; it reports frames per second, the network's seconds per face and the
largest difference between the outputs (batching must not change them).

    python benchmarks/video.py --clips static pan multi enter cut --frames 48
    python benchmarks/video.py --memory --lengths 25 50 100 200
    python benchmarks/video.py --speed --clips static multi --frames 12 --rounds 2
    python benchmarks/video.py --network --clips static multi --rounds 7
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import machine, markdown_table, peak_rss_mb, save  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"
DETECTOR = SHARED / "data/weights/retinaface_mobilenet0.25_Final.pth"
IDENTITY = SHARED / "data/weights/mobilefacenet_casia_068.ckpt"
FACES = SHARED / "data/faces"
RATE = 25


class Scene:
    """A still photo filmed by a moving camera: ``motion(t)`` maps photo to frame pixels."""

    def __init__(self, photo: str, width: int, size: tuple[int, int], motion) -> None:
        rgb = cv2.imread(str(FACES / photo))[..., ::-1]
        scale = width / rgb.shape[1]
        self.photo = np.ascontiguousarray(
            cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        )
        self.size = size
        self.motion = motion
        self.faces = _true_landmarks(self.photo)

    def frame(self, t: float) -> tuple[np.ndarray, list[np.ndarray]]:
        """The clean frame at time ``t`` (0..1) and the true landmarks of its faces."""
        matrix = self.motion(t)
        clean = cv2.warpAffine(self.photo, matrix, self.size, flags=cv2.INTER_CUBIC)
        faces = [points @ matrix[:, :2].T + matrix[:, 2] for points in self.faces]
        return clean, faces


def camera(center, zoom=1.0, angle=0.0, shift=(0.0, 0.0), frame_center=(0.0, 0.0)):
    """Photo -> frame: rotate/zoom about ``center`` of the photo, put it at the frame centre."""
    matrix = cv2.getRotationMatrix2D(tuple(map(float, center)), angle, zoom)
    matrix[:, 2] += np.array(frame_center) - np.array(center) + np.array(shift)
    return matrix


def scenes() -> dict[str, Scene]:
    def still(t):
        return camera((96, 120), frame_center=(96, 120))

    def pan(t):
        wave = np.sin(2 * np.pi * t)
        return camera(
            (105, 120),
            zoom=1.0 + 0.2 * t,
            angle=4 * wave,
            shift=(14 * wave, 6 * np.cos(2 * np.pi * t)),
            frame_center=(96, 120),
        )

    def multi(t):
        return camera(
            (160, 66), zoom=1.0 + 0.1 * t, shift=(10 * np.sin(np.pi * t), 0), frame_center=(160, 66)
        )

    def across(t):
        return camera((200, 133), shift=(260 * (0.5 - t), 0), frame_center=(100, 80))

    return {
        "static": Scene("landmarks5/000002.jpg", 192, (192, 240), still),
        "pan": Scene("whole/facexlib/test.jpg", 210, (192, 240), pan),
        "multi": Scene("whole/PSFRGAN_test_dir/test_hzgg.jpg", 320, (320, 132), multi),
        "enter": Scene("whole/GFPGAN_whole_imgs/Blake_Lively.jpg", 400, (200, 160), across),
    }


def _true_landmarks(photo: np.ndarray) -> list[np.ndarray]:
    """RetinaFace's landmarks on the clean photo (the truth the motion then carries)."""
    from faceprior.face.detection import load_detector

    detector = load_detector("retinaface-mobilenet0.25", weights=DETECTOR)
    return [d.landmarks for d in detector.detect(np.ascontiguousarray(photo[..., ::-1]))]


def degrade(clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    height, width = clean.shape[:2]
    small = cv2.resize(clean, (width // 2, height // 2), interpolation=cv2.INTER_AREA)
    small = np.clip(small + rng.normal(0, 5, small.shape), 0, 255).astype(np.uint8)
    _, data = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 45])
    return cv2.resize(cv2.imdecode(data, 1), (width, height), interpolation=cv2.INTER_CUBIC)


def build_clip(name: str, frames: int, folder: Path):
    """Write the degraded clip; returns its path, clean frames' generator and true faces."""
    import av

    all_scenes = scenes()
    if name == "cut":
        parts = [(all_scenes["static"], frames // 2), (all_scenes["pan"], frames - frames // 2)]
    else:
        parts = [(all_scenes[name], frames)]
    rng = np.random.default_rng(0)
    truth = []
    path = folder / f"{name}-{frames}.mp4"
    with av.open(str(path), "w") as container:
        stream = None
        for scene, count in parts:
            for index in range(count):
                clean, faces = scene.frame(index / max(count - 1, 1))
                truth.append(faces)
                if stream is None:
                    stream = container.add_stream("libx264", rate=RATE)
                    stream.width, stream.height = scene.size
                    stream.pix_fmt, stream.options = "yuv420p", {"crf": "12"}
                frame = av.VideoFrame.from_ndarray(degrade(clean, rng), format="rgb24")
                container.mux(stream.encode(frame))
        container.mux(stream.encode())

    def clean_frames():
        for scene, count in parts:
            for index in range(count):
                yield scene.frame(index / max(count - 1, 1))[0]

    return path, clean_frames, truth


def read_frames(path: Path):
    import av

    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")


class Recorder:
    """Wraps a FaceRestorer to record, per frame, the landmarks it aligned the faces with."""

    def __init__(self, restorer) -> None:
        self.used: list[list[np.ndarray]] = []
        self._prepare = restorer.prepare
        restorer.prepare = self.prepare  # restore() calls it too

    def prepare(self, image, detections=None):
        prepared = self._prepare(image, detections)
        self.used.append([d.landmarks for d in prepared.detections])
        return prepared


def visible(points: np.ndarray, size: tuple[int, int], margin: float = 4) -> bool:
    return bool(
        (points[:, 0] > margin).all()
        and (points[:, 1] > margin).all()
        and (points[:, 0] < size[0] - margin).all()
        and (points[:, 1] < size[1] - margin).all()
    )


def measure(outputs, cleans, inputs, truth, used, scorer) -> dict:
    """Flicker, PSNR, identity and landmark error/jitter over every visible face."""
    from faceprior.face.align import align_face

    flicker, flicker_clean, flicker_input, psnr, ids = [], [], [], [], []
    lm_error, lm_jitter = [], []
    previous = None
    center = slice(32, 96)  # the inner face of a 128-px FFHQ crop (eyes to chin)
    for index, (output, clean, degraded) in enumerate(zip(outputs, cleans, inputs, strict=True)):
        size = (output.shape[1], output.shape[0])
        current = {}
        for face_index, points in enumerate(truth[index]):
            if not visible(points, size):
                continue
            crops = [
                align_face(img, points, "ffhq", 128)[0].astype(np.float64)
                for img in (output, clean, degraded)
            ]
            current[face_index] = (crops, points)
            error = np.mean((crops[0][center, center] - crops[1][center, center]) ** 2)
            psnr.append(10 * np.log10(255**2 / max(error, 1e-10)))
            if scorer is not None:
                big = [align_face(img, points, "ffhq", 256)[0] for img in (output, clean)]
                ids.append(scorer.score(*big)["ids"])
            near = [u for u in used[index] if np.abs(u - points).mean() < 20]
            if near:
                best = min(near, key=lambda u: np.abs(u - points).mean())
                lm_error.append(float(np.linalg.norm(best - points, axis=1).mean()))
                if previous and face_index in previous and len(previous[face_index]) == 3:
                    _, old_points, old_best = previous[face_index]
                    drift = (best - old_best) - (points - old_points)
                    lm_jitter.append(float(np.linalg.norm(drift, axis=1).mean()))
                current[face_index] = (crops, points, best)
            if previous and face_index in previous:
                old = previous[face_index][0]
                for store, k in ((flicker, 0), (flicker_clean, 1), (flicker_input, 2)):
                    store.append(np.abs(crops[k][center, center] - old[k][center, center]).mean())
        previous = current

    def mean(values):
        return round(float(np.mean(values)), 3) if values else None

    return {
        "flicker": mean(flicker),
        "flicker_clean": mean(flicker_clean),
        "flicker_input": mean(flicker_input),
        "psnr": mean(psnr),
        "identity": mean(ids),
        "lm_error": mean(lm_error),
        "lm_jitter": mean(lm_jitter),
        "face_frames": len(psnr),
    }


def run_clip(name: str, frames: int, folder: Path, scorer, settings) -> list[dict]:
    """Restore the clip with each (keep_detail, stabilize, steady_detail) of ``settings``."""
    from faceprior.pipeline import FaceRestorer
    from faceprior.video import restore_video

    path, clean_frames, truth = build_clip(name, frames, folder)
    rows = []
    for keep_detail, stabilize, steady in settings:
        restorer = FaceRestorer(
            "gpen-offline-128", detector_weights=DETECTOR, keep_detail=keep_detail
        )
        recorder = Recorder(restorer)
        target = folder / f"{name}-{stabilize}.mp4"
        report = restore_video(
            restorer, path, target, stabilize=stabilize, steady_detail=steady, reuse_repeats=False
        )
        scores = measure(
            list(read_frames(target)),
            list(clean_frames()),
            list(read_frames(path)),
            truth,
            recorder.used,
            scorer,
        )
        rows.append(
            {
                "clip": name,
                "frames": report.frames,
                "mode": "stabilised" if stabilize else "frame-by-frame",
                "keep_detail": keep_detail,
                "steady_detail": steady if stabilize and keep_detail else None,
                **scores,
                "tracks": report.tracks,
                "cuts": report.scene_cuts,
                "bridged": report.bridged,
                "fps": round(report.fps, 2),
            }
        )
        save_frames(f"{name}-detail{int(keep_detail)}{'-steady' * steady}", stabilize, target, path)
    return rows


def save_frames(name: str, stabilize: bool, target: Path, source: Path) -> None:
    """Three consecutive frames (input above, output below) as a PNG for looking at."""
    picks = (10, 11, 12)
    inputs = [f for i, f in enumerate(read_frames(source)) if i in picks]
    outputs = [f for i, f in enumerate(read_frames(target)) if i in picks]
    sheet = np.vstack([np.hstack(inputs), np.hstack(outputs)])
    folder = Path(tempfile.gettempdir()) / "faceprior-video-bench"
    folder.mkdir(exist_ok=True)
    cv2.imwrite(
        str(folder / f"{name}-{'stable' if stabilize else 'baseline'}.png"), sheet[..., ::-1]
    )


def memory_run(path: str) -> None:
    """Child process: restore one clip, print fps and peak RSS as JSON."""
    from faceprior.pipeline import FaceRestorer
    from faceprior.video import restore_video

    warnings.simplefilter("ignore")
    restorer = FaceRestorer("gpen-offline-128", detector_weights=DETECTOR)
    before = peak_rss_mb()
    report = restore_video(restorer, path, path.replace(".mp4", "-out.mp4"))
    print(
        json.dumps(
            {
                "frames": report.frames,
                "fps": report.fps,
                "peak_rss_mb": peak_rss_mb(),
                "rss_before_mb": before,
            }
        )
    )


class NetworkClock:
    """Wraps a FaceRestorer to add up the seconds of its network stage and the faces it ran."""

    def __init__(self, restorer) -> None:
        self.seconds = 0.0
        self.faces = 0
        self._restore_crops = restorer.restore_crops
        restorer.restore_crops = self.restore_crops

    def restore_crops(self, prepared):
        start = time.perf_counter()
        restored = self._restore_crops(prepared)
        self.seconds += time.perf_counter() - start
        self.faces += sum(len(batch.indices) for batch in prepared.batches)
        return restored


SPEED_SETTINGS = ((1, 1), (4, 1), (4, 4))  # (batch_size, batch_frames)


def network_runs(name: str, frames: int, rounds: int, folder: Path) -> list[dict]:
    """The network stage alone: the faces of ``frames`` prepared frames restored a frame at a
    time (batch 1) or all together (batch 4), alternately ``rounds`` times; median seconds."""
    from faceprior.pipeline import FaceRestorer
    from faceprior.video.batching import restore_together

    path, _, _ = build_clip(name, frames, folder)
    restorers = {
        size: FaceRestorer("gpen-offline-128", detector_weights=DETECTOR, batch_size=size)
        for size in (1, 4)
    }
    prepared = {size: [r.prepare(f) for f in read_frames(path)] for size, r in restorers.items()}
    faces = sum(len(b.indices) for photo in prepared[1] for b in photo.batches)
    restorers[1].restore_crops(prepared[1][0])  # first-use costs
    seconds = {"frame by frame": [], "together": []}
    for _ in range(rounds):
        start = time.perf_counter()
        for photo in prepared[1]:
            restorers[1].restore_crops(photo)
        seconds["frame by frame"].append(time.perf_counter() - start)
        start = time.perf_counter()
        restore_together(restorers[4], prepared[4])
        seconds["together"].append(time.perf_counter() - start)
    base = float(np.median(seconds["frame by frame"]))
    return [
        {
            "clip": name,
            "frames": frames,
            "faces": faces,
            "network": mode,
            "batch_size": 1 if mode == "frame by frame" else 4,
            "seconds": round(float(np.median(runs)), 3),
            "seconds_runs": [round(value, 3) for value in runs],
            "s_per_face": round(float(np.median(runs)) / faces, 4),
            "speed_vs_frame_by_frame": round(base / float(np.median(runs)), 3),
        }
        for mode, runs in seconds.items()
    ]


def speed_runs(clips: list[str], frames: int, rounds: int, folder: Path) -> list[dict]:
    """fps and network time per face for each (batch_size, batch_frames), interleaved."""
    from faceprior.pipeline import FaceRestorer
    from faceprior.video import restore_video

    rows = []
    for name in clips:
        path, _, _ = build_clip(name, frames, folder)
        runs: dict[tuple[int, int], list] = {setting: [] for setting in SPEED_SETTINGS}
        outputs = {}
        warm_up = FaceRestorer("gpen-offline-128", detector_weights=DETECTOR)
        restore_video(warm_up, path, folder / f"{name}-warm-up.mkv")  # first-use costs
        for _ in range(rounds):
            for batch_size, batch_frames in SPEED_SETTINGS:
                restorer = FaceRestorer(
                    "gpen-offline-128", detector_weights=DETECTOR, batch_size=batch_size
                )
                clock = NetworkClock(restorer)
                target = folder / f"{name}-speed-{batch_size}-{batch_frames}.mkv"
                report = restore_video(
                    restorer, path, target, batch_frames=batch_frames, reuse_repeats=False, crf=0
                )
                runs[(batch_size, batch_frames)].append((report.fps, clock.seconds / clock.faces))
                outputs[(batch_size, batch_frames)] = np.stack(list(read_frames(target)))
                print(name, batch_size, batch_frames, runs[(batch_size, batch_frames)][-1])
        reference = outputs[SPEED_SETTINGS[0]].astype(np.int16)
        base_fps = float(np.median([fps for fps, _ in runs[SPEED_SETTINGS[0]]]))
        for (batch_size, batch_frames), measured in runs.items():
            fps = float(np.median([fps for fps, _ in measured]))
            difference = np.abs(outputs[(batch_size, batch_frames)] - reference)
            rows.append(
                {
                    "clip": name,
                    "frames": frames,
                    "batch_size": batch_size,
                    "batch_frames": batch_frames,
                    "fps": round(fps, 3),
                    "fps_runs": [round(fps, 3) for fps, _ in measured],
                    "fps_vs_unbatched": round(fps / base_fps, 3),
                    "network_s_per_face": round(
                        float(np.median([face for _, face in measured])), 4
                    ),
                    "max_difference": int(difference.max()),
                    "mean_difference": round(float(difference.mean()), 4),
                }
            )
    return rows


def _settings() -> dict:
    """The stabiliser's defaults this run used (they are what the benchmark tunes)."""
    from dataclasses import asdict

    from faceprior.video.temporal import BlendSettings
    from faceprior.video.tracking import TrackerSettings

    return {"tracker": asdict(TrackerSettings()), "blend": asdict(BlendSettings())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", nargs="+", default=["static", "pan", "multi", "enter", "cut"])
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--memory", action="store_true", help="fps and peak RSS vs length")
    parser.add_argument("--lengths", nargs="+", type=int, default=[25, 50, 100, 200])
    parser.add_argument("--no-identity", action="store_true", help="skip the identity metric")
    parser.add_argument(
        "--without-detail",
        action="store_true",
        help="also restore with keep_detail=False (the photo's own detail, noise included, "
        "is not brought back)",
    )
    parser.add_argument(
        "--without-steady-detail",
        action="store_true",
        help="also restore stabilised with steady_detail=False (keep_detail takes each frame's "
        "own detail, as before the time-averaged detail source)",
    )
    parser.add_argument(
        "--speed", action="store_true", help="fps with faces batched across frames or not"
    )
    parser.add_argument(
        "--network",
        action="store_true",
        help="the network stage alone: 8 frames' faces a frame at a time or together",
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="--speed, --network: runs of each setting"
    )
    parser.add_argument("--memory-run", help=argparse.SUPPRESS)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    if args.memory_run:
        memory_run(args.memory_run)
        return 0
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        if args.memory:
            rows = []
            for length in args.lengths:
                path, _, _ = build_clip("pan", length, folder)
                start = time.perf_counter()
                out = subprocess.run(
                    [sys.executable, __file__, "--memory-run", str(path)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                result = json.loads(out.stdout.strip().splitlines()[-1])
                rows.append(
                    {
                        "frames": length,
                        "fps": round(result["fps"], 2),
                        "peak_rss_mb": round(result["peak_rss_mb"], 1),
                        "rss_after_load_mb": round(result["rss_before_mb"], 1),
                        "wall_s": round(time.perf_counter() - start, 1),
                    }
                )
                print(rows[-1], flush=True)
            save("video", {"machine": machine(), "kind": "memory", "rows": rows})
            print(markdown_table(rows))
            return 0
        if args.speed:
            rows = speed_runs(args.clips, args.frames, args.rounds, folder)
            save("video", {"machine": machine(), "kind": "speed", "rows": rows})
            print(markdown_table(rows))
            return 0
        if args.network:
            rows = [r for name in args.clips for r in network_runs(name, 8, args.rounds, folder)]
            save("video", {"machine": machine(), "kind": "network", "rows": rows})
            print(markdown_table(rows))
            return 0
        scorer = None
        if not args.no_identity:
            from faceprior.metrics.identity import IdentityScorer
            from faceprior.models.mobilefacenet import load_mobilefacenet

            scorer = IdentityScorer(load_mobilefacenet(IDENTITY))
        rows = []
        settings = [(True, False, True), (True, True, True)]
        if args.without_steady_detail:
            settings += [(True, True, False)]
        if args.without_detail:
            settings += [(False, False, True), (False, True, True)]
        for name in args.clips:
            for row in run_clip(name, args.frames, folder, scorer, settings):
                rows.append(row)
                print(row, flush=True)
        save(
            "video",
            {"machine": machine(), "kind": "stability", "settings": _settings(), "rows": rows},
        )
        print(markdown_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
