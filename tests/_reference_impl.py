"""Straightforward float64 implementations written from the papers, for cross-checks.

They are deliberately naive (2-D ``scipy.signal.correlate2d`` with the full 2-D window,
no shared code with the library) so that a bug in the library's fast filters, pyramid or
guards cannot hide in both.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.signal import correlate2d


def fspecial_gaussian(size: int, sigma: float) -> np.ndarray:
    """MATLAB ``fspecial('gaussian', size, sigma)``."""
    r = (size - 1) / 2.0
    y, x = np.mgrid[-r : r + 1, -r : r + 1]
    h = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    return h / h.sum()


def filter2_valid(window: np.ndarray, image: np.ndarray) -> np.ndarray:
    return correlate2d(image, window, mode="valid")


def gaussian_valid(image: np.ndarray, size: int, sigma: float) -> np.ndarray:
    """``filter2(fspecial('gaussian', size, sigma), image, 'valid')`` with a full 2-D window."""
    return filter2_valid(fspecial_gaussian(size, sigma), image)


def vifp_mscale(ref: np.ndarray, dist: np.ndarray, *,
                valid_filter: Callable[[np.ndarray, int, float], np.ndarray] = gaussian_valid
                ) -> float:
    """Sheikh & Bovik 2006, pixel-domain VIF: ``vifp_mscale.m`` transcribed (0–255 data).

    ``valid_filter(image, size, sigma)`` is the Gaussian filtering over the 'valid' region;
    the default is the naive 2-D one (the benchmark passes a fast separable one).
    """
    sigma_nsq = 2.0
    num = den = 0.0
    for scale in range(1, 5):
        n = 2 ** (4 - scale + 1) + 1

        def filt(image: np.ndarray, n: int = n) -> np.ndarray:
            return valid_filter(image, n, n / 5.0)

        if scale > 1:
            ref = filt(ref)[::2, ::2]
            dist = filt(dist)[::2, ::2]
        mu1, mu2 = filt(ref), filt(dist)
        s1 = filt(ref * ref) - mu1 * mu1
        s2 = filt(dist * dist) - mu2 * mu2
        s12 = filt(ref * dist) - mu1 * mu2
        s1[s1 < 0] = 0
        s2[s2 < 0] = 0
        g = s12 / (s1 + 1e-10)
        sv = s2 - g * s12
        g[s1 < 1e-10] = 0
        sv[s1 < 1e-10] = s2[s1 < 1e-10]
        s1[s1 < 1e-10] = 0
        g[s2 < 1e-10] = 0
        sv[s2 < 1e-10] = 0
        sv[g < 0] = s2[g < 0]
        g[g < 0] = 0
        sv[sv <= 1e-10] = 1e-10
        num += np.sum(np.log10(1 + g * g * s1 / (sv + sigma_nsq)))
        den += np.sum(np.log10(1 + s1 / sigma_nsq))
    return float(num / den)


def ms_ssim(img1: np.ndarray, img2: np.ndarray) -> float:
    """Wang et al. 2003 ``msssim.m`` (imfilter 'symmetric' down-sampling), 0–255 data."""
    weights = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]
    win = fspecial_gaussian(11, 1.5)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mcs, mssim = [], []
    for _ in range(5):
        mu1, mu2 = filter2_valid(win, img1), filter2_valid(win, img2)
        s1 = filter2_valid(win, img1 * img1) - mu1**2
        s2 = filter2_valid(win, img2 * img2) - mu2**2
        s12 = filter2_valid(win, img1 * img2) - mu1 * mu2
        cs = (2 * s12 + c2) / (s1 + s2 + c2)
        mssim.append(np.mean((2 * mu1 * mu2 + c1) / (mu1**2 + mu2**2 + c1) * cs))
        mcs.append(np.mean(cs))
        img1, img2 = (_imfilter_box2_symmetric(im)[::2, ::2] for im in (img1, img2))
    return float(np.prod(np.array(mcs[:4]) ** weights[:4]) * mssim[4] ** weights[4])


def _imfilter_box2_symmetric(im: np.ndarray) -> np.ndarray:
    # imfilter(im, ones(2)/4, 'symmetric', 'same'): the 2-tap box is anchored at its first
    # tap, so out(i, j) averages im(i:i+1, j:j+1), mirroring past the last row/column.
    padded = np.pad(im, ((0, 1), (0, 1)), mode="symmetric")
    return (padded[:-1, :-1] + padded[1:, :-1] + padded[:-1, 1:] + padded[1:, 1:]) / 4.0
