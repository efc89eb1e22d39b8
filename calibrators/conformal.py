"""Split-conformal prediction intervals (Vovk et al. 2005; Lei et al., JASA 2018).

Fitted on held-out (calibration) predictions and their true scores, disjoint from the
data the model was trained on: with n calibration residuals r_i = |y_i − ŷ_i|, the
half-width is the ⌈(n + 1)(1 − α)⌉-th smallest r_i, and the interval [ŷ − q, ŷ + q]
(clipped to the score range) covers a new score with probability ≥ 1 − α when the new
item is exchangeable with the calibration items.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from calibrators.isotonic import _column

__all__ = ["ConformalInterval"]


class ConformalInterval(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """Interval around point predictions with a stated coverage.

    Parameters
    ----------
    coverage : float, default 0.9
        Target probability that the interval holds the true score.
    low, high : float, default 0 and 100
        Intervals are clipped to this range.

    Attributes
    ----------
    half_width_ : float
        The conformal quantile q of the absolute calibration residuals.
    n_calibration_ : int

    Examples
    --------
    >>> ci = ConformalInterval(coverage=0.8).fit([50, 60, 70, 80], [52, 55, 75, 81])
    >>> ci.predict_interval([60]).tolist()
    [[55.0, 65.0]]
    """

    def __init__(self, coverage: float = 0.9, low: float = 0.0, high: float = 100.0) -> None:
        self.coverage = coverage
        self.low = low
        self.high = high

    def fit(self, X: ArrayLike, y: ArrayLike) -> ConformalInterval:
        """Fit on held-out point predictions ``X`` and true scores ``y``."""
        if not 0.0 < self.coverage < 1.0:
            raise ValueError(f"coverage must be in (0, 1), got {self.coverage!r}")
        predicted = _column(X)
        observed = np.asarray(y, dtype=np.float64)
        if observed.shape != predicted.shape:
            raise ValueError(f"{predicted.size} predictions but {observed.size} scores")
        residuals = np.sort(np.abs(observed - predicted))
        n = residuals.size
        rank = math.ceil((n + 1) * self.coverage)
        if rank > n:
            needed = math.ceil(1 / (1 - self.coverage)) - 1
            raise ValueError(f"{n} calibration items are too few for coverage "
                             f"{self.coverage}: need at least {needed}")
        self.half_width_ = float(residuals[rank - 1])
        self.n_calibration_ = n
        self.n_features_in_ = 1
        return self

    def predict(self, X: ArrayLike) -> NDArray[np.float64]:
        """The point predictions, clipped to the score range."""
        check_is_fitted(self, "half_width_")
        return np.clip(_column(X), self.low, self.high)

    def predict_interval(self, X: ArrayLike) -> NDArray[np.float64]:
        """(n, 2) lower and upper bounds."""
        centre = self.predict(X)
        return np.stack([np.clip(centre - self.half_width_, self.low, self.high),
                         np.clip(centre + self.half_width_, self.low, self.high)], axis=1)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.one_d_array = True
        tags.input_tags.two_d_array = False
        return tags
