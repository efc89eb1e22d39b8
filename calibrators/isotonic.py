"""Monotone calibration onto the 0–100 score scale with isotonic regression."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.isotonic import IsotonicRegression
from sklearn.utils.validation import check_is_fitted

__all__ = ["IsotonicCalibrator"]


class IsotonicCalibrator(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """Isotonic map from raw scores to subjective scores, clipped to [low, high].

    Parameters
    ----------
    low, high : float, default 0 and 100
        The output range.
    increasing : bool or "auto", default "auto"
        Direction of the map ("auto": the sign of the Spearman correlation).

    Examples
    --------
    >>> cal = IsotonicCalibrator().fit([1, 2, 3, 4], [10, 30, 20, 90])
    >>> cal.predict([0, 2.5, 9]).tolist()
    [10.0, 25.0, 90.0]
    """

    def __init__(self, low: float = 0.0, high: float = 100.0,
                 increasing: bool | str = "auto") -> None:
        self.low = low
        self.high = high
        self.increasing = increasing

    def fit(self, X: ArrayLike, y: ArrayLike) -> IsotonicCalibrator:
        """Fit on raw scores ``X`` (n,) or (n, 1) and subjective scores ``y``."""
        self.isotonic_ = IsotonicRegression(y_min=self.low, y_max=self.high,
                                            increasing=self.increasing, out_of_bounds="clip")
        self.isotonic_.fit(_column(X), np.asarray(y, dtype=np.float64))
        self.n_features_in_ = 1
        return self

    def predict(self, X: ArrayLike) -> NDArray[np.float64]:
        """Calibrated scores."""
        check_is_fitted(self, "isotonic_")
        return np.asarray(self.isotonic_.predict(_column(X)), dtype=np.float64)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.one_d_array = True
        tags.input_tags.two_d_array = False
        return tags


def _column(X: ArrayLike) -> NDArray[np.float64]:
    array = np.asarray(X, dtype=np.float64)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array.ravel()
    if array.ndim != 1:
        raise ValueError(f"expected one column of raw scores, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError("raw scores contain NaN or infinity")
    return array
