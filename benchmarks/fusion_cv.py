"""Fused model against its single components on CLIVE, seeded 5-fold by content.

Usage::

    python benchmarks/fusion_cv.py [--backbone benchmarks/results/efficientnet_lite0_nr.tflite]

For each fold (``ContentKFold(5, seed=0)``; every CLIVE image is its own content) the
fused model (:meth:`FusionModel.fit`: stacker + 90 % conformal interval, fitted on the
four training folds only) is compared with each component alone, fitted on the same
folds: the EfficientNet-Lite0 backbone (ridge on its pooled trunk features) and each
handcrafted family (RBF SVR, C and γ tuned by inner grouped CV). Reported: SRCC, KRCC,
PLCC (after the VQEG 5-parameter logistic) and RMSE, mean ± std over folds, and the
interval's coverage on the held-out folds.

Features come from the HDF5 cache filled by ``benchmarks/train_defaults.py nr``. The
backbone's heads are not used by either side (the stacker ignores their outputs), so
reusing its file leaks nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))

from backbones._torch_weights import sha256_of  # noqa: E402
from fusion.datasets import read_manifest  # noqa: E402
from fusion.feature_table import compute_features  # noqa: E402
from fusion.features import NO_REFERENCE_EXTRACTORS  # noqa: E402
from fusion.metrics import evaluate  # noqa: E402
from fusion.model import BackboneExtractor, FusionModel  # noqa: E402
from fusion.splits import ContentKFold  # noqa: E402
from fusion.stacking import column_blocks  # noqa: E402


def _svr(seed: int):  # type: ignore[no-untyped-def]
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVR

    return GridSearchCV(make_pipeline(StandardScaler(), SVR(epsilon=1.0)),
                        {"svr__C": [1, 4, 16, 64], "svr__gamma": ["scale", 0.01, 0.03]},
                        cv=ContentKFold(3, seed=seed + 1), n_jobs=1)


def _ridge():  # type: ignore[no-untyped-def]
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-1, 5, 13)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", type=Path,
                        default=ROOT / "benchmarks" / "results" / "efficientnet_lite0_nr.tflite")
    parser.add_argument("--cache", type=Path,
                        default=ROOT / "benchmarks" / "results" / "features.h5")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    dataset = read_manifest(SHARED / "clive" / "manifest.csv", name="clive")
    backbone = BackboneExtractor("efficientnet_lite0", args.backbone, sha256_of(args.backbone))
    extractors = [backbone, *NO_REFERENCE_EXTRACTORS]
    table = compute_features(dataset, extractors, cache=args.cache, progress=True)
    names = list(table.feature_names)
    blocks = column_blocks(names)
    x, y, groups = table.values, dataset.scores, dataset.content_ids
    families = {
        "backbone efficientnet_lite0 (ridge on pooled trunk features)": blocks["backbone"],
        "handcrafted: NSS (SVR)": [i for i, n in enumerate(names) if n.startswith("nss_")],
        "handcrafted: pseudo-reference (SVR)": [i for i, n in enumerate(names)
                                                if n.startswith("pr_")],
        "handcrafted: all 75 (SVR)": blocks["handcrafted"],
    }
    results: dict[str, list[dict[str, float]]] = {k: [] for k in ["fused", *families]}
    coverage = []
    for fold, (train, test) in enumerate(ContentKFold(5, seed=args.seed).split(dataset)):
        model = FusionModel.fit("nr", extractors, x[train], y[train], groups[train],
                                seed=args.seed + fold)
        raw = np.asarray(model.stacker.predict(x[test]))
        results["fused"].append(evaluate(model.interval.predict(raw), y[test]))
        bounds = model.interval.predict_interval(raw)
        coverage.append(float(np.mean((y[test] >= bounds[:, 0]) & (y[test] <= bounds[:, 1]))))
        for label, columns in families.items():
            learner = _ridge() if label.startswith("backbone") else _svr(args.seed)
            if label.startswith("backbone"):
                learner.fit(x[train][:, columns], y[train])
            else:
                learner.fit(x[train][:, columns], y[train], groups=groups[train])
            results[label].append(evaluate(learner.predict(x[test][:, columns]), y[test]))
        print(f"fold {fold}: fused SRCC {results['fused'][-1]['srcc']:.3f}, coverage "
              f"{coverage[-1]:.3f}", file=sys.stderr)

    def cell(rows: list[dict[str, float]], key: str, digits: int = 3) -> str:
        values = [r[key] for r in rows]
        return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}"

    print(f"# CLIVE share, {len(dataset)} images, 5-fold by content (seed {args.seed})\n")
    print("| model | SRCC | KRCC | PLCC (logistic) | RMSE |")
    print("|---|---:|---:|---:|---:|")
    for label, rows in results.items():
        print(f"| {'**fused**' if label == 'fused' else label} | {cell(rows, 'srcc')} | "
              f"{cell(rows, 'krcc')} | {cell(rows, 'plcc_logistic')} | "
              f"{cell(rows, 'rmse', 2)} |")
    best_single = max(np.mean([r["srcc"] for r in rows]) for label, rows in results.items()
                      if label != "fused")
    fused = np.mean([r["srcc"] for r in results["fused"]])
    print(f"\nfused − best single component: {fused - best_single:+.3f} SRCC")
    print(f"90 % interval coverage on held-out folds: {np.mean(coverage):.3f} "
          f"(per fold {', '.join(f'{c:.3f}' for c in coverage)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
