"""Structural similarity (SSIM), Wang, Bovik, Sheikh & Simoncelli, IEEE TIP 13(4), 2004.

Follows the authors' MATLAB ``ssim_index.m`` / ``ssim.m``: luma only, an 11×11 Gaussian
window with σ = 1.5 (``fspecial('gaussian', 11, 1.5)``), K1 = 0.01, K2 = 0.03, L = the
white level, statistics filtered in ``'valid'`` mode (the map is (H − 10)×(W − 10)), and
the mean of the map as the index. With ``downsample=True`` the image is first box-filtered
and sub-sampled by f = max(1, round(min(H, W) / 256)), as ``ssim.m`` does (rounding half
away from zero, as MATLAB's ``round``).

The population (not sample) covariance is used, so the value equals scikit-image's
``structural_similarity(..., gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=...)`` on the same luma plane.
"""

from __future__ import annotations

import math
from typing import Literal, overload

import numpy as np
from numpy.typing import NDArray

from fusion._scratch import scratch
from fusion.features._filters import correlate_valid, downsampled_luma, gaussian_window
from fusion.io import Image, ImageInput, load_pair, require_min_side

__all__ = ["SSIM_K1", "SSIM_K2", "SSIM_SIGMA", "SSIM_WINDOW", "auto_downsample_factor", "ssim"]

SSIM_K1 = 0.01
SSIM_K2 = 0.03
SSIM_SIGMA = 1.5
SSIM_WINDOW = 11

Plane = NDArray[np.float32]


@overload
def ssim(
    image_true: ImageInput, image_test: ImageInput, *, data_range: float | None = ...,
    downsample: bool = ..., return_map: Literal[False] = ...,
) -> float: ...


@overload
def ssim(
    image_true: ImageInput, image_test: ImageInput, *, data_range: float | None = ...,
    downsample: bool = ..., return_map: Literal[True],
) -> tuple[float, Plane]: ...


def ssim(
    image_true: ImageInput,
    image_test: ImageInput,
    *,
    data_range: float | None = None,
    downsample: bool = False,
    return_map: bool = False,
) -> float | tuple[float, Plane]:
    """Mean structural similarity of the luma planes.

    Parameters
    ----------
    image_true, image_test : image
        Reference and test image; colour images are converted to BT.601 luma first.
    data_range : float, optional
        White level of the input data (see :func:`fusion.io.load_image`).
    downsample : bool, default False
        Apply the authors' automatic down-sampling (``ssim.m``) before comparing; the
        fusion features use it, the default matches ``ssim_index.m`` and scikit-image.
    return_map : bool, default False
        Also return the SSIM map (the per-window index used for quality maps).

    Returns
    -------
    float or (float, ndarray)
        The mean SSIM in [-1, 1] (1 for identical images), and the map if asked.

    Raises
    ------
    ImageTooSmallError
        If the (down-sampled) image is smaller than the 11×11 window.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a = rng.random((64, 64))
    >>> ssim(a, a)
    1.0

    """
    ref, dist = load_pair(image_true, image_test, data_range=data_range,
                          names=("image_true", "image_test"))
    factor = auto_downsample_factor(ref.shape) if downsample else 1
    ssim_map = ssim_map_of(ref, dist, factor)
    score = float(np.mean(ssim_map, dtype=np.float64))
    return (score, ssim_map) if return_map else score


def auto_downsample_factor(shape: tuple[int, int]) -> int:
    """``max(1, round(min(H, W) / 256))`` with MATLAB's round-half-away-from-zero."""
    return max(1, math.floor(min(shape) / 256 + 0.5))


def ssim_map_of(reference: Image, distorted: Image, factor: int = 1) -> Plane:
    """The SSIM map of two loaded images, after box down-sampling by ``factor``."""
    what = "SSIM" if factor == 1 else f"SSIM with {factor}× down-sampling"
    require_min_side(reference, SSIM_WINDOW * factor, what)
    x = downsampled_luma(reference, factor)
    y = downsampled_luma(distorted, factor)
    return ssim_map_and_mean_cs(x, y)[0]


def ssim_map_and_mean_cs(x: Plane, y: Plane) -> tuple[Plane, float]:
    """SSIM map and the mean of the contrast-structure map of two luma planes in [0, 1].

    Equations (13)–(14) of Wang et al. 2004 with C1 = (K1·L)², C2 = (K2·L)², L = 1. The
    planes are shifted by their common mean before the second moments are filtered: the
    (co)variances do not change, and float32 loses far less to cancellation.
    """
    window = gaussian_window(SSIM_WINDOW, SSIM_SIGMA)
    c1 = np.float32(SSIM_K1**2)
    c2 = np.float32(SSIM_K2**2)
    shift = np.float32(0.5 * (float(x.mean(dtype=np.float64)) + float(y.mean(dtype=np.float64))))
    stack = scratch("ssim_stack", (4, *x.shape))
    np.subtract(x, shift, out=stack[0])
    np.subtract(y, shift, out=stack[1])
    np.multiply(stack[0], stack[0], out=stack[2])
    stack[2] += stack[1] * stack[1]
    np.multiply(stack[0], stack[1], out=stack[3])
    filtered = correlate_valid(stack, window, reuse="ssim_moments")
    mu_x, mu_y, variance_sum, cs_map = filtered  # views; the arithmetic runs in place
    # (avoiding temporaries matters: fresh multi-MB arrays cost page faults)
    product = mu_x * mu_y  # becomes the returned SSIM map: a fresh array
    square = scratch("ssim_square", mu_x.shape)
    np.multiply(mu_x, mu_x, out=square)

    # cs = (2 σxy + C2) / (σx² + σy² + C2), with σxy = E[xy] − μxμy, σx² + σy² =
    # E[x² + y²] − μx² − μy² (filtered[3] holds E[xy], filtered[2] E[x² + y²]).
    cs_map -= product
    cs_map *= np.float32(2.0)
    cs_map += c2
    variance_sum -= square
    np.multiply(mu_y, mu_y, out=square)
    variance_sum -= square
    variance_sum += c2
    cs_map /= variance_sum

    # luminance = (2 μxμy + C1) / (μx² + μy² + C1), on the un-shifted means
    mu_x += shift
    mu_y += shift
    np.multiply(mu_x, mu_y, out=product)
    product *= np.float32(2.0)
    product += c1
    np.multiply(mu_x, mu_x, out=square)
    np.multiply(mu_y, mu_y, out=variance_sum)
    square += variance_sum
    square += c1
    product /= square
    ssim_map: Plane = product
    ssim_map *= cs_map
    return ssim_map, float(np.mean(cs_map, dtype=np.float64))
