"""No-reference ablation on CLIVE: which backbone, depth, scale and block earns its place.

Usage::

    python benchmarks/nr_ablation.py [--data ../shared/data] [--out DIR] [--quick]

Every row is a content-disjoint 5-fold SRCC / PLCC on the CLIVE share (seeded
:class:`fusion.splits.ContentKFold`, the folds of ``benchmarks/benchmark.py``), of the
project's own stacker (:func:`fusion.stacking.build_stacker`: one ridge per backbone
block, SVR and boosted trees on the handcrafted block, ridge on all, non-negative linear
final estimator over content-disjoint out-of-fold predictions) fitted on the training folds
only. A "block" is one backbone at one sampling:

* ``p9``, ``p6``, ``p4``: the mean over the 9 (6, 4) native-resolution 224×224 patches of
  the deterministic grid that prediction uses (:func:`backbones.patches.grid_positions`);
* ``spread9``: the standard deviation over those 9 patches;
* ``whole``: the whole image resized to 224×224 (a second scale, the global view);
* ``half``: the mean over the patches of the image downscaled by 2;
* ``native``: the whole image in one pass at CLIVE's native 500×500 (a second graph with
  that input; the few photographs of another size are resized to it), so the trunk sees
  every pixel at its own scale — unlike ``whole``, which shrinks the image to 224×224.

Each block holds the global average of every stage's output (stages 0–6 and the head) of
the frozen ImageNet trunk; ``stages 2,4,6`` rows keep only the levels the first bundles
used. The trunks are exported once per backbone to a LiteRT graph (``<name>_stages.tflite``
in the work folder; needs the train extra) and the features are cached in ``.npz`` files,
so a second run only refits. ``--quick`` (the test suite's variant): Lite0 only, 80
images, 3 folds. Fine-tuned trunks: ``benchmarks/nr_tuning.py``.
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

from fusion.datasets import Dataset, read_manifest  # noqa: E402
from fusion.metrics import plcc, srcc  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
BACKBONES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
SAMPLINGS = ("p9", "p6", "p4", "spread9", "whole", "half")
STAGES_OF_THE_FIRST_BUNDLES = (2, 4, 6, 7)  # 7: the head
PATCH = 224
NATIVE = 500  # CLIVE's photographs are 500×500


def export_stage_graph(name: str, out: Path, size: int = PATCH) -> tuple[Path, list[int]]:
    """LiteRT graph: size×size inputs → every stage's (and the head's) global average.

    Returns the file and each level's width (cached beside it as JSON).
    """
    stem = f"{name}_stages" if size == PATCH else f"{name}_stages_{size}"
    path, widths_file = out / f"{stem}.tflite", out / f"{stem}.json"
    if path.is_file() and widths_file.is_file():
        return path, json.loads(widths_file.read_text())
    from backbones._keras import require_keras
    from backbones.efficientnet_lite import build_efficientnet_lite
    from backbones.export import export_litert
    from backbones.models import ALL_STAGES

    keras = require_keras()
    trunk = build_efficientnet_lite(name, input_shape=(size, size, 3),
                                    feature_stages=ALL_STAGES)
    inputs = keras.Input((size, size, 3))
    maps = trunk(inputs)
    pooled = [keras.layers.GlobalAveragePooling2D()(m) for m in maps]
    export_litert(keras.Model(inputs, keras.layers.Concatenate()(pooled)), path)
    widths = [int(m.shape[-1]) for m in maps]
    widths_file.write_text(json.dumps(widths))
    return path, widths


def sampled_features(name: str, dataset: Dataset, out: Path) -> dict[str, np.ndarray]:
    """Every sampling's pooled stage features of every item (cached in ``.npz``)."""
    cache = out / f"{name}_{dataset.name}_{len(dataset)}.npz"
    if cache.is_file():
        with np.load(cache) as stored:
            return {k: stored[k] for k in stored.files}
    from PIL import Image as PILImage

    from backbones.patches import grid_positions, take_patches
    from backbones.runtime import LiteRTFunction

    graph, _ = export_stage_graph(name, out)
    run = LiteRTFunction(graph, num_threads=2)
    rows: dict[str, list[np.ndarray]] = {k: [] for k in SAMPLINGS}
    for item in dataset:
        with PILImage.open(item.image) as opened:
            pil = opened.convert("RGB")
        rgb = np.asarray(pil, np.float32) / 255
        height, width = rgb.shape[:2]
        groups = {f"p{k}": take_patches(rgb, grid_positions(height, width, size=PATCH,
                                                             max_patches=k), size=PATCH)
                  for k in (9, 6, 4)}
        groups["whole"] = np.asarray(pil.resize((PATCH, PATCH), PILImage.BILINEAR),
                                     np.float32)[None] / 255
        half = np.asarray(pil.resize((max(1, width // 2), max(1, height // 2)),
                                     PILImage.BILINEAR), np.float32) / 255
        groups["half"] = take_patches(half, grid_positions(*half.shape[:2], size=PATCH,
                                                           max_patches=4), size=PATCH)
        outputs = run(np.concatenate(list(groups.values())))
        start = 0
        for key, patches in groups.items():
            block = outputs[start:start + len(patches)]
            start += len(patches)
            rows[key].append(block.mean(axis=0))
            if key == "p9":
                rows["spread9"].append(block.std(axis=0))
    features = {k: np.asarray(v, np.float64) for k, v in rows.items()}
    np.savez(cache, **features)
    return features


def native_features(name: str, dataset: Dataset, out: Path) -> np.ndarray:
    """Every stage's pooled features of each whole image at 500×500 (cached in ``.npz``)."""
    cache = out / f"{name}_{dataset.name}_{len(dataset)}_native{NATIVE}.npz"
    if cache.is_file():
        with np.load(cache) as stored:
            return np.asarray(stored["native"])
    from PIL import Image as PILImage

    from backbones.runtime import LiteRTFunction

    graph, _ = export_stage_graph(name, out, NATIVE)
    run = LiteRTFunction(graph, num_threads=2)
    rows = []
    for item in dataset:
        with PILImage.open(item.image) as opened:
            pil = opened.convert("RGB")
        if pil.size != (NATIVE, NATIVE):
            pil = pil.resize((NATIVE, NATIVE), PILImage.BILINEAR)
        rows.append(run(np.asarray(pil, np.float32)[None] / 255)[0])
    features = np.asarray(rows, np.float64)
    np.savez(cache, native=features)
    return features


def level_columns(widths: list[int], levels: tuple[int, ...]) -> np.ndarray:
    """Column indices of the chosen levels in a concatenation of ``widths``."""
    edges = np.cumsum([0, *widths])
    return np.concatenate([np.arange(edges[i], edges[i + 1]) for i in levels])


def stacker_matrix(blocks: dict[str, np.ndarray], handcrafted: np.ndarray | None,
                   handcrafted_names: list[str]) -> tuple[np.ndarray, list[str]]:
    """The blocks' columns side by side with their stacker names (``bb:<label>:f<i>``),
    then the handcrafted (or extra) columns under their own names."""
    columns, names = [], []
    for label, values in blocks.items():
        columns.append(values)
        names += [f"bb:{label}:f{i}" for i in range(values.shape[1])]
    if handcrafted is not None:
        columns.append(handcrafted)
        names += handcrafted_names
    return np.concatenate(columns, axis=1), names


def cross_validated(blocks: dict[str, np.ndarray], handcrafted: np.ndarray | None,
                    handcrafted_names: list[str], scores: np.ndarray, groups: np.ndarray,
                    folds: int, seed: int = 0) -> dict[str, float]:
    """Content-disjoint k-fold SRCC/PLCC (mean ± sd) of the project's stacker on the blocks."""
    from fusion.splits import ContentKFold
    from fusion.stacking import build_stacker, grouped_splits

    matrix, names = stacker_matrix(blocks, handcrafted, handcrafted_names)
    s, p = [], []
    for train, test in ContentKFold(folds, seed=seed).split(groups, scores):
        stacker = build_stacker(names, grouped_splits(groups[train], scores[train],
                                                      seed=seed), seed=seed)
        stacker.fit(matrix[train], scores[train])
        predicted = stacker.predict(matrix[test])
        s.append(srcc(predicted, scores[test]))
        p.append(plcc(predicted, scores[test]))
    return {"srcc": float(np.mean(s)), "srcc_sd": float(np.std(s)),
            "plcc": float(np.mean(p)), "plcc_sd": float(np.std(p)),
            "dims": int(matrix.shape[1])}


def handcrafted_features(dataset: Dataset, out: Path) -> tuple[np.ndarray, list[str]]:
    """The no-reference handcrafted block (75 values), through the feature cache."""
    from fusion.feature_table import compute_features
    from fusion.features import NO_REFERENCE_EXTRACTORS

    table = compute_features(dataset, NO_REFERENCE_EXTRACTORS, cache=out / "features.h5",
                             progress=False)
    if table.errors:
        raise RuntimeError(f"handcrafted features failed: {table.errors}")
    return table.values, list(table.feature_names)


def clive_share(data: Path, quick: bool) -> Dataset | None:
    """The CLIVE share (its first 80 images with ``quick``); None, said on stderr, if absent."""
    manifest = data / "clive" / "manifest.csv"
    if not manifest.is_file():
        print(f"no CLIVE manifest at {manifest}", file=sys.stderr)
        return None
    dataset = read_manifest(manifest, name="clive")
    return dataset[np.arange(80)] if quick else dataset


def nss_columns(hand_names: list[str]) -> list[int]:
    """Columns of the NSS (BRISQUE-style) values among the handcrafted ones (the fast
    preset's handcrafted block)."""
    return [i for i, n in enumerate(hand_names) if n.startswith("nss_")]


def measured_row(label: str, blocks: dict[str, np.ndarray], handcrafted: np.ndarray | None,
                 handcrafted_names: list[str], scores: np.ndarray, groups: np.ndarray,
                 folds: int) -> dict[str, Any]:
    """One configuration's cross-validated row (:func:`cross_validated`), printed as it comes."""
    metrics = cross_validated(blocks, handcrafted, handcrafted_names, scores, groups, folds)
    print(f"{label:<72} SRCC {metrics['srcc']:.3f} ± {metrics['srcc_sd']:.3f}  "
          f"PLCC {metrics['plcc']:.3f}  ({metrics['dims']} values)", flush=True)
    return {"configuration": label, **metrics}


def markdown_row(row: dict[str, Any], *, values: bool = True) -> str:
    """A results row as a Markdown table line (SRCC and PLCC with their spread)."""
    line = (f"| {row['configuration']} | {row['srcc']:.3f} ± {row['srcc_sd']:.3f} | "
            f"{row['plcc']:.3f} ± {row['plcc_sd']:.3f} |")
    return line + f" {row['dims']} |" if values else line


def write_report(out: Path, quick: bool, report: dict[str, Any], *, name: str = "report"
                 ) -> None:
    """``<name>.json`` (``<name>_quick.json`` for ``--quick``) in ``out``."""
    (out / (f"{name}_quick.json" if quick else f"{name}.json")).write_text(
        json.dumps(report, indent=1))


def configurations(backbones: tuple[str, ...]
                   ) -> list[tuple[str, dict[str, tuple[str, str, tuple[int, ...] | None]],
                               str | None]]:
    """(row label, blocks {label: (backbone, sampling, levels)}, handcrafted subset)."""
    rows: list[Any] = []
    first = backbones[0]
    for name in backbones:
        short = name.replace("efficientnet_", "")
        rows.append((f"{short} alone, stages 2,4,6 + head, 9 patches",
                     {short: (name, "p9", STAGES_OF_THE_FIRST_BUNDLES)}, None))
        rows.append((f"{short} alone, every stage + head, 9 patches",
                     {short: (name, "p9", None)}, None))
        rows.append((f"{short} alone, every stage, whole image at native 500×500, one pass",
                     {short: (name, "native", None)}, None))
    short = first.replace("efficientnet_", "")
    for sampling, label in (("p6", "6 patches"), ("p4", "4 patches"),
                            ("whole", "whole image resized to 224"),
                            ("half", "half scale, 4 patches")):
        rows.append((f"{short} alone, every stage, {label}",
                     {short: (first, sampling, None)}, None))
    rows.append((f"{short}, 9 patches + spread over patches",
                 {f"{short}@p9": (first, "p9", None),
                  f"{short}@spread": (first, "spread9", None)}, None))
    rows.append((f"{short}, 9 patches + whole image + half scale",
                 {f"{short}@{s}": (first, s, None) for s in ("p9", "whole", "half")}, None))
    if len(backbones) > 1:
        every = {n.replace("efficientnet_", ""): (n, "p9", None) for n in backbones}
        rows.append(("Lite0 + Lite1 + Lite2, 9 patches", every, None))
        rows.append(("Lite0 + Lite1 + Lite2, 9 patches + half scale",
                     {f"{n}@{s}": (n, s, None) for n in backbones for s in ("p9", "half")},
                     None))
        rows.append(("Lite0 + Lite1 + Lite2, 9 patches each + handcrafted", every, "all"))
        native = {n.replace("efficientnet_", ""): (n, "native", None) for n in backbones}
        rows.append(("Lite0 + Lite1 + Lite2, whole image at native 500×500 + handcrafted",
                     native, "all"))
        shipped = dict(zip(backbones, ("p4", "p9", "p6"), strict=False))
        preset = {n.replace("efficientnet_", ""): (n, p, None) for n, p in shipped.items()}
        rows.append(("accurate preset: Lite0 4 / Lite1 9 / Lite2 6 patches + handcrafted",
                     preset, "all"))
        rows.append(("accurate preset + the three at native 500×500",
                     {**preset, **{f"{k}@native": v for k, v in native.items()}}, "all"))
        rows.append(("Lite0 4 patches, Lite1 and Lite2 at native 500×500 + handcrafted",
                     {"lite0": (backbones[0], "p4", None),
                      **{k: v for k, v in native.items() if k != "lite0"}}, "all"))
    rows.append((f"{short}, 9 patches + handcrafted (the previous default's recipe)",
                 {short: (first, "p9", None)}, "all"))
    rows.append(("fast preset: Lite0, 4 patches + NSS", {short: (first, "p4", None)}, "nss"))
    rows.append(("handcrafted alone (75 values)", {}, "all"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" /
                        "nr_ablation")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    dataset = clive_share(args.data, args.quick)
    if dataset is None:
        return 2
    backbones, folds = (BACKBONES[:1], 3) if args.quick else (BACKBONES, 5)
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    features = {n: sampled_features(n, dataset, args.out) for n in backbones}
    for name in backbones:
        features[name]["native"] = native_features(name, dataset, args.out)
    widths = {n: export_stage_graph(n, args.out)[1] for n in backbones}
    hand, hand_names = handcrafted_features(dataset, args.out)
    nss = nss_columns(hand_names)
    scores, groups = dataset.scores, dataset.content_ids
    results = []
    for label, blocks, hand_subset in configurations(backbones):
        columns = {}
        for block, (name, sampling, levels) in blocks.items():
            values = features[name][sampling]
            columns[block] = values if levels is None else \
                values[:, level_columns(widths[name], levels)]
        handcrafted = None if hand_subset is None else \
            (hand if hand_subset == "all" else hand[:, nss])
        names = hand_names if hand_subset != "nss" else [hand_names[i] for i in nss]
        results.append(measured_row(label, columns, handcrafted, names, scores, groups,
                                    folds))
    print("\n| configuration | SRCC | PLCC | values |\n|---|---|---|---:|")
    for row in results:
        print(markdown_row(row))
    print("| fine-tuned trunks | see benchmarks/nr_tuning.py | | |")
    write_report(args.out, args.quick, {"items": len(dataset), "folds": folds,
                                        "rows": results,
                                        "seconds": round(time.perf_counter() - start, 1)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
