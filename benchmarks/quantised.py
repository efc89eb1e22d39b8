"""What the float16 backbone export changes: scores of the examples, and SRCC on CLIVE.

Usage::

    python benchmarks/quantised.py [--preset accurate] [--data ../shared/data]

The embedded no-reference bundle of the preset ships its backbones with float16 weights
(:func:`fusion.training.fused.reexport_backbones`). This script copies the bundle,
re-exports the copy's backbones in float32 (Keras's own exporter, from the same trained
model), and scores with both — same stacker, same interval — the three bundled example
images (distorted and reference) and the held-out part of the CLIVE share (the bundle's own
split; ``--all`` scores all 696). It prints the largest absolute score change, the SRCC
of each against the human scores, and each graph's file size. Needs the train extra.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import fusion  # noqa: E402
from fusion.datasets import read_manifest  # noqa: E402
from fusion.metrics import srcc  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"


def main(argv: list[str] | None = None) -> int:
    from fusion.api import default_bundle_path
    from fusion.training.fused import heldout_split, reexport_backbones

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="accurate", choices=("accurate", "fast"))
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--all", action="store_true", help="score all 696 CLIVE images")
    args = parser.parse_args(argv)
    shipped = default_bundle_path("nr", preset=args.preset)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "float32"
        shutil.copytree(shipped, copy)
        reexport_backbones(copy, precision="float32")
        models = {"float16 (shipped)": fusion.load(shipped), "float32": fusion.load(copy)}
        sizes = {label: sum(p.stat().st_size for p in (folder / "backbones").glob("*.tflite"))
                 for label, folder in (("float16 (shipped)", shipped), ("float32", copy))}
        images = [image for name in fusion.EXAMPLE_NAMES for image in fusion.example_pair(name)]
        example_scores = {label: np.array([m.predict(image).score for image in images])
                          for label, m in models.items()}
        clive = read_manifest(args.data / "clive" / "manifest.csv", name="clive")
        items = np.arange(len(clive)) if args.all else heldout_split(clive)[1]
        paths = [str(clive[int(i)].image) for i in items]
        clive_scores = {label: np.array([p.score for p in m.predict_batch(paths)])
                        for label, m in models.items()}
    change = np.abs(example_scores["float16 (shipped)"] - example_scores["float32"])
    clive_change = np.abs(clive_scores["float16 (shipped)"] - clive_scores["float32"])
    observed = clive.scores[items]
    print(f"| {args.preset} backbones | graph files | CLIVE SRCC (n = {len(items)}) |")
    print("|---|---:|---:|")
    for label in models:
        print(f"| {label} | {sizes[label] / 1e6:.1f} MB | "
              f"{srcc(clive_scores[label], observed):.4f} |")
    print(f"\nlargest score change, {len(images)} example images: {change.max():.3f} points "
          f"(mean {change.mean():.3f}); on CLIVE: {clive_change.max():.3f} "
          f"(mean {clive_change.mean():.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
