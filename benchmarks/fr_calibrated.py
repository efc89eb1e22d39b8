"""Full-reference fusion on the KADID-calibrated synthetic set: does it generalise?

Usage::

    python benchmarks/fr_calibrated.py [--jobs 2] [--folds 5] [--data ../shared/data]
    python benchmarks/fr_calibrated.py --quick    # 6 Kodak references at 256 px, levels 1/4/7
    python benchmarks/fr_calibrated.py --deep     # also the deep-feature similarity

Builds (or resumes) the set of :mod:`fusion.training.calibrated` — KADID-10k's 25
distortions at levels 1–7 of the Kodak, package and best-CLIVE references, each with the
KADID-10k mean rating of its (type, level) as target — computes the full-reference
handcrafted features (cached in ``benchmarks/results/fr_calibrated/features.h5``), and
prints, against the calibrated targets:

1. content-disjoint k-fold: the fused models (monotone and unconstrained stacker, and
   the tried monotone trees with kind ratios, :func:`kind_ratios`) against
   every single feature, overall, per reference group, inside each family, and on the
   four types of LIVE's kept-back sample pooled;
2. leave-one-family-out: for each family (blur, noise, compression, colour,
   exposure/contrast, spatial), trained on the other families of the training contents
   and tested on that family of the held-out contents (k folds, pooled);
3. the calibrated against the old level target (the monotone model trained on each,
   both scored against the calibrated targets);
4. the ceiling inside each family: the monotone stacker trained and tested on that family
   alone (content-disjoint k-fold), and the best blend of the family's best single
   feature with one other feature, its weight chosen on the family itself (an oracle, an
   upper bound for any fusion of two of the features there);
5. does a held-out family look new? The :func:`novelty` of its pairs' kind of damage to
   a model trained on the other families, and a model that uses it (tried): HaarPSI's
   own curve where the kind looks new, the kind-ratio trees elsewhere.

Results go to ``benchmarks/results/fr_calibrated/report.json``. A single feature's SRCC
is taken in its known direction (a lower-is-better feature is negated).
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

from fusion.datasets import Dataset  # noqa: E402
from fusion.feature_table import compute_features_parallel  # noqa: E402
from fusion.features import FULL_REFERENCE_EXTRACTORS  # noqa: E402
from fusion.kadid import FAMILIES, kadid_type  # noqa: E402
from fusion.metrics import evaluate  # noqa: E402
from fusion.model import FusionModel  # noqa: E402
from fusion.splits import ContentKFold  # noqa: E402
from fusion.stacking import fit_stacker  # noqa: E402
from fusion.training.calibrated import (  # noqa: E402
    calibrated_synthetic,
    group_of,
    reference_groups,
)

SHARED = ROOT.parent / "shared" / "data"
WORK = ROOT / "benchmarks" / "results" / "fr_calibrated"
#: The longer side of the quick run's pairs: a quarter of the pixels of the full set's
#: 512, still above every feature's smallest side (MS-SSIM's 161).
QUICK_SIDE = 256


def build(data: Path, jobs: int, *, quick: bool, work: Path) -> Dataset:
    """The calibrated synthetic set (generated once, then reused)."""
    if quick:  # a smoke run: six Kodak references at 256 px, three levels
        groups = reference_groups(data, work, clive_best=0, kodak=6, packages=False)
        return calibrated_synthetic(groups, work / "synthetic",
                                    data / "score_files" / "kadid10k" / "names_with_mos.txt",
                                    levels=(1, 4, 7), max_side=QUICK_SIDE, jobs=jobs)
    groups = reference_groups(data, work)
    return calibrated_synthetic(groups, work / "synthetic",
                                data / "score_files" / "kadid10k" / "names_with_mos.txt",
                                jobs=jobs, progress=True)


#: The fused models compared: row label → ``fused_predictions(model=...)``.
MODELS = {"fused (monotone)": "monotone", "fused (unconstrained)": "unconstrained",
          "monotone × kind ratios (tried)": "kind_ratios"}

#: Each feature's amount of change from an identical pair (0 there, growing with damage):
#: 1 − x for the similarities that top out at 1, |1 − x| for VIFp, the value itself for
#: GMSD and MSE. PSNR is MSE again, so it is left out.
AMOUNT_OF_CHANGE = {"haarpsi": "1-x", "ms_ssim": "1-x", "ssim": "1-x", "fsim": "1-x",
                    "fsimc": "1-x", "vifp": "|1-x|", "gmsd": "x", "mse": "x"}


def kind_ratios(values: np.ndarray, names: list[str], *, anchor: str = "haarpsi"
                ) -> np.ndarray:
    """log(change by each feature / change by the anchor): what kind of damage, not how much.

    A blur, a JPEG and a noise of the same HaarPSI move the other metrics by different
    amounts, so these ratios say which kind of distortion a pair has (and change less
    with its level than the metrics do).
    """
    def amount(name: str) -> np.ndarray:
        x = values[:, names.index(name)]
        rule = AMOUNT_OF_CHANGE[name]
        change = 1.0 - x if rule == "1-x" else np.abs(1.0 - x) if rule == "|1-x|" else x
        return np.log(np.clip(change, 0.0, None) + 1e-4)

    base = amount(anchor)
    return np.column_stack([amount(n) - base for n in AMOUNT_OF_CHANGE if n != anchor])


def fused_predictions(values: np.ndarray, targets: np.ndarray, contents: np.ndarray,
                      train: np.ndarray, test: np.ndarray, *, model: str,
                      seed: int, extractors: tuple[Any, ...]) -> np.ndarray:
    """Fit a full-reference model of kind ``model`` on ``train`` and predict ``test``.

    ``"monotone"`` and ``"unconstrained"`` are the stackers of :class:`FusionModel`
    (:func:`fusion.stacking.fit_stacker`), clipped to 0–100 as its scores are;
    ``"kind_ratios"`` (tried, not shipped) is boosted trees, monotone in each feature's
    known direction, given the :func:`kind_ratios` as well, with no constraint on them.
    """
    if model == "kind_ratios":
        from sklearn.ensemble import HistGradientBoostingRegressor

        names = [n for e in extractors for n in e.feature_names]
        signs = np.array([1 if b else -1 for e in extractors for b in e.higher_is_better])
        inputs = np.hstack([values * signs, kind_ratios(values, names)])
        constraints = [1] * values.shape[1] + [0] * (inputs.shape[1] - values.shape[1])
        trees = HistGradientBoostingRegressor(
            max_iter=300, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=20,
            l2_regularization=1.0, monotonic_cst=constraints, random_state=seed)
        trees.fit(inputs[train], targets[train])
        return np.asarray(trees.predict(inputs[test]))
    # the stacker FusionModel.fit fits on all its training items (the interval is not
    # scored here, so its cross-calibration refits are skipped)
    unfitted = FusionModel("fr", extractors)
    stacker = fit_stacker(list(unfitted.feature_names), values[train], targets[train],
                          contents[train], seed=seed,
                          directions=unfitted.feature_directions if model == "monotone"
                          else None)
    return np.clip(np.asarray(stacker.predict(values[test])), 0.0, 100.0)


def single_feature_srcc(values: np.ndarray, targets: np.ndarray, index: np.ndarray,
                        names: list[str], signs: list[int]) -> dict[str, float]:
    """SRCC of each feature (in its known direction) on the rows ``index``."""
    return {n: evaluate(s * values[index, k], targets[index], logistic=None)["srcc"]
            for k, (n, s) in enumerate(zip(names, signs, strict=True))}


def best_single_feature(values: np.ndarray, targets: np.ndarray, index: np.ndarray,
                        names: list[str], signs: list[int]) -> tuple[dict[str, float], str]:
    """:func:`single_feature_srcc` on ``index`` and the name of the feature ranking best."""
    singles = single_feature_srcc(values, targets, index, names, signs)
    return singles, max(singles, key=lambda k: singles[k])


def cross_validated(values: np.ndarray, targets: np.ndarray, contents: np.ndarray,
                    folds: int, *, model: str, extractors: tuple[Any, ...],
                    seed: int = 0,
                    train_mask: np.ndarray | None = None,
                    test_mask: np.ndarray | None = None,
                    fit_targets: np.ndarray | None = None) -> np.ndarray:
    """Pooled out-of-fold predictions (NaN outside ``test_mask``)."""
    predicted = np.full(len(targets), np.nan)
    fit_on = targets if fit_targets is None else fit_targets
    for fold, (train, test) in enumerate(ContentKFold(folds, seed=seed).split(
            contents, targets)):
        if train_mask is not None:
            train = train[train_mask[train]]
        if test_mask is not None:
            test = test[test_mask[test]]
        if test.size:
            predicted[test] = fused_predictions(values, fit_on, contents, train, test,
                                                model=model, seed=seed + fold,
                                                extractors=extractors)
    return predicted


def print_table_head(title: str, columns: list[str], *, first: bool = False) -> None:
    """Print a Markdown section title (after a blank line unless ``first``) and table head."""
    print(("" if first else "\n") + f"## {title}")
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))


#: The distortion types of the kept-back LIVE Release 2 sample that KADID-10k shares
#: (JPEG, JPEG 2000 for fast fading's compression, Gaussian blur, white noise).
LIVE_TYPES = ("kadid_jpeg", "kadid_jpeg2000", "kadid_gaussian_blur", "kadid_white_noise")


def within_families(rows: dict[str, np.ndarray], values: np.ndarray, targets: np.ndarray,
                    family: np.ndarray, distortions: list[str], names: list[str],
                    signs: list[int]) -> dict[str, Any]:
    """Out-of-fold SRCC inside each family, and on LIVE's four types pooled.

    The pooled k-fold SRCC rewards ranking the families against each other; a kept-back
    database of a few types asks for the ranking inside them, where one strong metric
    is hard to beat. Prints one row per subset: each fused model, then the best single
    feature there.
    """
    subsets = {f: family == f for f in FAMILIES}
    subsets["LIVE's four types"] = np.isin(np.asarray(distortions), LIVE_TYPES)
    print_table_head("Inside each family (same out-of-fold predictions), SRCC vs calibrated "
                     "target", ["subset", "pairs", *rows, "best single feature"])
    result: dict[str, Any] = {}
    for label, mask in subsets.items():
        fused = {model: evaluate(predicted[mask], targets[mask], logistic=None)["srcc"]
                 for model, predicted in rows.items()}
        singles, best = best_single_feature(values, targets, np.flatnonzero(mask), names,
                                            signs)
        result[label] = {"n": int(mask.sum()), **fused, "best_single": [best, singles[best]]}
        print(f"| {label} | {int(mask.sum())} | "
              + " | ".join(f"{v:.3f} ({v - singles[best]:+.3f})" for v in fused.values())
              + f" | {best} {singles[best]:.3f} |")
    return result


#: Weights tried for the oracle blend of :func:`in_family_ceiling` (on z-scores).
BLEND_WEIGHTS = (0.1, 0.25, 0.5, 1.0, 2.0)


def best_blend(values: np.ndarray, targets: np.ndarray, index: np.ndarray,
               names: list[str], signs: list[int], anchor: str) -> tuple[float, str, float]:
    """The best SRCC of ``z(anchor) + w·z(other)`` on ``index``, over features and weights.

    Both z-scores are taken in the features' known directions on ``index`` itself, so this
    is an oracle: an upper bound for what a fusion of ``anchor`` with one other feature can
    reach there. Returns (SRCC, the other feature, its weight).
    """
    def zscore(k: int) -> np.ndarray:
        x = signs[k] * values[index, k]
        return (x - x.mean()) / (x.std() + 1e-12)

    base = zscore(names.index(anchor))
    best = (-1.0, "", 0.0)
    for k, name in enumerate(names):
        if name == anchor:
            continue
        other = zscore(k)
        for weight in BLEND_WEIGHTS:
            srcc = evaluate(base + weight * other, targets[index], logistic=None)["srcc"]
            best = max(best, (srcc, name, weight))
    return best


def in_family_ceiling(values: np.ndarray, targets: np.ndarray, contents: np.ndarray,
                      family: np.ndarray, names: list[str], signs: list[int], folds: int,
                      extractors: tuple[Any, ...]) -> dict[str, Any]:
    """How far a fusion of the present features can go inside each family.

    The monotone stacker trained on that family alone (content-disjoint k-fold) and the
    oracle :func:`best_blend` of the best single feature with one other. Where both stay
    at or below the best single feature, no fusion of these features beats it on that
    family held out either: the family needs a feature that ranks it better.
    """
    print_table_head("Ceiling inside each family (trained and tested on it), SRCC vs "
                     "calibrated target",
                     ["family", "best single feature", "monotone, trained inside",
                      "best blend of the best single with one other (oracle)"])
    result: dict[str, Any] = {}
    for held in FAMILIES:
        mask = family == held
        index = np.flatnonzero(mask)
        singles, best = best_single_feature(values, targets, index, names, signs)
        predicted = cross_validated(values, targets, contents, folds, model="monotone",
                                    train_mask=mask, test_mask=mask, extractors=extractors)
        inside = evaluate(predicted[mask], targets[mask], logistic=None)["srcc"]
        blend, other, weight = best_blend(values, targets, index, names, signs, best)
        result[held] = {"best_single": [best, singles[best]], "monotone_inside": inside,
                        "best_blend": [other, weight, blend]}
        top = singles[best]
        print(f"| {held} | {best} {top:.3f} | {inside:.3f} ({inside - top:+.3f}) "
              f"| + {weight:g}·{other}: {blend:.3f} ({blend - top:+.3f}) |")
    return result


#: Neighbours averaged by :func:`novelty`, and the quantile of the familiar distances it
#: divides by.
NOVELTY_NEIGHBOURS, NOVELTY_QUANTILE = 10, 0.9


def novelty(signatures: np.ndarray, contents: np.ndarray, train: np.ndarray,
            test: np.ndarray) -> np.ndarray:
    """How new the kind of damage of each ``test`` pair is to a model fitted on ``train``.

    The mean distance from a test pair to its nearest training pairs in ``signatures``
    (standardised on the training pairs), divided by the :data:`NOVELTY_QUANTILE`
    quantile of the same distance between the two halves of the training contents —
    kinds the model has seen, on photographs it has not (neighbours in a half-size set lie
    a little further away, so this errs towards "new"). About 1 or below: the kind looks
    familiar; well above 1: it looks new.
    """
    from sklearn.neighbors import NearestNeighbors

    centre, scale = signatures[train].mean(axis=0), signatures[train].std(axis=0) + 1e-9

    def distance(fit_rows: np.ndarray, query_rows: np.ndarray) -> np.ndarray:
        neighbours = NearestNeighbors(n_neighbors=min(NOVELTY_NEIGHBOURS, len(fit_rows)))
        neighbours.fit((signatures[fit_rows] - centre) / scale)
        return neighbours.kneighbors((signatures[query_rows] - centre) / scale)[0].mean(axis=1)

    seen = np.unique(contents[train])
    first_half = np.isin(contents[train], seen[::2])
    familiar = distance(train[first_half], train[~first_half])
    return distance(train, test) / np.quantile(familiar, NOVELTY_QUANTILE)


def novelty_fallback(values: np.ndarray, targets: np.ndarray, contents: np.ndarray,
                     family: np.ndarray, names: list[str], folds: int,
                     extractors: tuple[Any, ...]) -> dict[str, Any]:
    """Section 5: per held-out family, how new its pairs look, and the fallback model.

    The fallback (tried) predicts with the kind-ratio trees where :func:`novelty` ≤ 1 and
    with HaarPSI's own isotonic curve (ties broken by HaarPSI) where the kind looks new,
    so on a family that looks new it ranks as HaarPSI does. Identical pairs are left out
    of the training pairs here (their ratios are 0/0).
    """
    from sklearn.isotonic import IsotonicRegression

    signatures = kind_ratios(values, names)
    anchor = values[:, names.index("haarpsi")]
    print_table_head("Does a held-out family look new? (kind ratios, leave-one-family-out)",
                     ["held-out family", "median novelty", "share > 1",
                      "fallback: HaarPSI where new, kind ratios elsewhere (tried)", "haarpsi"])
    result: dict[str, Any] = {}
    for held in FAMILIES:
        mask = family == held
        scores, predicted = np.full(len(targets), np.nan), np.full(len(targets), np.nan)
        for fold, (train, test) in enumerate(ContentKFold(folds, seed=0).split(contents,
                                                                                targets)):
            train = train[(family[train] != held) & (family[train] != "none")]
            test = test[mask[test]]
            curve = IsotonicRegression(out_of_bounds="clip").fit(anchor[train],
                                                                  targets[train])
            fallback = curve.predict(anchor[test]) + 1e-6 * anchor[test]
            learned = fused_predictions(values, targets, contents, train, test,
                                        model="kind_ratios", seed=fold, extractors=extractors)
            scores[test] = novelty(signatures, contents, train, test)
            predicted[test] = np.where(scores[test] > 1.0, fallback, learned)
        fused = evaluate(predicted[mask], targets[mask], logistic=None)["srcc"]
        alone = evaluate(anchor[mask], targets[mask], logistic=None)["srcc"]
        result[held] = {"median_novelty": float(np.median(scores[mask])),
                        "share_new": float(np.mean(scores[mask] > 1.0)),
                        "fallback": fused, "haarpsi": alone}
        row = result[held]
        print(f"| {held} | {row['median_novelty']:.2f} | {100 * row['share_new']:.0f} % "
              f"| {fused:.3f} ({fused - alone:+.3f}) | {alone:.3f} |")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--quick", action="store_true",
                        help="6 Kodak references at 256 px, levels 1/4/7, 3 folds, "
                             "in a separate folder")
    parser.add_argument("--out", type=Path, default=WORK)
    parser.add_argument("--deep", action="store_true",
                        help="add the deep-feature similarity (fusion.features.deep_similarity)")
    args = parser.parse_args(argv)
    extractors: tuple[Any, ...] = FULL_REFERENCE_EXTRACTORS
    if args.deep:
        from fusion.features.deep_similarity import DeepSimilarityExtractor

        extractors = (*FULL_REFERENCE_EXTRACTORS, DeepSimilarityExtractor())
    work = args.out / "quick" if args.quick else args.out
    work.mkdir(parents=True, exist_ok=True)
    folds = 3 if args.quick else args.folds
    started = time.perf_counter()
    dataset = build(args.data, args.jobs, quick=args.quick, work=work)
    values = compute_features_parallel(dataset, extractors, work / "features.h5",
                                       jobs=args.jobs, progress=True)
    targets = dataset.scores
    contents = dataset.content_ids
    names = [n for e in extractors for n in e.feature_names]
    signs = [1 if b else -1 for e in extractors for b in e.higher_is_better]
    distortions = [str(d) for d in dataset.distortions]
    family = np.array([kadid_type(d).family if d != "none" else "none" for d in distortions])
    groups = np.array([group_of(c) for c in contents])
    levels = dataset.levels
    report: dict[str, Any] = {"dataset": dataset.description, "n": len(dataset),
                              "features": names}
    print(f"{len(dataset)} pairs: {dataset.description}\n")

    # 1. content-disjoint k-fold
    distorted = family != "none"
    rows = {}
    for label, model in MODELS.items():
        predicted = cross_validated(values, targets, contents, folds, model=model,
                                    extractors=extractors)
        rows[label] = predicted
    kfold: dict[str, Any] = {}
    print_table_head(f"Content-disjoint {folds}-fold, distorted pairs, vs calibrated target",
                     ["model", "all SRCC", "KRCC", "PLCC", "RMSE",
                      *(f"{g} SRCC" for g in sorted(set(groups)))], first=True)
    for label, predicted in rows.items():
        whole = evaluate(predicted[distorted], targets[distorted], logistic=None)
        by_group = {g: evaluate(predicted[distorted & (groups == g)],
                                targets[distorted & (groups == g)], logistic=None)["srcc"]
                    for g in sorted(set(groups))}
        kfold[label] = {**whole, "groups": by_group}
        print(f"| {label} | {whole['srcc']:.3f} | {whole['krcc']:.3f} | {whole['plcc']:.3f} | "
              f"{whole['rmse']:.1f} | " + " | ".join(f"{v:.3f}" for v in by_group.values())
              + " |")
    singles = single_feature_srcc(values, targets, np.flatnonzero(distorted), names, signs)
    group_singles = {g: single_feature_srcc(values, targets,
                                            np.flatnonzero(distorted & (groups == g)),
                                            names, signs)
                     for g in sorted(set(groups))}
    for name, value in sorted(singles.items(), key=lambda kv: -kv[1]):
        by_group = {g: per_group[name] for g, per_group in group_singles.items()}
        kfold[name] = {"srcc": value, "groups": by_group}
        print(f"| {name} | {value:.3f} | | | | " + " | ".join(f"{v:.3f}" for v in
                                                             by_group.values()) + " |")
    report["kfold"] = kfold
    report["kfold_by_family"] = within_families(rows, values, targets, family, distortions,
                                                names, signs)

    # 2. leave-one-family-out
    print_table_head(f"Leave-one-family-out ({folds} content folds, pooled), SRCC vs "
                     "calibrated target", ["held-out family", "pairs", *MODELS,
                                           "best single feature", "margin (monotone)"])
    lofo: dict[str, Any] = {}
    for held_out in FAMILIES:
        test_mask = family == held_out
        result: dict[str, Any] = {"n": int(test_mask.sum())}
        for model in MODELS.values():
            predicted = cross_validated(values, targets, contents, folds,
                                        model=model, train_mask=~test_mask,
                                        test_mask=test_mask, extractors=extractors)
            result[model] = evaluate(predicted[test_mask], targets[test_mask],
                                     logistic=None)["srcc"]
        singles, best = best_single_feature(values, targets, np.flatnonzero(test_mask),
                                            names, signs)
        result["singles"] = singles
        result["best_single"] = [best, singles[best]]
        lofo[held_out] = result
        print(f"| {held_out} | {result['n']} | "
              + " | ".join(f"{result[m]:.3f}" for m in MODELS.values())
              + f" | {best} {singles[best]:.3f} | {result['monotone'] - singles[best]:+.3f} |")
    report["leave_one_family_out"] = lofo

    # 3. calibrated against level target
    level_target = np.where(levels > 0, 100.0 * (1 - np.minimum(levels, 6) / 6), 100.0)
    predicted = cross_validated(values, targets, contents, folds, model="monotone",
                                fit_targets=level_target, extractors=extractors)
    versus = evaluate(predicted[distorted], targets[distorted], logistic=None)["srcc"]
    report["level_target_srcc"] = versus
    print(f"\nTrained on the level target 100·(1 − level/6) instead: SRCC {versus:.3f} "
          f"against the calibrated target (calibrated: "
          f"{kfold['fused (monotone)']['srcc']:.3f}).")

    # 4. what a fusion of these features can reach inside each family
    report["in_family_ceiling"] = in_family_ceiling(values, targets, contents, family, names,
                                                    signs, folds, extractors)
    # 5. can a model tell that a held-out family is new?
    report["novelty"] = novelty_fallback(values, targets, contents, family, names, folds,
                                         extractors)
    report["seconds"] = time.perf_counter() - started
    name = "report_deep.json" if args.deep else "report.json"
    (work / name).write_text(json.dumps(report, indent=1))
    print(f"\n{report['seconds']:.0f} s; report in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
