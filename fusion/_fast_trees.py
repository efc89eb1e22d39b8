"""Evaluate a temperature-calibrated ``HistGradientBoostingClassifier`` with a few NumPy steps.

scikit-learn runs a boosted model tree by tree from Python: for the diagnostics' 1,400
trees that is about 10 ms a prediction, twice the whole budget of the diagnostics. This
module stacks the fitted trees' node arrays once and walks all trees together, one depth
step per NumPy operation (well under a millisecond for one row), then applies the same
temperature-scaled softmax as ``CalibratedClassifierCV(method="temperature")``; a test
checks that it gives scikit-learn's probabilities.

The stacked arrays are also how a bundle stores such a classifier (``diagnostics.npz``,
read with ``allow_pickle=False``): skops reads the scikit-learn object's 4,300 small arrays
one by one, about 0.8 s of a cold start, where these twelve load in milliseconds.
:meth:`FastCalibratedTrees.from_arrays` checks their shapes and indices, so a damaged file
is refused rather than walked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["FastCalibratedTrees"]

#: The arrays :meth:`FastCalibratedTrees.arrays` returns and ``from_arrays`` reads.
ARRAY_NAMES = ("feature", "threshold", "left", "right", "leaf", "missing_left", "value",
               "tree_class", "baseline", "beta", "classes", "n_features")


class FastCalibratedTrees:
    """The stacked trees of one calibrated boosted classifier (see the module docstring).

    Build it with :meth:`of` (from the scikit-learn classifier) or :meth:`from_arrays`.

    Attributes
    ----------
    classes_ : ndarray of int
        The classifier's class labels (what ``predict_proba``'s columns stand for).
    n_features_in_ : int
        The number of input columns.
    """

    def __init__(self, feature: NDArray[np.intp], threshold: NDArray[np.float64],
                 left: NDArray[np.intp], right: NDArray[np.intp], leaf: NDArray[np.bool_],
                 missing_left: NDArray[np.bool_], value: NDArray[np.float64],
                 tree_class: NDArray[np.intp], baseline: NDArray[np.float64], beta: float,
                 classes: NDArray[np.intp], n_features: int) -> None:
        self.feature, self.threshold, self.value = feature, threshold, value
        self.left, self.right = left, right
        self.leaf, self.missing_left = leaf, missing_left
        count, width = feature.shape
        self.depth = width  # a walk from the root can never take more steps than nodes
        self.trees = np.arange(count)
        self.classes = len(classes)
        self.tree_class = np.asarray(tree_class, dtype=np.intp)
        self.baseline = np.asarray(baseline, dtype=np.float64).reshape(1, -1)
        self.beta = float(beta)
        self.classes_ = np.asarray(classes)
        self.n_features_in_ = int(n_features)

    @classmethod
    def from_nodes(cls, nodes: list[NDArray[Any]], tree_class: NDArray[np.intp],
                   baseline: NDArray[np.float64], beta: float, classes: NDArray[Any],
                   n_features: int) -> FastCalibratedTrees:
        """Stack scikit-learn ``TreePredictor.nodes`` record arrays (one per tree)."""
        width = max(len(n) for n in nodes)
        count = len(nodes)
        feature = np.zeros((count, width), dtype=np.intp)
        threshold = np.zeros((count, width))
        left = np.zeros((count, width), dtype=np.intp)
        right = np.zeros((count, width), dtype=np.intp)
        leaf = np.ones((count, width), dtype=bool)
        missing_left = np.zeros((count, width), dtype=bool)
        value = np.zeros((count, width))
        for t, tree in enumerate(nodes):
            size = len(tree)
            feature[t, :size] = tree["feature_idx"]
            threshold[t, :size] = tree["num_threshold"]
            left[t, :size] = tree["left"]
            right[t, :size] = tree["right"]
            leaf[t, :size] = tree["is_leaf"].astype(bool)
            missing_left[t, :size] = tree["missing_go_to_left"].astype(bool)
            value[t, :size] = tree["value"]
        fast = cls(feature, threshold, left, right, leaf, missing_left, value,
                   np.asarray(tree_class, dtype=np.intp), baseline, beta, classes, n_features)
        fast.depth = 1 + max(int(tree["depth"].max()) for tree in nodes)
        return fast

    def arrays(self) -> dict[str, NDArray[Any]]:
        """Every array :meth:`from_arrays` needs (for ``np.savez``)."""
        return {"feature": self.feature, "threshold": self.threshold, "left": self.left,
                "right": self.right, "leaf": self.leaf, "missing_left": self.missing_left,
                "value": self.value, "tree_class": self.tree_class,
                "baseline": self.baseline.ravel(), "beta": np.asarray(self.beta),
                "classes": self.classes_, "n_features": np.asarray(self.n_features_in_)}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, NDArray[Any]]) -> FastCalibratedTrees:
        """Rebuild from :meth:`arrays`, checking every shape and index.

        Raises
        ------
        ValueError
            If an array is missing, of the wrong kind or shape, or points outside the
            trees or the features.
        """
        missing = [k for k in ARRAY_NAMES if k not in arrays]
        if missing:
            raise ValueError(f"the stacked trees lack the array(s) {missing}")
        a = {k: np.asarray(arrays[k]) for k in ARRAY_NAMES}
        shape = a["feature"].shape
        if len(shape) != 2 or 0 in shape:
            raise ValueError(f"node arrays must be (trees, nodes), got {shape}")
        for name in ("threshold", "left", "right", "leaf", "missing_left", "value"):
            if a[name].shape != shape:
                raise ValueError(f"{name} has shape {a[name].shape}, expected {shape}")
        integers = ("feature", "left", "right", "tree_class", "classes", "n_features")
        wrong = [k for k in integers if not np.issubdtype(a[k].dtype, np.integer)]
        wrong += [k for k in ("leaf", "missing_left") if a[k].dtype != np.bool_]
        wrong += [k for k in ("threshold", "value", "baseline", "beta")
                  if not np.issubdtype(a[k].dtype, np.floating)]
        if wrong:
            raise ValueError(f"arrays of the wrong kind: {wrong}")
        n_features, count, width = int(a["n_features"]), shape[0], shape[1]
        inner = ~a["leaf"]
        if n_features < 1 or np.any((a["feature"][inner] < 0)
                                    | (a["feature"][inner] >= n_features)):
            raise ValueError(f"split features outside [0, {n_features})")
        for name in ("left", "right"):
            if np.any((a[name][inner] <= 0) | (a[name][inner] >= width)):
                raise ValueError(f"{name} children outside the {width} nodes of a tree")
        classes = a["classes"]
        if a["tree_class"].shape != (count,) or classes.ndim != 1 or len(classes) < 3 \
                or a["baseline"].shape != (len(classes),) \
                or np.any((a["tree_class"] < 0) | (a["tree_class"] >= len(classes))):
            raise ValueError("tree classes, class labels and baseline do not agree")
        if not (np.all(np.isfinite(a["value"])) and np.all(np.isfinite(a["baseline"]))
                and np.isfinite(a["beta"])):
            raise ValueError("leaf values, baseline or temperature are not finite")
        return cls(a["feature"].astype(np.intp), a["threshold"].astype(np.float64),
                   a["left"].astype(np.intp), a["right"].astype(np.intp), a["leaf"],
                   a["missing_left"], a["value"].astype(np.float64),
                   a["tree_class"].astype(np.intp), a["baseline"].astype(np.float64),
                   float(a["beta"]), classes, n_features)

    @classmethod
    def of(cls, classifier: Any) -> FastCalibratedTrees | None:
        """The fast form of ``classifier``, or None if it is not one this module knows.

        Known: ``CalibratedClassifierCV(HistGradientBoostingClassifier, method=
        "temperature", ensemble=False)`` fitted on more than two classes without
        categorical features; a :class:`FastCalibratedTrees` is returned as it is.
        """
        if isinstance(classifier, cls):
            return classifier
        calibrated = getattr(classifier, "calibrated_classifiers_", None)
        if (getattr(classifier, "method", None) != "temperature" or calibrated is None
                or len(calibrated) != 1):
            return None
        estimator = calibrated[0].estimator
        if type(estimator).__name__ != "HistGradientBoostingClassifier" \
                or getattr(estimator, "n_trees_per_iteration_", 1) < 3 \
                or getattr(estimator, "is_categorical_", None) is not None:
            return None
        nodes, tree_class = [], []
        for iteration in estimator._predictors:
            for k, predictor in enumerate(iteration):
                nodes.append(predictor.nodes)
                tree_class.append(k)
        beta = float(np.ravel(calibrated[0].calibrators[0].beta_)[0])
        return cls.from_nodes(nodes, np.asarray(tree_class, dtype=np.intp),
                              np.asarray(estimator._baseline_prediction, dtype=np.float64),
                              beta, np.asarray(classifier.classes_),
                              int(estimator.n_features_in_))

    def decision_function(self, matrix: NDArray[np.float64]) -> NDArray[np.float64]:
        """The boosted trees' raw scores (n_rows, n_classes)."""
        rows = np.arange(len(matrix))[:, None]
        index = np.zeros((len(matrix), len(self.trees)), dtype=np.intp)
        for _ in range(self.depth):
            at_leaf = self.leaf[self.trees, index]
            if at_leaf.all():  # most trees are shallower than the deepest
                break
            feature = self.feature[self.trees, index]
            x = matrix[rows, feature]
            go_left = np.where(np.isnan(x), self.missing_left[self.trees, index],
                               x <= self.threshold[self.trees, index])
            step = np.where(go_left, self.left[self.trees, index],
                            self.right[self.trees, index])
            index = np.where(at_leaf, index, step)
        leaves = self.value[self.trees, index]
        # per-class sums, not a matrix product: BLAS threads would spin and slow the
        # LiteRT threads of the next prediction's backbone
        raw: NDArray[np.float64] = np.stack(
            [leaves[:, self.tree_class == k].sum(axis=1) for k in range(self.classes)],
            axis=1) + self.baseline
        return raw

    def predict_proba(self, matrix: NDArray[np.float64]) -> NDArray[np.float64]:
        """Calibrated probabilities: softmax(β · raw scores), as scikit-learn computes them."""
        raw = self.decision_function(np.asarray(matrix, dtype=np.float64))
        if np.all((raw >= 0) & (raw <= 1)) and np.allclose(raw.sum(axis=1), 1.0):
            raw = np.log(raw + 1e-12)  # scikit-learn's reading of probability-like input
        logits = self.beta * raw
        logits -= logits.max(axis=1, keepdims=True)
        proba: NDArray[np.float64] = np.exp(logits)
        proba /= proba.sum(axis=1, keepdims=True)
        proba[(proba > 1.0) & (proba <= 1.0 + 1e-5)] = 1.0
        return proba
