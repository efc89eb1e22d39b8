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

__all__ = ["ConformalInterval", "NormalisedConformalInterval"]


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
        predicted, observed = self._calibration_pair(X, y)
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

    def _calibration_pair(self, X: ArrayLike, y: ArrayLike
                          ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """The checked coverage, then (predictions, scores) as float arrays of one shape."""
        if not 0.0 < self.coverage < 1.0:
            raise ValueError(f"coverage must be in (0, 1), got {self.coverage!r}")
        predicted = _column(X)
        observed = np.asarray(y, dtype=np.float64)
        if observed.shape != predicted.shape:
            raise ValueError(f"{predicted.size} predictions but {observed.size} scores")
        return predicted, observed

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


class NormalisedConformalInterval(ConformalInterval):
    """Conformal interval whose width follows the predicted score (normalised conformal).

    Absolute errors need not be the same at every level of a score (on the 138 held-out
    CLIVE photographs the accurate default errs about half as much above a predicted 70
    as below it). This interval scales
    its half-width by σ(ŷ), the mean absolute calibration residual of the
    ``neighbours`` calibration items whose predictions lie nearest ŷ (Papadopoulos et
    al. 2008; Lei et al., JASA 2018, section 5.2, "locally weighted" conformal). The
    multiplier q is the conformal quantile of the normalised residuals |y_i − ŷ_i| / σ(ŷ_i),
    where each calibration item's σ comes from the *other* half of the calibration items
    (split by alternate rank of prediction), so an item's own residual never sets its
    scale; the interval is ŷ ± q·σ(ŷ), clipped to the score range. Coverage is marginal,
    as for :class:`ConformalInterval`; what changes is where the width goes.

    Parameters
    ----------
    coverage : float, default 0.9
        Target probability that the interval holds the true score.
    low, high : float, default 0 and 100
        Intervals are clipped to this range.
    neighbours : int, default 80
        Calibration items whose mean absolute residual sets σ (half as many when the
        calibration items' own scales are computed from the other half).

    Attributes
    ----------
    multiplier_ : float
        The conformal quantile q of the normalised residuals.
    half_width_ : float
        The mean half-width over the calibration items (what the constant interval's
        ``half_width_`` reports), before clipping.
    calibration_predictions_, calibration_residuals_ : ndarray
        The calibration items' predictions (sorted) and absolute residuals: σ reads them.
    n_calibration_ : int

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> predicted = rng.uniform(0, 100, 2000)
    >>> observed = predicted + rng.normal(0, 1 + predicted / 10)  # errors grow with ŷ
    >>> ci = NormalisedConformalInterval().fit(predicted, observed)
    >>> low, high = ci.predict_interval([10, 90]).T
    >>> bool((high - low)[1] > 3 * (high - low)[0])
    True
    """

    def __init__(self, coverage: float = 0.9, low: float = 0.0, high: float = 100.0,
                 neighbours: int = 80) -> None:
        super().__init__(coverage=coverage, low=low, high=high)
        self.neighbours = neighbours

    def fit(self, X: ArrayLike, y: ArrayLike) -> NormalisedConformalInterval:
        """Fit on held-out point predictions ``X`` and true scores ``y``."""
        predicted, observed = self._calibration_pair(X, y)
        if not np.isfinite(observed).all():
            raise ValueError("scores must be finite")
        if int(self.neighbours) < 2 or int(self.neighbours) != self.neighbours:
            raise ValueError(f"neighbours must be an integer ≥ 2, got {self.neighbours!r}")
        n = predicted.size
        needed = max(2 * int(self.neighbours), math.ceil(1 / (1 - self.coverage)) - 1)
        if n < needed:
            raise ValueError(f"{n} calibration items are too few for coverage "
                             f"{self.coverage} with {self.neighbours} neighbours: need at "
                             f"least {needed}")
        order = np.argsort(predicted, kind="stable")
        predicted, residuals = predicted[order], np.abs(observed - predicted)[order]
        half = np.arange(n) % 2  # alternate ranks: both halves span every level
        own_scale = np.empty(n)
        for side in (0, 1):
            other = half != side
            own_scale[~other] = _local_mean(predicted[other], residuals[other],
                                            predicted[~other], int(self.neighbours) // 2)
        normalised = np.sort(residuals / own_scale)
        self.multiplier_ = float(normalised[math.ceil((n + 1) * self.coverage) - 1])
        self.calibration_predictions_ = predicted
        self.calibration_residuals_ = residuals
        self.n_calibration_ = n
        self.n_features_in_ = 1
        self.half_width_ = float(np.mean(self.half_widths(predicted)))
        return self

    def scale(self, X: ArrayLike) -> NDArray[np.float64]:
        """σ(ŷ): the mean absolute residual of the nearest calibration predictions."""
        check_is_fitted(self, "multiplier_")
        return _local_mean(self.calibration_predictions_, self.calibration_residuals_,
                           _column(X), int(self.neighbours))

    def half_widths(self, X: ArrayLike) -> NDArray[np.float64]:
        """Each prediction's half-width q·σ(ŷ), before clipping."""
        return np.asarray(self.multiplier_ * self.scale(X), dtype=np.float64)

    def predict_interval(self, X: ArrayLike) -> NDArray[np.float64]:
        """(n, 2) lower and upper bounds."""
        centre = self.predict(X)
        half = self.half_widths(centre)
        return np.stack([np.clip(centre - half, self.low, self.high),
                         np.clip(centre + half, self.low, self.high)], axis=1)


def _local_mean(where: NDArray[np.float64], values: NDArray[np.float64],
                at: NDArray[np.float64], k: int) -> NDArray[np.float64]:
    """Mean of ``values`` at the ``k`` points of sorted ``where`` nearest each of ``at``.

    Ties at the edge of the neighbourhood go to the lower point; the result is floored at
    a tiny positive value so that it can divide.
    """
    k = min(k, where.size)
    # the k nearest of a sorted array form a window [start, start + k): slide it from the
    # insertion point towards whichever side is nearer
    start = np.clip(np.searchsorted(where, at) - k, 0, where.size - k)
    for _ in range(k):
        right = start + k
        move = (right < where.size) & (np.abs(where[np.minimum(right, where.size - 1)] - at)
                                       < np.abs(at - where[start]))
        if not move.any():
            break
        start = start + move
    sums = np.concatenate([[0.0], np.cumsum(values)])
    return np.asarray(np.maximum((sums[start + k] - sums[start]) / k, 1e-9), np.float64)
