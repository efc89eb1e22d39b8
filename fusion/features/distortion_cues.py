"""No-reference cues that tell distortion families apart, for :mod:`fusion.diagnostics`.

The no-reference block (:mod:`fusion.features.no_reference`) says how natural an image
looks; these cheap statistics add what separates the colour and spatial families, whose
traces the natural-scene statistics barely see. Computed on the colour planes averaged
2×2 (0–255) and, for exact repeats and levels, on the source pixels and the luma the
other extractors share; a 512×384 image costs about 3 ms. With S the HSV saturation, C = (I, Q) the
YIQ chroma and Y the luma:

* ``repeat_fraction``: the share of pixels equal to their right neighbour in every channel
  (source pixels, every other row) — pixelation and flat colour blocks repeat pixels
  exactly;
* ``empty_levels``: the share of empty bins of the 256-bin luma histogram (every other
  pixel of every other row) between its 1st and 99th percentiles — quantisation leaves
  gaps;
* ``luma_entropy``: the entropy (bits) of the 64-bin luma histogram;
* ``saturation_mean``, ``saturation_spread``: mean and standard deviation of S;
* ``chroma_edge_ratio``: mean |∇C| over mean |∇Y| (∇: Prewitt) — chroma blurred away from
  the luma (colour diffusion) or added by noise and shifts;
* ``chroma_edge_alignment``: correlation of |∇C| with |∇Y| — shifted colour planes leave
  chroma edges where the luma has none;
* ``chroma_noise``: Immerkær's noise estimate on I and Q (mean) — colour noise;
* ``clipped_colour``: the share of pixels with a channel at 0 or 255 (±2);
* ``laplacian_kurtosis``: log kurtosis of the luma Laplacian — over-sharpening and
  impulses make it heavy-tailed.

None of these has a quality direction.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from fusion.features._filters import YIQ, prewitt_magnitude
from fusion.features.no_reference import NoReferenceExtractor
from fusion.io import Image

__all__ = ["DISTORTION_CUE_NAMES", "DistortionCuesExtractor", "distortion_cues"]

DISTORTION_CUE_NAMES = (
    "repeat_fraction", "empty_levels", "luma_entropy", "saturation_mean",
    "saturation_spread", "chroma_edge_ratio", "chroma_edge_alignment", "chroma_noise",
    "clipped_colour", "laplacian_kurtosis",
)

Plane = NDArray[np.float32]


def _immerkaer(plane: Plane) -> float:
    """Immerkær's (1996) noise standard deviation of one plane."""
    h, w = plane.shape
    if h < 3 or w < 3:
        return 0.0
    response = (plane[:-2, :-2] - 2 * plane[:-2, 1:-1] + plane[:-2, 2:]
                - 2 * plane[1:-1, :-2] + 4 * plane[1:-1, 1:-1] - 2 * plane[1:-1, 2:]
                + plane[2:, :-2] - 2 * plane[2:, 1:-1] + plane[2:, 2:])
    return float(math.sqrt(math.pi / 2) * np.abs(response).sum(dtype=np.float64)
                 / (6 * (w - 2) * (h - 2)))


def _correlation(a: Plane, b: Plane) -> float:
    a = (a - a.mean()).ravel().astype(np.float64)
    b = (b - b.mean()).ravel().astype(np.float64)
    # sums of products, not BLAS dot products (see distortion_cues)
    norm = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum()) / norm if norm > 1e-9 else 0.0


def _half_rgb255(image: Image) -> NDArray[np.float32]:
    """The RGB planes on 0–255, 2×2 block means (odd edges dropped), float32."""
    rgb = image.rgb
    if rgb.ndim == 2:
        rgb = rgb[:, :, None]
    h, w = rgb.shape[0] // 2 * 2, rgb.shape[1] // 2 * 2
    rows = rgb[0:h:2, :w] + rgb[1:h:2, :w]  # pairs of whole rows first: contiguous, fast
    half: NDArray[np.float32] = np.float32(255.0 / 4.0) * (rows[:, 0::2] + rows[:, 1::2])
    if half.shape[2] == 1:
        half = np.repeat(half, 3, axis=2)
    return half


def distortion_cues(image: Image) -> dict[str, float]:
    """The cues of one loaded image (names: :data:`DISTORTION_CUE_NAMES`)."""
    rgb = _half_rgb255(image)
    red, green, blue = (np.ascontiguousarray(rgb[:, :, c]) for c in range(3))
    # Elementwise, not a matrix product: BLAS would start its threads, whose spinning
    # slows the backbone's LiteRT threads that run next (measured: +35 ms an image).
    luma, chroma_i, chroma_q = (np.float32(w[0]) * red + np.float32(w[1]) * green
                                + np.float32(w[2]) * blue for w in YIQ)
    top = np.maximum(np.maximum(red, green), blue)
    bottom = np.minimum(np.minimum(red, green), blue)
    saturation = (top - bottom) / np.maximum(top, np.float32(1.0))
    luma_edges = prewitt_magnitude(np.ascontiguousarray(luma))
    chroma_edges = (prewitt_magnitude(np.ascontiguousarray(chroma_i))
                    + prewitt_magnitude(np.ascontiguousarray(chroma_q)))

    source = image.source if image.source.ndim == 3 else image.source[:, :, None]
    source = source[::2]  # every other row: enough for a share
    repeats = source[:, 1:, 0] == source[:, :-1, 0]
    for channel in range(1, source.shape[2]):  # channel by channel: fast, unlike all(axis=2)
        repeats &= source[:, 1:, channel] == source[:, :-1, channel]
    full_luma = image.luma255[::2, ::2]  # subsampled, not averaged: averaging fills gaps
    counts = np.bincount(np.clip(full_luma, 0, 255).astype(np.intp).ravel(), minlength=256)
    cumulative = np.cumsum(counts) / full_luma.size
    low, high = int(np.searchsorted(cumulative, 0.01)), int(np.searchsorted(cumulative, 0.99))
    span = counts[low : high + 1]
    coarse = counts[:256].reshape(64, 4).sum(axis=1) / full_luma.size
    coarse = coarse[coarse > 0]
    clipped = (top >= 253.0) | (bottom <= 2.0)
    laplacian = (luma[:-2, 1:-1] + luma[2:, 1:-1] + luma[1:-1, :-2] + luma[1:-1, 2:]
                 - np.float32(4.0) * luma[1:-1, 1:-1])
    centred = laplacian - np.float32(laplacian.mean(dtype=np.float64))
    squared = centred * centred
    power = float(squared.mean(dtype=np.float64))
    values = (
        float(repeats.mean()),
        float(np.mean(span == 0)) if span.size else 0.0,
        float(-(coarse * np.log2(coarse)).sum()),
        float(saturation.mean(dtype=np.float64)),
        float(saturation.std(dtype=np.float64)),
        float(chroma_edges.mean(dtype=np.float64)
              / (luma_edges.mean(dtype=np.float64) + 1.0)),
        _correlation(chroma_edges, luma_edges),
        0.5 * (_immerkaer(chroma_i) + _immerkaer(chroma_q)),
        float(clipped.mean()),
        math.log(float((squared * squared).mean(dtype=np.float64)) / (power * power + 1e-6)
                 + 1.0),
    )
    return dict(zip(DISTORTION_CUE_NAMES, values, strict=True))


class DistortionCuesExtractor(NoReferenceExtractor):
    """No-reference cues of the colour and spatial families (module docstring)."""

    name = "distortion_cues"
    version = 1
    feature_names = DISTORTION_CUE_NAMES
    higher_is_better = (None,) * len(DISTORTION_CUE_NAMES)
    min_side = 16

    def _image(self, image: Image) -> dict[str, float]:
        """The distortion cues of a loaded image."""
        return distortion_cues(image)
