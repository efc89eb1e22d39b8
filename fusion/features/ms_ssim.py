"""Multi-scale SSIM, Wang, Simoncelli & Bovik, 37th Asilomar Conference, 2003.

Follows the authors' MATLAB ``msssim.m``: five scales, exponents (0.0448, 0.2856, 0.3001,
0.2363, 0.1333), the single-scale SSIM window and constants at every scale, and between
scales ``imfilter(img, ones(2)/4, 'symmetric', 'same')`` then ``img(1:2:end, 1:2:end)``.
The index is ∏_{j<5} mean(cs_j)^{β_j} · mean(ssim_5)^{β_5}. Where a mean contrast term is
negative (the original then returns a complex number) it is clipped to 0.
"""

from __future__ import annotations

import numpy as np

from fusion.features._filters import luma_pyramid
from fusion.features.ssim import SSIM_WINDOW, ssim_map_and_mean_cs
from fusion.io import Image, ImageInput, load_pair, require_min_side

__all__ = ["MS_SSIM_MIN_SIDE", "MS_SSIM_WEIGHTS", "ms_ssim"]

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

#: The coarsest of 5 scales (ceil(n / 16) pixels) must hold the 11-pixel window.
MS_SSIM_MIN_SIDE = 16 * (SSIM_WINDOW - 1) + 1


def ms_ssim(
    image_true: ImageInput, image_test: ImageInput, *, data_range: float | None = None
) -> float:
    """Multi-scale structural similarity of the luma planes.

    Parameters
    ----------
    image_true, image_test : image
        Reference and test image; colour images are converted to BT.601 luma first.
    data_range : float, optional
        White level of the input data (see :func:`fusion.io.load_image`).

    Returns
    -------
    float
        MS-SSIM in [0, 1]; 1 for identical images.

    Raises
    ------
    ImageTooSmallError
        If either side is below ``MS_SSIM_MIN_SIDE`` (161) pixels.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.random.default_rng(0).random((200, 200))
    >>> round(ms_ssim(a, a), 6)
    1.0

    """
    ref, dist = load_pair(image_true, image_test, data_range=data_range,
                          names=("image_true", "image_test"))
    return ms_ssim_of(ref, dist)


def ms_ssim_of(reference: Image, distorted: Image) -> float:
    """MS-SSIM of two loaded images (their luma pyramids are memoised and shared)."""
    require_min_side(reference, MS_SSIM_MIN_SIDE, "MS-SSIM (5 scales)")
    index = 1.0
    last = len(MS_SSIM_WEIGHTS) - 1
    for level, weight in enumerate(MS_SSIM_WEIGHTS):
        ssim_map, mean_cs = ssim_map_and_mean_cs(
            luma_pyramid(reference, level), luma_pyramid(distorted, level)
        )
        term = float(np.mean(ssim_map, dtype=np.float64)) if level == last else mean_cs
        index *= max(term, 0.0) ** weight
    return index
