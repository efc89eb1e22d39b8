"""A synthetic-quality input for the no-reference fusion: does it earn its place on CLIVE?

Usage::

    python benchmarks/nr_synthetic.py [--data ../shared/data] [--out DIR]
                                      [--ablation DIR] [--work DIR] [--quick]

The head: a ridge (standardised, α by leave-one-out) on EfficientNet-Lite0's pooled
features (every stage, the mean over the 4-patch grid of the ``fast``/``accurate`` Lite0
block) of the distorted images of the KADID-calibrated synthetic set
(``benchmarks/fr_calibrated.py``: KADID-10k's 25 distortions at levels 1–7, target = the
KADID-10k mean rating of each (type, level)), fitted on the distorted images alone — a
no-reference head with a human-calibrated target. The set's CLIVE-referenced part is left
out, so the head never sees a CLIVE photograph. Measured:

* on the synthetic set itself, content-disjoint 5-fold (does the head learn the damage?);
* on CLIVE: the head's score alone (it was never fitted on CLIVE, so no cross-validation
  is needed), and the project's stacker with the accurate preset's blocks (Lite0 4 /
  Lite1 9 / Lite2 6 patches, the features of ``benchmarks/nr_ablation.py``: run it first)
  + the 75 handcrafted values, with and without the head's score as one more input
  (``bb:synthetic:q_tuned``, the stacker's ``tuned_quality`` block), on the ablation's
  content-disjoint 5 folds.

``--quick`` (the test suite's variant): the quick synthetic set (six Kodak references
at 256 px, three levels), the first 80 CLIVE photographs, Lite0 only, 3 folds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import fr_calibrated  # noqa: E402
import nr_ablation  # noqa: E402

from fusion.metrics import srcc  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
BACKBONE = "efficientnet_lite0"
PATCHES = 4


def synthetic_features(data: Path, work: Path, ablation: Path, quick: bool
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lite0 features, targets and content ids of the synthetic distorted images (cached)."""
    from PIL import Image as PILImage

    from backbones.patches import grid_positions, take_patches
    from backbones.runtime import LiteRTFunction
    from fusion.training.calibrated import group_of

    dataset = fr_calibrated.build(data, 1, quick=quick, work=work)
    keep = [i for i, item in enumerate(dataset) if group_of(item.content_id) != "clive_best"]
    cache = work / f"nr_synthetic_{BACKBONE}_p{PATCHES}_{len(keep)}.npz"
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as stored:
            return stored["features"], stored["targets"], stored["contents"]
    graph, _ = nr_ablation.export_stage_graph(BACKBONE, ablation)
    run = LiteRTFunction(graph, num_threads=2)
    rows = []
    for index in keep:
        with PILImage.open(dataset.items[index].image) as opened:
            rgb = np.asarray(opened.convert("RGB"), np.float32) / 255
        positions = grid_positions(*rgb.shape[:2], size=nr_ablation.PATCH,
                                   max_patches=PATCHES)
        rows.append(run(take_patches(rgb, positions, size=nr_ablation.PATCH)).mean(axis=0))
    features = np.asarray(rows, np.float64)
    targets = np.asarray(dataset.scores[keep], np.float64)
    contents = np.asarray([dataset.items[i].content_id for i in keep])
    np.savez(cache, features=features, targets=targets, contents=contents)
    return features, targets, contents


def synthetic_head() -> Any:
    """The head: standardised ridge, α by leave-one-out."""
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-1, 5, 13)))


def within_synthetic(features: np.ndarray, targets: np.ndarray, contents: np.ndarray,
                     folds: int) -> float:
    """Content-disjoint k-fold SRCC of the head on the synthetic set (pooled out-of-fold)."""
    from fusion.splits import ContentKFold

    predicted = np.empty_like(targets)
    for train, test in ContentKFold(folds, seed=0).split(contents, targets):
        predicted[test] = synthetic_head().fit(features[train], targets[train]
                                               ).predict(features[test])
    return srcc(predicted, targets)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=nr_ablation.SHARED)
    parser.add_argument("--out", type=Path, default=RESULTS / "nr_synthetic")
    parser.add_argument("--ablation", type=Path, default=RESULTS / "nr_ablation",
                        help="the work folder of nr_ablation.py (its feature caches)")
    parser.add_argument("--work", type=Path, default=fr_calibrated.WORK,
                        help="the work folder of fr_calibrated.py (the synthetic set)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    clive = nr_ablation.clive_share(args.data, args.quick)
    if clive is None:
        return 2
    folds = 3 if args.quick else 5
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    features, targets, contents = synthetic_features(args.data, args.work, args.ablation,
                                                     args.quick)
    inside = within_synthetic(features, targets, contents, folds)
    print(f"synthetic head on the synthetic set ({len(targets)} distorted images, "
          f"content-disjoint {folds}-fold): SRCC {inside:.3f}", flush=True)
    head = synthetic_head().fit(features, targets)
    backbones = nr_ablation.BACKBONES[:1] if args.quick else nr_ablation.BACKBONES
    sampled = {n: nr_ablation.sampled_features(n, clive, args.ablation) for n in backbones}
    quality = head.predict(sampled[BACKBONE][f"p{PATCHES}"])
    alone = srcc(quality, clive.scores)
    print(f"synthetic head alone on CLIVE ({len(clive)} photographs): SRCC {alone:.3f}",
          flush=True)
    patches = dict(zip(nr_ablation.BACKBONES, ("p4", "p9", "p6"), strict=True))
    blocks = {n.replace("efficientnet_", ""): sampled[n][patches[n]] for n in backbones}
    hand, hand_names = nr_ablation.handcrafted_features(clive, args.ablation)
    scores, groups = clive.scores, clive.content_ids
    rows = [nr_ablation.measured_row("accurate preset's blocks + handcrafted", blocks, hand,
                                     hand_names, scores, groups, folds),
            nr_ablation.measured_row("+ synthetic-quality head", blocks,
                                     np.c_[hand, quality],
                                     [*hand_names, "bb:synthetic:q_tuned"], scores, groups,
                                     folds)]
    print("\n| configuration | SRCC | PLCC | values |\n|---|---|---|---:|")
    for row in rows:
        print(nr_ablation.markdown_row(row))
    report = {"synthetic_items": len(targets), "clive_items": len(clive), "folds": folds,
              "synthetic_kfold_srcc": inside, "clive_head_alone_srcc": alone, "rows": rows,
              "seconds": round(time.perf_counter() - start, 1)}
    (args.out / ("report_quick.json" if args.quick else "report.json")).write_text(
        json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
