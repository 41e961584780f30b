"""`faceprior serve` on a real socket: a real browser restores a photo; many clients at once.

The server (uvicorn, one worker process, the bundled 128-px model) runs in a thread of this
process. The browser test drives Debian's headless Chromium through Selenium and keeps a
screenshot (its path is printed); it is skipped, saying why, only where Chromium is not
installed and FACEPRIOR_REQUIRE_SHARED is not set (.ci/run installs it).
"""

from __future__ import annotations

import io
import os
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from conftest import BUNDLED_MODELS, shared_path
from serve_helpers import FACE_PHOTO, GROUP_PHOTO, decoded, fast_settings

from faceprior.serve import create_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1200,1300",
)
LOAD_CLIENTS = 6
LOAD_SECONDS = 5.0


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Base URL of a live server on a free localhost port."""
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FACEPRIOR_HOME", str(tmp_path_factory.mktemp("serve-home")))
        settings = fast_settings(port=port, queue_size=2, jobs_dir=tmp_path_factory.mktemp("jobs"))
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_level="warning"
        )
        live = uvicorn.Server(config)
        thread = threading.Thread(target=live.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 180
        while not live.started:
            assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
        live.should_exit = True
        thread.join(60)


@pytest.fixture()
def browser(tmp_path):
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        reason = (
            f"needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}): "
            f"apt-get install -y chromium chromium-driver (.ci/run does)"
        )
        if os.environ.get("FACEPRIOR_REQUIRE_SHARED") == "1":
            pytest.fail(reason + "; FACEPRIOR_REQUIRE_SHARED=1 makes this an error")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.execute_cdp_cmd(
        "Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)}
    )
    yield driver
    driver.quit()


def test_browser_restores_a_photo(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    photo = shared_path(GROUP_PHOTO)
    browser.get(server + "/")
    wait = WebDriverWait(browser, 60)
    wait.until(lambda d: d.find_element(By.ID, "status").text == "Ready.")
    models = [o.text for o in browser.find_elements(By.CSS_SELECTOR, "#model option")]
    assert set(models) == set(BUNDLED_MODELS)
    browser.find_element(By.ID, "pick").send_keys(str(photo))
    browser.find_element(By.ID, "restore").click()
    wait.until(lambda d: d.execute_script(
        "const i = document.querySelector('.compare img.after'); return i && i.naturalWidth"
    ))  # fmt: skip
    assert "1 restored, 0 failed" in browser.find_element(By.ID, "status").text
    sizes = browser.execute_script(
        "return [...document.querySelectorAll('.compare img')].map(i => [i.naturalWidth, "
        "i.naturalHeight])"
    )
    assert sizes == [[491, 310], [491, 310]]  # before and after
    faces = browser.find_elements(By.CSS_SELECTOR, ".face-list input")
    assert len(faces) == 4
    assert len(browser.find_elements(By.CSS_SELECTOR, ".compare svg rect")) == 4

    faces[0].click()  # untick the first face: its box turns grey, and it can be left alone
    box = browser.find_element(By.CSS_SELECTOR, '.compare svg rect[data-face="0"]')
    assert "off" in box.get_attribute("class")
    browser.find_element(By.CSS_SELECTOR, ".apply").click()
    wait.until(lambda d: "3 face(s) restored" in d.find_element(By.CSS_SELECTOR, ".summary").text)
    boxes = browser.execute_script(
        "return [...document.querySelectorAll('.compare svg rect')].map(r => "
        "['x', 'y', 'width', 'height'].map(k => Number(r.getAttribute(k))))"
    )
    browser.execute_script(
        "const s = document.querySelector('.slider'); s.value = 30;"
        "s.dispatchEvent(new Event('input'));"
    )
    split = browser.execute_script(
        "return document.querySelector('.result').style.getPropertyValue('--split')"
    )
    assert split == "30%"
    screenshot = tmp_path / "serve-page.png"
    browser.save_screenshot(str(screenshot))
    print(f"screenshot of the page: {screenshot}")
    browser.find_element(By.CSS_SELECTOR, ".show-side").click()
    assert browser.find_element(By.CSS_SELECTOR, ".pair").is_displayed()
    assert not browser.find_element(By.CSS_SELECTOR, ".compare").is_displayed()
    browser.save_screenshot(str(tmp_path / "serve-page-side-by-side.png"))

    browser.find_element(By.CSS_SELECTOR, ".download").click()
    download = tmp_path / "00_restored.jpg"
    WebDriverWait(browser, 30).until(lambda d: download.is_file())
    before, after = decoded(photo.read_bytes()), decoded(download.read_bytes())
    assert after.shape == before.shape

    def change(box) -> float:
        x, y, width, height = (round(v) for v in box)
        region = (slice(y, y + height), slice(x, x + width))
        return float(np.abs(after[region].astype(int) - before[region]).mean())

    kept, restored = change(boxes[0]), min(change(box) for box in boxes[1:])
    assert kept < 2.5 and restored > 2 * kept, (kept, restored)  # JPEG noise vs restoration
    resources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert resources and all(url.startswith(server) for url in resources)  # works offline
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors  # nothing failed in the page's console


def test_load_only_documented_answers_and_flat_memory(server):
    """Concurrent clients for a bounded time: 200/202 or 503 with Retry-After, nothing else."""
    rgb = cv2.resize(decoded(shared_path(FACE_PHOTO).read_bytes()), (200, 250))
    ok, jpeg = cv2.imencode(".jpg", rgb[..., ::-1])
    photo = jpeg.tobytes()
    answers: list[tuple[str, int, bool, float]] = []
    lock = threading.Lock()

    def client(stop_at: float) -> None:
        with httpx.Client(base_url=server, timeout=120) as http:
            turn = 0
            while time.monotonic() < stop_at:
                turn += 1
                start = time.monotonic()
                if turn % 4 == 3:
                    kind, response = "job", http.post("/v1/jobs", files={"files": ("f.jpg", photo)})
                elif turn % 4 == 2:
                    kind, response = "health", http.get("/health")
                else:
                    kind = "restore"
                    response = http.post(
                        "/v1/restore", files={"image": ("f.jpg", io.BytesIO(photo))}
                    )
                elapsed = time.monotonic() - start
                with lock:
                    answers.append(
                        (kind, response.status_code, "retry-after" in response.headers, elapsed)
                    )
                if response.status_code == 503:
                    time.sleep(0.05)

    def load(seconds: float) -> None:
        stop_at = time.monotonic() + seconds
        threads = [threading.Thread(target=client, args=(stop_at,)) for _ in range(LOAD_CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)

    def memory() -> dict:
        deadline = time.monotonic() + 60
        while True:  # let the queue drain first
            metrics = httpx.get(server + "/metrics").json()
            if (not metrics["busy"] and not metrics["queued"]) or time.monotonic() > deadline:
                return metrics["resident_bytes"]
            time.sleep(0.1)

    load(1.5)  # warm-up: allocator pools and caches reach their working size
    warm = memory()
    answers.clear()
    load(LOAD_SECONDS)
    after = memory()
    statuses = {(kind, status) for kind, status, _, _ in answers}
    assert statuses <= {("restore", 200), ("restore", 503), ("job", 202), ("job", 503),
                        ("health", 200)}, statuses  # fmt: skip
    assert all(has_retry for _, status, has_retry, _ in answers if status == 503)
    restored = [t for kind, status, _, t in answers if (kind, status) == ("restore", 200)]
    assert len(restored) >= 2  # the worker kept restoring (a busy CI machine is slow)
    growth = {name: (after[name] - warm[name]) / 2**20 for name in warm}
    rejected = sum(status == 503 for _, status, _, _ in answers)
    print(
        f"load: {len(answers)} requests from {LOAD_CLIENTS} clients in {LOAD_SECONDS:g} s, "
        f"{len(restored)} restored (median {statistics.median(restored):.2f} s), "
        f"{rejected} answered 503; memory growth MiB: "
        + ", ".join(f"{name} {value:+.1f}" for name, value in growth.items())
    )
    assert growth["server"] < 40 and growth["worker"] < 80, growth
