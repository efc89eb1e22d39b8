"""Mean squared error and peak signal-to-noise ratio.

PSNR = 10·log10(MAX² / MSE) with MAX = 1 on the library's [0, 1] scale, which equals
10·log10(255² / MSE₂₅₅) for 8-bit data. (The seed paper prints the ratio inverted; this is
the standard definition.) Both are computed over all three RGB channels, as the
IQA-PyTorch calibration of the TID2013 reference values and scikit-image's
``peak_signal_noise_ratio`` on RGB arrays do.
"""

from __future__ import annotations

import math

import numpy as np

from fusion.io import Image, ImageInput, load_pair

__all__ = ["PSNR_CAP_DB", "mse", "psnr"]

#: PSNR reported in feature vectors is capped here, so identical images give a finite
#: value (100 dB ⇔ MSE = 1e-10 on the [0, 1] scale).
PSNR_CAP_DB = 100.0


def mse(
    image_true: ImageInput, image_test: ImageInput, *, data_range: float | None = None
) -> float:
    """Mean squared error over all RGB channels, on the [0, 1] scale.

    Parameters
    ----------
    image_true, image_test : image
        Reference and test image (anything :func:`fusion.io.load_image` accepts).
    data_range : float, optional
        White level of the input data (see :func:`fusion.io.load_image`).

    Returns
    -------
    float
        Mean of the squared differences of the images scaled to [0, 1]; multiply by
        ``data_range**2`` (255² for 8-bit data) for the input's own units.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros((16, 16), np.uint8); b = np.full((16, 16), 51, np.uint8)
    >>> round(mse(a, b), 6)
    0.04

    """
    ref, dist = load_pair(image_true, image_test, data_range=data_range,
                          names=("image_true", "image_test"))
    return mean_squared_error(ref, dist)


def psnr(
    image_true: ImageInput, image_test: ImageInput, *, data_range: float | None = None
) -> float:
    """Peak signal-to-noise ratio in dB over all RGB channels.

    Parameters
    ----------
    image_true, image_test : image
        Reference and test image.
    data_range : float, optional
        White level of the input data (see :func:`fusion.io.load_image`).

    Returns
    -------
    float
        ``10·log10(1 / MSE)`` on the [0, 1] scale. Identical images give ``math.inf``
        (no division warning); the fusion feature vector caps it at
        :data:`fusion.features.PSNR_CAP_DB`.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros((16, 16), np.uint8); b = np.full((16, 16), 51, np.uint8)
    >>> round(psnr(a, b), 4)
    13.9794

    """
    ref, dist = load_pair(image_true, image_test, data_range=data_range,
                          names=("image_true", "image_test"))
    return psnr_from_mse(mean_squared_error(ref, dist))


def mean_squared_error(reference: Image, distorted: Image) -> float:
    """MSE of two loaded images over RGB, on the [0, 1] scale.

    Integer images of the same white level and layout are compared exactly, in integer
    arithmetic on their counts; anything else in float64 from the float32 RGB planes.
    """
    a, b = reference.source, distorted.source
    levels = reference.integer_levels
    if levels is not None and levels == distorted.integer_levels and a.shape == b.shape:
        squared_sum = 0
        step = max(1, 65536 // (a.shape[1] * (a.shape[2] if a.ndim == 3 else 1)))
        for start in range(0, a.shape[0], step):
            diff = (a[start : start + step].astype(np.int64) - b[start : start + step]).ravel()
            squared_sum += int(np.dot(diff, diff))
        return squared_sum / (a.size * float(levels) ** 2)
    diff = (reference.rgb - distorted.rgb).astype(np.float64).ravel()
    return float(np.dot(diff, diff) / diff.size)


def psnr_from_mse(error: float) -> float:
    """``10·log10(1 / error)``, or ``inf`` when ``error`` is 0."""
    if error <= 0.0:
        return math.inf
    return -10.0 * math.log10(error)
