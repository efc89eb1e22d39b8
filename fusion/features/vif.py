"""Visual information fidelity in the pixel domain (VIFp), Sheikh & Bovik, IEEE TIP 15(2), 2006.

Follows the authors' MATLAB ``vifp_mscale.m`` on the luma plane scaled to 0–255: four
scales; at scale s = 1…4 a Gaussian window of N = 2^(5−s) + 1 taps and σ = N / 5; from the
second scale on, the previous scale is filtered with that window (``'valid'``) and
sub-sampled by 2; local statistics in ``'valid'`` mode; the HVS noise variance
σ_n² = 2; the same guards for near-zero variances (1e-10) and negative gains; and

    VIFp = Σ_scales Σ log10(1 + g²·σ_x² / (σ_v² + σ_n²)) / Σ_scales Σ log10(1 + σ_x² / σ_n²).

Identical images give 1 (up to the 1e-10 floor on σ_v²); VIFp is not symmetric in its
arguments, and contrast enhancement can push it above 1.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from fusion.features._filters import correlate_valid, gaussian_window
from fusion.io import Image, ImageInput, load_pair, require_min_side

__all__ = ["VIFP_MIN_SIDE", "VIFP_NOISE_VARIANCE", "vifp"]

#: σ_n², the variance of the visual noise on 0–255 data.
VIFP_NOISE_VARIANCE = 2.0
_EPS = 1e-10
_SCALES = 4

Plane = NDArray[np.float32]


def _window_taps(scale: int) -> int:
    return (1 << (_SCALES - scale + 1)) + 1


def _min_side() -> int:
    """Smallest side for which every scale still holds its window (41 pixels)."""
    side = 1
    while True:
        size = side
        ok = True
        for scale in range(1, _SCALES + 1):
            taps = _window_taps(scale)
            if scale > 1:
                size = math.ceil((size - taps + 1) / 2)
            if size < taps:
                ok = False
                break
        if ok:
            return side
        side += 1


VIFP_MIN_SIDE = _min_side()


def vifp(
    image_true: ImageInput, image_test: ImageInput, *, data_range: float | None = None
) -> float:
    """Pixel-domain visual information fidelity of ``image_test`` against ``image_true``.

    Parameters
    ----------
    image_true, image_test : image
        Reference and test image; colour images are converted to BT.601 luma first.
    data_range : float, optional
        White level of the input data (see :func:`fusion.io.load_image`).

    Returns
    -------
    float
        VIFp ≥ 0; 1 for identical images, lower for information loss.

    Raises
    ------
    ImageTooSmallError
        If either side is below ``VIFP_MIN_SIDE`` (41) pixels.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.random.default_rng(0).random((64, 64))
    >>> round(vifp(a, a), 6)
    1.0

    """
    ref, dist = load_pair(image_true, image_test, data_range=data_range,
                          names=("image_true", "image_test"))
    return vifp_of(ref, dist)


def vifp_of(reference: Image, distorted: Image) -> float:
    """VIFp of two loaded images."""
    require_min_side(reference, VIFP_MIN_SIDE, "VIFp (4 scales)")
    # Centre both planes on a common offset: the statistics are shift-invariant, and the
    # float32 second moments lose far less to cancellation.
    shift = 0.5 * (float(reference.luma.mean(dtype=np.float64))
                   + float(distorted.luma.mean(dtype=np.float64)))
    x = (reference.luma - np.float32(shift)) * np.float32(255.0)
    y = (distorted.luma - np.float32(shift)) * np.float32(255.0)
    numerator = 0.0
    denominator = 0.0
    for scale in range(1, _SCALES + 1):
        taps = _window_taps(scale)
        window = gaussian_window(taps, taps / 5.0)
        if scale > 1:
            low = correlate_valid(np.stack([x, y]), window)
            x, y = low[0, ::2, ::2], low[1, ::2, ::2]
        num, den = _scale_terms(x, y, window)
        numerator += num
        denominator += den
    return numerator / denominator


def _scale_terms(x: Plane, y: Plane, window: NDArray[np.float64]) -> tuple[float, float]:
    stack = np.stack([x, y, x * x, y * y, x * y])
    mu_x, mu_y, mean_xx, mean_yy, mean_xy = correlate_valid(stack, window)
    sigma_x_sq = np.maximum(mean_xx - mu_x * mu_x, 0.0)
    sigma_y_sq = np.maximum(mean_yy - mu_y * mu_y, 0.0)
    sigma_xy = mean_xy - mu_x * mu_y

    # The guards of vifp_mscale.m, in its order.
    gain = sigma_xy / (sigma_x_sq + np.float32(_EPS))
    sv_sq = sigma_y_sq - gain * sigma_xy
    flat_ref = sigma_x_sq < _EPS
    gain[flat_ref] = 0.0
    sv_sq[flat_ref] = sigma_y_sq[flat_ref]
    sigma_x_sq[flat_ref] = 0.0
    flat_dist = sigma_y_sq < _EPS
    gain[flat_dist] = 0.0
    sv_sq[flat_dist] = 0.0
    negative = gain < 0
    sv_sq[negative] = sigma_y_sq[negative]
    gain[negative] = 0.0
    np.maximum(sv_sq, np.float32(_EPS), out=sv_sq)

    sigma_n = np.float32(VIFP_NOISE_VARIANCE)
    num = np.log10(1.0 + gain * gain * sigma_x_sq / (sv_sq + sigma_n))
    den = np.log10(1.0 + sigma_x_sq / sigma_n)
    return float(num.sum(dtype=np.float64)), float(den.sum(dtype=np.float64))
