"""Batch benchmark: pairs/s with 1 and 2 jobs and on a 2-worker Dask LocalCluster, peak
memory for 200 and 2,000 pairs, and a fully cached rerun.

Usage::

    python benchmarks/batch.py [--pairs 200] [--large 2000] [--out benchmarks/results/batch]

The pairs are 512×384 crops of the Kodak photographs in ../shared/data/pristine (or
``--pristine DIR``), each with a synthetic distortion. Every configuration runs in a fresh
process (so start-up and model loading count, as for a user), and its peak RSS is that
process's plus its worker processes' (loky or Dask workers, read from /proc while it
runs). The 2,000-pair run lists the 200 pairs ten times under distinct ids, without a
cache, so that every item is computed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))

KINDS = ("gaussian_blur", "jpeg", "gaussian_noise", "contrast_decrease", "pixelate")

_RUN = """
import json, sys, time
from dask.distributed import LocalCluster
from fusion.batch import score_batch
args = json.loads(sys.argv[1])
cluster = None
if args.pop("cluster"):
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           host="127.0.0.1", dashboard_address=None)
    args["scheduler"] = cluster.scheduler_address
started = time.perf_counter()
summary = score_batch(progress=False, **args)
print(json.dumps({"seconds": time.perf_counter() - started, "scored": summary.scored,
                  "failed": summary.failed, "from_cache": summary.from_cache}))
if cluster is not None:
    cluster.close()
"""


def make_pairs(pristine: Path, folder: Path, count: int) -> Path:
    """Write ``count`` 512×384 pairs and a manifest; returns the manifest."""
    from PIL import Image

    from fusion.distortions import distort

    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "pairs.csv"
    if manifest.exists() and len(manifest.read_text().splitlines()) == count + 1:
        return manifest
    photos = sorted(p for p in pristine.iterdir() if p.suffix.lower() == ".png")
    if not photos:
        raise SystemExit(f"no PNG photographs in {pristine}")
    lines = ["id,image,reference"]
    for index in range(count):
        photo = photos[index % len(photos)]
        rgb = np.asarray(Image.open(photo).convert("RGB"))
        rgb = rgb[:384, :512] if rgb.shape[0] < rgb.shape[1] else rgb[:512, :384]
        if rgb.shape[0] > rgb.shape[1]:
            rgb = np.ascontiguousarray(rgb.transpose(1, 0, 2))
        # (photo, kind, level) is unique for the first photos × kinds × 5 indices
        kind = KINDS[(index // len(photos)) % len(KINDS)]
        level = 1 + (index // (len(photos) * len(KINDS))) % 5
        reference, distorted = f"ref_{photo.stem}.png", f"{index:04d}_{kind}_{level}.png"
        if not (folder / reference).exists():
            Image.fromarray(rgb).save(folder / reference)
        Image.fromarray(distort(rgb, kind, level, image_index=index)).save(folder / distorted)
        lines.append(f"{index:04d},{distorted},{reference}")
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def repeat_manifest(manifest: Path, times: int) -> Path:
    """The manifest's rows ``times`` times over, with distinct ids."""
    rows = manifest.read_text().splitlines()
    out = manifest.with_name(f"pairs_x{times}.csv")
    lines = [rows[0]] + [f"{r}_{k}," + row.split(",", 1)[1]
                         for k in range(times) for row in rows[1:] for r in [row.split(",")[0]]]
    out.write_text("\n".join(lines) + "\n")
    return out


def _tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (MiB), from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        total += rss.get(current, 0)
        stack.extend(children.get(current, []))
    return total / 2**20


def run_config(**arguments: object) -> dict[str, float]:
    """Run score_batch in a fresh process; its result plus the peak RSS of its tree."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen([sys.executable, "-c", _RUN, json.dumps(arguments)],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               env=env)
    peak = [0.0]

    def watch() -> None:
        while process.poll() is None:
            peak[0] = max(peak[0], _tree_rss_mb(process.pid))
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    stdout, _ = process.communicate()
    watcher.join()
    if process.returncode != 0:
        raise SystemExit(f"configuration {arguments} failed (exit {process.returncode})")
    result: dict[str, float] = json.loads(stdout.strip().splitlines()[-1])
    result["peak_rss_mb"] = peak[0]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--large", type=int, default=2000)
    parser.add_argument("--pristine", type=Path, default=SHARED / "pristine" / "kodak")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "batch")
    args = parser.parse_args(argv)

    manifest = make_pairs(args.pristine, args.out / "pairs", args.pairs)
    large = repeat_manifest(manifest, max(1, args.large // args.pairs))
    cache = args.out / "features.h5"
    cache.unlink(missing_ok=True)
    rows = []
    configs = [
        (f"{args.pairs} pairs, --jobs 1", {"source": str(manifest), "jobs": 1}),
        (f"{args.pairs} pairs, --jobs 2", {"source": str(manifest), "jobs": 2}),
        (f"{args.pairs} pairs, 2-worker LocalCluster", {"source": str(manifest),
                                                         "cluster": True}),
        (f"{args.pairs} pairs, --jobs 2, filling a cache", {"source": str(manifest),
                                                            "jobs": 2, "cache": str(cache)}),
        (f"{args.pairs} pairs, fully cached rerun", {"source": str(manifest), "jobs": 2,
                                                     "cache": str(cache)}),
        (f"{args.pairs * (args.large // args.pairs)} pairs, --jobs 1", {"source": str(large),
                                                                       "jobs": 1}),
        (f"{args.pairs * (args.large // args.pairs)} pairs, --jobs 2", {"source": str(large),
                                                                       "jobs": 2}),
    ]
    for label, config in configs:
        config = {"cluster": False, "out": str(args.out / "scores.csv"), **config}
        result = run_config(**config)
        items = result["scored"] + result["failed"]
        rows.append({"configuration": label, "items": items, "seconds": result["seconds"],
                     "pairs_per_s": items / result["seconds"],
                     "from_cache": result["from_cache"], "failed": result["failed"],
                     "peak_rss_mb": result["peak_rss_mb"]})
        print(f"{label}: {items / result['seconds']:.1f} pairs/s, "
              f"{result['peak_rss_mb']:.0f} MB", flush=True)
    print("\n| configuration | pairs | s (incl. model loading) | pairs/s | from cache | "
          "peak RSS (MB, with workers) |\n|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['configuration']} | {row['items']} | {row['seconds']:.1f} | "
              f"{row['pairs_per_s']:.1f} | {row['from_cache']} | {row['peak_rss_mb']:.0f} |")
    small, big = rows[0]["peak_rss_mb"], rows[5]["peak_rss_mb"]
    print(f"\nRSS growth 200 → 2,000 pairs (--jobs 1): {100 * (big / small - 1):+.1f}%; "
          f"(--jobs 2): {100 * (rows[6]['peak_rss_mb'] / rows[1]['peak_rss_mb'] - 1):+.1f}%")
    (args.out / "batch.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
