"""No-reference handcrafted features on CLIVE: accuracy of an SVR per family, and speed.

Usage::

    python benchmarks/nr_features.py [--manifest ../shared/data/clive/manifest.csv]

Accuracy: seeded 5-fold split by content (every CLIVE image is its own content); on each
training part an RBF SVR (standardised inputs) is tuned by an inner 3-fold grouped
cross-validation over C and γ, then scored on the held-out fold. Reported as mean ± std
over the folds of SRCC, KRCC, PLCC and RMSE (0–100 scale), for (a) the 36 BRISQUE-like
NSS values, (b) the 30 pseudo-reference values, (c) the 9 cheap cues, (d) all 75.

Speed: ms per 500×500 CLIVE image for each extractor, next to scikit-image / SciPy
building blocks that compute a comparable quantity, in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fusion.datasets import read_manifest  # noqa: E402
from fusion.feature_table import compute_features  # noqa: E402
from fusion.features import NO_REFERENCE_EXTRACTORS  # noqa: E402
from fusion.io import load_image  # noqa: E402
from fusion.metrics import evaluate  # noqa: E402
from fusion.splits import ContentKFold  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"


def svr_scores(x: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int) -> dict[str, list]:
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVR

    results: dict[str, list] = {"srcc": [], "krcc": [], "plcc": [], "rmse": [], "params": []}
    for train, test in ContentKFold(5, seed=seed).split(groups, y):
        model = GridSearchCV(
            make_pipeline(StandardScaler(), SVR(kernel="rbf", epsilon=1.0)),
            {"svr__C": [1, 4, 16, 64, 256], "svr__gamma": ["scale", 0.003, 0.01, 0.03, 0.1]},
            cv=ContentKFold(3, seed=seed + 1), scoring="neg_root_mean_squared_error",
            n_jobs=1,
        )
        model.fit(x[train], y[train], groups=groups[train])
        metrics = evaluate(model.predict(x[test]), y[test], logistic=None)
        for key in ("srcc", "krcc", "plcc", "rmse"):
            results[key].append(metrics[key])
        results["params"].append(model.best_params_)
    return results


def speed_table(paths: list[Path], repeats: int) -> list[tuple[str, float, str, float]]:
    from scipy import ndimage
    from skimage.filters import laplace
    from skimage.measure import blur_effect
    from skimage.metrics import structural_similarity

    from fusion.features.pseudo_reference import median3x3

    images = [load_image(p) for p in paths]
    lumas = [img.luma for img in images]

    def timed(func) -> float:  # median over rounds of ms per image
        rounds = []
        for _ in range(repeats):
            start = time.perf_counter()
            for img, luma in zip(images, lumas, strict=True):
                func(img, luma)
            rounds.append((time.perf_counter() - start) / len(images) * 1e3)
        return statistics.median(rounds)

    rows = []
    peers = {
        "nss_brisque": ("MSCN via ndimage.gaussian_filter (1 scale, no fits)",
                        lambda img, y: (y - ndimage.gaussian_filter(y, 7 / 6, truncate=2.6))),
        "pseudo_reference": ("skimage SSIM vs median + Gaussian copies (2 of our 10 pairs)",
                             lambda img, y: [structural_similarity(
                                 y, ref, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, data_range=1.0)
                                 for ref in (ndimage.median_filter(y, 3),
                                             ndimage.gaussian_filter(y, 1.0))]),
        "cues": ("skimage filters.laplace variance + measure.blur_effect (2 of our 9 cues)",
                 lambda img, y: (laplace(y).var(), blur_effect(y))),
    }
    for extractor in NO_REFERENCE_EXTRACTORS:
        ours = timed(lambda img, y, e=extractor: e.compute(img))
        peer_name, peer = peers[extractor.name]
        rows.append((extractor.key, ours, peer_name, timed(peer)))
    rows.append(("median 3×3 (denoise pseudo-reference)",
                 timed(lambda img, y: median3x3(y)), "scipy.ndimage.median_filter",
                 timed(lambda img, y: ndimage.median_filter(y, 3, mode="mirror"))))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", type=Path, default=SHARED / "clive" / "manifest.csv")
    parser.add_argument("--cache", type=Path, default=ROOT / "benchmarks" / "results" /
                        "features.h5")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="first N images only")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    dataset = read_manifest(args.manifest, name="clive")
    if args.limit:
        dataset = dataset[: args.limit]
    start = time.perf_counter()
    table = compute_features(dataset, cache=args.cache, progress=True)
    print(f"# {dataset.summary()}\n# features: {table.computed} computed, {table.from_cache} "
          f"from cache, {len(table.errors)} errors, {time.perf_counter() - start:.0f} s\n")
    ok = table.ok
    y = dataset.scores[ok]
    groups = dataset.content_ids[ok]
    families = {
        "(a) NSS, BRISQUE-like (36)": [n for n in table.feature_names if n.startswith("nss_")],
        "(b) pseudo-reference (30)": [n for n in table.feature_names if n.startswith("pr_")],
        "(c) cheap cues (9)": [n for n in table.feature_names
                               if not n.startswith(("nss_", "pr_"))],
        "(d) all (75)": list(table.feature_names),
    }
    print("| features | SRCC | KRCC | PLCC | RMSE |")
    print("|---|---:|---:|---:|---:|")
    for label, names in families.items():
        columns = [table.feature_names.index(n) for n in names]
        scores = svr_scores(table.values[ok][:, columns], y, groups, args.seed)
        cells = [f"{np.mean(scores[k]):.3f} ± {np.std(scores[k]):.3f}"
                 for k in ("srcc", "krcc", "plcc")]
        cells.append(f"{np.mean(scores['rmse']):.2f} ± {np.std(scores['rmse']):.2f}")
        print(f"| {label} | " + " | ".join(cells) + " |")

    sample = [item.image for item in dataset[:20]]
    print(f"\n# speed: ms per image, median of {args.repeats} rounds over {len(sample)} "
          "CLIVE images (500×500), decoding excluded\n")
    print("| extractor | fusion-iqa ms | comparable building blocks | their ms |")
    print("|---|---:|---|---:|")
    total = 0.0
    for key, ours, peer_name, theirs in speed_table(sample, args.repeats):
        total += ours if "median" not in key else 0.0
        print(f"| {key} | {ours:.1f} | {peer_name} | {theirs:.1f} |")
    print(f"| **all 75 no-reference features** | **{total:.1f}** | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
