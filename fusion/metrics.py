"""Agreement with human scores: SRCC, KRCC, PLCC and RMSE, as the IQA literature reports them.

* SRCC: Spearman's rank correlation, ties given their average rank.
* KRCC: Kendall's τ-b (tie-corrected), as ``scipy.stats.kendalltau`` computes by default.
* PLCC and RMSE: on the raw predictions, and after the VQEG nonlinear mapping (a 4- or
  5-parameter logistic fitted to the data, :class:`calibrators.LogisticCalibrator`), as
  the VQEG FR-TV reports prescribe for objective scores on another scale.

Conventions: a constant input has no defined correlation, so the correlations return NaN
for it, without a warning. NaN in the inputs raises ``ValueError`` unless
``nan_policy="omit"``, which drops the affected pairs. Fewer than 3 pairs raise
``ValueError``.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["evaluate", "krcc", "plcc", "rmse", "srcc"]

NanPolicy = Literal["raise", "omit"]


def srcc(predicted: ArrayLike, observed: ArrayLike, *, nan_policy: NanPolicy = "raise") -> float:
    """Spearman rank-order correlation coefficient (ties get average ranks).

    Examples
    --------
    >>> srcc([1, 2, 3, 4], [10, 20, 30, 40])
    1.0
    """
    x, y = _pair(predicted, observed, nan_policy)
    return _pearson(_average_ranks(x), _average_ranks(y))


def krcc(predicted: ArrayLike, observed: ArrayLike, *, nan_policy: NanPolicy = "raise") -> float:
    """Kendall rank correlation coefficient τ-b.

    Examples
    --------
    >>> krcc([1, 2, 3, 4], [10, 20, 40, 30])
    0.6666666666666666
    """
    x, y = _pair(predicted, observed, nan_policy)
    n = x.size
    total_pairs = n * (n - 1) / 2
    untied_x = total_pairs - _tied_pairs(x)
    untied_y = total_pairs - _tied_pairs(y)
    if untied_x == 0 or untied_y == 0:
        return math.nan
    # Σ_{i<j} sign(x_i − x_j)·sign(y_i − y_j), in row blocks of ~4 M pairs.
    score = 0
    step = max(1, 4_000_000 // n)
    for start in range(0, n, step):
        stop = min(start + step, n)
        dx = np.sign(x[start:stop, None] - x[None, :]).astype(np.int8)
        dy = np.sign(y[start:stop, None] - y[None, :]).astype(np.int8)
        score += int(np.einsum("ij,ij->", dx, dy, dtype=np.int64))
    return float(score / 2 / math.sqrt(untied_x * untied_y))


def plcc(predicted: ArrayLike, observed: ArrayLike, *, nan_policy: NanPolicy = "raise") -> float:
    """Pearson linear correlation coefficient.

    Examples
    --------
    >>> round(plcc([1, 2, 3, 4], [2, 4, 6, 9]), 4)  # scipy.stats.pearsonr: 0.99438
    0.9944
    """
    x, y = _pair(predicted, observed, nan_policy)
    return _pearson(x, y)


def rmse(predicted: ArrayLike, observed: ArrayLike, *, nan_policy: NanPolicy = "raise") -> float:
    """Root mean squared error (on the scale of the inputs).

    Examples
    --------
    >>> rmse([1, 2, 3], [1, 2, 5])
    1.1547005383792515
    """
    x, y = _pair(predicted, observed, nan_policy)
    return float(np.sqrt(np.mean((x - y) ** 2)))


def evaluate(
    predicted: ArrayLike,
    observed: ArrayLike,
    *,
    logistic: Literal[4, 5] | None = 5,
    nan_policy: NanPolicy = "raise",
) -> dict[str, float]:
    """All agreement metrics of one set of predictions.

    Parameters
    ----------
    predicted : array-like of shape (n,)
        Objective scores (any monotone scale).
    observed : array-like of shape (n,)
        Subjective scores (0–100 in this library).
    logistic : {4, 5} or None, default 5
        Also report PLCC and RMSE after fitting the VQEG logistic of this many parameters
        from ``predicted`` to ``observed`` (keys ``plcc_logistic``, ``rmse_logistic``).
    nan_policy : {"raise", "omit"}
        What to do with NaN pairs.

    Returns
    -------
    dict
        ``srcc``, ``krcc``, ``plcc``, ``rmse`` (raw), ``n`` and, with ``logistic``,
        ``plcc_logistic`` and ``rmse_logistic``.
    """
    x, y = _pair(predicted, observed, nan_policy)
    result = {"n": float(x.size), "srcc": srcc(x, y), "krcc": krcc(x, y),
              "plcc": plcc(x, y), "rmse": rmse(x, y)}
    if logistic is not None:
        if np.ptp(x) == 0:
            result["plcc_logistic"] = math.nan
            result["rmse_logistic"] = rmse(np.full_like(y, y.mean()), y)
        else:
            from calibrators import LogisticCalibrator

            mapped = LogisticCalibrator(n_params=logistic).fit(x, y).predict(x)
            result["plcc_logistic"] = plcc(mapped, y)
            result["rmse_logistic"] = rmse(mapped, y)
    return result


# --------------------------------------------------------------------------- helpers


def _pair(predicted: ArrayLike, observed: ArrayLike,
          nan_policy: NanPolicy) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    x = _vector(predicted, "predicted")
    y = _vector(observed, "observed")
    if x.size != y.size:
        raise ValueError(f"predicted has {x.size} values but observed has {y.size}")
    bad = ~(np.isfinite(x) & np.isfinite(y))
    if bad.any():
        if nan_policy == "raise":
            raise ValueError(
                f"{int((~np.isfinite(x)).sum())} non-finite value(s) in predicted and "
                f"{int((~np.isfinite(y)).sum())} in observed; pass nan_policy='omit' to drop "
                "those pairs"
            )
        if nan_policy != "omit":
            raise ValueError(f"nan_policy must be 'raise' or 'omit', got {nan_policy!r}")
        x, y = x[~bad], y[~bad]
    if x.size < 3:
        raise ValueError(f"need at least 3 (predicted, observed) pairs, got {x.size}")
    return x, y


def _vector(values: ArrayLike, name: str) -> NDArray[np.float64]:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be numeric ({exc})") from exc
    if array.ndim == 2 and 1 in array.shape:
        array = array.ravel()
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    return array


def _pearson(x: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    dx = x - x.mean()
    dy = y - y.mean()
    denominator = math.sqrt(float(np.dot(dx, dx)) * float(np.dot(dy, dy)))
    if denominator == 0.0:
        return math.nan
    return float(np.clip(np.dot(dx, dy) / denominator, -1.0, 1.0))


def _average_ranks(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """1-based ranks, ties given the mean of the ranks they span."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts_run = np.r_[True, ordered[1:] != ordered[:-1]]
    run_of = np.cumsum(starts_run) - 1
    starts = np.flatnonzero(starts_run)
    ends = np.r_[starts[1:], values.size]
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = ((starts + ends - 1) / 2.0 + 1.0)[run_of]
    return ranks


def _tied_pairs(values: NDArray[np.float64]) -> float:
    _, counts = np.unique(values, return_counts=True)
    return float(np.sum(counts * (counts - 1)) / 2)
