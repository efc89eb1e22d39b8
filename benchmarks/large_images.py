"""Large-image benchmark: time and peak memory of a prediction from 1 to 100 M pixels.

Usage::

    python benchmarks/large_images.py [--sizes 1 12 24 64 100] [--peer-max 24]

Each measurement runs in a fresh process, so that its peak resident memory (``ru_maxrss``)
is its own. The test image is the bundled ``coffee`` reference tiled up to a square of the
given size (uint8 RGB array, held in memory: decoding is not timed); the full-reference
row scores it against itself. Timed: one ``fusion.predict`` call after the model is
loaded; memory: the whole process, the input array included (3 bytes a pixel). The peer,
in the same run, is scikit-image's ``structural_similarity`` (Gaussian, σ = 1.5) on the
pair's BT.601 luma at full resolution, up to ``--peer-max`` M pixels.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_RUN = """
import json, resource, sys, time
import numpy as np
import fusion
side, what = {side}, {what!r}
reference = fusion.example_pair()[0]
image = np.tile(reference, (side // 240 + 1, side // 320 + 1, 1))[:side, :side]
if what == "peer":
    from skimage.metrics import structural_similarity
    luma = image.astype(np.float32) @ np.array([0.2989, 0.5870, 0.1140], np.float32)
    start = time.perf_counter()
    structural_similarity(luma, luma, gaussian_weights=True, sigma=1.5,
                          use_sample_covariance=False, data_range=255)
else:
    fusion.api.default_model(what)
    start = time.perf_counter()
    fusion.predict(image) if what == "nr" else fusion.predict(image, image)
seconds = time.perf_counter() - start
print(json.dumps({{"s": seconds,
                   "mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def _measure(side: int, what: str) -> dict[str, float]:
    result = subprocess.run([sys.executable, "-c", _RUN.format(side=side, what=what)],
                            capture_output=True, text=True, cwd=ROOT, check=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1, 12, 24, 64, 100],
                        help="image sizes in M pixels (square)")
    parser.add_argument("--peer-max", type=float, default=24,
                        help="largest size (M pixels) at which the peer runs")
    args = parser.parse_args(argv)
    print("| M pixels | side | NR predict s | NR peak MB | FR predict s | FR peak MB "
          "| peer: scikit-image SSIM s | peer peak MB |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for megapixels in args.sizes:
        side = round((megapixels * 1e6) ** 0.5)
        nr, fr = _measure(side, "nr"), _measure(side, "fr")
        if megapixels <= args.peer_max:
            peer = _measure(side, "peer")
            peer_cells = f"{peer['s']:.2f} | {peer['mb']:,.0f}"
        else:
            peer_cells = "not run | "
        print(f"| {megapixels:g} | {side:,} | {nr['s']:.2f} | {nr['mb']:,.0f} | "
              f"{fr['s']:.2f} | {fr['mb']:,.0f} | {peer_cells} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
