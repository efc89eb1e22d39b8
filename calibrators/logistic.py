"""VQEG logistic mappings from objective scores to subjective scores.

The 5-parameter function of the VQEG FR-TV Phase I/II reports (and of Sheikh, Sabir &
Bovik 2006) and its 4-parameter monotone variant:

* 5 parameters: f(x) = β1·(1/2 − 1/(1 + exp(β2·(x − β3)))) + β4·x + β5
* 4 parameters: f(x) = (β1 − β2) / (1 + exp(−(x − β3) / |β4|)) + β2

They are fitted by non-linear least squares on the standardised input, starting from an
increasing or decreasing guess according to the sign of the Spearman correlation. The fit
is kept when its parameters are finite and it fits at least as well as a least-squares
line (the optimiser may stop on its evaluation budget while drifting along a flat valley,
e.g. for a convex trend that the logistic's tail matches); otherwise the estimator falls
back to that line, warns, and records it in ``fit_status_``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["LogisticCalibrator", "logistic4", "logistic5"]


def logistic5(x: NDArray[np.float64], b1: float, b2: float, b3: float, b4: float,
              b5: float) -> NDArray[np.float64]:
    """VQEG 5-parameter logistic."""
    z = np.clip(b2 * (x - b3), -500.0, 500.0)
    return b1 * (0.5 - 1.0 / (1.0 + np.exp(z))) + b4 * x + b5


def logistic4(x: NDArray[np.float64], b1: float, b2: float, b3: float,
              b4: float) -> NDArray[np.float64]:
    """4-parameter monotone logistic."""
    z = np.clip(-(x - b3) / (abs(b4) + 1e-12), -500.0, 500.0)
    return (b1 - b2) / (1.0 + np.exp(z)) + b2


def _jacobian5(x: NDArray[np.float64], b1: float, b2: float, b3: float, b4: float,
               b5: float) -> NDArray[np.float64]:
    """∂ logistic5 / ∂β, one row per point (zero where the exponent is clipped)."""
    u = b2 * (x - b3)
    s = 1.0 / (1.0 + np.exp(np.clip(u, -500.0, 500.0)))
    slope = b1 * s * (1.0 - s) * (np.abs(u) < 500.0)  # ∂f/∂u
    return np.column_stack([0.5 - s, slope * (x - b3), -slope * b2, x, np.ones_like(x)])


def _jacobian4(x: NDArray[np.float64], b1: float, b2: float, b3: float,
               b4: float) -> NDArray[np.float64]:
    """∂ logistic4 / ∂β, one row per point (zero where the exponent is clipped)."""
    width = abs(b4) + 1e-12
    z = -(x - b3) / width
    s = 1.0 / (1.0 + np.exp(np.clip(z, -500.0, 500.0)))
    slope = -(b1 - b2) * s * (1.0 - s) * (np.abs(z) < 500.0)  # ∂f/∂z
    return np.column_stack([s, 1.0 - s, slope / width,
                            slope * (x - b3) * np.sign(b4) / width ** 2])


class LogisticCalibrator(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """Map raw objective scores onto subjective scores with a VQEG logistic.

    Parameters
    ----------
    n_params : {4, 5}, default 5
        Which logistic to fit.
    max_nfev : int, default 5000
        Function evaluations allowed to the optimiser.

    Attributes
    ----------
    params_ : ndarray of shape (n_params,)
        Fitted β on the standardised input.
    x_mean_, x_scale_ : float
        The standardisation of the input.
    fit_status_ : str
        ``"logistic"`` or ``"linear-fallback"``.
    n_features_in_ : int
        Always 1.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.linspace(0, 1, 50)
    >>> y = 100 / (1 + np.exp(-(x - 0.5) * 10))
    >>> cal = LogisticCalibrator(n_params=4).fit(x, y)
    >>> float(np.abs(cal.predict(x) - y).max()) < 1e-3
    True
    """

    def __init__(self, n_params: int = 5, max_nfev: int = 5000) -> None:
        self.n_params = n_params
        self.max_nfev = max_nfev

    def fit(self, X: ArrayLike, y: ArrayLike) -> LogisticCalibrator:
        """Fit the logistic to raw scores ``X`` (n,) or (n, 1) and targets ``y`` (n,)."""
        if self.n_params not in (4, 5):
            raise ValueError(f"n_params must be 4 or 5, got {self.n_params!r}")
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target "
                             "y is None")
        x, target = self._validate(X, y, reset=True)
        if target is None:  # unreachable: y was given
            raise ValueError("y is required")
        self.x_mean_ = float(x.mean())
        self.x_scale_ = float(x.std()) or 1.0
        z = (x - self.x_mean_) / self.x_scale_
        self.params_, self.fit_status_ = _fit(z, target, self.n_params, self.max_nfev)
        return self

    def predict(self, X: ArrayLike) -> NDArray[np.float64]:
        """Mapped scores for raw scores ``X`` (n,) or (n, 1)."""
        check_is_fitted(self, "params_")
        x, _ = self._validate(X, None, reset=False)
        z = (x - self.x_mean_) / self.x_scale_
        function = logistic5 if len(self.params_) == 5 else logistic4
        return np.asarray(function(z, *self.params_), dtype=np.float64)

    def _validate(self, X: ArrayLike, y: ArrayLike | None,
                  reset: bool) -> tuple[NDArray[np.float64], NDArray[np.float64] | None]:
        x_array = np.asarray(X)
        if x_array.ndim == 2 and x_array.shape[1] > 1:
            raise ValueError(f"LogisticCalibrator takes one feature; X has shape "
                             f"{x_array.shape}")
        x2d = x_array.reshape(-1, 1) if x_array.ndim == 1 else X
        if y is None:
            checked = validate_data(self, x2d, reset=reset, dtype=np.float64)
            return np.asarray(checked, dtype=np.float64).ravel(), None
        checked, target = validate_data(self, x2d, y, reset=reset, dtype=np.float64,
                                        y_numeric=True)
        return (np.asarray(checked, dtype=np.float64).ravel(),
                np.asarray(target, dtype=np.float64))

    def __sklearn_tags__(self) -> Any:
        # 2-D input of one column (a 1-D array is accepted too, as by IsotonicRegression).
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True
        return tags


def _fit(z: NDArray[np.float64], y: NDArray[np.float64], n_params: int,
         max_nfev: int) -> tuple[NDArray[np.float64], str]:
    from scipy.optimize import least_squares
    from scipy.stats import spearmanr

    spread = float(np.ptp(y)) or 1.0
    function: Callable[..., NDArray[np.float64]]
    jacobian: Callable[..., NDArray[np.float64]]
    rho = spearmanr(z, y).statistic if z.size >= 2 and np.ptp(z) > 0 else 1.0
    sign = 1.0 if not np.isfinite(rho) or rho >= 0 else -1.0
    if n_params == 5:
        function, jacobian = logistic5, _jacobian5
        start = np.array([sign * spread, 1.0, 0.0, 0.0, float(np.mean(y))])
    else:
        function, jacobian = logistic4, _jacobian4
        high, low = (float(y.max()), float(y.min())) if sign > 0 else \
            (float(y.min()), float(y.max()))
        start = np.array([high, low, 0.0, 1.0])

    def residuals(beta: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray(function(z, *beta) - y, dtype=np.float64)

    def derivatives(beta: NDArray[np.float64]) -> NDArray[np.float64]:
        return jacobian(z, *beta)

    slope, intercept = np.polyfit(z, y, 1) if np.ptp(z) > 0 else (0.0, float(np.mean(y)))
    if z.size > n_params and np.ptp(z) > 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            # the analytic Jacobian: the same fit as finite differences, 1.6× faster on
            # nearly linear data, where the optimiser walks a long flat valley
            result = least_squares(residuals, start, jac=derivatives, max_nfev=max_nfev,
                                   method="trf")
        linear_cost = 0.5 * float(np.sum((slope * z + intercept - y) ** 2))
        if np.all(np.isfinite(result.x)) and result.cost <= linear_cost * (1 + 1e-9) + 1e-12:
            return np.asarray(result.x, dtype=np.float64), "logistic"
    # Fall back to the least-squares line, written in the same parametrisation.
    if n_params == 5:
        beta = np.array([0.0, 1.0, 0.0, slope, intercept])
    else:  # a logistic cannot be a line: use a very wide one centred on the data
        beta = np.array([intercept + 50 * slope, intercept - 50 * slope, 0.0, 25.0])
    if z.size > n_params and np.ptp(z) > 0:
        warnings.warn("logistic fit did not converge; using a linear fit", RuntimeWarning,
                      stacklevel=3)
    return beta, "linear-fallback"
