"""Train a fused model end to end on a dataset and write its bundle (needs the train extra).

``train_fusion(dataset, out)``:

1. splits the dataset by content into a training part and a held-out test part that
   nothing below ever sees;
2. trains each backbone's heads on the training part (:mod:`fusion.training.backbone`) and
   exports it to LiteRT;
3. computes backbone and handcrafted features for every item (through the HDF5 cache);
4. fits the stacker and the conformal interval on the training part
   (:meth:`fusion.FusionModel.fit`);
5. measures the fused model and each component alone on the held-out part (SRCC, KRCC,
   PLCC, RMSE, interval coverage) and writes the bundle with those numbers in its
   ``metadata.json``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from backbones.export import export_pair_parts, max_litert_difference
from backbones.hashing import sha256_of
from backbones.registry import get_backbone, load_keras
from fusion.backbone_extractor import BackboneExtractor
from fusion.bundle import save_bundle, write_checksums
from fusion.datasets import Dataset
from fusion.feature_table import compute_features
from fusion.features import FULL_REFERENCE_EXTRACTORS, NO_REFERENCE_EXTRACTORS
from fusion.features.contract import Extractor
from fusion.metrics import evaluate
from fusion.model import FusionModel
from fusion.splits import train_val_test_split
from fusion.stacking import learner_contributions
from fusion.training.backbone import TrainingResult, train_backbone

__all__ = ["add_pair_parts", "heldout_split", "reexport_backbones", "refit_stacker",
           "save_heads", "train_fusion"]


def save_heads(model: Any, path: str | Path) -> Path:
    """Save a backbone's trained heads (normalisation, quality, weight) as a ``.keras``.

    The frozen pretrained trunk is not copied: it is rebuilt from its PyPI package.
    """
    from backbones._keras import require_keras

    keras = require_keras()
    width = model.get_layer("feature_norm").input.shape[-1]
    inputs = keras.Input((width,), name="patch_features")
    normalised = model.get_layer("feature_norm")(inputs)
    quality = model.get_layer("quality")(model.get_layer("quality_hidden")(normalised))
    weight = model.get_layer("weight")(model.get_layer("weight_hidden")(normalised))
    heads = keras.Model(inputs, [quality, weight], name=f"{model.name}_heads")
    path = Path(path)
    heads.save(path)
    return path


def heldout_split(dataset: Dataset, *, test_fraction: float = 0.2, seed: int = 0
                  ) -> tuple[Any, Any]:
    """(training, held-out) item indices, split by content: the one split of a default.

    :func:`train_fusion` and :func:`refit_stacker` both use it, so a refit keeps the
    held-out part its backbones never saw.
    """
    train, _, test = train_val_test_split(
        dataset, fractions=(1 - test_fraction, 0.0, test_fraction), seed=seed)
    return train, test


def train_fusion(dataset: Dataset, out: str | Path, *, backbones: tuple[str, ...] =
                 ("efficientnet_lite0",), work: str | Path, name: str, seed: int = 0,
                 test_fraction: float = 0.2, trials: int = 3, coverage: float = 0.9,
                 description: str = "", reuse_backbones: bool = False,
                 monotone: bool = False,
                 max_patches: int | Mapping[str, int] | None = None,
                 handcrafted: Sequence[Extractor] | None = None) -> dict[str, Any]:
    """Train, measure and save a fused model; returns the held-out report.

    ``reuse_backbones`` reuses backbones already trained in ``work`` with the same split
    (their ``<name>_<mode>.json`` report), instead of training them again; ``backbones=()``
    fuses the handcrafted features alone. ``monotone`` fits the monotone stacker
    (:class:`fusion.FusionModel`), which uses no backbone column. ``max_patches`` caps the
    patches per image of every backbone, or of each one by name (default: each one's
    registry value);
    ``handcrafted`` replaces the mode's default handcrafted extractors (e.g. a cheaper set
    for the ``fast`` preset).
    """
    start = time.perf_counter()
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    train, test = heldout_split(dataset, test_fraction=test_fraction, seed=seed)
    extractors: list[Any] = []
    heads: dict[str, Path] = {}
    backbone_reports = {}
    for backbone in backbones:
        report_path = work / f"{backbone}_{dataset.mode}.json"
        if reuse_backbones and report_path.is_file():
            result = TrainingResult(**json.loads(report_path.read_text()))
        else:
            patches = max_patches.get(backbone) if isinstance(max_patches, Mapping) \
                else max_patches
            result = train_backbone(backbone, dataset[train], work, mode=dataset.mode,
                                    seed=seed, trials=trials, progress=True,
                                    max_patches=patches)
        model = load_keras(result.keras_path)
        heads[backbone] = save_heads(model, work / f"{backbone}_{dataset.mode}.heads.keras")
        parts = None
        if dataset.mode == "fr":
            parts = export_pair_parts(model, work, f"{backbone}_fr")
        extractors.append(BackboneExtractor(backbone, result.litert_path,
                                            sha256_of(result.litert_path), parts=parts,
                                            max_patches=int(result.settings["max_patches"])))
        backbone_reports[backbone] = {"validation": result.validation,
                                      "settings": result.settings,
                                      "seconds": round(result.seconds, 1),
                                      "litert_max_difference": result.litert_max_difference}
    if handcrafted is None:
        handcrafted = FULL_REFERENCE_EXTRACTORS if dataset.mode == "fr" else \
            NO_REFERENCE_EXTRACTORS
    extractors += list(handcrafted)
    return _fit_report_save(dataset, extractors, train, test, out, work=work, name=name,
                            seed=seed, coverage=coverage, description=description,
                            heads=heads, extra={"backbones": backbone_reports}, start=start,
                            monotone=monotone)


def refit_stacker(bundle: str | Path, dataset: Dataset, out: str | Path, *,
                  work: str | Path, name: str, anchors: Dataset | None = None,
                  seed: int = 0, test_fraction: float = 0.2, coverage: float = 0.9,
                  description: str = "",
                  cross_fitted: Mapping[str, Any] | None = None,
                  extractors: Sequence[Extractor] | None = None) -> dict[str, Any]:
    """Refit a bundle's stacker and interval; returns the report.

    The bundle's extractors are kept, unless ``extractors`` replaces them.

    The dataset is split by content exactly as :func:`train_fusion` splits it (same
    ``seed`` and ``test_fraction``), so a bundle whose backbones were trained by
    :func:`train_fusion` on this dataset keeps its held-out part unseen. ``anchors``
    (:mod:`fusion.training.anchors`) fit the no-reference gate, or join the
    full-reference training pairs; the held-out report is on the dataset's held-out part
    alone.

    ``cross_fitted`` maps a feature name to its value on every item of ``dataset`` (NaN
    allowed outside the training part): the stacker is fitted on these values instead of
    the bundle's own, as it must be for the tuned quality (``bb:<backbone>:q_tuned``) of a
    trunk tuned on the training items (:func:`fusion.training.tuning.tune_trunk`); the
    held-out report still uses the bundle's values. Every tuned column of the bundle must
    be given. ``extractors`` replaces the bundle's (e.g. by :func:`tuned_extractors`).
    """
    from fusion.bundle import load_bundle

    start = time.perf_counter()
    source = Path(bundle)
    model = load_bundle(source)
    if model.mode != dataset.mode:
        raise ValueError(f"{source} is a {model.mode} bundle; {dataset.name} is {dataset.mode}")
    metadata = model.metadata or {}
    heads = {entry["backbone"]: source / entry["keras"]
             for entry in metadata.get("extractors", [])
             if entry.get("kind") == "backbone" and "keras" in entry}
    train, test = heldout_split(dataset, test_fraction=test_fraction, seed=seed)
    extractors = list(model.extractors if extractors is None else extractors)
    replaced = sorted({e.key for e in extractors} - {e.key for e in model.extractors})
    backbones_note = "unchanged" if not replaced else \
        f"replaced by {', '.join(replaced)} (see each backbone's 'tuned' entry)"
    return _fit_report_save(dataset, extractors, train, test, out,
                            work=Path(work), name=name, seed=seed, coverage=coverage,
                            description=description, heads=heads, anchors=anchors,
                            extra={"backbones": metadata.get("backbones"),
                                   "backbones_from": f"{source.name} ({model.name}), "
                                                     f"{backbones_note}"}, start=start,
                            monotone=model.monotone, cross_fitted=cross_fitted)


def _fit_report_save(dataset: Dataset, extractors: list[Any], train: Any, test: Any,
                     out: str | Path, *, work: Path, name: str, seed: int, coverage: float,
                     description: str, heads: dict[str, Path], extra: dict[str, Any],
                     start: float, anchors: Dataset | None = None,
                     monotone: bool = False,
                     cross_fitted: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Features, stacker fit on the training part (+ anchors), held-out report, bundle."""
    work.mkdir(parents=True, exist_ok=True)
    cache = work / "features.h5"
    table = compute_features(dataset, extractors, cache=cache, progress=True)
    ok = table.ok
    train_ok = np.array([i for i in train if ok[i]])
    test_ok = np.array([i for i in test if ok[i]])
    scores, groups = dataset.scores, dataset.content_ids
    values, targets, contents = (table.values[train_ok], scores[train_ok], groups[train_ok])
    values = _with_cross_fitted(values, table.feature_names, train_ok, cross_fitted or {})
    anchor_note, gate_anchors, anchor_score = None, None, None
    if anchors is not None:
        anchor_table = compute_features(anchors, extractors, cache=cache, progress=True)
        if anchor_table.errors:
            raise ValueError(f"anchors failed: {anchor_table.errors}")
        if dataset.mode == "nr":  # they fit the gate, not the stacker
            gate_anchors, anchor_score = anchor_table.values, float(anchors.scores.min())
            use = "no-reference gate (not the stacker)"
        else:  # ordinary training pairs of the stacker
            values = np.concatenate([values, anchor_table.values])
            targets = np.concatenate([targets, anchors.scores])
            contents = np.concatenate([contents, anchors.content_ids])
            use = "stacker training pairs"
        anchor_note = {"items": len(anchors), "description": anchors.description,
                       "used_for": use}
    fused = FusionModel(dataset.mode, extractors, coverage=coverage, seed=seed,
                        name=name, monotone=monotone).fit(values, targets, groups=contents,
                                       anchors=gate_anchors, anchor_score=anchor_score)
    report = _held_out_report(fused, table, scores, test_ok)
    report["seconds"] = round(time.perf_counter() - start, 1)
    training = {
        "training_data": {"dataset": dataset.name, "description": description or
                          dataset.description, "items": len(train_ok),
                          "contents": len(set(groups[train_ok])), "seed": seed,
                          "scores": dataset.scale.describe() if dataset.scale else
                          "synthetic severity target", "anchors": anchor_note},
        "heldout_metrics": report, **extra,
    }
    save_bundle(fused, out, backbone_keras=heads, training=training)
    (work / f"{name}_report.json").write_text(json.dumps(training, indent=1))
    return training


def tuned_extractors(bundle: str | Path, tuned: Mapping[str, Any], folder: str | Path, *,
                     training: str, tolerance: float = 0.1
                     ) -> tuple[list[Extractor], dict[str, float]]:
    """A no-reference bundle's extractors, with tuned branches added to its backbones.

    ``tuned`` maps a backbone name to its :class:`fusion.training.tuning.TunedTrunk`; each
    such backbone is rebuilt (:func:`_rebuilt_backbone`), joined to its branch
    (:func:`fusion.training.tuning.tuned_backbone`), exported with float16 weights into
    ``folder`` and checked against the Keras model on 16 seeded random patches (largest
    difference ≤ ``tolerance``, else ValueError). ``training`` says what the branches were
    tuned on (recorded in each backbone's ``tuned`` entry). Returns the extractors (the
    others unchanged) and each tuned graph's largest difference. Refit the stacker on them
    with the cross-fitted qualities (:func:`refit_stacker`).
    """
    from backbones.export import export_litert_float16
    from fusion.bundle import load_bundle
    from fusion.training.tuning import tuned_backbone

    source, folder = Path(bundle), Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    metadata = json.loads((source / "metadata.json").read_text())
    if metadata["mode"] != "nr":
        raise ValueError("tuned branches are for no-reference bundles")
    entries = {e["key"]: e for e in metadata["extractors"] if e.get("kind") == "backbone"}
    unknown = set(tuned) - {e["backbone"] for e in entries.values()}
    if unknown:
        raise ValueError(f"{source} has no backbone {sorted(unknown)}")
    extractors: list[Extractor] = []
    differences = {}
    for extractor in load_bundle(source).extractors:
        entry = entries.get(extractor.key)
        if entry is None or entry["backbone"] not in tuned:
            extractors.append(extractor)
            continue
        if "tuned" in entry:
            raise ValueError(f"{extractor.key} is already tuned")
        if "keras" not in entry:
            raise ValueError(f"{extractor.key}: the bundle has no trained heads to rebuild "
                             "the backbone from")
        trunk = tuned[entry["backbone"]]
        if trunk.max_patches != entry["max_patches"]:
            raise ValueError(f"{entry['backbone']}: tuned on {trunk.max_patches} patches an "
                             f"image, the bundle takes {entry['max_patches']}")
        model = tuned_backbone(_rebuilt_backbone(source, entry, tolerance=tolerance), trunk)
        graph = export_litert_float16(model, folder / f"{Path(entry['litert']).stem}"
                                      "_tuned.tflite")
        differences[entry["backbone"]] = _export_difference(model, graph)
        if differences[entry["backbone"]] > tolerance:
            raise ValueError(f"{entry['backbone']}: the tuned graph differs from its Keras "
                             f"model by {differences[entry['backbone']]:.3g}")
        final = trunk.reports[-1]
        description = {"start_stage": trunk.start_stage, "training": training,
                       "standardisation": [round(v, 4) for v in trunk.standardisation],
                       **_kept_weights(final),
                       "validation_srcc": final.get("validation_srcc"),
                       "cross_fitted_folds": len(trunk.reports) - 1}
        extractors.append(BackboneExtractor(entry["backbone"], graph, sha256_of(graph),
                                            max_patches=entry["max_patches"],
                                            tuned=description))
    return extractors, differences


def _kept_weights(report: Mapping[str, Any]) -> dict[str, Any]:
    """Which weights a tuning run kept, from its report: the best epoch, or an average."""
    if report.get("averaged_from"):
        return {"averaged_epochs": [report["averaged_from"], len(report["validation_srcc"])],
                "averaged_srcc": report.get("averaged_srcc")}
    return {"best_epoch": report.get("best_epoch")}


def _export_difference(model: Any, graph: Path) -> float:
    """Largest output difference of an exported graph from its Keras model.

    Measured on 16 seeded random patches of the model's input shape.
    """
    patches = np.random.default_rng(1).random((16, *model.input_shape[1:]))
    return max_litert_difference(model, graph, patches.astype(np.float32))


def _with_cross_fitted(values: Any, feature_names: Sequence[str], rows: Any,
                       cross_fitted: Mapping[str, Any]) -> Any:
    """Training values with each tuned column replaced by its cross-fitted values.

    A tuned quality computed by the shipped graph on the items its trunk was tuned on is
    in-sample (far better than on new images): the stacker must never learn from it.
    """
    tuned = [n for n in feature_names if n.endswith(":q_tuned")]
    missing = sorted(set(tuned) - set(cross_fitted))
    unknown = sorted(set(cross_fitted) - set(tuned))
    if missing or unknown:
        raise ValueError(f"cross-fitted values needed for {missing or 'none'}; given for "
                         f"columns the model has no tuned quality for: {unknown or 'none'}")
    values = np.array(values, dtype=np.float64, copy=True)
    for feature, column in cross_fitted.items():
        given = np.asarray(column, dtype=np.float64)[rows]
        if not np.all(np.isfinite(given)):
            raise ValueError(f"{feature}: the cross-fitted values of "
                             f"{int(np.sum(~np.isfinite(given)))} training items are missing")
        values[:, list(feature_names).index(feature)] = given
    return values


def _rebuilt_backbone(folder: Path, entry: dict[str, Any], *, mode: str = "nr",
                      tolerance: float = 1e-4) -> Any:
    """The Keras backbone of a bundle entry: registry trunk + the bundle's trained heads.

    Checked against the bundle's ``.tflite`` (largest difference ≤ ``tolerance``; 1e-4
    for a float32 graph) before it is used.
    """
    from backbones.runtime import LiteRTBackbone

    graph_size = LiteRTBackbone(folder / entry["litert"]).patch_size  # 224, or re-exported
    model = get_backbone(entry["backbone"], mode=mode, patch_size=graph_size)
    heads = load_keras(folder / entry["keras"])
    for layer in heads.layers:
        if layer.weights:
            model.get_layer(layer.name).set_weights(layer.get_weights())
    size, channels = int(model.input_shape[1]), int(model.input_shape[-1])
    sample = np.random.default_rng(0).random((3, size, size, channels)).astype(np.float32)
    difference = max_litert_difference(model, folder / entry["litert"], sample)
    if difference > tolerance:
        raise ValueError(f"{entry['key']}: the rebuilt backbone differs from the "
                         f"bundle's by {difference:.2e}")
    return model


def add_pair_parts(bundle: str | Path) -> list[str]:
    """Add trunk/head parts to every full-reference backbone of a bundle directory.

    The backbone is rebuilt from its registry entry and the bundle's trained heads, shown
    to equal the bundle's ``.tflite`` (1e-4), exported in two parts (checked the same way),
    and the parts are added to ``metadata.json`` and ``SHA256SUMS``. Returns the added
    files. Needs the train extra.
    """
    folder = Path(bundle)
    metadata = json.loads((folder / "metadata.json").read_text())
    added = []
    for entry in metadata["extractors"]:
        if entry.get("kind") != "backbone" or "keras" not in entry or \
                metadata["mode"] != "fr":
            continue
        model = _rebuilt_backbone(folder, entry, mode="fr")
        stem = Path(entry["litert"]).stem
        trunk, head = export_pair_parts(model, folder / "backbones", stem)
        entry["litert_parts"] = {
            "trunk": f"backbones/{trunk.name}", "head": f"backbones/{head.name}",
            "trunk_sha256": sha256_of(trunk), "head_sha256": sha256_of(head)}
        added += [entry["litert_parts"]["trunk"], entry["litert_parts"]["head"]]
    (folder / "metadata.json").write_text(json.dumps(metadata, indent=1))
    write_checksums(folder)
    return added


def reexport_backbones(bundle: str | Path, *, precision: str = "float16",
                       tolerance: float = 0.1, patch_size: int | None = None,
                       max_patches: int | None = None,
                       only: Sequence[str] | None = None) -> dict[str, float]:
    """Re-export every no-reference backbone of a bundle directory at ``precision``.

    ``"float16"``: float16 weights (:func:`backbones.export.export_litert_float16`, half
    the size, same speed: the runtime widens them to float32 when it loads the graph);
    ``"float32"``: Keras's own float32 export (to measure what float16 changed, see
    ``benchmarks/quantised.py``). Each backbone is rebuilt (:func:`_rebuilt_backbone`,
    checked against the bundle's graph to 1e-4 for float32 bundles) and the new graph is
    compared with the Keras model on 16 seeded random patches; above ``tolerance``
    (largest absolute output difference) the old file is kept. ``metadata.json`` (file,
    SHA-256, key, ``weights``) and ``SHA256SUMS`` are rewritten. Returns each replaced
    backbone's largest difference. Needs the train extra.

    ``patch_size`` exports the same weights (trunk and heads) for square inputs of that
    side instead (the trunk is convolutional and its features are global averages, so
    nothing else changes), with ``max_patches`` patches an image; e.g. 500 and 4: one pass
    over a whole 500×500 photograph, a 2×2 grid of 500-pixel patches over a larger one. The
    stacker must then be refitted on the new features (``refit_stacker``). ``only``
    names the backbones to re-export (default: every one).
    """
    from backbones.export import export_litert, export_litert_float16

    exporters = {"float16": export_litert_float16, "float32": export_litert}
    if precision not in exporters:
        raise ValueError(f"precision must be 'float16' or 'float32', got {precision!r}")
    folder = Path(bundle)
    metadata = json.loads((folder / "metadata.json").read_text())
    if metadata["mode"] != "nr":
        raise ValueError("reexport_backbones is for no-reference bundles (full-reference "
                         "backbones also ship trunk/head parts)")
    replaced = {}
    for entry in metadata["extractors"]:
        if entry.get("kind") != "backbone" or "keras" not in entry \
                or (only is not None and entry["backbone"] not in only):
            continue
        if "tuned" in entry:
            raise ValueError(f"{entry['key']} carries a quality-tuned branch whose weights "
                             "are not in the bundle: export it again from its training "
                             "run (benchmarks/train_defaults.py nr-tuned)")
        model = _rebuilt_backbone(folder, entry,
                                  tolerance=1e-4 if entry.get("weights") != "float16"
                                  else tolerance)
        patches_per_image = entry["max_patches"]
        if patch_size is not None:
            resized = get_backbone(entry["backbone"], mode="nr", patch_size=patch_size)
            resized.set_weights(model.get_weights())
            model = resized
            if max_patches is not None:
                patches_per_image = int(max_patches)
        old = folder / entry["litert"]
        new = exporters[precision](model, old.with_name(f"{old.stem}.{precision}.tflite"))
        difference = _export_difference(model, new)
        if difference > tolerance:
            new.unlink()
            continue
        old.unlink()
        new = new.rename(old)
        # only now: a graph kept because the new one differed keeps its patch count too
        entry["max_patches"] = patches_per_image
        entry["sha256"] = sha256_of(new)
        entry["key"] = BackboneExtractor(entry["backbone"], new, entry["sha256"],
                                         max_patches=patches_per_image).key
        replaced[entry["backbone"]] = difference
    (folder / "metadata.json").write_text(json.dumps(metadata, indent=1))
    write_checksums(folder)
    return replaced


def _held_out_report(model: FusionModel, table: Any, scores: Any, test: Any) -> dict[str, Any]:
    x, y = table.values[test], scores[test]
    predicted, intervals = model.predict_matrix(x)
    fused = evaluate(predicted, y, logistic=5)
    components: dict[str, dict[str, float]] = {}
    for extractor in model.extractors:
        if isinstance(extractor, BackboneExtractor):
            column = table.feature_names.index(f"bb:{extractor.backbone_name}:q_weighted")
            components[f"{extractor.backbone_name} (own pooled quality)"] = \
                _short(evaluate(100 * table.values[test, column], y, logistic=5))
            if extractor.tuned is not None:
                column = table.feature_names.index(f"bb:{extractor.backbone_name}:q_tuned")
                components[f"{extractor.backbone_name} (tuned quality)"] = \
                    _short(evaluate(100 * table.values[test, column], y, logistic=5))
    for column, (feature, higher) in enumerate(zip(table.feature_names,
                                                   table.higher_is_better, strict=True)):
        if feature.startswith("bb:") or higher is None:
            continue
        sign = 1.0 if higher else -1.0
        components[feature] = _short(evaluate(sign * table.values[test, column], y,
                                              logistic=5))
    covered = float(np.mean((y >= intervals[:, 0]) & (y <= intervals[:, 1])))
    gate = {}
    if model.gate_ is not None:
        probability = model.gate_.predict_proba(x)[:, 1]
        gate = {"gate": {"max_probability_heldout": round(float(probability.max()), 4),
                         "share_above_half_heldout": float(np.mean(probability > 0.5))}}
    return {"n": len(test), "fused": _short(fused), **gate,
            "interval": {"coverage_nominal": float(model.interval_.coverage),
                         "coverage_heldout": covered,
                         "half_width": float(model.interval_.half_width_),
                         "calibration": model.calibration,
                         "calibration_items": int(model.interval_.n_calibration_)},
            "components": components,
            "learner_weights": learner_contributions(model.stacker_)}


def _short(metrics: dict[str, float]) -> dict[str, float]:
    """SRCC, KRCC and PLCC/RMSE after the 5-parameter logistic (VQEG)."""
    keys = ("srcc", "krcc", "plcc_logistic", "rmse_logistic")
    return {k.removesuffix("_logistic"): (round(float(metrics[k]), 4)
                                          if not math.isnan(metrics[k]) else math.nan)
            for k in keys}
