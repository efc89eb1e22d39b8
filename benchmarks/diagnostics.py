"""Distortion-family diagnostics: train, measure on held-out contents, install in the defaults.

Usage::

    python benchmarks/diagnostics.py [--jobs 2] [--folds 5] [--data ../shared/data]
    python benchmarks/diagnostics.py --quick      # 3 Kodak references, levels 1 and 5
    python benchmarks/diagnostics.py --install    # also fit on everything and add the
                                                  # diagnostics to the default bundles
    python benchmarks/diagnostics.py --speed      # their cost in a prediction

Builds (or resumes) the set of :func:`fusion.training.diagnostics.diagnostic_synthetic`
(both generators' types on the Kodak, package and best-CLIVE references, plus undistorted
``"none"`` items), computes the features the diagnostics read — full-reference: the
default model's metrics and the change cues; no-reference: the handcrafted block and the
distortion cues — (cached
in ``benchmarks/results/diagnostics``), and prints, with content-disjoint k-fold:
top-1 accuracy, expected calibration error and per-family recall, overall and for level 1
alone, in both modes, and the confusion matrices (``docs/diagnostics_confusion.png``).
The KADID-10k images are shared with ``benchmarks/fr_calibrated.py``. Results go to
``benchmarks/results/diagnostics/report.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fusion.datasets import Dataset  # noqa: E402
from fusion.diagnostics import FAMILY_NAMES  # noqa: E402
from fusion.feature_table import compute_features_parallel  # noqa: E402
from fusion.features import FULL_REFERENCE_EXTRACTORS, NO_REFERENCE_EXTRACTORS  # noqa: E402
from fusion.features.change import ChangeExtractor  # noqa: E402
from fusion.features.distortion_cues import DistortionCuesExtractor  # noqa: E402
from fusion.training.diagnostics import (  # noqa: E402
    cross_validated_probabilities,
    diagnostic_synthetic,
    diagnostics_report,
    family_labels,
    fit_diagnoser,
    no_reference_view,
)

SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
WORK = RESULTS / "diagnostics"
FIGURE = ROOT / "docs" / "diagnostics_confusion.png"
#: Per mode: the extractors whose features the diagnostics read.
EXTRACTORS: dict[str, tuple[Any, ...]] = {
    "fr": (*FULL_REFERENCE_EXTRACTORS, ChangeExtractor()),
    "nr": (*NO_REFERENCE_EXTRACTORS, DistortionCuesExtractor()),
}
#: Per mode: the extractors the diagnostics need beyond the default model's own.
EXTRA: dict[str, tuple[Any, ...]] = {"fr": (ChangeExtractor(),),
                                     "nr": (DistortionCuesExtractor(),)}


def features(dataset: Dataset, mode: str, jobs: int, work: Path) -> np.ndarray:
    """The diagnostic features of every item in ``mode`` (cached)."""
    cache = work / f"features_{mode}.h5"
    seed_cache = RESULTS / "fr_calibrated" / "features.h5"
    if mode == "fr" and not cache.exists() and seed_cache.exists():
        shutil.copyfile(seed_cache, cache)  # the KADID pairs' metrics are computed there
    view = dataset if mode == "fr" else no_reference_view(dataset)
    return compute_features_parallel(view, EXTRACTORS[mode], cache, jobs=jobs, progress=True)


def print_report(mode: str, report: dict[str, Any]) -> None:
    """The accuracy table of one mode."""
    print(f"\n{mode.upper()}  (content-disjoint cross-validation)")
    print(f"{'part':14s} {'n':>6s} {'top-1':>6s} {'ECE':>6s}  "
          + " ".join(f"{f[:8]:>8s}" for f in FAMILY_NAMES))
    for part in ("all", "level_1", "level_2_plus"):
        r = report[part]
        recalls = " ".join(f"{'-' if r['recall'][f] is None else format(r['recall'][f], '.3f'):>8s}"
                           for f in FAMILY_NAMES)
        print(f"{part:14s} {r['n']:6d} {r['top1']:6.3f} {r['ece']:6.3f}  {recalls}")


def confusion_figure(reports: dict[str, dict[str, Any]], path: Path) -> None:
    """Row-normalised confusion matrices of both modes, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(reports), figsize=(6.2 * len(reports), 5.4))
    for ax, (mode, report) in zip(np.atleast_1d(axes), reports.items(), strict=True):
        counts = np.asarray(report["all"]["confusion"], dtype=float)
        shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        labels = [f.replace("exposure_contrast", "exposure") for f in FAMILY_NAMES]
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
        ax.set_yticks(range(len(labels)), labels)
        for i in range(len(labels)):
            for j in range(len(labels)):
                if counts[i, j]:
                    ax.text(j, i, f"{shares[i, j]:.2f}", ha="center", va="center", fontsize=8,
                            color="white" if shares[i, j] > 0.5 else "black")
        name = "with reference" if mode == "fr" else "without reference"
        ax.set_title(f"{name}: top-1 {report['all']['top1']:.1%}, "
                     f"ECE {report['all']['ece']:.3f}")
        ax.set_xlabel("predicted family")
        ax.set_ylabel("true family")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def install(mode: str, values: np.ndarray, labels: np.ndarray, contents: np.ndarray,
            report: dict[str, Any], description: str) -> None:
    """Fit on every item and write the diagnostics into the default bundle of ``mode``."""
    from fusion.api import default_bundle_path
    from fusion.bundle import attach_diagnoser

    names = [n for e in EXTRACTORS[mode] for n in e.feature_names]
    diagnoser = fit_diagnoser(values, names, labels, contents, extractors=EXTRA[mode])
    training = {"data": description, "n": len(labels),
                "labels": "each type's family (fusion.diagnostics.family_of); a distorted "
                          "image equal to its reference pixel for pixel: 'none'",
                "held_out": {k: {m: report[k][m] for m in ("n", "top1", "ece", "recall")}
                             for k in ("all", "level_1", "level_2_plus")}}
    attach_diagnoser(default_bundle_path(mode), diagnoser, training)
    print(f"installed the {mode} diagnostics in {default_bundle_path(mode)}")


def _median_ms(call: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(1000 * (time.perf_counter() - started))
    return float(np.median(times))


def speed(repeats: int) -> dict[str, Any]:
    """What the diagnostics add to a prediction (512×384, warm), beside a peer.

    Two measures per default model: (1) the diagnostics' own work — their extra
    extractors on an image whose shared planes the model's extractors have already
    computed, plus the classifier — over a prediction without diagnostics; (2) the
    end-to-end difference, the same model called with and without its diagnostics in
    turn (the median of the paired differences; noisier: a prediction varies by several
    ms from call to call on this machine).
    Medians of ``repeats``. The peer is scikit-image's SSIM of the same pair.
    """
    from PIL import Image as PILImage
    from skimage.metrics import structural_similarity

    from fusion.api import default_model
    from fusion.distortions import distort
    from fusion.examples import example_paths
    from fusion.features.contract import run_extractors
    from fusion.io import load_image

    with PILImage.open(example_paths("coffee_jpeg")[0]) as opened:
        reference = np.asarray(opened.convert("RGB").resize((512, 384)))
    distorted = distort(reference, "jpeg", 3)
    table: dict[str, Any] = {}
    for mode in ("fr", "nr"):
        model = default_model(mode)
        if model.diagnoser is None:
            print(f"the {mode} default has no diagnostics: run with --install first")
            continue
        diagnoser = model.diagnoser
        args = (distorted, reference) if mode == "fr" else (distorted,)
        with_ms, without_ms, own_ms = [], [], []
        rows = [model._flat(model.extract(*args))]
        extra = diagnoser.extractors
        try:
            for _ in range(repeats):
                for attached, times in ((diagnoser, with_ms), (None, without_ms)):
                    model.set_diagnoser(attached)
                    started = time.perf_counter()
                    model.predict(*args)
                    times.append(1000 * (time.perf_counter() - started))
        finally:
            model.set_diagnoser(diagnoser)
        for _ in range(repeats):
            loaded = [load_image(a) for a in args]
            run_extractors(model.extractors, *loaded)  # the shared planes, as in predict
            started = time.perf_counter()
            run_extractors(extra, *loaded)
            diagnoser.diagnose(rows)
            own_ms.append(1000 * (time.perf_counter() - started))
        base = float(np.median(without_ms))
        table[mode] = {"predict_ms": float(np.median(with_ms)), "without_ms": base,
                       "diagnostics_ms": float(np.median(own_ms)),
                       "cost_percent": 100 * float(np.median(own_ms)) / base,
                       "end_to_end_percent": 100 * float(np.median(np.subtract(with_ms,
                                                                                without_ms)))
                       / base}
    ref_luma, dist_luma = load_image(reference).luma, load_image(distorted).luma
    table["peer_skimage_ssim_ms"] = _median_ms(
        lambda: structural_similarity(ref_luma, dist_luma, data_range=1.0), repeats)
    print(f"\n{'512×384, warm':18s} {'predict ms':>10s} {'without':>8s} "
          f"{'diagnostics ms':>15s} {'cost':>6s} {'end-to-end':>11s}")
    for mode in ("fr", "nr"):
        if mode in table:
            r = table[mode]
            print(f"{mode:18s} {r['predict_ms']:10.1f} {r['without_ms']:8.1f} "
                  f"{r['diagnostics_ms']:15.2f} {r['cost_percent']:5.1f}% "
                  f"{r['end_to_end_percent']:10.1f}%")
    print(f"{'peer: skimage SSIM':18s} {table['peer_skimage_ssim_ms']:10.1f}")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--quick", action="store_true",
                        help="3 Kodak references, levels 1 and 5, 3 folds (a smoke run)")
    parser.add_argument("--modes", default="fr,nr")
    parser.add_argument("--install", action="store_true",
                        help="fit on everything and add the diagnostics to the defaults")
    parser.add_argument("--out", type=Path, default=None, help="work folder")
    parser.add_argument("--speed", action="store_true",
                        help="only time the defaults' predictions with and without diagnostics")
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)
    if args.speed:
        table = speed(args.repeats)
        WORK.mkdir(parents=True, exist_ok=True)
        (WORK / "speed.json").write_text(json.dumps(table, indent=1))
        return 0
    if not (args.data / "pristine" / "kodak").is_dir():
        print(f"no pristine photographs under {args.data}; pass --data", file=sys.stderr)
        return 2
    work = args.out or (WORK / "quick" if args.quick else WORK)
    started = time.perf_counter()
    if args.quick:
        dataset = diagnostic_synthetic(args.data, work, jobs=args.jobs, kodak=3, clive_best=0,
                                       packages=False, kadid_levels=(1, 5),
                                       classic_levels=(1, 5))
        folds = min(args.folds, 3)
    else:
        dataset = diagnostic_synthetic(args.data, work, jobs=args.jobs, progress=True,
                                       kadid_work=RESULTS / "fr_calibrated")
        folds = args.folds
    contents = np.array([i.content_id for i in dataset])
    full_reference = features(dataset, "fr", args.jobs, work)
    unchanged = full_reference[:, list(EXTRACTORS["fr"][0].feature_names).index("mse")] == 0
    labels = family_labels(dataset, unchanged)
    levels = np.where(unchanged, 0, np.array([i.level or 0 for i in dataset]))
    relabelled = int(np.sum(unchanged & np.array([i.distortion != "none" for i in dataset])))
    print(f"{len(dataset)} items, {len(set(contents))} contents; {relabelled} distorted "
          f"images equal to their reference are labelled 'none' "
          f"({time.perf_counter() - started:.0f} s)")
    reports: dict[str, dict[str, Any]] = {}
    for mode in args.modes.split(","):
        values = full_reference if mode == "fr" else features(dataset, mode, args.jobs, work)
        proba = cross_validated_probabilities(values, labels, contents, folds=folds)
        reports[mode] = diagnostics_report(proba, labels, levels)
        print_report(mode, reports[mode])
        if args.install:
            install(mode, values, labels, contents, reports[mode], dataset.description)
    report_file = work / "report.json"
    earlier = json.loads(report_file.read_text()) if report_file.is_file() else {}
    kept = {m: earlier[m] for m in ("fr", "nr") if m in earlier and m not in reports
            and earlier.get("n") == len(dataset)}  # a run of one mode keeps the other
    reports = {m: (reports.get(m) or kept[m]) for m in ("fr", "nr") if m in reports or m in kept}
    report = {"dataset": dataset.description, "n": len(dataset), "folds": folds,
              "relabelled_unchanged": relabelled,
              "seconds": round(time.perf_counter() - started, 1), **reports}
    report_file.write_text(json.dumps(report, indent=1))
    if not args.quick:
        confusion_figure(reports, FIGURE)
        print(f"figure: {FIGURE.relative_to(ROOT)}")
    print(f"report: {work / 'report.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
