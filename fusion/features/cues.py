"""Cheap no-reference cues: sharpness, noise level, blockiness, colourfulness, exposure.

Each follows a published definition, on 0–255 data:

* ``sharpness_laplacian_var``: variance of the 3×3 Laplacian ``[0 1 0; 1 −4 1; 0 1 0]`` of
  the luma (Pech-Pacheco et al., ICPR 2000) — falls with blur;
* ``sharpness_gradient``: mean Prewitt gradient magnitude of the luma;
* ``noise_sigma``: Immerkær's fast noise estimate (CVIU 64(2), 1996):
  σ = √(π/2) / (6 (W − 2)(H − 2)) · Σ |I ∗ N| with N = [1 −2 1; −2 4 −2; 1 −2 1];
* ``blockiness``: mean absolute luma difference across the 8×8 JPEG block boundaries
  divided by that inside blocks (each + 10⁻³), averaged over both directions (1 without
  blocking, > 1 with it; in the manner of Wang, Bovik & Evans, ICIP 2000);
* ``colourfulness``: Hasler & Süsstrunk (SPIE 5007, 2003): with rg = R − G and
  yb = (R + G)/2 − B, M = √(σ_rg² + σ_yb²) + 0.3 √(μ_rg² + μ_yb²);
* ``exposure_*``: the fraction of luma ≥ 250 (clipped highlights) and ≤ 5 (crushed
  shadows), the mean luma and its standard deviation (global contrast).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from fusion.features._filters import prewitt_magnitude
from fusion.io import Image

__all__ = ["CUE_FEATURE_NAMES", "blockiness", "colourfulness", "cue_features", "noise_sigma",
           "sharpness_laplacian_variance"]

CUE_FEATURE_NAMES = (
    "sharpness_laplacian_var", "sharpness_gradient", "noise_sigma", "blockiness",
    "colourfulness", "exposure_highlights", "exposure_shadows", "exposure_mean",
    "exposure_std",
)

Plane = NDArray[np.float32]
_EPS = 1e-3


def sharpness_laplacian_variance(luma255: Plane) -> float:
    """Variance of the 4-neighbour Laplacian over the interior pixels."""
    y = luma255.astype(np.float64)
    laplacian = (y[:-2, 1:-1] + y[2:, 1:-1] + y[1:-1, :-2] + y[1:-1, 2:]
                 - 4.0 * y[1:-1, 1:-1])
    return float(laplacian.var())


def noise_sigma(luma255: Plane) -> float:
    """Immerkær's (1996) estimate of the standard deviation of additive white noise."""
    y = luma255.astype(np.float64)
    h, w = y.shape
    response = (y[:-2, :-2] - 2 * y[:-2, 1:-1] + y[:-2, 2:]
                - 2 * y[1:-1, :-2] + 4 * y[1:-1, 1:-1] - 2 * y[1:-1, 2:]
                + y[2:, :-2] - 2 * y[2:, 1:-1] + y[2:, 2:])
    return float(math.sqrt(math.pi / 2) * np.abs(response).sum() / (6 * (w - 2) * (h - 2)))


def blockiness(luma255: Plane, block: int = 8) -> float:
    """Boundary-to-interior ratio of mean absolute differences on the 8×8 grid."""
    y = luma255.astype(np.float64)
    ratios = []
    for diff in (np.abs(np.diff(y, axis=1)), np.abs(np.diff(y, axis=0)).T):
        # diff[:, j] is the step between columns j and j + 1; boundaries at j = 7, 15, …
        positions = np.arange(diff.shape[1])
        at_boundary = (positions % block) == block - 1
        if not at_boundary.any() or at_boundary.all():
            continue
        # ε (on 0–255 data) keeps flat interiors finite: a constant image gives 1, ideal
        # blocks (flat inside, steps at the boundaries) a large ratio.
        inside = float(diff[:, ~at_boundary].mean()) + _EPS
        ratios.append((float(diff[:, at_boundary].mean()) + _EPS) / inside)
    return float(np.mean(ratios)) if ratios else 1.0


def colourfulness(rgb255: NDArray[np.float32]) -> float:
    """Hasler & Süsstrunk's colourfulness M (0 for grey images)."""
    r, g, b = (rgb255[:, :, c].astype(np.float64) for c in range(3))
    rg = r - g
    yb = 0.5 * (r + g) - b
    return float(math.hypot(rg.std(), yb.std()) + 0.3 * math.hypot(rg.mean(), yb.mean()))


def cue_features(image: Image) -> dict[str, float]:
    """All cues of one image (names: :data:`CUE_FEATURE_NAMES`)."""
    luma = image.luma255
    values = (
        sharpness_laplacian_variance(luma),
        float(prewitt_magnitude(luma).mean(dtype=np.float64)),
        noise_sigma(luma),
        blockiness(luma),
        colourfulness(image.rgb * np.float32(255.0)),
        float(np.mean(luma >= 250.0)),
        float(np.mean(luma <= 5.0)),
        float(luma.mean(dtype=np.float64)),
        float(luma.std(dtype=np.float64)),
    )
    return dict(zip(CUE_FEATURE_NAMES, values, strict=True))
