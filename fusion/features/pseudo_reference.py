"""Pseudo-reference features: compare an image with degraded and restored copies of itself.

Blind IQA with pseudo-references (Min, Gu, Zhai, Liu, Yang & Chen, "Blind Quality
Assessment Based on Pseudo-Reference Image", IEEE TMM 20(8), 2018): a distortion already
present changes little when it is applied again, so the distance between an image and a
re-distorted copy tells how much of that distortion it already has. A restored (denoised)
copy differs from the image by the noise it removed.

On the luma plane, at full and at half resolution (the MS-SSIM pyramid's level 1), PSNR,
SSIM and GMSD are computed (with the fast full-reference kernels) between the image and:

* ``blur``: a Gaussian re-blur, σ = 1 px (a sharp image changes a lot, a blurry one little);
* ``jpeg90``, ``jpeg60``, ``jpeg30``: JPEG re-compression of the luma at three qualities
  (blockiness and compression history);
* ``denoise``: a 3×3 median filter (noise level).

That is 5 pseudo-references × 2 scales × 3 metrics = 30 values, named
``pr_s<scale>_<reference>_<metric>``. PSNR is capped at 100 dB, as in the full-reference
vector.
"""

from __future__ import annotations

import io

import numpy as np
from numpy.typing import NDArray

from fusion.features._filters import (
    correlate_valid,
    gaussian_window,
    luma_pyramid,
    prewitt_magnitude,
)
from fusion.features.gmsd import gradient_similarity
from fusion.features.psnr import PSNR_CAP_DB, psnr_from_mse
from fusion.features.ssim import SSIM_WINDOW, ssim_map_and_mean_cs
from fusion.io import Image

__all__ = [
    "PSEUDO_REFERENCES",
    "PSEUDO_REFERENCE_FEATURE_NAMES",
    "median3x3",
    "pseudo_reference_features",
]

PSEUDO_REFERENCES = ("blur", "jpeg90", "jpeg60", "jpeg30", "denoise")
_METRICS = ("psnr", "ssim", "gmsd")

PSEUDO_REFERENCE_FEATURE_NAMES: tuple[str, ...] = tuple(
    f"pr_s{scale}_{reference}_{metric}"
    for scale in (1, 2) for reference in PSEUDO_REFERENCES for metric in _METRICS
)

Plane = NDArray[np.float32]


def pseudo_reference_features(image: Image) -> dict[str, float]:
    """The 30 pseudo-reference values of one image (needs ≥ 22 px per side)."""
    values: list[float] = []
    for level in (0, 1):
        luma = luma_pyramid(image, level)
        gradient = prewitt_magnitude(luma)
        for name in PSEUDO_REFERENCES:
            other = _pseudo_reference(luma, name)
            values.extend(_compare(luma, gradient, other))
    return dict(zip(PSEUDO_REFERENCE_FEATURE_NAMES, values, strict=True))


# Devillard's 19-comparator network for the median of 9 ("Fast median search", 1998).
_MEDIAN9_NETWORK = ((1, 2), (4, 5), (7, 8), (0, 1), (3, 4), (6, 7), (1, 2), (4, 5), (7, 8),
                    (0, 3), (5, 8), (4, 7), (3, 6), (1, 4), (2, 5), (4, 7), (4, 2), (6, 4),
                    (4, 2))


def median3x3(plane: Plane) -> Plane:
    """3×3 median filter, mirrored at the borders, vectorised with a sorting network.

    Equals ``scipy.ndimage.median_filter(plane, size=3, mode="mirror")``.
    """
    padded = np.pad(plane, 1, mode="reflect")
    h, w = plane.shape
    p: list[Plane] = [padded[dy : dy + h, dx : dx + w].copy() for dy in range(3) for dx in range(3)]
    for a, b in _MEDIAN9_NETWORK:
        low = np.minimum(p[a], p[b])
        np.maximum(p[a], p[b], out=p[b])
        p[a] = low
    return p[4]


def _pseudo_reference(luma: Plane, name: str) -> Plane:
    if name == "blur":
        padded = np.pad(luma, 3, mode="symmetric")
        blurred: Plane = correlate_valid(padded[None], gaussian_window(7, 1.0))[0]
        return blurred
    if name == "denoise":
        return median3x3(luma)
    from PIL import Image as PILImage

    quality = int(name.removeprefix("jpeg"))
    counts = np.floor(np.clip(luma, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    buffer = io.BytesIO()
    PILImage.fromarray(counts, mode="L").save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with PILImage.open(buffer) as decoded:
        return np.asarray(decoded, dtype=np.float32) / np.float32(255.0)


def _compare(x: Plane, gradient_x: Plane, y: Plane) -> tuple[float, float, float]:
    diff = x - y
    psnr = min(psnr_from_mse(float(np.dot(diff.ravel(), diff.ravel())) / diff.size),
               PSNR_CAP_DB)
    if min(x.shape) >= SSIM_WINDOW:
        ssim = float(np.mean(ssim_map_and_mean_cs(x, y)[0], dtype=np.float64))
    else:  # pragma: no cover - images this small are refused before
        ssim = float("nan")
    return psnr, ssim, _gmsd_plain(gradient_x, prewitt_magnitude(y))


def _gmsd_plain(mx: Plane, my: Plane) -> float:
    """GMSD of two gradient maps, without GMSD.m's 2× pre-down-sampling.

    The pyramid already provides the scales.
    """
    return float(np.std(gradient_similarity(mx, my), dtype=np.float64, ddof=1))
