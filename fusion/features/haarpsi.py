"""HaarPSI, Reisenhofer, Bosse, Kutyniok & Wiegand, Signal Process. Image Commun. 61, 2018.

Follows the authors' reference implementation (``haarpsi.py``/``HaarPSI.m``): the pair on
the 0–255 scale as YIQ; every plane averaged over 2×2 boxes (MATLAB ``conv2 'same'``)
and sub-sampled by 2; Haar wavelet responses of Y at scales 1–3, horizontal and vertical
(``conv2 'same'`` with ±2^−s over 2^s × 2^s); per orientation the mean of the two finest
scales' similarities (2ab + C)/(a² + b² + C) with C = 30, weighted by the larger
third-scale magnitude; chroma similarity of the 2×2-averaged |I| and |Q|, weighted by
the mean of the two weights; pooled through a logistic function with α = 4.2 and
returned as ``(logit(Σ w·σ(s) / Σ w) / α)²``. Higher is better; identical images give 1.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from fusion.features._filters import YIQ, boxed_rgb255, similarity
from fusion.io import Image, ImageInput, load_pair, require_min_side

__all__ = ["HAARPSI_MIN_SIDE", "haarpsi", "haarpsi_of"]

Plane = NDArray[np.float64]
Plane32 = NDArray[np.float32]

#: Smallest side: the third Haar scale spans 8 pixels of the half-resolution planes.
HAARPSI_MIN_SIDE = 16

_C = 30.0
_HALF = np.array([0.5, 0.5])  # 2×2 box = (½, ½) ⊗ (½, ½)
_ALPHA = 4.2


def haarpsi(image_true: ImageInput, image_test: ImageInput, *,
            data_range: float | None = None) -> float:
    """HaarPSI of a pair; higher = better, 1 for identical images.

    Parameters
    ----------
    image_true, image_test : image
        Reference and test image (anything :func:`fusion.io.load_image` accepts); grey
        images use the luma terms only, as in the authors' code.
    data_range : float, optional
        White level of the input data.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.random.default_rng(0).random((64, 64, 3))
    >>> round(haarpsi(a, a), 6)
    1.0
    """
    ref, dist = load_pair(image_true, image_test, data_range=data_range,
                          names=("image_true", "image_test"))
    require_min_side(ref, HAARPSI_MIN_SIDE, "HaarPSI")
    return haarpsi_of(ref, dist)


def haarpsi_of(reference: Image, distorted: Image) -> float:
    """HaarPSI of a loaded pair (reference first)."""
    y1, chroma1, colour = _responses(reference)
    y2, chroma2, _ = _responses(distorted)
    similarities = []
    weights = []
    for orientation in range(2):
        a, b = np.abs(y1[orientation]), np.abs(y2[orientation])
        weights.append(np.maximum(a[2], b[2]))
        similarities.append(np.mean(similarity(a[:2], b[:2], _C), axis=0))
    if colour:
        similarities.append((similarity(chroma1[0], chroma2[0], _C)
                             + similarity(chroma1[1], chroma2[1], _C)) / 2)
        weights.append((weights[0] + weights[1]) / 2)
    weight = np.stack(weights)
    total = float(weight.sum(dtype=np.float64))
    if total <= 0.0:  # no structure at all in either image (two flat images)
        return 1.0
    pooled = float(np.sum(_sigmoid(np.stack(similarities)) * weight, dtype=np.float64)) / total
    return float((math.log(pooled / (1 - pooled)) / _ALPHA) ** 2)


def _sigmoid(x: NDArray[np.floating]) -> NDArray[np.floating]:
    return np.asarray(1.0 / (1.0 + np.exp(np.float32(-_ALPHA) * x)))


def _responses(image: Image) -> tuple[Plane32, Plane32, bool]:
    """Haar responses of Y (orientation, scale, H, W), 2×2-averaged |I|, |Q|, and colour."""
    def build() -> tuple[Plane32, Plane32, bool]:
        half = boxed_rgb255(image, 2)  # the authors' 2×2 mean and (1:2:end) sub-sampling
        colour = half.shape[2] == 3
        y = half @ YIQ[0] if colour else half[:, :, 0]
        haar = _haar_responses(y)
        chroma = np.zeros((2, *y.shape))
        if colour:
            for k in (1, 2):
                chroma[k - 1] = np.abs(_conv2_same(half @ YIQ[k], _HALF, _HALF))
        # exact float64 filtering, then the similarities and the pooling in float32
        haar32, chroma32 = haar.astype(np.float32), chroma.astype(np.float32)
        for array in (haar32, chroma32):
            array.flags.writeable = False
        return haar32, chroma32, colour

    return image.memoised("haarpsi", build)


def _haar_responses(plane: Plane) -> Plane:
    """Haar responses (orientation, scale, H, W) at scales 1–3, as ``conv2 'same'``.

    The Haar filter of scale s is ``2^−s·(−1…−1, 1…1)ᵀ ⊗ (1…1)`` (length 2^s each way,
    and its transpose), so each response is the difference of two box sums; they are read
    from one zero-padded summed-area table instead of 2^s shifted adds per axis.
    """
    rows, cols = plane.shape
    pad = 8  # the widest filter (scale 3) reaches 4 pixels either way
    table = np.zeros((rows + 2 * pad + 1, cols + 2 * pad + 1))
    table[1:, 1:] = np.pad(plane, pad).cumsum(axis=0).cumsum(axis=1)

    def box(r0: int, r1: int, c0: int, c1: int) -> Plane:
        # Σ x[i + r, j + c] over r0 ≤ r ≤ r1, c0 ≤ c ≤ c1 (zero outside the plane)
        top, bottom = pad + r0, pad + r1 + 1
        left, right = pad + c0, pad + c1 + 1
        return np.asarray(table[bottom:bottom + rows, right:right + cols]
                          - table[top:top + rows, right:right + cols]
                          - table[bottom:bottom + rows, left:left + cols]
                          + table[top:top + rows, left:left + cols])

    haar = np.empty((2, 3, rows, cols))
    for scale in range(1, 4):
        half = 2 ** (scale - 1)  # 'same' keeps offsets −half+1 … half of a 2·half filter
        weight = 2.0 ** -scale
        # with conv2's flipped kernel the +1 half covers offsets −half+1 … 0
        haar[0, scale - 1] = weight * (box(1 - half, 0, 1 - half, half)
                                       - box(1, half, 1 - half, half))
        haar[1, scale - 1] = weight * (box(1 - half, half, 1 - half, 0)
                                       - box(1 - half, half, 1, half))
    return haar


def _conv2_same(plane: Plane, column: Plane, row: Plane) -> Plane:
    """MATLAB ``conv2(plane, column ⊗ row, 'same')`` for a separable kernel (NumPy only).

    Zero padding, the flipped kernel: ``same[i] = Σ_j k[j]·x[i + ⌊n/2⌋ − j]`` along each
    axis (so a 2-tap box averages each pixel with the next one).
    """
    return _same_1d(_same_1d(plane, column, axis=0), row, axis=1)


def _same_1d(plane: Plane, kernel: Plane, *, axis: int) -> Plane:
    taps = kernel.size
    length = plane.shape[axis]
    pad = [(0, 0), (0, 0)]
    pad[axis] = (taps, taps)
    padded = np.pad(plane, pad)
    out = np.zeros_like(plane)
    for j, weight in enumerate(kernel):
        start = taps + taps // 2 - j
        window = padded[start:start + length] if axis == 0 else \
            padded[:, start:start + length]
        out += weight * window
    return out
