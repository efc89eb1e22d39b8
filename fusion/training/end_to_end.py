"""End-to-end training of backbones without a pretrained trunk, in two stages.

Used for the native networks (``wadiqam``, ``compact``) and for ``keras.applications``
trunks built with ``weights=None``. The seed paper's recipe:

1. **Stage 1, pre-training on synthetic distortions** of pristine photographs (no human
   score): the network regresses the distortion severity, ``100·(1 − level/6)``, with
   each photograph against itself as level 0 (:func:`fusion.distortions.severity_dataset`).
2. **Stage 2, fine-tuning on human-rated data**, starting from the stage-1 weights.

Each stage splits its items by content (reference image; every CLIVE photograph is its
own content) into training and validation parts. Training follows WaDIQaM (Bosse et al.,
IEEE TIP 27(1), 2018): every step takes ``batch_size`` images with ``patches_per_image``
random patches each; the network's per-patch qualities q and weights w give the image
score Σ w·q / Σ w, and the loss is the MSE against the score / 100. Adam with exponential
learning-rate decay; dropout 0.5 and L2 1e-4 in the heads (:mod:`backbones.models`);
random flips and 90° rotations, applied to the six channels of a (reference, distorted)
patch together so that both get the same transform; new random patches every epoch;
early stopping on the validation RMSE (the image score from the deterministic inference
grid, as in prediction), keeping the best weights. A seeded random search over the
learning rate (log-uniform 1e-5…1e-3) and batch size (16–64) picks the stage-2 settings
within a trial budget; stage 1 uses fixed settings (learning rate 1e-3, batch 32).

The input pipeline is ``tf.data``: each epoch's patches are cut from images decoded once
(uint8, in memory), then shuffled, batched, augmented and converted in parallel map calls
with prefetching, so the two cores are kept busy.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from backbones.patches import grid_positions, random_positions, take_patches, weighted_quality
from fusion.io import load_image
from fusion.metrics import evaluate
from fusion.splits import train_val_test_split
from fusion.training._search import random_search

__all__ = ["DecodedItems", "StageReport", "decode_items", "fit_stage", "grid_scores",
           "search_stage"]


@dataclass
class DecodedItems:
    """Images decoded once to uint8, with their targets (0–100) and content ids."""

    images: list[NDArray[np.uint8]]
    references: list[NDArray[np.uint8] | None]
    targets: NDArray[np.float64]
    groups: NDArray[np.str_]

    @property
    def channels(self) -> int:
        """6 for (reference, distorted) pairs, else 3."""
        return 6 if self.references[0] is not None else 3

    def __len__(self) -> int:
        return len(self.images)


@dataclass
class StageReport:
    """One stage's chosen settings, validation metrics, trials and time."""

    name: str
    items: int
    settings: dict[str, Any]
    validation: dict[str, float]
    trials: list[dict[str, Any]]
    seconds: float


def decode_items(dataset: Any, mode: str, *, max_side: int | None = None) -> DecodedItems:
    """Decode a rated dataset's images (and references in ``"fr"`` mode) to uint8.

    ``max_side`` down-scales larger images (area averaging) to bound memory.
    """
    from PIL import Image

    def read(path: Any) -> NDArray[np.uint8]:
        rgb = np.round(load_image(path).rgb * 255.0).astype(np.uint8)
        if max_side is not None and max(rgb.shape[:2]) > max_side:
            scale = max_side / max(rgb.shape[:2])
            size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
            rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BOX))
        return rgb

    rated = [item for item in dataset if item.score is not None]
    if not rated:
        raise ValueError(f"{dataset.name} has no rated items to train on")
    references: dict[str, NDArray[np.uint8]] = {}
    images: list[NDArray[np.uint8]] = []
    refs: list[NDArray[np.uint8] | None] = []
    for item in rated:
        images.append(read(item.image))
        if mode == "fr":
            if item.reference is None:
                raise ValueError(f"{item.image}: full-reference training needs references")
            key = str(item.reference)
            if key not in references:
                references[key] = read(item.reference)
            refs.append(references[key])
        else:
            refs.append(None)
    return DecodedItems(images, refs, np.array([i.score for i in rated], np.float64),
                        np.array([i.content_id for i in rated]))


def _stack(items: DecodedItems, index: int, positions: NDArray[np.intp],
           size: int) -> NDArray[np.uint8]:
    """(n, size, size, C) uint8 patches of one item (reference channels first)."""
    def cut(rgb: NDArray[np.uint8]) -> NDArray[np.uint8]:
        if rgb.shape[0] >= size and rgb.shape[1] >= size:
            return np.stack([rgb[y : y + size, x : x + size] for y, x in positions])
        return take_patches(rgb.astype(np.float32), positions, size=size).astype(np.uint8)

    distorted = cut(items.images[index])
    reference = items.references[index]
    return distorted if reference is None else np.concatenate([cut(reference), distorted], 3)


def _epoch_patches(items: DecodedItems, indices: NDArray[np.intp], size: int,
                   per_image: int, rng: np.random.Generator) -> NDArray[np.uint8]:
    patches = []
    for i in indices:
        height, width = items.images[i].shape[:2]
        positions = random_positions(height, width, per_image, rng, size=size)
        patches.append(_stack(items, int(i), positions, size))
    return np.stack(patches)


def _augment(batch: Any) -> Any:
    """Random flips and 90° rotations (the 8 symmetries of a square), drawn per patch.

    Each patch is flipped left-right, flipped up-down and transposed, each with
    probability 1/2, which reaches all eight; the channels of a (reference, distorted)
    patch move together. Vectorised with ``tf.where`` (no per-patch Python loop).
    """
    import tensorflow as tf

    shape = tf.shape(batch)
    flat = tf.reshape(batch, tf.concat([[-1], shape[2:]], axis=0))
    count = tf.shape(flat)[0]
    flat = tf.where(tf.random.uniform((count, 1, 1, 1)) < 0.5, tf.reverse(flat, axis=[2]),
                    flat)  # left-right
    flat = tf.where(tf.random.uniform((count, 1, 1, 1)) < 0.5, tf.reverse(flat, axis=[1]),
                    flat)  # up-down
    flat = tf.where(tf.random.uniform((count, 1, 1, 1)) < 0.5,
                    tf.transpose(flat, [0, 2, 1, 3]), flat)  # transpose
    return tf.reshape(flat, shape)


def _pipeline(patches: NDArray[np.uint8], targets: NDArray[np.float32], batch_size: int,
              seed: int) -> Any:
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices((patches, targets))
    data = data.shuffle(len(patches), seed=seed).batch(batch_size)
    data = data.map(lambda x, y: (_augment(tf.cast(x, tf.float32) / 255.0), y),
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return data.prefetch(tf.data.AUTOTUNE)


def _image_model(backbone: Any, per_image: int) -> Any:
    """(B, K, S, S, C) patches → (B, 1) image score Σ w·q / Σ w, sharing ``backbone``."""
    from backbones._keras import require_keras
    from backbones.models import weighted_average

    keras = require_keras()
    ops = keras.ops
    size, _, channels = backbone.input_shape[1:]
    inputs = keras.Input((per_image, size, size, channels), name="image_patches")
    flat = keras.layers.Lambda(lambda t: ops.reshape(t, (-1, size, size, channels)),
                               name="flatten_patches")(inputs)
    outputs = backbone(flat)
    grouped = keras.layers.Lambda(
        lambda t: ops.reshape(t, (-1, per_image, ops.shape(t)[-1])), name="group")(outputs)
    score = keras.layers.Lambda(lambda t: weighted_average(t[..., -2:-1], t[..., -1:]),
                                name="weighted_average")(grouped)
    return keras.Model(inputs, score, name=f"{backbone.name}_image")


def grid_scores(backbone: Any, items: DecodedItems, indices: Sequence[int] | NDArray[np.intp],
                *,
                max_patches: int) -> NDArray[np.float64]:
    """Image scores (0–100) from the deterministic inference grid, as prediction pools."""
    size = int(backbone.input_shape[1])
    scores = []
    for index in indices:
        height, width = items.images[index].shape[:2]
        positions = grid_positions(height, width, size=size, max_patches=max_patches)
        patches = _stack(items, int(index), positions, size).astype(np.float32) / 255.0
        out = np.asarray(backbone(patches, training=False), dtype=np.float64)
        scores.append(100.0 * weighted_quality(out[:, -2], out[:, -1]))
    return np.array(scores)


def fit_stage(backbone: Any, items: DecodedItems, train: NDArray[np.intp],
              validation: NDArray[np.intp], *, learning_rate: float, batch_size: int,
              patches_per_image: int, max_patches: int, max_epochs: int, patience: int,
              seed: int, decay: float = 0.95, progress: bool = False
              ) -> tuple[dict[str, float], int]:
    """Train ``backbone`` in place; returns (best validation metrics, epochs run).

    The best weights (lowest validation RMSE) are restored at the end.
    """
    from backbones._keras import require_keras

    keras = require_keras()
    size = int(backbone.input_shape[1])
    model = _image_model(backbone, patches_per_image)
    steps = max(1, math.ceil(len(train) / batch_size))
    schedule = keras.optimizers.schedules.ExponentialDecay(learning_rate, steps, decay)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="mse")
    rng = np.random.default_rng(seed)
    targets = (items.targets / 100.0).astype(np.float32)
    best: tuple[float, dict[str, float], list[Any]] | None = None
    waited, epoch = 0, 0
    for epoch in range(1, max_epochs + 1):
        patches = _epoch_patches(items, train, size, patches_per_image, rng)
        model.fit(_pipeline(patches, targets[train], batch_size, seed + epoch), epochs=1,
                  verbose=0, shuffle=False)  # the pipeline shuffles, seeded
        del patches
        predicted = grid_scores(backbone, items, validation, max_patches=max_patches)
        metrics = evaluate(predicted, items.targets[validation], logistic=None)
        if progress:
            print(f"  epoch {epoch}: validation SRCC {metrics['srcc']:.3f} "
                  f"RMSE {metrics['rmse']:.2f}", flush=True)
        if best is None or metrics["rmse"] < best[0]:
            best = (metrics["rmse"], metrics, [w.copy() for w in backbone.get_weights()])
            waited = 0
        else:
            waited += 1
            if waited >= patience:
                break
    if best is None:  # no epoch ran
        raise ValueError(f"max_epochs must be at least 1, got {max_epochs}")
    backbone.set_weights(best[2])
    return {k: float(best[1][k]) for k in ("srcc", "krcc", "plcc", "rmse")}, epoch


def search_stage(backbone: Any, items: DecodedItems, *, name: str, trials: int, seed: int,
                 patches_per_image: int, max_patches: int, max_epochs: int, patience: int,
                 validation_fraction: float = 0.2, fixed: dict[str, Any] | None = None,
                 progress: bool = False) -> StageReport:
    """Train one stage, leaving the best trial's weights in ``backbone``.

    Every trial starts from the weights ``backbone`` had. Each trial draws the learning
    rate (log-uniform 1e-5…1e-3) and batch size (16, 32 or 64), unless ``fixed`` gives
    them (then one trial runs).
    """
    start = time.perf_counter()
    train, validation, _ = train_val_test_split(
        items.groups, fractions=(1 - validation_fraction, validation_fraction, 0.0),
        seed=seed, scores=items.targets)
    if len(train) == 0 or len(validation) < 3:
        raise ValueError(f"{name}: too few contents for a training/validation split "
                         f"({len(set(items.groups.tolist()))})")

    def run_trial(trial: int, settings: dict[str, Any]) -> tuple[dict[str, float],
                                                                 dict[str, Any]]:
        if progress:
            print(f"{name} trial {trial + 1}/{trials}: {settings}", flush=True)
        metrics, epochs = fit_stage(
            backbone, items, train, validation, learning_rate=settings["learning_rate"],
            batch_size=min(settings["batch_size"], len(train)),
            patches_per_image=patches_per_image, max_patches=max_patches,
            max_epochs=max_epochs, patience=patience, seed=seed + 1000 * trial,
            progress=progress)
        return metrics, {"epochs": epochs}

    settings, metrics, history = random_search(
        backbone, run_trial, trials=trials, seed=seed, fixed=fixed,
        extra={"patches_per_image": patches_per_image})
    return StageReport(name, len(items), settings, metrics, history,
                       time.perf_counter() - start)
