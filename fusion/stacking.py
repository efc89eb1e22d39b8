"""The stacking regressor that fuses backbone and handcrafted features into one score.

Base learners, each with its own scaling in a ``Pipeline`` and on its own feature subset:

* ``backbone_ridge``: ridge (α chosen by leave-one-out CV) on the backbone's pooled trunk
  features; with several backbones, one ridge per backbone (``backbone_ridge:<name>``),
  each with its own α: one ridge on all of them, sharing one α over blocks of different
  scale, scored 0.780–0.786 CLIVE SRCC where three separate ones score 0.797;
* ``handcrafted_svr``: RBF SVR on the handcrafted block;
* ``handcrafted_gbm``: gradient-boosted trees on the handcrafted block;
* ``tuned_quality_linear``: a linear regression on the cross-fitted qualities of
  quality-tuned trunks (``bb:<backbone>:q_tuned``), when there are any;
* ``all_ridge``: ridge on all of them.

The backbones' own pooled qualities (``bb:<name>:q_*``, from heads trained on the same
data) are *not* given to the stacker: on the training items they are in-sample and look
far better than they are, and the stacker would learn to trust them (seen: all weight on
them, held-out SRCC 0.68 instead of 0.79). They are reported as components instead.

The final estimator is a non-negative linear regression on their out-of-fold predictions
(it can only weight and shift the base learners, so it cannot over-fit a small database),
and those out-of-fold predictions come from a cross-validation disjoint by content
(:class:`fusion.splits.ContentKFold`). Feature names are kept so the contribution of each
block can be reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["backbone_blocks", "build_monotone_stacker", "build_stacker", "column_blocks",
           "learner_contributions"]


def column_blocks(feature_names: Sequence[str]) -> dict[str, list[int]]:
    """Column indices of each block of features, by block name.

    Blocks: ``backbone``, ``backbone_summary``, ``tuned_quality``, ``handcrafted``.
    Backbone columns are named ``bb:<backbone>:<name>``: the trunk features ``f<i>`` form
    ``backbone``; the head outputs (``q_weighted``, ``q_mean``, ``q_std``) form
    ``backbone_summary``, which the stacker does not use (see the module docstring).
    ``bb:<backbone>:q_tuned`` columns are the qualities of quality-tuned trunks
    (:mod:`fusion.training.tuning`), which are cross-fitted: on every training item they
    come from a trunk tuned without it, so the stacker may use them (``tuned_quality``).
    """
    summary_names = ("q_weighted", "q_mean", "q_std")
    summary = [i for i, n in enumerate(feature_names)
               if n.startswith("bb:") and n.rsplit(":", 1)[1] in summary_names]
    tuned = [i for i, n in enumerate(feature_names)
             if n.startswith("bb:") and n.rsplit(":", 1)[1] == "q_tuned"]
    backbone = [i for i, n in enumerate(feature_names)
                if n.startswith("bb:") and i not in summary and i not in tuned]
    handcrafted = [i for i, n in enumerate(feature_names) if not n.startswith("bb:")]
    return {"backbone": backbone, "backbone_summary": summary, "tuned_quality": tuned,
            "handcrafted": handcrafted}


def backbone_blocks(feature_names: Sequence[str]) -> dict[str, list[int]]:
    """The trunk-feature columns of each backbone, by backbone name, in column order."""
    blocks: dict[str, list[int]] = {}
    for i in column_blocks(feature_names)["backbone"]:
        blocks.setdefault(feature_names[i].split(":")[1], []).append(i)
    return blocks


def build_stacker(feature_names: Sequence[str], cv: Sequence[tuple[Any, Any]] | int,
                  *, seed: int = 0) -> Any:
    """A scikit-learn ``StackingRegressor`` over the named feature columns."""
    from sklearn.ensemble import HistGradientBoostingRegressor, StackingRegressor
    from sklearn.linear_model import LinearRegression, RidgeCV
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVR

    from fusion.column_select import ColumnSelect

    blocks = column_blocks(feature_names)
    alphas = np.logspace(-1, 5, 13)

    def select(columns: list[int]) -> Any:
        # one integer array (a fitted ColumnTransformer keeps lists, slow to load)
        return ColumnSelect(np.asarray(columns, np.intp))

    learners: list[tuple[str, Any]] = []
    per_backbone = backbone_blocks(feature_names)
    for backbone, columns in per_backbone.items():
        label = "backbone_ridge" if len(per_backbone) == 1 else f"backbone_ridge:{backbone}"
        learners.append((label, Pipeline([
            ("select", select(columns)), ("scale", StandardScaler()),
            ("ridge", RidgeCV(alphas=alphas))])))
    if blocks["handcrafted"]:
        learners.append(("handcrafted_svr", Pipeline([
            ("select", select(blocks["handcrafted"])), ("scale", StandardScaler()),
            ("svr", SVR(C=16.0, gamma="scale", epsilon=1.0))])))
        learners.append(("handcrafted_gbm", Pipeline([
            ("select", select(blocks["handcrafted"])),
            ("gbm", HistGradientBoostingRegressor(max_iter=200, learning_rate=0.05,
                                                  max_leaf_nodes=15, min_samples_leaf=10,
                                                  l2_regularization=1.0, random_state=seed))])))
    if blocks["tuned_quality"]:
        learners.append(("tuned_quality_linear", Pipeline([
            ("select", select(blocks["tuned_quality"])),
            ("linear", LinearRegression())])))
    learners.append(("all_ridge", Pipeline([
        ("select", select(blocks["backbone"] + blocks["tuned_quality"] +
                          blocks["handcrafted"])),
        ("scale", StandardScaler()), ("ridge", RidgeCV(alphas=alphas))])))
    return StackingRegressor(learners, final_estimator=LinearRegression(positive=True),
                             cv=cv, n_jobs=1, passthrough=False)


def build_monotone_stacker(feature_names: Sequence[str], directions: Sequence[int],
                           cv: Sequence[tuple[Any, Any]] | int, *, seed: int = 0) -> Any:
    """A stacking regressor whose prediction is monotone in each feature's known direction.

    Only the columns with a direction (``+1``: higher feature = better, ``−1``: lower =
    better) are used; the others (backbone trunk features, whose direction is unknown) are
    dropped. Base learners:

    * ``monotone_additive_gbm``: gradient-boosted trees with ``monotonic_cst`` = the
      directions and no interactions (``interaction_cst``: each tree uses one feature), a
      sum of monotone one-feature curves. Interactions fit the distortion families seen
      in training better (content-disjoint 5-fold SRCC 0.919 against 0.911 on the
      KADID-calibrated set) but generalise worse to a family left out (at or above the
      best single feature on 2 of 6 held-out families against 3 of 6);
    * ``aligned_linear``: a non-negative linear regression on the standardised features,
      lower-is-better ones negated (so every weight says "better feature, better score").

    The final estimator is a non-negative linear regression of their out-of-fold
    predictions, so the whole model is monotone too: it cannot invert a metric on inputs
    outside the training range, where an unconstrained model extrapolates badly (seen on
    real images whose MS-SSIM falls far below anything synthetic).

    Parameters
    ----------
    feature_names : sequence of str
    directions : sequence of int
        One per feature name: ``+1``, ``−1``, or ``0`` for "no known direction".
    cv : int or sequence of (train, test) index pairs
        The stacker's internal cross-validation (content-disjoint in the model).
    seed : int
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingRegressor, StackingRegressor
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    if len(directions) != len(feature_names):
        raise ValueError(f"{len(directions)} directions for {len(feature_names)} features")
    if any(d not in (-1, 0, 1) for d in directions):
        raise ValueError(f"directions must be +1, -1 or 0, got {list(directions)}")
    higher = np.asarray([i for i, d in enumerate(directions) if d > 0], np.intp)
    lower = np.asarray([i for i, d in enumerate(directions) if d < 0], np.intp)
    if higher.size + lower.size == 0:
        raise ValueError("a monotone stacker needs at least one feature with a direction")

    def aligned() -> Any:
        # lower-is-better columns are negated, so every column reads "higher = better"
        return ColumnTransformer([("higher", "passthrough", higher),
                                  ("lower", FunctionTransformer(np.negative), lower)],
                                 remainder="drop")

    width = higher.size + lower.size
    learners = [
        ("monotone_additive_gbm", Pipeline([
            ("align", aligned()),
            ("gbm", HistGradientBoostingRegressor(
                max_iter=300, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=20,
                l2_regularization=1.0, monotonic_cst=[1] * width,
                interaction_cst=[[i] for i in range(width)], random_state=seed))])),
        ("aligned_linear", Pipeline([
            ("align", aligned()), ("scale", StandardScaler()),
            ("linear", LinearRegression(positive=True))])),
    ]
    return StackingRegressor(learners, final_estimator=LinearRegression(positive=True),
                             cv=cv, n_jobs=1, passthrough=False)


def learner_contributions(stacker: Any) -> dict[str, float]:
    """The final estimator's non-negative weight of each base learner."""
    weights = np.asarray(stacker.final_estimator_.coef_, dtype=np.float64)
    names = [name for name, _ in stacker.estimators]
    return {name: float(w) for name, w in zip(names, weights, strict=True)}


def fit_stacker(feature_names: Sequence[str], values: NDArray[np.float64],
                targets: NDArray[np.float64], contents: NDArray[Any], *, seed: int = 0,
                directions: Sequence[int] | None = None) -> Any:
    """A stacker fitted on ``values``, with content-disjoint internal cross-validation.

    :func:`build_monotone_stacker` when ``directions`` are given, :func:`build_stacker`
    otherwise; the internal folds are :func:`grouped_splits` of ``contents``. This is the
    fit :class:`fusion.FusionModel` makes (and benchmarks that need the stacker alone).
    """
    splits = grouped_splits(contents, targets, seed=seed)
    stacker = (build_monotone_stacker(feature_names, directions, splits, seed=seed)
               if directions is not None else build_stacker(feature_names, splits, seed=seed))
    return stacker.fit(values, targets)


def out_of_fold_predictions(feature_names: Sequence[str], values: NDArray[np.float64],
                            targets: NDArray[np.float64], contents: NDArray[Any], *,
                            seed: int = 0, directions: Sequence[int] | None = None
                            ) -> NDArray[np.float64]:
    """Each item's prediction by a stacker refitted without its content.

    One :func:`fit_stacker` per content-disjoint fold of :func:`grouped_splits`: the
    calibration set of the cross-conformal interval (:meth:`fusion.FusionModel.fit`).
    """
    predicted = np.empty(len(targets))
    for train, test in grouped_splits(contents, targets, seed=seed):
        predicted[test] = fit_stacker(feature_names, values[train], targets[train],
                                      contents[train], seed=seed,
                                      directions=directions).predict(values[test])
    return predicted


def grouped_splits(groups: NDArray[np.str_], scores: NDArray[np.float64], *, n_splits: int = 5,
                   seed: int = 0) -> list[tuple[NDArray[np.intp], NDArray[np.intp]]]:
    """Content-disjoint (train, test) index pairs for the stacker's internal CV.

    Uses ``n_splits`` folds, or fewer when there are fewer contents (at least 2).
    """
    from fusion.splits import ContentKFold

    folds = max(2, min(n_splits, len(set(np.asarray(groups).tolist()))))
    return list(ContentKFold(folds, seed=seed).split(groups, scores))
