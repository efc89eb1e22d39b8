"""Train a backbone's quality and weight heads on human-rated data, then export it.

The recipe (seed paper, WaDIQaM): Adam, MSE on scores normalised to [0, 1], dropout 0.5
and L2 1e-4 in the heads, early stopping on a validation split disjoint by content,
exponential learning-rate decay, and a seeded random search over the learning rate
(log-uniform 1e-3…1e-5) and batch size (16–64) within a trial budget.

For pretrained trunks, which stay frozen, every image's patch features are computed once
with the exported (LiteRT) model, exactly as prediction computes them, and the heads
are trained on them: an image's score is the weighted average Σ w·q / Σ w of its
patches' qualities q with learned weights w (WaDIQaM). The trained heads are written
back into the full model, which is saved as ``.keras`` and exported to ``.tflite``,
and the LiteRT output is checked against Keras.

Backbones without a pretrained trunk (the native networks, and ``keras.applications``
trunks with ``weights=None``) are trained end to end in two stages, synthetic
pre-training then fine-tuning on human ratings (:mod:`fusion.training.end_to_end`).

Not done: fine-tuning the pretrained trunks (they stay frozen).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from backbones.export import export_litert, max_litert_difference
from backbones.patches import grid_positions, take_patches
from backbones.registry import get_backbone, load_keras, spec_of
from backbones.runtime import LiteRTBackbone
from fusion.io import load_image
from fusion.metrics import evaluate
from fusion.splits import train_val_test_split
from fusion.training._search import random_search

__all__ = ["TrainingResult", "patch_features", "train_backbone", "train_heads"]


@dataclass
class TrainingResult:
    """What a training run produced and measured."""

    backbone: str
    mode: str
    keras_path: str
    litert_path: str
    settings: dict[str, Any]
    validation: dict[str, float]
    trials: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    litert_max_difference: float = math.nan


def patch_features(runtime: Any, items: Sequence[tuple[Any, Any]], *, max_patches: int = 9,
                   progress: bool = False) -> NDArray[np.float32]:
    """Per-patch trunk features (n_items, n_patches, F) from an exported backbone.

    ``items`` are (image, reference or None) in any form :func:`fusion.io.load_image`
    takes. Each is loaded only while its patches are cut, so memory does not grow with the
    number of items (loading them all first took 12 GB for 1,300 Kodak pairs).
    """
    from tqdm.auto import tqdm

    rows = []
    for image_input, reference_input in tqdm(items, desc="patch features",
                                             disable=not progress):
        image = load_image(image_input).rgb
        positions = grid_positions(*image.shape[:2], size=runtime.patch_size,
                                   max_patches=max_patches)
        patches = take_patches(image, positions, size=runtime.patch_size)
        if reference_input is not None:
            reference = load_image(reference_input).rgb
            ref = take_patches(reference, positions, size=runtime.patch_size)
            patches = np.concatenate([ref, patches], axis=3)
        rows.append(runtime(patches)[:, :-2])
    count = min(len(r) for r in rows)
    return np.stack([r[:count] for r in rows]).astype(np.float32)


def _head_model(model: Any, n_patches: int, n_features: int) -> Any:
    from backbones._keras import require_keras
    from backbones.models import weighted_average

    keras = require_keras()
    layers = keras.layers

    inputs = keras.Input((n_patches, n_features), name="patch_features")
    normalised = model.get_layer("feature_norm")(inputs)
    hidden = model.get_layer("quality_hidden")(normalised)
    hidden = model.get_layer("quality_dropout")(hidden)
    quality = model.get_layer("quality")(hidden)
    weight = model.get_layer("weight")(model.get_layer("weight_hidden")(normalised))
    pooled = layers.Lambda(lambda qw: weighted_average(qw[0], qw[1]),
                           name="weighted_average")([quality, weight])
    return keras.Model(inputs, pooled)


def train_heads(model: Any, features: NDArray[np.float32], targets: NDArray[np.float64],
                groups: NDArray[np.str_], *, seed: int = 0, trials: int = 6,
                max_epochs: int = 200, patience: int = 15,
                verbose: int = 0) -> tuple[dict[str, Any], dict[str, float],
                                           list[dict[str, Any]]]:
    """Random-search the heads' learning rate and batch size, then train them.

    ``targets`` are on 0–100; the heads learn ``target / 100``. Returns the chosen
    settings, validation metrics (SRCC/PLCC/RMSE on 0–100, of the held-out contents) and
    every trial.
    """
    from backbones._keras import require_keras

    keras = require_keras()
    keras.utils.set_random_seed(seed)
    train, validation, _unused = train_val_test_split(
        groups, fractions=(0.8, 0.2, 0.0), seed=seed, scores=targets)
    y = (targets / 100.0).astype(np.float32)
    flat = features[train].reshape(-1, features.shape[2])
    norm = model.get_layer("feature_norm")
    norm.set_weights([flat.mean(axis=0), flat.var(axis=0) + 1e-6,
                      *norm.get_weights()[2:]])
    head = _head_model(model, features.shape[1], features.shape[2])

    def run_trial(_: int, settings: dict[str, Any]) -> tuple[dict[str, float],
                                                             dict[str, Any]]:
        schedule = keras.optimizers.schedules.ExponentialDecay(
            settings["learning_rate"], decay_steps=max(1, len(train) // settings["batch_size"]),
            decay_rate=settings["decay"])
        head.compile(optimizer=keras.optimizers.Adam(schedule), loss="mse")
        stop = keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=True)
        fit = head.fit(features[train], y[train], validation_data=(features[validation],
                       y[validation]), epochs=max_epochs, batch_size=settings["batch_size"],
                       callbacks=[stop], verbose=verbose, shuffle=True)
        predicted = 100.0 * np.asarray(head.predict(features[validation], verbose=0)).ravel()
        return (evaluate(predicted, targets[validation], logistic=None),
                {"epochs": len(fit.history["loss"])})

    settings, metrics, history = random_search(model, run_trial, trials=trials, seed=seed,
                                               extra={"decay": 0.99})
    return settings, {k: float(metrics[k]) for k in ("srcc", "krcc", "plcc", "rmse")}, history


def train_backbone(name: str, dataset: Any, out_dir: str | Path, *, mode: str | None = None,
                   seed: int = 0, trials: int = 6, max_patches: int | None = None,
                   progress: bool = True, pretrain: Any = None,
                   patches_per_image: int = 16, max_epochs: int = 30, patience: int = 5,
                   pretrain_epochs: int = 10, initial: str | Path | None = None
                   ) -> TrainingResult:
    """Build, train and export one backbone.

    Pretrained trunks (EfficientNet-Lite) stay frozen and their heads are trained on
    ``dataset``. Other backbones are trained end to end (:mod:`fusion.training.end_to_end`):
    stage 1 on ``pretrain`` (a synthetic full-reference set, see
    :func:`fusion.distortions.generate_synthetic`, whose severity becomes the target),
    stage 2 on ``dataset`` (human-rated); either may be None, not both. ``initial`` (a
    ``.keras`` of the same backbone, e.g. a stage-1 result) gives the starting weights.

    Writes ``<name>_<mode>.keras``, ``<name>_<mode>.tflite`` and ``<name>_<mode>.json``
    (settings, trials, validation metrics, timings) into ``out_dir``.
    """
    if trials < 1:
        raise ValueError(f"trials must be at least 1, got {trials}")
    spec = spec_of(name)
    if dataset is None and pretrain is None:
        raise ValueError("give a rated dataset, a synthetic pre-training set, or both")
    if initial is not None and spec.pretrained:
        raise ValueError(f"{name} has a frozen pretrained trunk; initial= is for backbones "
                         "trained end to end")
    mode = mode or (dataset.mode if dataset is not None else "fr")
    max_patches = max_patches or spec.max_patches
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if spec.pretrained:
        if dataset is None:
            raise ValueError(f"{name} has a pretrained trunk: its heads train on a rated "
                             "dataset (pre-training is for backbones trained end to end)")
        return _train_frozen(name, dataset, out, mode=mode, seed=seed, trials=trials,
                             max_patches=max_patches, progress=progress)
    return _train_end_to_end(name, dataset, pretrain, out, mode=mode, seed=seed,
                             trials=trials, max_patches=max_patches, progress=progress,
                             patches_per_image=patches_per_image, max_epochs=max_epochs,
                             patience=patience, pretrain_epochs=pretrain_epochs,
                             initial=initial)


def _train_frozen(name: str, dataset: Any, out: Path, *, mode: str, seed: int, trials: int,
                  max_patches: int, progress: bool) -> TrainingResult:
    start = time.perf_counter()
    spec = spec_of(name)
    model = get_backbone(name, mode=mode)
    stem = f"{name}_{mode}"
    untrained = export_litert(model, out / f"{stem}.untrained.tflite")
    runtime = LiteRTBackbone(untrained)
    rated = [i for i, item in enumerate(dataset) if item.score is not None]
    items = [(dataset[i].image, dataset[i].reference if mode == "fr" else None)
             for i in rated]
    features = patch_features(runtime, items, max_patches=max_patches, progress=progress)
    untrained.unlink()
    settings, validation, history = train_heads(
        model, features, dataset.scores[rated], dataset.content_ids[rated], seed=seed,
        trials=trials)
    return _save(model, out, stem, name, mode, start, seed, validation, history, {
        **settings, "seed": seed, "max_patches": max_patches, "patch_size": spec.patch_size,
        "trunk": "frozen", "dataset": dataset.name, "items": len(rated)})


def _train_end_to_end(name: str, dataset: Any, pretrain: Any, out: Path, *, mode: str,
                      seed: int, trials: int, max_patches: int, progress: bool,
                      patches_per_image: int, max_epochs: int, patience: int,
                      pretrain_epochs: int, initial: str | Path | None) -> TrainingResult:
    from backbones._keras import require_keras
    from fusion.distortions import severity_dataset
    from fusion.training.end_to_end import decode_items, search_stage

    keras = require_keras()
    keras.utils.set_random_seed(seed)
    start = time.perf_counter()
    spec = spec_of(name)
    model = get_backbone(name, mode=mode)
    if initial is not None:
        model.set_weights(load_keras(initial).get_weights())
    else:
        norm = model.get_layer("feature_norm")  # identity: the trunk ends in batch norm
        width = norm.get_weights()[0].shape
        norm.set_weights([np.zeros(width, np.float32), np.ones(width, np.float32),
                          *norm.get_weights()[2:]])
    common: dict[str, Any] = {"seed": seed, "patches_per_image": patches_per_image,
                              "max_patches": max_patches, "patience": patience,
                              "progress": progress}
    stages = []
    if pretrain is not None:
        items = decode_items(severity_dataset(pretrain, target="level"), mode)
        stages.append(search_stage(model, items, name="stage 1 (synthetic severity)",
                                   trials=1, max_epochs=pretrain_epochs,
                                   fixed={"learning_rate": 1e-3, "batch_size": 32}, **common))
        del items
    if dataset is not None:
        items = decode_items(dataset, mode)
        stages.append(search_stage(model, items, name=f"stage 2 ({dataset.name})",
                                   trials=trials, max_epochs=max_epochs, **common))
        del items
    final = stages[-1]
    return _save(model, out, f"{name}_{mode}", name, mode, start, seed, final.validation,
                 [{"stage": st.name, **t} for st in stages for t in st.trials], {
                     **final.settings, "seed": seed, "max_patches": max_patches,
                     "patch_size": spec.patch_size, "trunk": "trained end to end",
                     "dataset": dataset.name if dataset is not None else None,
                     "pretrain": pretrain.description if pretrain is not None else None,
                     "initial": str(initial) if initial is not None else None,
                     "stages": [{"name": st.name, "items": st.items, "settings": st.settings,
                                 "validation": st.validation,
                                 "seconds": round(st.seconds, 1)} for st in stages],
                     "items": final.items})


def _save(model: Any, out: Path, stem: str, name: str, mode: str, start: float, seed: int,
          validation: dict[str, float], history: list[dict[str, Any]],
          settings: dict[str, Any]) -> TrainingResult:
    """Save ``.keras``, export and check ``.tflite``, write the JSON report."""
    keras_path = out / f"{stem}.keras"
    model.save(keras_path)
    litert_path = export_litert(model, out / f"{stem}.tflite")
    sample = np.random.default_rng(seed).random(
        (4, *model.input_shape[1:])).astype(np.float32)
    result = TrainingResult(
        backbone=name, mode=mode, keras_path=str(keras_path), litert_path=str(litert_path),
        settings=settings, validation=validation, trials=history,
        seconds=time.perf_counter() - start,
        litert_max_difference=max_litert_difference(model, litert_path, sample),
    )
    (out / f"{stem}.json").write_text(json.dumps(asdict(result), indent=2))
    return result
