"""Gradient magnitude similarity deviation, Xue, Zhang, Mou & Bovik, IEEE TIP 23(2), 2014.

Follows the authors' MATLAB ``GMSD.m`` on the luma plane: ``conv2`` with a 2×2 average and
``(1:2:end, 1:2:end)`` sub-sampling (zero padding), Prewitt gradients ``[1 0 -1]/3`` with
``conv2 'same'`` (zero padding), the gradient magnitude similarity map
GMS = (2·m_r·m_d + c) / (m_r² + m_d² + c) with c = 170 on 0–255 data (170/255² here, on
[0, 1] data), and the score = the standard deviation of the map (``std2``, N − 1 in the
denominator). Lower is better; identical images give 0.
"""

from __future__ import annotations

from typing import Literal, overload

import numpy as np
from numpy.typing import NDArray

from fusion.features._filters import box_downsample, prewitt_magnitude
from fusion.io import Image, ImageInput, load_pair, require_min_side

__all__ = ["GMSD_C", "gmsd", "gradient_similarity"]

#: The stability constant of the paper, on 0–255 data.
GMSD_C = 170.0

Plane = NDArray[np.float32]


@overload
def gmsd(
    image_true: ImageInput, image_test: ImageInput, *, data_range: float | None = ...,
    return_map: Literal[False] = ...,
) -> float: ...


@overload
def gmsd(
    image_true: ImageInput, image_test: ImageInput, *, data_range: float | None = ...,
    return_map: Literal[True],
) -> tuple[float, Plane]: ...


def gmsd(
    image_true: ImageInput,
    image_test: ImageInput,
    *,
    data_range: float | None = None,
    return_map: bool = False,
) -> float | tuple[float, Plane]:
    """Gradient magnitude similarity deviation of the luma planes (lower = better).

    Parameters
    ----------
    image_true, image_test : image
        Reference and test image; colour images are converted to BT.601 luma first.
    data_range : float, optional
        White level of the input data (see :func:`fusion.io.load_image`).
    return_map : bool, default False
        Also return the gradient magnitude similarity map (half resolution).

    Returns
    -------
    float or (float, ndarray)
        GMSD ≥ 0 (0 for identical images), and the GMS map if asked.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.random.default_rng(0).random((32, 32))
    >>> gmsd(a, a)
    0.0

    """
    ref, dist = load_pair(image_true, image_test, data_range=data_range,
                          names=("image_true", "image_test"))
    similarity = gms_map_of(ref, dist)
    score = float(np.std(similarity, dtype=np.float64, ddof=1))
    return (score, similarity) if return_map else score


def gms_map_of(reference: Image, distorted: Image) -> Plane:
    """The gradient magnitude similarity map of two loaded images."""
    require_min_side(reference, 4, "GMSD")
    return gradient_similarity(_gradient_magnitude(reference), _gradient_magnitude(distorted))


def gradient_similarity(m_ref: Plane, m_dist: Plane) -> Plane:
    """Gradient magnitude similarity of two gradient-magnitude maps of [0, 1] data.

    GMS = (2·m_r·m_d + c) / (m_r² + m_d² + c), c = 170/255², using two temporaries.
    """
    c = np.float32(GMSD_C / 255.0**2)
    similarity: Plane = m_ref * m_dist
    similarity *= np.float32(2.0)
    similarity += c
    denominator = m_ref * m_ref
    denominator += m_dist * m_dist
    denominator += c
    similarity /= denominator
    return similarity


def _gradient_magnitude(image: Image) -> Plane:
    return image.memoised(
        "gmsd_gradient",
        lambda: prewitt_magnitude(box_downsample(image.luma, 2, "zero")),
    )
