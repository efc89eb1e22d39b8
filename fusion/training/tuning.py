"""Quality-tuned trunks: fine-tune the last stages of an ImageNet EfficientNet-Lite on ratings.

Partial fine-tuning from cached activations, the recipe that fits two CPU cores:

1. **Cache** (:func:`lower_activations`): the frozen lower stages (everything before
   ``start_stage``; default 6, so stages 0–5) run once, in LiteRT, over each image's nine
   224×224 patches of the prediction grid (:func:`backbones.patches.grid_positions`) under
   the eight dihedral transforms (flips and 90° rotations): 72 activation maps an image,
   stored as float16.
2. **Tune** (:func:`fit_branch`): the upper stages (from ``start_stage`` to the 1×1 head
   convolution, ImageNet weights to start, batch normalisation frozen) and a linear
   regressor on their global average learn the standardised score of the patch's image.
   Loss: mean squared error plus a pairwise hinge term that penalises every pair of the
   batch ranked against the human order (scores at least 0.1 standard deviations apart).
   Adam; each epoch draws ``patches_per_image`` random (patch, transform) maps an image;
   early stopping on the validation SRCC of image scores (the mean over the nine
   untransformed patches, as in prediction), on contents disjoint from the fitting ones.
3. **Cross-fit** (:func:`cross_fitted_quality`): k content-disjoint folds; the images of
   each fold are scored by a branch tuned without them. A stacker trained on these scores
   never sees a score of an image its trunk was tuned on.

Needs the ``train`` extra (Keras). The measured effect on CLIVE is in docs/models.md
(``benchmarks/nr_tuning.py``).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from backbones.patches import grid_positions, take_patches
from fusion.metrics import srcc

__all__ = ["DIHEDRAL", "TuningSettings", "branch_quality", "build_branch",
           "cross_fitted_quality", "fit_branch", "lower_activations"]

#: The eight dihedral transforms of a square patch (H, W, C), identity first.
DIHEDRAL = ("identity", "rot90", "rot180", "rot270", "flip", "flip_rot90", "flip_rot180",
            "flip_rot270")
PATCH = 224
GRID = 9


@dataclass(frozen=True)
class TuningSettings:
    """How a branch is tuned (defaults: the measured recipe of docs/models.md)."""

    start_stage: int = 6
    epochs: int = 12
    learning_rate: float = 3e-4
    batch_size: int = 32
    patches_per_image: int = 4
    validation_fraction: float = 0.15
    rank_margin: float = 0.1
    seed: int = 0


@dataclass
class BranchReport:
    """One tuning run: validation SRCC per epoch, the epoch kept, and its time."""

    validation_srcc: list[float] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0


def _dihedral(patches: NDArray[np.float32]) -> NDArray[np.float32]:
    """(n, S, S, C) → (8·n, S, S, C), the transforms of :data:`DIHEDRAL` in that order."""
    turned = [np.rot90(patches, k, axes=(1, 2)) for k in range(4)]
    flipped = patches[:, :, ::-1]
    turned += [np.rot90(flipped, k, axes=(1, 2)) for k in range(4)]
    return np.ascontiguousarray(np.concatenate(turned), dtype=np.float32)


def _lower_model(name: str, start_stage: int) -> Any:
    """The frozen ImageNet trunk up to the end of stage ``start_stage − 1`` (Keras)."""
    from backbones._keras import require_keras
    from backbones.efficientnet_lite import build_efficientnet_lite

    keras = require_keras()
    trunk = build_efficientnet_lite(name, input_shape=(PATCH, PATCH, 3),
                                    feature_stages=(start_stage - 1,))
    return keras.Model(trunk.input, trunk.outputs[0])


def lower_activations(name: str, images: Sequence[str | Path], work: str | Path, *,
                      start_stage: int = 6, progress: bool = False
                      ) -> NDArray[np.float16]:
    """Frozen lower-stage activations of every image: (N, 72, h, w, c), float16, cached.

    Per image: the nine grid patches (:func:`backbones.patches.grid_positions`) under the
    eight transforms of :data:`DIHEDRAL`, transform-major (index ``t·9 + p``). Cached in
    ``work`` under a digest of the backbone, stage and image paths.
    """
    from backbones.export import export_litert
    from backbones.runtime import LiteRTFunction
    from fusion.io import load_image

    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    digest = hashlib.blake2b("\n".join(map(str, images)).encode(), digest_size=8).hexdigest()
    cache = work / f"{name}_s{start_stage}_{len(images)}_{digest}.npy"
    if cache.is_file():
        return np.load(cache)  # type: ignore[no-any-return]
    graph = work / f"{name}_lower{start_stage}.tflite"
    if not graph.is_file():
        export_litert(_lower_model(name, start_stage), graph)
    lower = LiteRTFunction(graph)
    from tqdm.auto import tqdm

    rows = []
    for path in tqdm(images, desc=f"{name} lower stages", disable=not progress):
        rgb = load_image(path).rgb
        patches = take_patches(rgb, grid_positions(*rgb.shape[:2], size=PATCH,
                                                   max_patches=GRID), size=PATCH)
        if len(patches) != GRID:  # small images: repeat the grid up to nine patches
            patches = patches[np.arange(GRID) % len(patches)]
        rows.append(lower(_dihedral(patches)).astype(np.float16))
    activations = np.stack(rows)
    np.save(cache, activations)
    return activations


def build_branch(name: str, input_shape: tuple[int, int, int], *, start_stage: int = 6
                 ) -> tuple[Any, Any]:
    """(trainable branch, the full trunk whose layers it shares).

    The branch maps lower-stage activations to (standardised quality, pooled head
    features): the trunk's blocks from ``start_stage`` on and its head convolution
    (ImageNet weights, batch normalisation frozen;
    :func:`backbones.efficientnet_lite.apply_upper_stages`), global average pooling,
    dropout 0.25 and a linear regressor.
    """
    from backbones._keras import require_keras
    from backbones.efficientnet_lite import apply_upper_stages, build_efficientnet_lite

    keras = require_keras()
    layers = keras.layers
    trunk = build_efficientnet_lite(name, input_shape=(PATCH, PATCH, 3))
    for layer in trunk.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.trainable = False
    inputs = keras.Input(input_shape, name="lower_activations")
    pooled = layers.GlobalAveragePooling2D(name="tuned_pool")(
        apply_upper_stages(trunk, inputs, start_stage))
    quality = layers.Dense(1, name="tuned_quality")(layers.Dropout(0.25)(pooled))
    return keras.Model(inputs, [quality, pooled], name=f"{name}_tuned_branch"), trunk


def _rank_loss(margin: float) -> Any:
    from backbones._keras import require_keras

    ops = require_keras().ops

    def loss(target: Any, predicted: Any) -> Any:
        target, predicted = ops.reshape(target, (-1,)), ops.reshape(predicted, (-1,))
        squared = ops.mean((target - predicted) ** 2)
        apart = target[:, None] - target[None, :]
        order = ops.sign(apart) * ops.cast(ops.abs(apart) > margin, "float32")
        wrong = ops.relu(-order * (predicted[:, None] - predicted[None, :]))
        return squared + ops.mean(wrong)

    return loss


def branch_quality(branch: Any, activations: NDArray[np.float16]
                   ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(mean, standard deviation) over each image's nine untransformed patches."""
    n = len(activations)
    flat = activations[:, :GRID].reshape(-1, *activations.shape[2:]).astype(np.float32)
    quality = np.asarray(branch.predict(flat, batch_size=64, verbose=0)[0],
                         np.float64).reshape(n, GRID)
    return quality.mean(axis=1), quality.std(axis=1)


def fit_branch(name: str, activations: NDArray[np.float16], scores: NDArray[np.floating],
               groups: NDArray[np.str_], fit: NDArray[np.intp],
               settings: TuningSettings = TuningSettings()) -> tuple[Any, BranchReport]:
    """Tune a branch on the items ``fit`` (a content-disjoint part validates).

    Returns the branch with the weights of its best validation epoch (image scores in
    standard units of the fitting scores: multiply by their sd, add their mean) and the
    report.
    """
    from backbones._keras import require_keras
    from fusion.splits import train_val_test_split

    keras = require_keras()
    keras.utils.set_random_seed(settings.seed)
    start = time.perf_counter()
    inner_fit, inner_val, _ = train_val_test_split(
        groups[fit], fractions=(1 - settings.validation_fraction,
                                settings.validation_fraction, 0.0),
        seed=settings.seed, scores=scores[fit])
    fitting, validation = fit[inner_fit], fit[inner_val]
    mean, sd = float(np.mean(scores[fitting])), float(np.std(scores[fitting]))
    target = (np.asarray(scores, np.float64) - mean) / sd
    branch, _ = build_branch(name, tuple(activations.shape[2:]),
                             start_stage=settings.start_stage)
    trainer = keras.Model(branch.input, branch.outputs[0])
    trainer.compile(optimizer=keras.optimizers.Adam(settings.learning_rate),
                    loss=_rank_loss(settings.rank_margin))
    rng = np.random.default_rng(settings.seed)
    report = BranchReport()
    best_weights = branch.get_weights()
    best = -np.inf
    for epoch in range(1, settings.epochs + 1):
        pick = rng.integers(0, activations.shape[1], (len(fitting), settings.patches_per_image))
        x = activations[fitting[:, None], pick].reshape(-1, *activations.shape[2:])
        y = np.repeat(target[fitting], settings.patches_per_image).astype(np.float32)
        trainer.fit(x.astype(np.float32), y, batch_size=settings.batch_size, epochs=1,
                    verbose=0, shuffle=True)
        value = srcc(branch_quality(branch, activations[validation])[0], scores[validation])
        report.validation_srcc.append(round(float(value), 4))
        if value > best:
            best, best_weights, report.best_epoch = value, branch.get_weights(), epoch
    branch.set_weights(best_weights)
    branch.standardisation = (mean, sd)
    report.seconds = time.perf_counter() - start
    return branch, report


def cross_fitted_quality(name: str, activations: NDArray[np.float16],
                         scores: NDArray[np.floating], groups: NDArray[np.str_], *,
                         folds: int = 5, settings: TuningSettings = TuningSettings()
                         ) -> tuple[NDArray[np.float64], NDArray[np.float64], list[dict[str, Any]]]:
    """Out-of-fold tuned quality of every item: (mean, sd over its patches, fold reports).

    Folds are content-disjoint (:class:`fusion.splits.ContentKFold`, seeded); each fold's
    items are scored by a branch tuned on the other folds, on 0–100 (the fitting scores'
    scale).
    """
    from fusion.splits import ContentKFold

    quality = np.full(len(scores), np.nan)
    spread = np.full(len(scores), np.nan)
    reports = []
    for k, (fit, held) in enumerate(ContentKFold(folds, seed=settings.seed)
                                    .split(groups, scores)):
        branch, report = fit_branch(name, activations, scores, groups, np.asarray(fit),
                                    settings)
        mean, sd = branch.standardisation
        q, s = branch_quality(branch, activations[held])
        quality[held], spread[held] = q * sd + mean, s * sd
        reports.append({"fold": k, **asdict(report),
                        "heldout_srcc": round(float(srcc(quality[held], scores[held])), 4)})
    return quality, spread, reports
