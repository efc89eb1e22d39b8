"""Natural-scene statistics of BRISQUE (Mittal, Moorthy & Bovik, IEEE TIP 21(12), 2012).

Follows the authors' MATLAB ``brisque_feature.m`` on luma scaled to 0–255:

* MSCN coefficients Î = (I − μ) / (σ + 1), with μ and σ from a 7×7 Gaussian window
  (σ_w = 7/6) applied with ``filter2(..., 'same')``, i.e. zero padding;
* a generalised Gaussian (GGD) fitted to Î by moment matching: (α, σ²) — 2 values;
* an asymmetric GGD (AGGD) fitted to each of the four pairwise products Î·Î_shifted
  (shifts (0, 1), (1, 0), (1, 1), (−1, 1) with ``circshift``'s wrap-around):
  (α, η, σ_l², σ_r²) — 16 values;
* the same at half resolution (bicubic, antialiased, as ``imresize(I, 0.5)``): 36 values.

The moment-matching fits search α on the authors' grid 0.2:0.001:10.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from fusion.features._filters import correlate_valid, gaussian_window

__all__ = ["BRISQUE_FEATURE_NAMES", "aggd_fit", "brisque_features", "ggd_fit", "mscn"]

_SHIFTS = {"h": (0, 1), "v": (1, 0), "d1": (1, 1), "d2": (-1, 1)}

#: The 36 feature names, in order: per scale, GGD (α, σ²) then per shift AGGD
#: (α, η, σ_l², σ_r²).
BRISQUE_FEATURE_NAMES: tuple[str, ...] = tuple(
    name
    for scale in (1, 2)
    for name in (
        [f"nss_s{scale}_ggd_alpha", f"nss_s{scale}_ggd_var"]
        + [f"nss_s{scale}_{shift}_{param}" for shift in _SHIFTS
           for param in ("alpha", "mean", "left_var", "right_var")]
    )
)


@lru_cache(maxsize=1)
def _alpha_grid() -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    alpha = np.round(np.arange(0.2, 10.0 + 1e-9, 0.001), 3)
    g1, g2, g3 = (np.array([math.gamma(k / a) for a in alpha]) for k in (1, 2, 3))
    ggd_ratio = g1 * g3 / g2**2          # E[x²] / E[|x|]² of a GGD with shape α
    aggd_ratio = g2**2 / (g1 * g3)       # its inverse, as brisque_feature.m writes it
    return alpha, ggd_ratio, aggd_ratio


def ggd_fit(values: NDArray[np.floating]) -> tuple[float, float]:
    """Moment-matching fit of a zero-mean generalised Gaussian: (α, σ²).

    ρ = E[x²] / E[|x|]² is matched to Γ(1/α)Γ(3/α)/Γ(2/α)² on the grid; σ² = E[x²].
    """
    x = np.ascontiguousarray(values, dtype=np.float32).ravel()
    variance = float(np.dot(x, x)) / x.size
    mean_abs = float(np.abs(x).sum(dtype=np.float64)) / x.size
    if variance == 0.0 or mean_abs == 0.0:
        return math.nan, 0.0
    alpha, ratio, _ = _alpha_grid()
    rho = variance / mean_abs**2
    return float(alpha[np.argmin(np.abs(rho - ratio))]), variance


def aggd_fit(values: NDArray[np.floating]) -> tuple[float, float, float, float]:
    """Moment-matching fit of an asymmetric generalised Gaussian: (α, η, σ_l², σ_r²).

    As ``estimateaggdparam`` in ``brisque_feature.m``: γ̂ = σ_l/σ_r, r̂ = E[|x|]²/E[x²],
    R̂ = r̂(γ̂³ + 1)(γ̂ + 1)/(γ̂² + 1)², α = argmin (Γ(2/α)²/(Γ(1/α)Γ(3/α)) − R̂)², and
    η = (σ_r − σ_l)·Γ(2/α)/Γ(1/α)·√(Γ(1/α)/Γ(3/α)).
    """
    x = np.ascontiguousarray(values, dtype=np.float32).ravel()
    negative = np.minimum(x, np.float32(0.0))  # the negatives, zeros elsewhere
    positive = x - negative
    n_negative = int(np.count_nonzero(negative))
    n_positive = int(np.count_nonzero(positive))
    sum_neg_sq = float(np.dot(negative, negative))
    sum_pos_sq = float(np.dot(positive, positive))
    if n_negative == 0 or n_positive == 0:
        return (math.nan, 0.0, sum_neg_sq / max(n_negative, 1), sum_pos_sq / max(n_positive, 1))
    left = math.sqrt(sum_neg_sq / n_negative)
    right = math.sqrt(sum_pos_sq / n_positive)
    gamma_hat = left / right
    mean_abs = (float(positive.sum(dtype=np.float64)) - float(negative.sum(dtype=np.float64))) \
        / x.size
    r_hat = mean_abs**2 / ((sum_neg_sq + sum_pos_sq) / x.size)
    r_norm = r_hat * (gamma_hat**3 + 1) * (gamma_hat + 1) / (gamma_hat**2 + 1) ** 2
    alpha_grid, _, ratio = _alpha_grid()
    alpha = float(alpha_grid[np.argmin((ratio - r_norm) ** 2)])
    g1, g2, g3 = (math.gamma(k / alpha) for k in (1, 2, 3))
    eta = (right - left) * (g2 / g1) * math.sqrt(g1 / g3)
    return alpha, eta, left * left, right * right


def mscn(luma255: NDArray[np.float32]) -> NDArray[np.float32]:
    """Mean-subtracted contrast-normalised coefficients of a 0–255 luma plane.

    The plane is centred on its mean before the moments are filtered (padding with
    −mean keeps ``filter2``'s zero padding exact): the variance is unchanged and float32
    loses far less to cancellation.
    """
    window = gaussian_window(7, 7.0 / 6.0)
    shift = np.float32(luma255.mean(dtype=np.float64))
    centred = luma255.astype(np.float32) - shift
    padded = np.pad(centred, 3, mode="constant", constant_values=-shift)
    stack = np.stack([padded, padded * padded])
    mu, second = correlate_valid(stack, window)
    sigma = np.sqrt(np.abs(second - mu * mu))
    result: NDArray[np.float32] = (centred - mu) / (sigma + np.float32(1.0))
    return result


def brisque_features(luma255: NDArray[np.float32]) -> dict[str, float]:
    """The 36 BRISQUE features of a 0–255 luma plane (names: :data:`BRISQUE_FEATURE_NAMES`)."""
    values: list[float] = []
    plane = luma255
    for scale in (1, 2):
        if scale == 2:
            plane = _half_bicubic(plane)
        coefficients = mscn(plane)
        values.extend(ggd_fit(coefficients))
        for dy, dx in _SHIFTS.values():
            shifted = np.roll(coefficients, (dy, dx), axis=(0, 1))  # circshift
            values.extend(aggd_fit(coefficients * shifted))
    return dict(zip(BRISQUE_FEATURE_NAMES, values, strict=True))


def _half_bicubic(plane: NDArray[np.float32]) -> NDArray[np.float32]:
    """Half-size bicubic resampling with antialiasing (Pillow's, like MATLAB's imresize)."""
    from PIL import Image as PILImage

    height, width = plane.shape
    image = PILImage.fromarray(np.ascontiguousarray(plane, dtype=np.float32), mode="F")
    half = image.resize((math.ceil(width / 2), math.ceil(height / 2)),
                        PILImage.Resampling.BICUBIC)
    return np.asarray(half, dtype=np.float32)
