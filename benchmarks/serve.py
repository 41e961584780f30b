"""`faceprior serve` under load: what HTTP and the worker process add, and memory over time.

Starts the server (uvicorn in a thread of this process, its worker process) on a free localhost
port and measures, for one photo:

- ``direct``: median seconds of ``FaceRestorer.restore`` on the decoded photo in this process,
  the floor the server cannot beat;
- ``sequential``: median seconds of ``POST /v1/restore`` from one client (decode, restore and
  encode in the worker, plus HTTP and the queue);
- ``load``: N clients for T seconds, each retrying after Retry-After when answered 503:
  restores per second, median and 95th-percentile latency of the successful ones, the 503s;
- memory: resident MiB of the server and of the worker sampled every second during the load.

    .venv/bin/python benchmarks/serve.py --clients 8 --seconds 60
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import threading
import time
from functools import partial
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import machine, markdown_table, save, time_call  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT.parent / "shared/data/faces/whole/CodeFormer_whole_imgs/00.jpg"
DETECTOR = ROOT.parent / "shared/data/weights/retinaface_mobilenet0.25_Final.pth"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gpen-offline-128")
    parser.add_argument("--photo", type=Path, default=PHOTO)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--queue-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads, here and in the worker (default 1)"
    )
    args = parser.parse_args()

    import torch
    import uvicorn

    from faceprior.io.images import decode_image
    from faceprior.pipeline import FaceRestorer
    from faceprior.serve import ServeSettings, create_app

    torch.set_num_threads(args.threads)
    data = args.photo.read_bytes()
    detector = str(DETECTOR) if DETECTOR.is_file() else None
    restorer = FaceRestorer(args.model, detector_weights=detector)
    loaded = decode_image(data)
    direct = time_call(partial(restorer.restore, loaded), args.repeats)
    del restorer  # the server gets the memory and the cores

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = ServeSettings(
        port=port,
        model=args.model,
        detector_weights=detector,
        queue_size=args.queue_size,
        threads=args.threads,
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    started = time.perf_counter()
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    startup = time.perf_counter() - started
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=300) as client:

            def one() -> None:
                client.post("/v1/restore", files={"image": ("photo.jpg", data)}).raise_for_status()

            sequential = time_call(one, args.repeats)
        load = _load(base, data, args.clients, args.seconds)
    finally:
        server.should_exit = True
        thread.join(60)

    row = {
        "model": args.model,
        "photo": args.photo.name,
        "threads": args.threads,
        "startup s": round(startup, 2),
        "direct s": round(direct, 3),
        "sequential s": round(sequential, 3),
        "clients": args.clients,
        "seconds": args.seconds,
        "restores/s": round(load["restored"] / args.seconds, 2),
        "p50 s": load["p50"],
        "p95 s": load["p95"],
        "503s": load["rejected"],
        "other errors": load["errors"],
        "server MiB first/last/max": load["server"],
        "worker MiB first/last/max": load["worker"],
    }
    print(markdown_table([row]))
    print(f"saved to {save('serve', {'machine': machine(), **row})}")
    return 0


def _load(base: str, data: bytes, clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    counts = {"rejected": 0, "errors": 0}
    memory: dict[str, list[float]] = {"server": [], "worker": []}
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client() -> None:
        with httpx.Client(base_url=base, timeout=300) as http:
            while time.monotonic() < stop_at:
                start = time.monotonic()
                response = http.post("/v1/restore", files={"image": ("photo.jpg", data)})
                with lock:
                    if response.status_code == 200:
                        latencies.append(time.monotonic() - start)
                    elif response.status_code == 503:
                        counts["rejected"] += 1
                    else:
                        counts["errors"] += 1
                if response.status_code == 503:
                    time.sleep(float(response.headers.get("retry-after", 1)))

    def sample() -> None:
        while time.monotonic() < stop_at:
            resident = httpx.get(base + "/metrics").json()["resident_bytes"]
            for name in memory:
                memory[name].append(resident[name] / 2**20)
            time.sleep(1.0)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    threads.append(threading.Thread(target=sample))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ordered = sorted(latencies)

    def summary(values: list[float]) -> str:
        return f"{values[0]:.0f}/{values[-1]:.0f}/{max(values):.0f}" if values else "-"

    return {
        "restored": len(latencies),
        "p50": round(statistics.median(ordered), 2) if ordered else None,
        "p95": round(ordered[int(0.95 * (len(ordered) - 1))], 2) if ordered else None,
        **counts,
        **{name: summary(values) for name, values in memory.items()},
    }


if __name__ == "__main__":
    sys.exit(main())
