"""Quality-tuned trunks on CLIVE, cross-fitted: what fine-tuning adds to the fusion.

Usage::

    python benchmarks/nr_tuning.py [--data ../shared/data] [--out DIR]
                                   [--backbones efficientnet_lite0,...] [--quick]
                                   [--start-stage 6] [--epochs 12]

For each backbone, :func:`fusion.training.tuning.cross_fitted_quality` tunes the last
stage and head convolution of the ImageNet trunk on four of five content-disjoint folds
of the CLIVE share (the folds of ``benchmarks/nr_ablation.py``: seeded
:class:`fusion.splits.ContentKFold`) and scores the fifth: every image's tuned quality
comes from a trunk that never saw it. Then the same five folds measure the project's
stacker (:func:`fusion.stacking.build_stacker`) on the frozen features of
``nr_ablation.py`` (run it first: this script reads its feature caches) with and without
the cross-fitted tuned qualities (``bb:<backbone>:q_tuned``, the stacker's
``tuned_quality`` block). Fold ``k``'s test images are scored by the trunk tuned without
fold ``k``; the stacker's training images by trunks tuned without their own folds (the
issue's cross-fitting; the stacker's few weights are the only path by which fold ``k``
reaches fold ``k``'s scores).

The fullest configuration (the accurate preset's blocks + tuned qualities; with ``--quick``,
to stay quick, the tuned qualities + handcrafted) also gets its 90 % interval measured
over the same folds, fitted per fold as :meth:`fusion.FusionModel.fit` fits it, with a
constant width and with the width by predicted score
(:class:`calibrators.NormalisedConformalInterval`): coverage and mean half-width.

``--start-stage`` tunes from an earlier stage (5: stages 5 and 6 and the head, from
cached stage-4 activations; about three times the work of the default 6), ``--epochs``
changes the epoch budget (early stopping still keeps the best epoch), ``--average-from k``
keeps the mean of the weights of epochs k … the last instead of the best epoch's
(stochastic weight averaging); results of a setting other than the default go to their
own files.

Tuning is the slow part (40–45 minutes a backbone from stage 5 here), so every
backbone's cross-fitted qualities are also kept in the repository,
``benchmarks/figures/nr_tuning_qualities<variant>.csv`` (one row an image: its file, its
held-out fold, one column a backbone) with the fold reports beside it (``.json``). A later
run reads them from there instead of tuning again (``--retune`` tunes anyway and rewrites
them), so the stacker rows, and any experiment on the tuned qualities, take minutes on a
fresh checkout.

``--quick``: Lite0, 80 images, 3 folds, 2 epochs (the test suite's variant).
"""

from __future__ import annotations

import argparse
import csv
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

import nr_ablation  # noqa: E402
from train_defaults import ACCURATE_PATCHES  # noqa: E402

from fusion.metrics import plcc, srcc  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
FIGURES = ROOT / "benchmarks" / "figures"


def image_names(dataset: Any) -> list[str]:
    """Each item's image as ``<folder>/<file>`` (how the stored qualities name it)."""
    return [f"{item.image.parent.name}/{item.image.name}" for item in dataset]


def read_stored(stem: Path, name: str, dataset: Any
                ) -> tuple[np.ndarray, list[dict[str, Any]]] | None:
    """A backbone's stored cross-fitted qualities and fold reports, if they match the dataset."""
    found = _stored_rows(stem, dataset)
    if found is None or name not in found[0][0] or name not in found[1]:
        return None
    rows, stored_reports = found
    return np.array([float(r[name]) for r in rows]), stored_reports[name]


def _stored_rows(stem: Path, dataset: Any
                 ) -> tuple[list[dict[str, str]], dict[str, Any]] | None:
    """The stored table's rows and the fold reports, if both exist and name the dataset's
    images in its order."""
    table, reports = stem.with_suffix(".csv"), stem.with_suffix(".json")
    if not (table.is_file() and reports.is_file()):
        return None
    with table.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if [r["image"] for r in rows] != image_names(dataset):
        return None
    return rows, json.loads(reports.read_text())


def write_stored(stem: Path, dataset: Any, folds: np.ndarray, tuned: dict[str, np.ndarray],
                 reports: dict[str, list[dict[str, Any]]]) -> None:
    """Write (merging with what is there) the cross-fitted qualities and fold reports."""
    table, report_file = stem.with_suffix(".csv"), stem.with_suffix(".json")
    columns: dict[str, Any] = {}
    stored_reports: dict[str, Any] = {}
    found = _stored_rows(stem, dataset)
    if found is not None:
        rows, stored_reports = found
        columns = {k: [r[k] for r in rows] for k in rows[0] if k not in ("image", "fold")}
    for name, quality in tuned.items():
        columns[name] = [f"{v:.4f}" for v in quality]
        stored_reports[name] = reports[name]
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "fold", *columns])
        for i, image in enumerate(image_names(dataset)):
            writer.writerow([image, int(folds[i]), *(columns[k][i] for k in columns)])
    report_file.write_text(json.dumps(stored_reports, indent=1))


def interval_rows(matrix: np.ndarray, names: list[str], scores: np.ndarray,
                  groups: np.ndarray, folds: int, neighbours: int) -> list[dict[str, Any]]:
    """The 90 % interval over content-disjoint folds, constant and by predicted score.

    In each fold the stacker and its interval are fitted on the other folds as
    :meth:`fusion.FusionModel.fit` fits them (cross-conformal: the interval learns from
    out-of-fold predictions of content-disjoint refits); the held-out fold gives the
    coverage and the mean half-width (after clipping to 0–100, as predictions report it).
    """
    from calibrators import ConformalInterval, NormalisedConformalInterval
    from fusion.splits import ContentKFold
    from fusion.stacking import fit_stacker, out_of_fold_predictions

    widths = {"constant": lambda: ConformalInterval(coverage=0.9),
              "by_score": lambda: NormalisedConformalInterval(coverage=0.9,
                                                              neighbours=neighbours)}
    found: dict[str, dict[str, list[float]]] = {w: {"coverage": [], "half_width": []}
                                                for w in widths}
    for train, test in ContentKFold(folds, seed=0).split(groups, scores):
        held_apart = out_of_fold_predictions(names, matrix[train], scores[train],
                                             groups[train])
        predicted = fit_stacker(names, matrix[train], scores[train],
                                groups[train]).predict(matrix[test])
        for width, interval in widths.items():
            low, high = interval().fit(held_apart, scores[train]).predict_interval(predicted).T
            found[width]["coverage"].append(float(np.mean((scores[test] >= low)
                                                          & (scores[test] <= high))))
            found[width]["half_width"].append(float(np.mean(high - low) / 2))
    return [{"interval_width": width, "coverage": float(np.mean(v["coverage"])),
             "coverage_by_fold": [round(c, 4) for c in v["coverage"]],
             "half_width": float(np.mean(v["half_width"]))} for width, v in found.items()]


def main(argv: list[str] | None = None) -> int:
    from fusion.splits import ContentKFold
    from fusion.training.tuning import TuningSettings, cross_fitted_quality, lower_activations

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=nr_ablation.SHARED)
    parser.add_argument("--out", type=Path, default=RESULTS / "nr_tuning")
    parser.add_argument("--ablation", type=Path, default=RESULTS / "nr_ablation",
                        help="the work folder of nr_ablation.py (its feature caches)")
    parser.add_argument("--backbones", default=",".join(nr_ablation.BACKBONES))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--start-stage", type=int, default=TuningSettings.start_stage,
                        help="first trunk stage that is tuned (the stages before it run "
                             "once, cached)")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"epoch budget (default {TuningSettings.epochs}; 2 with --quick)")
    parser.add_argument("--average-from", type=int, default=0,
                        help="keep the mean of the weights of the epochs from this one on "
                             "(stochastic weight averaging) instead of the best epoch's")
    parser.add_argument("--retune", action="store_true",
                        help="tune even where benchmarks/figures holds the qualities")
    args = parser.parse_args(argv)
    dataset = nr_ablation.clive_share(args.data, args.quick)
    if dataset is None:
        return 2
    backbones = tuple(args.backbones.split(","))
    folds, epochs = (3, 2) if args.quick else (5, TuningSettings.epochs)
    if args.quick:
        backbones = backbones[:1]
    settings = TuningSettings(start_stage=args.start_stage, epochs=args.epochs or epochs,
                              average_from=args.average_from)
    variant = "" if (settings.start_stage, settings.epochs) == (
        TuningSettings.start_stage, epochs) else f"_s{settings.start_stage}_e{settings.epochs}"
    variant += f"_a{settings.average_from}" if settings.average_from else ""
    args.out.mkdir(parents=True, exist_ok=True)
    scores, groups = dataset.scores, dataset.content_ids
    start = time.perf_counter()
    tuned, reports = {}, {}
    kept = FIGURES / f"nr_tuning_qualities{variant}"  # (never read or written by --quick)
    held_fold = np.empty(len(dataset), int)
    for k, (_, held) in enumerate(ContentKFold(folds, seed=settings.seed)
                                  .split(groups, scores)):
        held_fold[held] = k
    for name in backbones:
        stored = args.out / f"{name}_q_{len(dataset)}_{folds}{variant}.npz"
        from_figures = None if args.quick or args.retune else read_stored(kept, name, dataset)
        if from_figures is not None:
            tuned[name], reports[name] = from_figures
            print(f"{name}: cross-fitted qualities read from {kept.with_suffix('.csv')} "
                  "(--retune tunes again)", flush=True)
        elif stored.is_file() and not args.retune:
            tuned[name] = np.load(stored)["quality"]
            reports[name] = json.loads(stored.with_suffix(".json").read_text())
        else:
            activations = lower_activations(name, [str(i.image) for i in dataset], args.out,
                                            start_stage=settings.start_stage, progress=True)
            quality, _, fold_reports = cross_fitted_quality(
                name, activations, scores, groups, folds=folds, settings=settings)
            del activations
            np.savez(stored, quality=quality)
            stored.with_suffix(".json").write_text(json.dumps(fold_reports, indent=1))
            tuned[name], reports[name] = quality, fold_reports
        if not args.quick and from_figures is None:
            write_stored(kept, dataset, held_fold, {name: tuned[name]}, {name: reports[name]})
        per_fold = [r["heldout_srcc"] for r in reports[name]]
        print(f"{name}: tuned quality alone, cross-fitted: SRCC {np.mean(per_fold):.3f} ± "
              f"{np.std(per_fold):.3f} per fold ({srcc(tuned[name], scores):.3f} pooled)",
              flush=True)

    args.ablation.mkdir(parents=True, exist_ok=True)
    # the tuned backbones, and (not --quick) the accurate preset's three
    needed = backbones if args.quick else tuple(dict.fromkeys((*backbones, *ACCURATE_PATCHES)))
    sampled = {n: nr_ablation.sampled_features(n, dataset, args.ablation) for n in needed}
    frozen = {n.replace("efficientnet_", ""): sampled[n]["p9"] for n in backbones}
    hand, hand_names = nr_ablation.handcrafted_features(dataset, args.ablation)
    tuned_columns = np.column_stack([tuned[n] for n in backbones])
    tuned_names = [f"bb:{n}:q_tuned" for n in backbones]
    both = np.column_stack([tuned_columns, hand])
    rows = [nr_ablation.measured_row(label, blocks, extra, extra_names, scores, groups, folds)
            for label, blocks, extra, extra_names in (
                ("tuned qualities alone (linear)", {}, tuned_columns, tuned_names),
                ("frozen features, no handcrafted", frozen, None, []),
                ("frozen features + tuned qualities", frozen, tuned_columns, tuned_names),
                ("frozen features + handcrafted", frozen, hand, hand_names),
                ("frozen features + tuned qualities + handcrafted", frozen, both,
                 tuned_names + hand_names))]
    if not args.quick:  # the shipped accurate preset's frozen features, with and without
        preset = {n.replace("efficientnet_", ""): sampled[n][f"p{patches}"]
                  for n, patches in ACCURATE_PATCHES.items()}
        rows += [nr_ablation.measured_row(label, preset, extra, extra_names, scores, groups,
                                          folds)
                 for label, extra, extra_names in (
                     ("accurate preset (Lite0 4 / Lite1 9 / Lite2 6 patches + handcrafted)",
                      hand, hand_names),
                     ("accurate preset + tuned qualities", both, tuned_names + hand_names))]
        if "efficientnet_lite0" in backbones:  # the fast preset: Lite0 on 4 patches + NSS
            nss = nr_ablation.nss_columns(hand_names)
            lite0 = {"lite0": sampled["efficientnet_lite0"]["p4"]}
            q0 = tuned["efficientnet_lite0"][:, None]
            rows += [nr_ablation.measured_row(label, lite0, extra, names, scores, groups,
                                              folds)
                     for label, extra, names in (
                         ("fast preset (Lite0 4 patches + NSS)", hand[:, nss],
                          [hand_names[i] for i in nss]),
                         ("fast preset + Lite0's tuned quality",
                          np.column_stack([q0, hand[:, nss]]),
                          ["bb:efficientnet_lite0:q_tuned"] + [hand_names[i] for i in nss]))]
    # the interval of the fullest configuration: the accurate preset's (not --quick)
    label, blocks, extra, extra_names = (
        ("accurate preset + tuned qualities", preset, both, tuned_names + hand_names)
        if not args.quick else ("tuned qualities + handcrafted", {}, both,
                                tuned_names + hand_names))
    matrix, matrix_names = nr_ablation.stacker_matrix(blocks, extra, extra_names)
    intervals = interval_rows(matrix, matrix_names, scores, groups, folds,
                              neighbours=16 if args.quick else 80)
    print(f"\n90 % interval of the {label}, over the folds:\n"
          "| width | coverage | mean half-width |\n|---|---|---|")
    for row in intervals:
        print(f"| {row['interval_width']} | {100 * row['coverage']:.1f} % "
              f"({', '.join(f'{100 * c:.1f}' for c in row['coverage_by_fold'])}) | "
              f"± {row['half_width']:.1f} |")
    print("\n| configuration | SRCC | PLCC |\n|---|---|---|")
    for name in backbones:
        per_fold = [r["heldout_srcc"] for r in reports[name]]
        print(f"| {name} tuned alone (its own quality, per held-out fold) | "
              f"{np.mean(per_fold):.3f} ± {np.std(per_fold):.3f} | "
              f"{plcc(tuned[name], scores):.3f} (pooled) |")
    for row in rows:
        print(nr_ablation.markdown_row(row, values=False))
    nr_ablation.write_report(args.out, args.quick, {
        "items": len(dataset), "folds": folds, "settings": settings.__dict__,
        "tuning": reports, "rows": rows, "interval": {"configuration": label, "rows": intervals},
        "seconds": round(time.perf_counter() - start, 1)},
        name=f"report{variant}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
