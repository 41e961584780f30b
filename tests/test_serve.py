"""`faceprior serve` through the ASGI test client: every endpoint and every refusal.

One app (one worker process, the bundled 128-px model) serves the whole module; its limits are
set small so that each one can be hit cheaply.
"""

from __future__ import annotations

import argparse
import base64
import os
import signal
import time
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest
from conftest import BUNDLED_MODELS, shared_path
from fastapi.testclient import TestClient
from serve_helpers import (
    FACE_PHOTO,
    GROUP_PHOTO,
    decoded,
    fast_settings,
    png_bytes,
)

from faceprior.cli import COMMANDS
from faceprior.commands import serve as serve_command
from faceprior.pipeline import FaceRestorer
from faceprior.serve import ServeSettings, SettingsError, create_app
from faceprior.serve.jobs import FINISHED
from faceprior.serve.options import (
    NAME_FIELDS,
    OUTPUT_FIELDS,
    SERVER_ONLY,
    OptionError,
    option_specs,
    parse_options,
)

MAX_UPLOAD = 2 * 1024 * 1024
MAX_PIXELS = 1_000_000
MAX_VIDEO_SECONDS = 1.5


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FACEPRIOR_HOME", str(tmp_path_factory.mktemp("serve-home")))
        settings = fast_settings(
            queue_size=1,
            max_upload_bytes=MAX_UPLOAD,
            max_pixels=MAX_PIXELS,
            max_files=16,
            max_video_seconds=MAX_VIDEO_SECONDS,
            keep_jobs=3,
            jobs_dir=tmp_path_factory.mktemp("jobs"),
        )
        with TestClient(create_app(settings)) as client:
            yield client


@pytest.fixture(scope="module")
def group_jpeg() -> bytes:
    return shared_path(GROUP_PHOTO).read_bytes()


@pytest.fixture(scope="module")
def face_jpeg() -> bytes:
    return shared_path(FACE_PHOTO).read_bytes()


def _wait_for(client, job_id: str, statuses=("done", "failed", "cancelled"), timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in statuses:
            return job
        assert job["status"] not in FINISHED, job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job['status']} after {timeout} s")


def test_health_models_metrics(client):
    assert client.get("/health").json() == {"status": "ok", "queued": 0}
    catalogue = client.get("/v1/models").json()
    assert catalogue["default"] == "gpen-offline-128"
    models = {m["name"]: m for m in catalogue["models"]}
    assert {name for name, m in models.items() if m["available"]} == set(BUNDLED_MODELS)
    assert models["gpen-offline-128"]["bundled"] and not models["gpen-bfr-512"]["cached"]
    assert catalogue["limits"]["max_pixels"] == MAX_PIXELS
    metrics = client.get("/metrics").json()
    # The worker holds torch and the model (hundreds of MB); the server's own size depends on
    # what the test process has loaded before, so only its presence is checked.
    assert metrics["resident_bytes"]["worker"] > 100 * 2**20
    assert metrics["resident_bytes"]["server"] > 0
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    assert client.get("/static/app.js").status_code == 200
    for escape in ("/static/%2e%2e/app.py", "/static/..%2Fapp.py", "/static//etc/passwd"):
        assert client.get(escape).status_code == 404
    assert client.get("/v1/restore").status_code == 405
    assert "/v1/restore" in client.get("/openapi.json").json()["paths"]


def test_options_follow_face_restorer(client):
    """Every FaceRestorer keyword a request may set is a documented field, and no other."""
    import inspect

    offered = client.get("/v1/models").json()["options"]
    keywords = set(inspect.signature(FaceRestorer).parameters) - SERVER_ONLY
    assert set(offered) == keywords | set(OUTPUT_FIELDS)


def test_no_option_takes_a_path():
    """Options that accept a path in Python take catalogue names over HTTP, or are refused."""
    for name, spec in option_specs().items():
        if "PathLike" in spec.annotation and name not in NAME_FIELDS:
            with pytest.raises(OptionError, match="takes a path"):
                parse_options({name: "/etc/passwd"}, {})
    with pytest.raises(OptionError, match="not available"):
        parse_options({"model": "/etc/passwd"}, {"models": {"auto"}})


def test_restore_answers_the_image(client, group_jpeg):
    response = client.post("/v1/restore", files={"image": ("group.jpg", group_jpeg)})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["x-faceprior-faces"] == "4"
    assert 'filename="group_restored.jpg"' in response.headers["content-disposition"]
    before, after = decoded(group_jpeg), decoded(response.content)
    assert after.shape == before.shape
    assert np.abs(after.astype(int) - before).mean() > 0.5  # the faces changed


def test_restore_raw_body_with_json_report(client, face_jpeg):
    response = client.post(
        "/v1/restore",
        content=face_jpeg,
        params={"filename": "dir/../face.jpg", "upscale": "2", "format": "png", "compare": "1"},
        headers={"accept": "application/json", "content-type": "image/jpeg"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    report = body["report"]
    assert body["filename"] == "face_restored.png" and body["media_type"] == "image/png"
    assert report["input"] == "face.jpg" and report["model"] == "gpen-offline-128"
    assert report["output_size"] == [836, 1040] and len(report["faces"]) == 1
    image = decoded(base64.b64decode(body["image_base64"]))
    assert image.shape == (1040, 836, 3)
    compare = decoded(base64.b64decode(body["compare_base64"]))  # input | output, with a gap
    assert compare.shape[0] == 1040 and compare.shape[1] > 2 * 836
    drawn = compare[:, -836:] != image  # the output, but for the face's box and number
    assert 0 < drawn.any(axis=2).mean() < 0.05


@pytest.mark.parametrize(
    "field, value",
    [
        ("strength", "0.3"),
        ("upscale", "1.5"),
        ("faces", "largest"),
        ("color_match", "lab"),
        ("mask", "rectangle"),
        ("min_face_size", "90"),
        ("quality", "40"),
        ("aligned", "true"),
        ("compare", "true"),
    ],
)
def test_each_option_changes_the_output(client, group_jpeg, default_output, field, value):
    changed = _restored(client, group_jpeg, {field: value})
    assert changed.shape != default_output.shape or (
        np.abs(changed.astype(int) - default_output).max() > 8
    )


@pytest.fixture(scope="module")
def default_output(client, group_jpeg) -> np.ndarray:
    return _restored(client, group_jpeg, {})


def _restored(client, data: bytes, fields: dict) -> np.ndarray:
    response = client.post("/v1/restore", files={"image": ("group.jpg", data)}, data=fields)
    assert response.status_code == 200, response.text
    return decoded(response.content)


def test_alpha_and_16_bits_kept(client, face_jpeg):
    rgb = cv2.resize(decoded(face_jpeg), (209, 260), interpolation=cv2.INTER_AREA)
    rgba = np.dstack([rgb.astype(np.uint16) * 257, np.full(rgb.shape[:2], 40000, np.uint16)])
    ok, png = cv2.imencode(".png", rgba[..., [2, 1, 0, 3]])
    response = client.post("/v1/restore", files={"image": ("deep.png", png.tobytes())})
    assert response.status_code == 200, response.text
    out = decoded(response.content)
    assert out.dtype == np.uint16 and out.shape == (260, 209, 4)
    assert np.array_equal(out[..., 3], rgba[..., 3])
    refused = client.post(
        "/v1/restore", files={"image": ("deep.png", png.tobytes())}, data={"format": "jpg"}
    )
    assert refused.status_code == 422 and "JPEG cannot store" in refused.json()["error"]


def _bad_requests(group_jpeg: bytes):
    big = png_bytes(np.zeros((1001, 1000, 3), np.uint8))  # 1,001,000 pixels, a small file
    image = {"image": ("group.jpg", group_jpeg)}
    return [
        ({"files": {"image": ("cut.jpg", group_jpeg[:3000])}}, 422, "cut.jpg: damaged or trunc"),
        ({"files": {"image": ("noise.png", os.urandom(3000))}}, 422, "not a readable image"),
        ({"content": b""}, 422, "no image in the request"),
        ({"files": image, "data": {"strenght": "1"}}, 422, "unknown option 'strenght'"),
        ({"files": image, "data": {"device": "cuda"}}, 422, "device is set by the server"),
        ({"files": image, "data": {"strength": "lots"}}, 422, "strength must be a number"),
        ({"files": image, "data": {"strength": "2"}}, 422, "strength must be in [0, 1]"),
        ({"files": image, "data": {"upscale": "nan"}}, 422, "upscale must be a finite"),
        ({"files": image, "data": {"model": "/etc/passwd"}}, 422, "not available on this"),
        ({"files": image, "data": {"model": "../gpen.pth"}}, 422, "not available on this"),
        ({"files": image, "data": {"small_model": "psfrgan"}}, 422, "not available on this"),
        ({"files": image, "data": {"mask_parser": "/tmp/x"}}, 422, "not available on this"),
        ({"files": image, "data": {"background": "/tmp/x.pth"}}, 422, "not available on this"),
        ({"files": image, "data": {"format": "gif"}}, 422, "format must be one of"),
        ({"files": image, "data": {"small_face_size": "64"}}, 422, "small_face_size needs"),
        ({"data": {"image": "text"}}, 415, "multipart/form-data"),
        ({"files": [("image", ("a.jpg", group_jpeg))] * 2}, 422, "takes one image"),
        ({"files": {"photo": ("a.jpg", group_jpeg)}}, 422, "file field 'photo'"),
        ({"files": {"image": ("big.png", big)}}, 422, "exceeds the limit of 1,000,000"),
        ({"files": {"image": ("clip.mp4", b"\0" * 99)}}, 422, "clip.mp4: videos are restored as"),
        ({"content": b"x" * (MAX_UPLOAD + 1)}, 413, "larger than this server's limit"),
        ({"content": iter([b"x" * 2**20] * 3)}, 413, "larger than this server's limit"),
    ]


def test_bad_requests_get_4xx_and_the_server_survives(client, group_jpeg):
    for request, status, message in _bad_requests(group_jpeg):
        response = client.post("/v1/restore", **request)
        assert response.status_code == status, (request.keys(), response.text)
        assert message in response.json()["error"], response.json()
    assert client.get("/health").json()["status"] == "ok"
    assert client.post("/v1/restore", content=group_jpeg).status_code == 200
    assert client.app.state.worker.counts["restarts"] == 0


def test_job_through_to_its_results(client, group_jpeg, face_jpeg):
    files = [
        ("files", ("group.jpg", group_jpeg)),
        ("files", ("../../etc/face.jpg", face_jpeg)),
        ("files", ("broken.jpg", group_jpeg[:2000])),
    ]
    response = client.post("/v1/jobs", files=files, data={"upscale": "2", "compare": "yes"})
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    assert response.headers["location"] == f"/v1/jobs/{job_id}"
    job = _wait_for(client, job_id)
    assert job["status"] == "done" and job["progress"] == {"done": 3, "total": 3}
    group, face, broken = job["items"]
    assert (group["status"], len(group["faces"])) == ("restored", 4)
    assert face["input"] == "face.jpg" and face["output_size"] == [836, 1040]
    assert broken["status"] == "failed" and "broken.jpg: damaged" in broken["error"]
    result = client.get(group["result"])
    assert result.status_code == 200 and result.headers["content-type"] == "image/jpeg"
    assert decoded(result.content).shape == (620, 982, 3)
    assert 'filename="group_restored.jpg"' in result.headers["content-disposition"]
    compare = client.get(group["compare"])
    assert compare.headers["content-type"] == "image/png"
    assert decoded(compare.content).shape[0] == 620 and "compare" not in broken
    assert client.get(f"/v1/jobs/{job_id}/compare/2").status_code == 404
    assert client.get(f"/v1/jobs/{job_id}/results/2").status_code == 404  # failed item
    assert client.get(f"/v1/jobs/{job_id}/results/9").status_code == 404
    assert client.get(f"/v1/jobs/{job_id}/results/x").status_code == 422
    assert job_id in [j["id"] for j in client.get("/v1/jobs").json()["jobs"]]
    folder = client.app.state.jobs.root / job_id
    assert sorted(p.name for p in folder.iterdir()) == [  # the uploads are gone
        ".faceprior-serve-job",
        "compare-0000.png",
        "compare-0001.png",
        "result-0000.jpg",
        "result-0001.jpg",
    ]
    deleted = client.delete(f"/v1/jobs/{job_id}")
    assert deleted.json() == {"id": job_id, "status": "done", "deleted": True}
    assert not folder.exists()
    for path in (f"/v1/jobs/{job_id}", "/v1/jobs/..%2F..%2Fetc", "/v1/jobs/0123456789abcdef0123"):
        assert client.get(path).status_code == 404


def test_full_queue_answers_503_and_jobs_cancel(client, group_jpeg):
    slow = [("files", (f"g{i}.jpg", group_jpeg)) for i in range(16)]  # seconds of work
    running = client.post("/v1/jobs", files=slow, data={"upscale": "2"}).json()["id"]
    _wait_for(client, running, statuses=("running",))
    queued = client.post("/v1/jobs", files=slow[:1]).json()["id"]
    assert client.get(f"/v1/jobs/{queued}").json()["status"] == "queued"
    for refused in (
        client.post("/v1/jobs", files=slow[:1]),
        client.post("/v1/restore", content=group_jpeg),
    ):
        assert refused.status_code == 503, refused.text
        assert int(refused.headers["retry-after"]) >= 1
        assert "busy" in refused.json()["error"]
    assert client.delete(f"/v1/jobs/{queued}").json()["status"] == "cancelled"
    assert client.get(f"/v1/jobs/{queued}").status_code == 404
    stopping = client.delete(f"/v1/jobs/{running}")
    assert stopping.status_code == 202 and stopping.json()["status"] == "cancelling"
    deadline = time.monotonic() + 30
    while client.get(f"/v1/jobs/{running}").status_code != 404:  # deleted once it stopped
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert not (client.app.state.jobs.root / running).exists()
    assert client.app.state.worker.counts["cancelled"] >= 2
    assert client.post("/v1/restore", content=group_jpeg).status_code == 200


def _write_clip(path, face_jpeg: bytes, frames: int, rate: int = 10) -> None:
    rgb = cv2.resize(decoded(face_jpeg), (160, 200), interpolation=cv2.INTER_AREA)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = 160, 200, "yuv420p"
        stream.codec_context.time_base = Fraction(1, rate)
        for index in range(frames):
            shifted = np.roll(rgb, index, axis=1)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(shifted), format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def test_video_job(client, face_jpeg, tmp_path):
    clip, long_clip = tmp_path / "clip.mp4", tmp_path / "long.mp4"
    _write_clip(clip, face_jpeg, frames=6)
    _write_clip(long_clip, face_jpeg, frames=20)  # 2 s, over the 1.5 s limit
    response = client.post("/v1/jobs", files={"video": ("clip.mp4", clip.read_bytes())})
    assert response.status_code == 202, response.text
    job = _wait_for(client, response.json()["id"])
    assert job["kind"] == "video" and job["status"] == "done", job
    item = job["items"][0]
    assert item["frames"] == 6 and item["restored_faces"] >= 5 and "source" not in item
    video = client.get(item["result"])
    assert video.headers["content-type"] == "video/mp4"
    restored = tmp_path / "restored.mp4"
    restored.write_bytes(video.content)
    with av.open(str(restored)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 6
    for name, data, message in (
        ("long.mp4", long_clip.read_bytes(), "long.mp4: the video is 2.0 s long"),
        ("fake.mp4", b"not a video at all" * 50, "fake.mp4: not a readable video"),
    ):
        job_id = client.post("/v1/jobs", files={"video": (name, data)}).json()["id"]
        failed = _wait_for(client, job_id)
        assert failed["status"] == "failed" and message in failed["error"], failed
        assert failed["items"][0] == {"input": name, "status": "failed", "error": failed["error"]}
        assert str(client.app.state.jobs.root) not in failed["error"]
    too_many = [("files", (f"{i}.jpg", b"x")) for i in range(17)]
    refused = client.post("/v1/jobs", files=too_many)
    assert refused.status_code == 413 and "Too many files" in refused.json()["error"]
    two = [("files", ("a.mp4", b"x")), ("files", ("b.jpg", b"y"))]
    assert client.post("/v1/jobs", files=two).status_code == 422


def test_finished_jobs_are_pruned(client, face_jpeg):
    ids = []
    for index in range(5):
        response = client.post("/v1/jobs", files={"files": (f"{index}.jpg", face_jpeg)})
        ids.append(response.json()["id"])
        _wait_for(client, ids[-1])
    listed = [job["id"] for job in client.get("/v1/jobs").json()["jobs"]]
    assert listed == ids[-3:]  # keep_jobs=3
    assert not (client.app.state.jobs.root / ids[0]).exists()


def test_worker_restarts_after_a_crash(client, face_jpeg):
    worker = client.app.state.worker
    pid = worker.worker_pid
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while client.get("/health").status_code != 503:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    response = client.post("/v1/restore", content=face_jpeg)
    assert response.status_code == 200, response.text
    assert worker.worker_pid != pid and worker.counts["restarts"] == 1
    assert client.get("/health").json()["status"] == "ok"


def test_token_guards_every_request(tmp_path):
    token = "s3cret-token-0123456789"
    app = create_app(fast_settings(token=token, host="0.0.0.0", jobs_dir=tmp_path))
    client = TestClient(app)  # no lifespan: no worker, the guard answers first
    for path in ("/", "/health", "/v1/models", "/static/app.js", "/docs"):
        refused = client.get(path)
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    assert client.post("/v1/restore", content=b"x").status_code == 401
    wrong = {"authorization": "Bearer not-the-token-at-all"}
    assert client.get("/v1/models", headers=wrong).status_code == 401
    right = {"authorization": f"Bearer {token}"}
    assert client.get("/v1/models", headers=right).status_code == 200
    visit = client.get(f"/?token={token}&x=1", follow_redirects=False)
    assert visit.status_code == 303 and visit.headers["location"] == "/?x=1"
    assert (
        "HttpOnly" in visit.headers["set-cookie"]
        and "SameSite=Strict" in visit.headers["set-cookie"]
    )
    assert client.get("/").status_code == 200  # the cookie set above
    client.cookies.clear()
    assert client.get("/?token=wrong", follow_redirects=False).status_code == 401


def test_unsafe_settings_are_refused(tmp_path, capsys):
    with pytest.raises(SettingsError, match="needs a token"):
        create_app(ServeSettings(host="0.0.0.0", jobs_dir=tmp_path))
    with pytest.raises(SettingsError, match="at least 16"):
        ServeSettings(token="short").check()
    with pytest.raises(SettingsError, match="queue_size"):
        ServeSettings(queue_size=0).check()
    ServeSettings(host="::1").check()
    assert "serve" in COMMANDS
    parser = argparse.ArgumentParser()
    serve_command.add_arguments(parser)
    assert serve_command.run(parser.parse_args(["--host", "192.168.1.5"])) == 2
    assert "needs a token" in capsys.readouterr().err


def test_foreign_host_header_refused_without_token(tmp_path):
    client = TestClient(create_app(ServeSettings(jobs_dir=tmp_path)))
    assert client.get("/v1/models").status_code == 400  # Host: testserver
    local = client.get("/v1/models", headers={"host": "127.0.0.1:8000"})
    assert local.status_code == 200


def test_command_line_maps_to_settings(tmp_path):
    parser = argparse.ArgumentParser()
    serve_command.add_arguments(parser)
    args = parser.parse_args(
        ["--port", "9000", "--max-upload-mb", "1.5", "--job-ttl-hours", "0.5", "--allowed-host",
         "faces.example.org", "--jobs-dir", str(tmp_path), "--allow-downloads", "--threads", "3"]
    )  # fmt: skip
    settings = serve_command.settings_from(args)
    assert (settings.port, settings.max_upload_bytes, settings.job_ttl_s) == (9000, 1572864, 1800)
    assert settings.allowed_hosts == ("faces.example.org",) and settings.jobs_dir == tmp_path
    assert settings.allow_downloads and settings.threads == 3
    assert settings.trusted_hosts() == ("faces.example.org",)


def test_downloads_widen_the_models_requests_may_name():
    from faceprior.serve.worker import restoration_models

    offline = restoration_models(ServeSettings())
    online = restoration_models(ServeSettings(allow_downloads=True))
    assert offline.keys() == online.keys() and "gpen-bfr-512" in online
    assert {name for name, m in offline.items() if m["available"]} == set(BUNDLED_MODELS)
    assert all(m["available"] for m in online.values())


def test_jobs_past_their_time_are_deleted(tmp_path):
    from faceprior.serve.jobs import JobStore

    store = JobStore(tmp_path, keep=10, ttl_s=60)
    old, recent = (
        store.create("photos", [("a.jpg", b"a")]),
        store.create("photos", [("b.jpg", b"b")]),
    )
    old.finish("done")
    recent.finish("done")
    old.finished -= 61
    store.prune()
    assert store.get(old.id) is None and not old.folder.exists()
    assert store.get(recent.id) is recent and recent.folder.is_dir()
    (tmp_path / "mine").mkdir()  # not a job folder: never touched
    store.close()
    assert not recent.folder.exists() and (tmp_path / "mine").is_dir()
