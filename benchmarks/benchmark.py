"""The benchmark: the fused model against each single model, accuracy and speed in one run.

Usage::

    python benchmarks/benchmark.py [--quick] [--folds 5] [--seed 0] [--out DIR]
                                   [--database NAME=PATH ...] [--data ../shared/data]

Accuracy, per database and mode, content-disjoint k-fold (``ContentKFold``, seeded):

* the fused model (:meth:`fusion.FusionModel.fit` on the training folds, with the
  default model's extractors and stacker kind: the no-reference backbone and handcrafted
  features, the full-reference monotone stacker on handcrafted features);
* each backbone alone: ridge on its pooled trunk features (fitted per fold), and its own
  pooled quality (the heads shipped in the default bundle, not refitted);
* on the database the default was trained on (CLIVE), the k-fold fuses without the
  default's tuned qualities (``bb:<backbone>:q_tuned``, in-sample for its training
  photographs), and the default model itself is measured on its held-out part only;
* each handcrafted family alone (RBF SVR per fold) and each handcrafted feature with a
  known direction alone (signed; PLCC/RMSE after the VQEG logistic);
* peers on the same images where installed: scikit-image's PSNR and SSIM
  (full-reference); pyiqa / piq are listed as not installed when absent.

SRCC, KRCC, PLCC, RMSE as mean ± std over folds; cross-database (fit on one, test on the
other) for every pair of human-rated databases of one mode.

Databases: CLIVE (no-reference, human MOS) from ``--data``; the synthetic Kodak set
(full-reference; target 100·(1 − level/6), NOT human ratings); and any ``--database
NAME=PATH`` (a reader of :func:`fusion.datasets.load_dataset`, or ``manifest``).

Speed and memory, same run: ms per item and items/s of each extractor, of each single
model, of the peers and of the fused prediction (broken down by component) on a 500×500
image and a 512×384 pair; cold start and peak RSS of a fresh process.

Outputs in ``--out``: ``benchmark.md`` (also printed), ``benchmark.json``,
``srcc.png`` (SRCC per method), ``scatter_<database>.png`` (out-of-fold fused score
against the human score). ``--quick`` uses small subsets, 3 folds and few repetitions
(about two minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _learners import ridge, svr  # noqa: E402

from fusion.api import default_model  # noqa: E402
from fusion.backbone_extractor import BackboneExtractor  # noqa: E402
from fusion.datasets import Dataset, load_dataset, read_manifest  # noqa: E402
from fusion.distortions import generate_synthetic, severity_dataset  # noqa: E402
from fusion.feature_table import FeatureTable, compute_features  # noqa: E402
from fusion.metrics import evaluate  # noqa: E402
from fusion.model import FusionModel  # noqa: E402
from fusion.splits import ContentKFold  # noqa: E402
from fusion.stacking import column_blocks  # noqa: E402

METRICS = ("srcc", "krcc", "plcc", "rmse")
FAMILIES = {"NSS (BRISQUE)": "nss_", "pseudo-reference": "pr_", "cues": "cue_"}


@dataclass
class Benchmark:
    """One database's rows: method -> list of per-fold metric dicts."""

    name: str
    mode: str
    human: bool
    n: int
    folds: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    out_of_fold: list[tuple[float, float]] = field(default_factory=list)
    heldout: dict[str, dict[str, float]] = field(default_factory=dict)
    heldout_n: int = 0
    coverage: list[float] = field(default_factory=list)

    def add(self, method: str, predicted: Any, observed: Any) -> None:
        self.folds.setdefault(method, []).append(_metrics(predicted, observed))

    def summary(self) -> dict[str, dict[str, float]]:
        return {method: {f"{m}_{s}": float(getattr(np, s)([r[m] for r in rows]))
                         for m in METRICS for s in ("mean", "std")}
                for method, rows in self.folds.items()}


# ----------------------------------------------------------------------------- data


def datasets(args: argparse.Namespace) -> list[tuple[Dataset, bool]]:
    """(dataset, human-rated) pairs to benchmark."""
    found: list[tuple[Dataset, bool]] = []
    rng = np.random.default_rng(args.seed)
    clive = args.data / "clive" / "manifest.csv"
    if clive.is_file():
        dataset = read_manifest(clive, name="clive")
        if args.quick:
            dataset = dataset[np.sort(rng.choice(len(dataset), 90, replace=False))]
        found.append((dataset, True))
    kodak = args.data / "pristine" / "kodak"
    if kodak.is_dir():
        photos = sorted(kodak.glob("*.png"))
        kinds = None
        if args.quick:
            photos, kinds = photos[:6], ["gaussian_blur", "jpeg", "gaussian_noise",
                                         "contrast_decrease"]
        synthetic = generate_synthetic(photos, args.synthetic, kinds=kinds, progress=True)
        found.append((replace(severity_dataset(synthetic, target="level"), name="synthetic_kodak"),
                      False))
    for spec in args.database:
        name, _, path = spec.partition("=")
        if not path:
            raise SystemExit(f"--database wants NAME=PATH, got {spec!r}")
        data = read_manifest(path, name=Path(path).stem) if name == "manifest" else \
            load_dataset(name, path)
        found.append((data, True))
    if not found:
        raise SystemExit(f"no data: {args.data} has neither clive/ nor pristine/kodak/, "
                         "and no --database was given")
    return found


# ----------------------------------------------------------------------------- accuracy


def single_models(table: FeatureTable) -> dict[str, list[int]]:
    """Column sets of the single models fitted per fold (backbone ridge, families)."""
    names = list(table.feature_names)
    blocks = column_blocks(names)
    models: dict[str, list[int]] = {}
    for backbone in sorted({n.split(":")[1] for n in names if n.startswith("bb:")}):
        models[f"backbone {backbone}: ridge on pooled features"] = [
            i for i in blocks["backbone"] if names[i].startswith(f"bb:{backbone}:")]
    for family, prefix in FAMILIES.items():
        columns = [i for i, n in enumerate(names) if n.startswith(prefix)]
        if columns:
            models[f"handcrafted family: {family} (SVR)"] = columns
    models["handcrafted: all features (SVR)"] = blocks["handcrafted"]
    return models


def peer_scores(dataset: Dataset) -> dict[str, np.ndarray]:
    """Peers computed on the same items (NaN where one fails)."""
    peers: dict[str, np.ndarray] = {}
    if dataset.mode == "fr":
        from skimage.metrics import peak_signal_noise_ratio, structural_similarity

        from fusion.io import load_pair

        psnr, ssim = np.full(len(dataset), np.nan), np.full(len(dataset), np.nan)
        for index, item in enumerate(dataset):
            ref, dist = load_pair(item.reference, item.image)
            psnr[index] = min(100.0, peak_signal_noise_ratio(ref.rgb, dist.rgb,
                                                             data_range=1.0))
            ssim[index] = structural_similarity(ref.luma255, dist.luma255,
                                                gaussian_weights=True, sigma=1.5,
                                                use_sample_covariance=False, data_range=255)
        peers["peer scikit-image PSNR"], peers["peer scikit-image SSIM"] = psnr, ssim
    return peers


def installed_peers() -> dict[str, bool]:
    import importlib.util

    return {name: importlib.util.find_spec(name) is not None for name in ("pyiqa", "piq")}


def accuracy(dataset: Dataset, human: bool, args: argparse.Namespace,
             timings: dict[str, Any]) -> tuple[Benchmark, Any]:
    """k-fold rows of every method on one database; also returns the features."""
    extractors = default_model(dataset.mode).extractors
    started = time.perf_counter()
    table = compute_features(dataset, extractors, cache=args.cache, progress=True)
    timings[f"features_{dataset.name}_s"] = time.perf_counter() - started
    ok = table.ok & np.isfinite(dataset.scores)
    data = dataset[np.flatnonzero(ok)]
    x, y, groups = table.values[ok], data.scores, data.content_ids
    names = list(table.feature_names)
    bench = Benchmark(data.name, data.mode, human, len(data))
    singles = single_models(table)
    peers = {k: v[ok] for k, v in peer_scores(dataset).items()}
    directed = [(i, n, h) for i, (n, h) in enumerate(zip(names, table.higher_is_better,
                                                          strict=True))
                if h is not None and not n.startswith("bb:")]
    heldout = _default_heldout(data, args.quick)
    own_quality = [(f"backbone {e.backbone_name}: own pooled quality",
                    names.index(f"bb:{e.backbone_name}:q_weighted"))
                   for e in extractors if isinstance(e, BackboneExtractor)]
    # A tuned quality (bb:<backbone>:q_tuned) is in-sample on the items its trunk was
    # tuned on: on that database the k-fold fuses without it (a constant column), and the
    # default model itself is measured on its held-out part only (below).
    tuned = [i for i, n in enumerate(names) if n.endswith(":q_tuned")]
    x_kfold = x.copy()
    if heldout is not None and tuned:
        x_kfold[:, tuned] = 0.0
        print(f"{data.name}: the k-fold fused rows leave out the default's tuned qualities "
              "(tuned on this database)", file=sys.stderr)
    for fold, (train, test) in enumerate(ContentKFold(args.folds, seed=args.seed).split(data)):
        model = FusionModel(data.mode, extractors, seed=args.seed + fold,
                            monotone=default_model(data.mode).monotone).fit(
            x_kfold[train], y[train], groups=groups[train])
        fused, intervals = model.predict_matrix(x_kfold[test])
        bench.add("fused", fused, y[test])
        low, high = intervals.T
        bench.coverage.append(float(np.mean((y[test] >= low) & (y[test] <= high))))
        bench.out_of_fold += list(zip(fused.tolist(), y[test].tolist(), strict=True))
        if heldout is None:  # the heads never saw this database: k-fold is fair
            for label, column in own_quality:
                bench.add(label, x[test, column], y[test])
        for label, columns in singles.items():
            learner = svr() if "SVR" in label else ridge()
            learner.fit(x[train][:, columns], y[train])
            bench.add(label, learner.predict(x[test][:, columns]), y[test])
        for column, name, higher in directed:
            bench.add(f"feature {name}", (1 if higher else -1) * x[test, column], y[test])
        for label, values in peers.items():
            bench.add(label, values[test], y[test])
        print(f"{data.name} fold {fold}: fused SRCC {bench.folds['fused'][-1]['srcc']:.3f}",
              file=sys.stderr)
    if heldout is not None and len(heldout):
        # The shipped heads were trained on this database: measure them, and the default
        # fused model, only on the part the default model held out.
        default = default_model(data.mode)
        rows = [dict(zip(names, x[i].tolist(), strict=True)) for i in heldout]
        predicted = np.array([p.score for p in default.predict_features(rows)])
        bench.heldout_n = len(heldout)
        bench.heldout["fused (the default model)"] = _metrics(predicted, y[heldout])
        for label, column in own_quality:
            bench.heldout[label] = _metrics(x[heldout, column], y[heldout])
    return bench, (data, x, y)


def _metrics(predicted: Any, observed: Any) -> dict[str, float]:
    metrics = evaluate(np.asarray(predicted, float), np.asarray(observed, float), logistic=5)
    return {"srcc": metrics["srcc"], "krcc": metrics["krcc"],
            "plcc": metrics["plcc_logistic"], "rmse": metrics["rmse_logistic"]}


def _default_heldout(data: Dataset, quick: bool) -> NDArray[np.intp] | None:
    """Indices of the default model's held-out items when ``data`` is its training set.

    None when the default model was not trained on ``data`` (k-fold is then fair for its
    backbone heads); an empty array in quick mode (a subset cannot reproduce the split).
    """
    from fusion.splits import train_val_test_split

    training = default_model(data.mode).metadata.get("training_data", {})
    if training.get("dataset") != data.name:
        return None
    if quick:
        return np.zeros(0, np.intp)
    fraction = 0.2  # fusion.training.train_fusion's default test_fraction
    _, _, test = train_val_test_split(data, fractions=(1 - fraction, 0.0, fraction),
                                      seed=int(training.get("seed", 0)))
    return np.asarray(test, np.intp)


def cross_database(sets: list[tuple[Dataset, bool, Any]], seed: int) -> list[dict[str, Any]]:
    """Fit the fused model on one human-rated database, test on another of the same mode."""
    rows = []
    for train_set, human_a, (data_a, x_a, y_a) in sets:
        for test_set, human_b, (data_b, x_b, y_b) in sets:
            if train_set is test_set or not (human_a and human_b) or \
                    train_set.mode != test_set.mode:
                continue
            default = default_model(train_set.mode)
            model = FusionModel(train_set.mode, default.extractors, seed=seed,
                                monotone=default.monotone).fit(
                x_a, y_a, groups=data_a.content_ids)
            predicted, _ = model.predict_matrix(x_b)
            metrics = evaluate(predicted, y_b, logistic=5)
            rows.append({"train": data_a.name, "test": data_b.name, "n_test": len(y_b),
                         **{m: float(metrics[k]) for m, k in zip(
                             METRICS, ("srcc", "krcc", "plcc_logistic", "rmse_logistic"),
                             strict=True)}})
    return rows


# ----------------------------------------------------------------------------- speed


def _best_ms(function: Any, repeats: int) -> float:
    function()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return 1e3 * float(np.median(times))


def speed(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """ms per item of each component, each single model, the peers and the fused model."""
    from fusion.examples import example_paths
    from fusion.io import load_image

    repeats = 3 if args.quick else 10
    pair_dir = args.data / "reference_values" / "tid2013_pairs"
    if (pair_dir / "ref" / "I03.bmp").is_file():
        reference, image = pair_dir / "ref" / "I03.bmp", pair_dir / "dist" / "I03.bmp"
    else:  # 240×320 bundled pair when the shared data is absent
        reference, image = example_paths("coffee_jpeg")
    clive = sorted((args.data / "clive").glob("**/*.png"))
    nr_image = clive[0] if clive else image
    cases = {"nr": (None, nr_image), "fr": (reference, image)}
    results: dict[str, dict[str, float]] = {}
    for mode, (ref_path, dist_path) in cases.items():
        shape = load_image(dist_path).rgb.shape
        results[f"{mode} ({shape[1]}×{shape[0]})"] = _speed_case(mode, ref_path, dist_path,
                                                                 repeats)
    return results


def _speed_case(mode: str, ref_path: Any, dist_path: Any, repeats: int) -> dict[str, float]:
    from fusion.io import load_image, load_pair

    model = default_model(mode)

    def fresh() -> Any:  # new Image objects: nothing memoised from an earlier call
        if ref_path is None:
            return load_image(dist_path), None
        reference, distorted = load_pair(ref_path, dist_path)
        return distorted, reference

    rows: dict[str, float] = {}
    for extractor in model.extractors:
        rows[f"component {extractor.key}"] = _best_ms(
            lambda e=extractor: e.compute(*fresh()), repeats)
    matrix = np.zeros((1, len(model.feature_names)))
    rows["component stacker + interval"] = _best_ms(
        lambda: model.predict_matrix(matrix), repeats)
    rows["fused (load + all components + stacker)"] = _best_ms(
        lambda: model.predict(dist_path, ref_path), repeats)
    if mode == "fr":
        from skimage.metrics import peak_signal_noise_ratio, structural_similarity

        ref, dist = fresh()
        rows["peer scikit-image PSNR"] = _best_ms(
            lambda: peak_signal_noise_ratio(ref.rgb, dist.rgb, data_range=1.0), repeats)
        rows["peer scikit-image SSIM"] = _best_ms(
            lambda: structural_similarity(ref.luma255, dist.luma255, gaussian_weights=True,
                                          sigma=1.5, use_sample_covariance=False,
                                          data_range=255), repeats)
    return rows


_COLD = """
import json, resource, sys, time
started = time.perf_counter()
import fusion
fusion.predict({image!r})
nr = time.perf_counter() - started
fusion.predict({image!r}, {reference!r})
print(json.dumps({{"cold_start_nr_s": nr, "cold_start_both_s": time.perf_counter() - started,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "tensorflow_imported": "tensorflow" in sys.modules}}))
"""


def cold_start() -> dict[str, Any]:
    from fusion.examples import example_paths

    reference, image = (str(p) for p in example_paths("coffee_jpeg"))
    result = subprocess.run([sys.executable, "-c", _COLD.format(image=image,
                                                                reference=reference)],
                            capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    parsed: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return parsed


# ----------------------------------------------------------------------------- report


def _cell(summary: dict[str, float], metric: str) -> str:
    digits = 2 if metric == "rmse" else 3
    return f"{summary[f'{metric}_mean']:.{digits}f} ± {summary[f'{metric}_std']:.{digits}f}"


def markdown(report: dict[str, Any]) -> str:
    lines = [f"# fusion-iqa benchmark ({'quick' if report['quick'] else 'full'} run)", "",
             f"{report['machine']}; {report['folds']}-fold by content, seed {report['seed']}."]
    for bench in report["databases"]:
        kind = "human ratings" if bench["human"] else \
            "synthetic severity target, NOT human ratings"
        lines += ["", f"## {bench['name']} ({bench['mode']}, {bench['n']} items, {kind})", "",
                  "| method | SRCC | KRCC | PLCC | RMSE |", "|---|---:|---:|---:|---:|"]
        ordered = sorted(bench["summary"].items(), key=lambda kv: -kv[1]["srcc_mean"])
        for method, summary in ordered:
            label = f"**{method}**" if method == "fused" else method
            lines.append(f"| {label} | " + " | ".join(_cell(summary, m) for m in METRICS)
                         + " |")
        singles = [s["srcc_mean"] for m, s in bench["summary"].items()
                   if m != "fused" and not m.startswith("peer")]
        gain = bench["summary"]["fused"]["srcc_mean"] - max(singles)
        lines.append(f"\nfused − best single model: {gain:+.3f} SRCC")
        coverage = bench["interval_coverage"]
        lines.append(f"\nThe fused model's 90 % interval held {100 * np.mean(coverage):.1f} % "
                     "of the held-out scores (per fold "
                     f"{', '.join(f'{100 * c:.1f}' for c in coverage)} %).")
        if bench["heldout"]:
            lines += ["", f"The default model's backbone heads were trained on this database, "
                      f"so they are measured only on the {bench['heldout_n']} items the "
                      "default model held out (one split), next to the default fused model:",
                      "", "| method (held-out split) | SRCC | KRCC | PLCC | RMSE |",
                      "|---|---:|---:|---:|---:|"]
            lines += [f"| {m} | {v['srcc']:.3f} | {v['krcc']:.3f} | {v['plcc']:.3f} | "
                      f"{v['rmse']:.2f} |" for m, v in bench["heldout"].items()]
        elif not any(m.endswith("own pooled quality") for m in bench["summary"]):
            lines.append("\nThe backbone's own pooled quality is not shown: its heads were "
                         "trained on this database, and a quick run cannot rebuild the "
                         "held-out split.")
    lines += ["", "## Cross-database", ""]
    if report["cross_database"]:
        lines += ["| train → test | n | SRCC | KRCC | PLCC | RMSE |",
                  "|---|---:|---:|---:|---:|---:|"]
        lines += [f"| {r['train']} → {r['test']} | {r['n_test']} | {r['srcc']:.3f} | "
                  f"{r['krcc']:.3f} | {r['plcc']:.3f} | {r['rmse']:.2f} |"
                  for r in report["cross_database"]]
    else:
        lines.append("Not run: it needs two human-rated databases of the same mode "
                     "(add one with --database NAME=PATH).")
    peers = ", ".join(f"{k} {'installed' if v else 'not installed'}"
                      for k, v in report["peers_installed"].items())
    lines += ["", f"Peers: scikit-image (in the tables above); {peers}.", "",
              "## Speed (ms per item, median; one process)", ""]
    for case, rows in report["speed"].items():
        lines += [f"### {case}", "", "| what | ms | items/s |", "|---|---:|---:|"]
        lines += [f"| {k} | {v:.1f} | {1e3 / v:.1f} |" for k, v in rows.items()]
        lines.append("")
    cold = report["cold_start"]
    lines += [f"Cold start (fresh process: import, load, first prediction): no-reference "
              f"{cold['cold_start_nr_s']:.2f} s, both modes {cold['cold_start_both_s']:.2f} s; "
              f"peak RSS {cold['peak_rss_mb']:.0f} MB; TensorFlow imported: "
              f"{cold['tensorflow_imported']}. This benchmark process peaked at "
              f"{report['peak_rss_mb']:.0f} MB."]
    return "\n".join(lines) + "\n"


def plots(report: dict[str, Any], benches: list[Benchmark], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    figure, axes = plt.subplots(1, len(benches), figsize=(7.5 * len(benches), 7),
                                squeeze=False)
    for axis, bench in zip(axes[0], benches, strict=True):
        summary = sorted(bench.summary().items(), key=lambda kv: kv[1]["srcc_mean"])
        summary = summary[-15:]  # the best fifteen methods
        methods = [m for m, _ in summary]
        labels = [textwrap.fill(m, 32) for m in methods]
        axis.barh(labels, [s["srcc_mean"] for _, s in summary],
                  xerr=[s["srcc_std"] for _, s in summary],
                  color=["tab:red" if m == "fused" else "tab:blue" for m in methods])
        axis.set_xlabel(f"SRCC (mean ± std over {report['folds']} folds)")
        axis.set_title(f"{bench.name} ({bench.mode}, {'human' if bench.human else 'synthetic'})")
        axis.tick_params(axis="y", labelsize=7)
    figure.tight_layout()
    figure.savefig(out / "srcc.png", dpi=90)
    written.append(out / "srcc.png")
    plt.close(figure)
    for bench in benches:
        figure, axis = plt.subplots(figsize=(5, 5))
        predicted, observed = np.array(bench.out_of_fold).T
        axis.scatter(observed, predicted, s=6, alpha=0.5)
        axis.plot([0, 100], [0, 100], color="grey", linewidth=1)
        axis.set_xlabel("human score" if bench.human else "severity target")
        axis.set_ylabel("fused score (out of fold)")
        srcc = bench.summary()["fused"]["srcc_mean"]
        axis.set_title(f"{bench.name}: fused, SRCC {srcc:.3f}")
        figure.tight_layout()
        path = out / f"scatter_{bench.name}.png"
        figure.savefig(path, dpi=90)
        written.append(path)
        plt.close(figure)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small subsets, 3 folds")
    parser.add_argument("--folds", type=int, default=None, help="default 5 (quick: 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--database", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--out", type=Path, default=None,
                        help="default benchmarks/results/benchmark[_quick]")
    parser.add_argument("--cache", type=Path, default=None,
                        help="HDF5 feature cache (default: benchmarks/results/features.h5, "
                             "shared with the other scripts; quick: OUT/features.h5)")
    parser.add_argument("--synthetic", type=Path, default=None,
                        help="folder of the synthetic set (default: benchmarks/results/"
                             "synthetic; quick: OUT/synthetic_quick)")
    args = parser.parse_args(argv)
    args.folds = args.folds or (3 if args.quick else 5)
    args.out = args.out or ROOT / "benchmarks" / "results" / (
        "benchmark_quick" if args.quick else "benchmark")
    args.out.mkdir(parents=True, exist_ok=True)
    results = ROOT / "benchmarks" / "results"
    args.cache = args.cache or (args.out / "features.h5" if args.quick
                                else results / "features.h5")
    args.synthetic = args.synthetic or (args.out / "synthetic_quick" if args.quick
                                        else results / "synthetic")

    started = time.perf_counter()
    timings: dict[str, Any] = {}
    benches, features = [], []
    for dataset, human in datasets(args):
        bench, data = accuracy(dataset, human, args, timings)
        benches.append(bench)
        features.append((dataset, human, data))
    report: dict[str, Any] = {
        "quick": args.quick, "folds": args.folds, "seed": args.seed,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
                   f"{platform.python_version()}",
        "databases": [{"name": b.name, "mode": b.mode, "human": b.human, "n": b.n,
                       "summary": b.summary(), "folds": b.folds, "heldout": b.heldout,
                       "heldout_n": b.heldout_n, "interval_coverage": b.coverage}
                      for b in benches],
        "cross_database": cross_database(features, args.seed),
        "peers_installed": installed_peers(),
        "speed": speed(args),
        "cold_start": cold_start(),
        "timings": timings,
    }
    report["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report["seconds"] = time.perf_counter() - started
    text = markdown(report)
    print(text)
    (args.out / "benchmark.md").write_text(text)
    (args.out / "benchmark.json").write_text(json.dumps(report, indent=1))
    for path in plots(report, benches, args.out):
        print(f"wrote {path}")
    print(f"wrote {args.out / 'benchmark.md'} and benchmark.json "
          f"({report['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
