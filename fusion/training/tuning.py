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
   untransformed patches, as in prediction), on contents disjoint from the fitting ones;
   or, with ``TuningSettings.average_from``, the mean of the weights of the later epochs
   (stochastic weight averaging), which does not bet on one epoch of a noisy validation
   curve.
3. **Cross-fit** (:func:`cross_fitted_quality`): k content-disjoint folds; the images of
   each fold are scored by a branch tuned without them. A stacker trained on these scores
   never sees a score of an image its trunk was tuned on.
4. **Ship** (:func:`tune_trunk`, :func:`tuned_backbone`): for a bundle, the cross-fitting
   runs inside the bundle's training part, scoring each image on the patches the bundle's
   backbone takes (:func:`grid_activations`), and one more branch is tuned on the whole
   training part; :func:`tuned_backbone` adds it to the backbone's graph beside the frozen
   upper stages (the lower stages run once), and the stacker learns from the
   cross-fitted qualities (:func:`fusion.training.fused.tuned_extractors`,
   ``benchmarks/train_defaults.py nr-tuned``).

Needs the ``train`` extra (Keras). The measured effect on CLIVE is in docs/models.md
(``benchmarks/nr_tuning.py``).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from backbones.patches import grid_positions, take_patches
from fusion.metrics import srcc

__all__ = ["DIHEDRAL", "TunedTrunk", "TuningSettings", "branch_quality", "build_branch",
           "cross_fitted_quality", "fit_branch", "grid_activations", "lower_activations",
           "tune_trunk"]

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
    #: 0: keep the weights of the best validation epoch (early stopping); k ≥ 1: the mean
    #: of the weights of epochs k … ``epochs`` (stochastic weight averaging, SWA).
    average_from: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if not 0 <= self.average_from <= self.epochs:
            raise ValueError(f"average_from must be 0 (best epoch) or an epoch 1…{self.epochs}, "
                             f"got {self.average_from}")


@dataclass
class BranchReport:
    """One tuning run: validation SRCC per epoch, the epoch kept, and its time."""

    validation_srcc: list[float] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0
    #: with weight averaging: the first averaged epoch (0: the best epoch was kept) and
    #: the averaged weights' validation SRCC (they are kept)
    averaged_from: int = 0
    averaged_srcc: float | None = None


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


def _lower_function(name: str, start_stage: int, work: Path) -> Any:
    """The frozen lower stages as a LiteRT function (exported once into ``work``)."""
    from backbones.export import export_litert
    from backbones.runtime import LiteRTFunction

    graph = work / f"{name}_lower{start_stage}.tflite"
    if not graph.is_file():
        export_litert(_lower_model(name, start_stage), graph)
    return LiteRTFunction(graph)


def _grid_patches(path: str | Path, patches: int) -> NDArray[np.float32]:
    """The prediction grid's patches of one image, repeated up to ``patches`` if fewer."""
    from fusion.io import load_image

    rgb = load_image(path).rgb
    grid = take_patches(rgb, grid_positions(*rgb.shape[:2], size=PATCH, max_patches=patches),
                        size=PATCH)
    return grid if len(grid) == patches else grid[np.arange(patches) % len(grid)]


def _cached_activations(name: str, images: Sequence[str | Path], work: str | Path,
                        start_stage: int, tag: str, progress: bool,
                        patches_of: Callable[[str | Path], NDArray[np.float32]]
                        ) -> NDArray[np.float16]:
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    digest = hashlib.blake2b("\n".join(map(str, images)).encode(), digest_size=8).hexdigest()
    cache = work / f"{name}_s{start_stage}{tag}_{len(images)}_{digest}.npy"
    if cache.is_file():
        return np.load(cache)  # type: ignore[no-any-return]
    lower = _lower_function(name, start_stage, work)
    from tqdm.auto import tqdm

    rows = [lower(patches_of(path)).astype(np.float16)
            for path in tqdm(images, desc=f"{name} lower stages", disable=not progress)]
    activations = np.stack(rows)
    np.save(cache, activations)
    return activations


def lower_activations(name: str, images: Sequence[str | Path], work: str | Path, *,
                      start_stage: int = 6, progress: bool = False
                      ) -> NDArray[np.float16]:
    """Frozen lower-stage activations of every image: (N, 72, h, w, c), float16, cached.

    Per image: the nine grid patches (:func:`backbones.patches.grid_positions`) under the
    eight transforms of :data:`DIHEDRAL`, transform-major (index ``t·9 + p``). Cached in
    ``work`` under a digest of the backbone, stage and image paths.
    """
    return _cached_activations(name, images, work, start_stage, "", progress,
                               lambda path: _dihedral(_grid_patches(path, GRID)))


def grid_activations(name: str, images: Sequence[str | Path], work: str | Path, *,
                     max_patches: int, start_stage: int = 6, progress: bool = False
                     ) -> NDArray[np.float16]:
    """Lower-stage activations of the patches prediction takes: (N, max_patches, h, w, c).

    The untransformed grid of :func:`backbones.patches.grid_positions` with
    ``max_patches`` (an image with fewer patches repeats them), so a tuned branch scores
    the training images on the patches a bundle's backbone scores at prediction. Cached
    like :func:`lower_activations`.
    """
    return _cached_activations(name, images, work, start_stage, f"_p{max_patches}", progress,
                               lambda path: _grid_patches(path, max_patches))


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


def branch_quality(branch: Any, activations: NDArray[np.float16], *,
                   patches: int | None = GRID
                   ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(mean, standard deviation) over each image's first ``patches`` activation maps.

    The default, nine, is the untransformed grid of :func:`lower_activations`; ``None``
    takes every map (the activations of :func:`grid_activations`).
    """
    n = len(activations)
    count = activations.shape[1] if patches is None else patches
    flat = activations[:, :count].reshape(-1, *activations.shape[2:]).astype(np.float32)
    quality = np.asarray(branch.predict(flat, batch_size=64, verbose=0)[0],
                         np.float64).reshape(n, count)
    return quality.mean(axis=1), quality.std(axis=1)


def fit_branch(name: str, activations: NDArray[np.float16], scores: NDArray[np.floating],
               groups: NDArray[np.str_], fit: NDArray[np.intp],
               settings: TuningSettings = TuningSettings(),
               on_epoch: Callable[[int, Any], None] | None = None) -> tuple[Any, BranchReport]:
    """Tune a branch on the items ``fit`` (a content-disjoint part validates).

    Returns the branch with the weights of its best validation epoch, or with
    ``settings.average_from`` the mean of the weights of the epochs from that one on
    (image scores in standard units of the fitting scores: multiply by their sd, add their
    mean), and the report. ``on_epoch(epoch, branch)``, if given, is called after each
    epoch with the branch as that epoch left it (to watch the trajectory; it must not
    change the branch).
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
    summed: list[NDArray[np.float64]] = []
    for epoch in range(1, settings.epochs + 1):
        pick = rng.integers(0, activations.shape[1], (len(fitting), settings.patches_per_image))
        x = activations[fitting[:, None], pick].reshape(-1, *activations.shape[2:])
        y = np.repeat(target[fitting], settings.patches_per_image).astype(np.float32)
        trainer.fit(x.astype(np.float32), y, batch_size=settings.batch_size, epochs=1,
                    verbose=0, shuffle=True)
        value = srcc(branch_quality(branch, activations[validation])[0], scores[validation])
        report.validation_srcc.append(round(float(value), 4))
        if on_epoch is not None:
            on_epoch(epoch, branch)
        if value > best:
            best, best_weights, report.best_epoch = value, branch.get_weights(), epoch
        if settings.average_from and epoch >= settings.average_from:
            weights = branch.get_weights()
            summed = ([np.asarray(w, np.float64) for w in weights] if not summed else
                      [total + w for total, w in zip(summed, weights, strict=True)])
    if settings.average_from:
        count = settings.epochs - settings.average_from + 1
        branch.set_weights([(total / count).astype(np.float32) for total in summed])
        report.averaged_from = settings.average_from
        report.averaged_srcc = round(float(srcc(
            branch_quality(branch, activations[validation])[0], scores[validation])), 4)
    else:
        branch.set_weights(best_weights)
    branch.standardisation = (mean, sd)
    report.seconds = time.perf_counter() - start
    return branch, report


def cross_fitted_quality(name: str, activations: NDArray[np.float16],
                         scores: NDArray[np.floating], groups: NDArray[np.str_], *,
                         folds: int = 5, settings: TuningSettings = TuningSettings(),
                         items: NDArray[np.intp] | None = None,
                         scoring: NDArray[np.float16] | None = None, progress: bool = False
                         ) -> tuple[NDArray[np.float64], NDArray[np.float64], list[dict[str, Any]]]:
    """Out-of-fold tuned quality of every item: (mean, sd over its patches, fold reports).

    Folds are content-disjoint (:class:`fusion.splits.ContentKFold`, seeded); each fold's
    items are scored by a branch tuned on the other folds, on 0–100 (the fitting scores'
    scale). ``items`` restricts everything to those items (the others are never used and
    stay NaN); ``scoring`` (activations of every item, e.g. :func:`grid_activations`)
    scores on all its maps instead of the first nine of ``activations``.
    """
    from fusion.splits import ContentKFold

    items = np.arange(len(scores)) if items is None else np.asarray(items, dtype=np.intp)
    quality = np.full(len(scores), np.nan)
    spread = np.full(len(scores), np.nan)
    reports = []
    for k, (fit, held) in enumerate(ContentKFold(folds, seed=settings.seed)
                                    .split(groups[items], scores[items])):
        fit, held = items[np.asarray(fit)], items[np.asarray(held)]
        branch, report = fit_branch(name, activations, scores, groups, fit, settings)
        mean, sd = branch.standardisation
        q, s = (branch_quality(branch, activations[held]) if scoring is None else
                branch_quality(branch, scoring[held], patches=None))
        quality[held], spread[held] = q * sd + mean, s * sd
        reports.append({"fold": k, **asdict(report),
                        "heldout_srcc": round(float(srcc(quality[held], scores[held])), 4)})
        if progress:
            print(f"{name} fold {k}: held-out SRCC {reports[-1]['heldout_srcc']}", flush=True)
    return quality, spread, reports


@dataclass
class TunedTrunk:
    """A trunk tuned for a bundle, and the cross-fitted qualities its stacker learns from.

    ``weights``: the branch's weights (:func:`build_branch`, tuned on all the training
    items); ``standardisation``: (mean, sd) that turn its output into 0–100;
    ``cross_fitted``: each training item's quality (0–100) from a branch tuned without its
    fold, on the bundle's patches; ``reports``: one per fold, then the final fit's.
    """

    name: str
    start_stage: int
    max_patches: int
    weights: list[NDArray[np.float32]]
    standardisation: tuple[float, float]
    cross_fitted: NDArray[np.float64]
    reports: list[dict[str, Any]]

    def branch(self) -> Any:
        """The tuned branch as a Keras model (needs the ``train`` extra)."""
        shape = _stage_output_shape(self.name, self.start_stage)
        branch, _ = build_branch(self.name, shape, start_stage=self.start_stage)
        branch.set_weights(self.weights)
        branch.standardisation = self.standardisation
        return branch

    def save(self, path: str | Path) -> Path:
        """Write it as one ``.npz`` (weights as arrays ``w0``, ``w1``, …; the rest as JSON)."""
        import json

        path = Path(path)
        meta = {"name": self.name, "start_stage": self.start_stage,
                "max_patches": self.max_patches, "standardisation": self.standardisation,
                "reports": self.reports}
        arrays: dict[str, Any] = {f"w{i}": w for i, w in enumerate(self.weights)}
        np.savez(path, cross_fitted=self.cross_fitted, meta=np.array(json.dumps(meta)),
                 **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> TunedTrunk:
        """Read what :meth:`save` wrote."""
        import json

        with np.load(path) as stored:
            meta = json.loads(str(stored["meta"]))
            count = sum(1 for key in stored.files if key.startswith("w"))
            weights = [stored[f"w{i}"] for i in range(count)]
            cross_fitted = stored["cross_fitted"]
        return cls(meta["name"], meta["start_stage"], meta["max_patches"], weights,
                   tuple(meta["standardisation"]), cross_fitted, meta["reports"])


def _stage_output_shape(name: str, start_stage: int) -> tuple[int, int, int]:
    lower = _lower_model(name, start_stage)
    return tuple(int(s) for s in lower.output.shape[1:])  # type: ignore[return-value]


def tune_trunk(name: str, images: Sequence[str | Path], scores: NDArray[np.floating],
               groups: NDArray[np.str_], train: NDArray[np.intp], work: str | Path, *,
               max_patches: int, folds: int = 5,
               settings: TuningSettings = TuningSettings(start_stage=5),
               progress: bool = False) -> TunedTrunk:
    """Tune a trunk on the items ``train`` and cross-fit its quality over them.

    The items of ``train`` are split into ``folds`` content-disjoint folds
    (:class:`fusion.splits.ContentKFold`, seeded); each fold is scored by a branch tuned
    on the others, on the ``max_patches`` patches of the prediction grid
    (:func:`grid_activations`). Then one branch is tuned on all of ``train`` (early
    stopping on a content-disjoint part of it, as every fit): the one a bundle ships.
    Items outside ``train`` are never used. Cached in ``work`` (activations, and the
    result as ``<name>_tuned_s<stage>_p<patches>_<digest>.npz``).
    """
    work = Path(work)
    train = np.asarray(train, dtype=np.intp)
    key = hashlib.blake2b(("\n".join(map(str, images)) + repr((
        train.tolist(), np.asarray(scores).round(6).tolist(), folds, asdict(settings)))
                           ).encode(), digest_size=8).hexdigest()
    stored = work / f"{name}_tuned_s{settings.start_stage}_p{max_patches}_{key}.npz"
    if stored.is_file():
        return TunedTrunk.load(stored)
    activations = lower_activations(name, images, work, start_stage=settings.start_stage,
                                    progress=progress)
    scoring = grid_activations(name, images, work, max_patches=max_patches,
                               start_stage=settings.start_stage, progress=progress)
    quality, _, reports = cross_fitted_quality(name, activations, scores, groups,
                                               folds=folds, settings=settings, items=train,
                                               scoring=scoring, progress=progress)
    branch, report = fit_branch(name, activations, scores, groups, train, settings)
    reports.append({"fold": "all", **asdict(report)})
    del activations
    tuned = TunedTrunk(name, settings.start_stage, max_patches,
                       [np.asarray(w, np.float32) for w in branch.get_weights()],
                       branch.standardisation, quality[train], reports)
    tuned.save(stored)
    return tuned


def tuned_backbone(model: Any, tuned: TunedTrunk) -> Any:
    """A bundle backbone with a tuned branch beside its frozen upper stages (Keras).

    ``model`` is the backbone a bundle ships (:func:`backbones.registry.get_backbone`
    with its trained heads); the result maps the same patches to
    ``[features ‖ tuned quality ‖ quality ‖ weight]``: the same features, quality and
    weight, plus the tuned branch's quality on 0–1 (its 0–100 score over 100), computed
    from the trunk's own stage ``start_stage − 1`` output, so the lower stages run once.
    Prediction pools it like the features (its mean over the patches):
    :class:`fusion.backbone_extractor.BackboneExtractor` names it ``q_tuned``.
    """
    from backbones._keras import require_keras
    from backbones.models import ALL_STAGES

    keras = require_keras()
    layers = keras.layers
    trunk = model.get_layer(tuned.name)
    inputs = keras.Input(tuple(model.input_shape[1:]), name="patches")
    maps = trunk(inputs)
    if len(maps) != len(ALL_STAGES) + 1:
        raise ValueError(f"{model.name}: a tuned branch needs the trunk's every stage "
                         f"(outputs {len(maps)}, expected {len(ALL_STAGES) + 1})")
    features = model.get_layer("trunk_levels")(
        [model.get_layer(f"trunk_gap{i}")(m) for i, m in enumerate(maps)])
    normalised = model.get_layer("feature_norm")(features)
    quality = model.get_layer("quality")(model.get_layer("quality_hidden")(normalised))
    weight = model.get_layer("weight")(model.get_layer("weight_hidden")(normalised))
    mean, sd = tuned.standardisation
    raw = tuned.branch()(maps[ALL_STAGES.index(tuned.start_stage - 1)])[0]
    on_unit = layers.Rescaling(sd / 100.0, offset=mean / 100.0, name="tuned_quality")(raw)
    outputs = layers.Concatenate(name="features_tuned_quality_weight")(
        [features, on_unit, quality, weight])
    return keras.Model(inputs, outputs, name=f"{model.name}_tuned")
