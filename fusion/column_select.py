"""Take feature columns by index: the first step of the stacker's and the gate's pipelines.

scikit-learn's ``ColumnTransformer`` does the same, but once fitted it also keeps the
columns it drops as Python lists, and skops stores a list element by element: the
accurate preset's stacker held 180,000 such entries, which took about a second of its
cold start to read back. :class:`ColumnSelect` keeps one integer array.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, TransformerMixin

__all__ = ["ColumnSelect"]


class ColumnSelect(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Keep the columns ``columns`` of a 2-D feature matrix, in that order.

    Parameters
    ----------
    columns : array-like of int
        Column indices (non-negative, each below the width of the matrices it is fitted on).

    Attributes
    ----------
    columns_ : ndarray of intp
        The fitted columns.
    n_features_in_ : int
        The width of the matrix seen in :meth:`fit`; :meth:`transform` requires it.
    """

    def __init__(self, columns: ArrayLike = ()) -> None:
        self.columns = columns

    def fit(self, X: ArrayLike, y: Any = None) -> ColumnSelect:
        """Check the columns against ``X``'s width and remember both."""
        matrix = _matrix(X)
        columns = np.asarray(self.columns)
        if columns.ndim != 1 or columns.size == 0 or not np.issubdtype(columns.dtype,
                                                                       np.integer):
            raise ValueError(f"columns must be a non-empty 1-D array of integers, got "
                             f"{columns!r}")
        if columns.min() < 0 or columns.max() >= matrix.shape[1]:
            raise ValueError(f"columns must lie in [0, {matrix.shape[1]}), got "
                             f"{columns.min()}..{columns.max()}")
        self.columns_ = columns.astype(np.intp)
        self.n_features_in_ = int(matrix.shape[1])
        return self

    def transform(self, X: ArrayLike) -> NDArray[Any]:
        """The chosen columns of ``X`` (which must have the fitted width)."""
        if not hasattr(self, "columns_"):
            raise ValueError("ColumnSelect is not fitted")
        matrix = _matrix(X)
        if matrix.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {matrix.shape[1]} features, but ColumnSelect was fitted "
                             f"on {self.n_features_in_}")
        return matrix[:, self.columns_]


def _matrix(X: ArrayLike) -> NDArray[Any]:
    matrix = np.asarray(X)
    if matrix.ndim != 2:
        raise ValueError(f"expected a 2-D feature matrix, got shape {matrix.shape}")
    return matrix
