"""Visual information fidelity in the pixel domain (VIFp), Sheikh & Bovik, IEEE TIP 15(2), 2006.

Follows the authors' MATLAB ``vifp_mscale.m`` on the luma plane scaled to 0–255: four
scales; at scale s = 1…4 a Gaussian window of N = 2^(5−s) + 1 taps and σ = N / 5; from the
second scale on, the previous scale is filtered with that window (``'valid'``) and
sub-sampled by 2; local statistics in ``'valid'`` mode; the HVS noise variance
σ_n² = 2; the same guards for near-zero variances (1e-10) and negative gains; and

    VIFp = Σ_scales Σ log10(1 + g²·σ_x² / (σ_v² + σ_n²)) / Σ_scales Σ log10(1 + σ_x² / σ_n²).

Identical images give 1 (up to the 1e-10 floor on σ_v²); VIFp is not symmetric in its
arguments, and contrast enhancement can push it above 1. Degenerate input: a constant
reference (zero variance at every scale, so a zero denominator) gives 1 by definition
(the original returns NaN).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from fusion._scratch import scratch
from fusion.features._filters import correlate_valid, gaussian_window
from fusion.io import Image, ImageInput, load_pair, require_min_side

__all__ = ["VIFP_MIN_SIDE", "VIFP_NOISE_VARIANCE", "vifp"]

#: σ_n², the variance of the visual noise on 0–255 data.
VIFP_NOISE_VARIANCE = 2.0
_EPS = 1e-10
_SCALES = 4

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
    if np.array_equal(reference.luma, distorted.luma):
        # exactly 1 in exact arithmetic (g = 1, σv² = 0 at every scale); in float32 the
        # two planes' filtered moments can round apart by an ulp (numpy 2.4's kernels
        # did, giving 0.99998), so identical images are answered without computing
        return 1.0
    # Centre both planes on a common offset: the statistics are shift-invariant, and the
    # float32 second moments lose far less to cancellation.
    shift = np.float32(0.5 * (float(reference.luma.mean(dtype=np.float64))
                              + float(distorted.luma.mean(dtype=np.float64))))
    pair = scratch("vifp_pair", (2, *reference.shape))
    np.subtract(reference.luma, shift, out=pair[0])
    np.subtract(distorted.luma, shift, out=pair[1])
    pair *= np.float32(255.0)
    numerator = 0.0
    denominator = 0.0
    for scale in range(1, _SCALES + 1):
        taps = _window_taps(scale)
        window = gaussian_window(taps, taps / 5.0)
        if scale > 1:  # filter2(win, x, 'valid'), then x(1:2:end, 1:2:end)
            pair = correlate_valid(pair, window, stride=2, reuse=f"vifp_scale{scale}")
        num, den = _scale_terms(pair, window)
        numerator += num
        denominator += den
    if denominator == 0.0:
        # A reference without variance at every scale carries no information to lose, and
        # vifp_mscale.m returns 0/0 = NaN. Defined here as 1, which is what the common
        # ε-regularised ports give, (num + ε) / (den + ε) with num = 0 (e.g. piq's vif_p).
        return 1.0
    return numerator / denominator


def _scale_terms(pair: NDArray[np.float32], window: NDArray[np.float64]) -> tuple[float, float]:
    """Σ log(1 + g²σx²/(σv² + σn²)) and Σ log(1 + σx²/σn²) of one scale (natural log)."""
    x, y = pair
    stack = scratch("vifp_stack", (5, *x.shape))
    stack[:2] = pair
    np.multiply(x, x, out=stack[2])
    np.multiply(y, y, out=stack[3])
    np.multiply(x, y, out=stack[4])
    moments = correlate_valid(stack, window, reuse="vifp_moments")
    mu_x, mu_y, sigma_x_sq, sigma_y_sq, sigma_xy = moments  # views, updated in place
    work = scratch("vifp_work", mu_x.shape)
    np.multiply(mu_x, mu_x, out=work)
    sigma_x_sq -= work
    np.maximum(sigma_x_sq, 0.0, out=sigma_x_sq)
    np.multiply(mu_y, mu_y, out=work)
    sigma_y_sq -= work
    np.maximum(sigma_y_sq, 0.0, out=sigma_y_sq)
    np.multiply(mu_x, mu_y, out=work)
    sigma_xy -= work

    eps = np.float32(_EPS)
    gain = mu_x  # the means are no longer needed: reuse their memory
    np.add(sigma_x_sq, eps, out=gain)
    np.divide(sigma_xy, gain, out=gain)
    sv_sq = mu_y
    np.multiply(gain, sigma_xy, out=sv_sq)
    np.subtract(sigma_y_sq, sv_sq, out=sv_sq)

    # The guards of vifp_mscale.m, in its order.
    flat_ref = sigma_x_sq < eps
    np.copyto(gain, 0.0, where=flat_ref)
    np.copyto(sv_sq, sigma_y_sq, where=flat_ref)
    np.copyto(sigma_x_sq, 0.0, where=flat_ref)
    flat_dist = sigma_y_sq < eps
    np.copyto(gain, 0.0, where=flat_dist)
    np.copyto(sv_sq, 0.0, where=flat_dist)
    negative = gain < 0
    np.copyto(sv_sq, sigma_y_sq, where=negative)
    np.copyto(gain, 0.0, where=negative)
    np.maximum(sv_sq, eps, out=sv_sq)

    sigma_n = np.float32(VIFP_NOISE_VARIANCE)
    np.multiply(gain, gain, out=gain)  # log(1 + g²·σx² / (σv² + σn²))
    gain *= sigma_x_sq
    sv_sq += sigma_n
    gain /= sv_sq
    np.log1p(gain, out=gain)
    sigma_x_sq /= sigma_n  # log(1 + σx² / σn²)
    np.log1p(sigma_x_sq, out=sigma_x_sq)
    # Natural logs: the ratio is the same as with the paper's log10.
    return float(gain.sum(dtype=np.float64)), float(sigma_x_sq.sum(dtype=np.float64))
