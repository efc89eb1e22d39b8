"""Load test of ``fusion-iqa serve``: requests from concurrent clients, all checked.

Usage::

    python benchmarks/serve.py [--requests 200] [--clients 8] [--workers 1]

Starts the server in a subprocess on a free 127.0.0.1 port, waits for ``/healthz``, then
sends ``--requests`` ``POST /v1/predict`` requests from ``--clients`` threads (one HTTP
client each). The images are the three bundled distorted examples, each also as a
mirrored and a re-coloured copy (nine different images, cycled), scored without a
reference and, for every third request, against their reference. Every response is
checked against ``fusion.predict`` on the same file in this process (score to 1e-9 and
the uploaded name): none may be lost or mixed up. A warm-up of 4 × ``--clients``
requests (checked, not timed) comes first, so that every scoring thread has loaded its
interpreters. Prints p50/p95 latency, throughput, and the server's resident memory (its
workers included) after the warm-up, after half of the requests and at the end. Sends
traffic to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (Linux /proc), in MB."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for each in pids:
        status = Path(f"/proc/{each}/status")
        if status.exists():
            for line in status.read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


def _images(folder: Path) -> list[tuple[Path, Path]]:
    from PIL import Image, ImageOps

    from fusion.examples import EXAMPLE_NAMES, example_paths

    out = []
    for name in EXAMPLE_NAMES:
        reference, distorted = example_paths(name)
        pairs = {"": (Image.open(distorted), Image.open(reference))}
        pairs["_mirror"] = tuple(ImageOps.mirror(i) for i in pairs[""])
        pairs["_tint"] = tuple(i.convert("RGB").point(lambda v: min(255, int(v * 1.1)))
                               for i in pairs[""])
        for suffix, (image, ref) in pairs.items():
            image_path = folder / f"{name}{suffix}.png"
            ref_path = folder / f"{name}{suffix}_ref.png"
            image.save(image_path)
            ref.save(ref_path)
            out.append((image_path, ref_path))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    import httpx

    import fusion

    folder = Path(tempfile.mkdtemp(prefix="fusion-serve-bench-"))
    pairs = _images(folder)
    jobs = [(pairs[i % len(pairs)], i % 3 == 0) for i in range(args.requests)]
    expected = {(image, with_ref): fusion.predict(image, ref if with_ref else None).score
                for (image, ref), with_ref in set(jobs)}
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "fusion", "serve", "--port", str(port), "--workers",
         str(args.workers)], env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the server did not start")
            time.sleep(0.2)
        memory: dict[str, float] = {}
        latencies: list[float] = []
        failures: list[str] = []
        lock = threading.Lock()

        def run(batch: list[tuple[tuple[Path, Path], bool]], record: bool) -> float:
            queue = list(enumerate(batch))

            def client() -> None:
                with httpx.Client(timeout=120) as http:
                    while True:
                        with lock:
                            if not queue:
                                return
                            index, ((image, ref), with_ref) = queue.pop(0)
                            if record and index == len(batch) // 2:
                                memory["after half"] = _rss_mb(server.pid)
                        files = {"image": (image.name, image.read_bytes(), "image/png")}
                        if with_ref:
                            files["reference"] = (ref.name, ref.read_bytes(), "image/png")
                        start = time.perf_counter()
                        response = http.post(f"{url}/v1/predict", files=files)
                        elapsed = time.perf_counter() - start
                        payload = response.json() if response.status_code == 200 else {}
                        wrong = (payload.get("input", {}).get("image") != image.name
                                 or abs(payload.get("score", -1)
                                        - expected[(image, with_ref)]) > 1e-9)
                        with lock:
                            if record:
                                latencies.append(elapsed)
                            if wrong:
                                failures.append(f"request {index}: {response.status_code} "
                                                f"{response.text[:200]}")

            started = time.perf_counter()
            threads = [threading.Thread(target=client) for _ in range(args.clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            return time.perf_counter() - started

        run(jobs[: 4 * args.clients], record=False)  # every scoring thread warmed up
        memory["after warm-up"] = _rss_mb(server.pid)
        wall = run(jobs, record=True)
        memory["at the end"] = _rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * len(ordered)) - 1)]
    order = ("after warm-up", "after half", "at the end")
    print(f"| requests | clients | workers | lost or mixed up | p50 s | p95 s | requests/s "
          f"| server RSS MB ({', '.join(order)}) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    print(f"| {len(latencies)} | {args.clients} | {args.workers} | {len(failures)} | "
          f"{statistics.median(latencies):.2f} | {p95:.2f} | {len(latencies) / wall:.1f} | "
          f"{' / '.join(f'{memory[k]:,.0f}' for k in order)} |")
    for failure in failures[:5]:
        print(failure)
    return 1 if failures or len(latencies) != args.requests else 0


if __name__ == "__main__":
    sys.exit(main())
