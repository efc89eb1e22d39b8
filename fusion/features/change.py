"""How a distorted image differs from its reference: cheap cues that name the distortion.

The classic full-reference metrics say *how much* a pair differs; these say *how*, for
:mod:`fusion.diagnostics` (which family of distortion dominates). They are computed on
the colour planes box-averaged 2× (shared with FSIM through the image's memo) and
averaged 2× again, except the Laplacian (2×) and the 8×8 grid (every fourth line of the
full-resolution luma); a 512×384 pair costs about 2.5 ms. With Y, I,
Q the YIQ planes on 0–255 of the reference (r) and distorted image (d), e = Y_d − Y_r:

* ``luma_shift``: (mean Y_d − mean Y_r) / 255 — brightening, darkening;
* ``contrast_change``: log((σ(Y_d) + 1) / (σ(Y_r) + 1)) — contrast change;
* ``detail_change``: log((mean |∇²Y_d| + ½) / (mean |∇²Y_r| + ½)) with the 4-neighbour
  Laplacian — negative for blur, positive for noise and sharpening;
* ``chroma_change``: log((σ(I_d) + σ(Q_d) + 1) / (σ(I_r) + σ(Q_r) + 1)) — saturation;
* ``chroma_shift``: (|mean I_d − mean I_r| + |mean Q_d − mean Q_r|) / 255 — colour cast;
* ``chroma_error_share``: E[ΔI² + ΔQ²] / (E[e²] + E[ΔI² + ΔQ²] + 1) — how much of the
  change is in colour rather than luma;
* ``error_smoothness``: the lag-1 autocorrelation of e (mean over both directions) —
  near 1 for tone changes (exposure, contrast), near 0 for white noise and for the
  fine-detail error of blur at this resolution;
* ``error_kurtosis``: log(E[e⁴] / (E[e²]² + 1)) of centred e — sparse errors (impulses,
  patches) are heavy-tailed;
* ``error_edge_correlation``: correlation of |e| with the reference's gradient magnitude —
  errors at edges (blur, spatial shifts, ringing) against errors everywhere (noise);
* ``error_luma_correlation``: correlation of e with Y_r — exposure and contrast changes
  scale with the reference's own luma;
* ``error_blockiness``: log of the mean |Δe| across the 8×8 grid's boundaries over that
  inside blocks (full resolution) — JPEG-like block artefacts;
* ``histogram_change``: half the L1 distance of the 32-bin luma histograms, 0–1 — spatial
  rearrangements keep the histogram, tone changes move it.

None of these has a quality direction: they describe, they do not score.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from fusion.features._filters import YIQ, boxed_rgb255, prewitt_magnitude
from fusion.features.full_reference import FullReferenceExtractor
from fusion.io import Image

__all__ = ["CHANGE_FEATURE_NAMES", "ChangeExtractor", "change_features"]

CHANGE_FEATURE_NAMES = (
    "luma_shift", "contrast_change", "detail_change", "chroma_change", "chroma_shift",
    "chroma_error_share", "error_smoothness", "error_kurtosis", "error_edge_correlation",
    "error_luma_correlation", "error_blockiness", "histogram_change",
)

Planes = NDArray[np.float32]


def _yiq(image: Image) -> Planes:
    """The YIQ planes (3, H/2, W/2) on 0–255, float32; grey images get zero chroma."""
    def build() -> Planes:
        rgb = boxed_rgb255(image, 2)
        planes = np.zeros((3, *rgb.shape[:2]), dtype=np.float32)
        if rgb.shape[2] == 1:
            planes[0] = rgb[:, :, 0]
        else:
            red, green, blue = (rgb[:, :, c].astype(np.float32) for c in range(3))
            for row in range(3):
                weights = YIQ[row].astype(np.float32)
                planes[row] = weights[0] * red + weights[1] * green + weights[2] * blue
        planes.flags.writeable = False
        return planes

    return image.memoised("change_yiq", build)


def _correlation(a: NDArray[np.floating], b: NDArray[np.floating]) -> float:
    """Pearson correlation, 0 where either side is constant."""
    a = (a - a.mean()).ravel()
    b = (b - b.mean()).ravel()
    # sums of products, not BLAS dot products: BLAS threads spin after a call and slow
    # the LiteRT threads of a backbone that runs next
    norm = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum()) / norm if norm > 1e-9 else 0.0


def _mean_abs_laplacian(y: Planes) -> float:
    return float(np.abs(y[:-2, 1:-1] + y[2:, 1:-1] + y[1:-1, :-2] + y[1:-1, 2:]
                        - 4.0 * y[1:-1, 1:-1]).mean())


def _error_blockiness(distorted: NDArray[np.float32], reference: NDArray[np.float32],
                     block: int = 8) -> float:
    """log(boundary / interior mean |Δe|) on the 8×8 grid, both axes, every 4th line.

    The lumas are on 0–1 (the planes the metrics share); 0.05/255 keeps flat interiors
    finite.
    """
    logs = []
    for axis in (1, 0):
        lines = (slice(None, None, 4), slice(None)) if axis == 1 else (slice(None),
                                                                       slice(None, None, 4))
        error = distorted[lines] - reference[lines]
        diff = np.abs(np.diff(error, axis=axis))
        means = diff.mean(axis=1 - axis, dtype=np.float64)
        at_boundary = (np.arange(means.size) % block) == block - 1
        if not at_boundary.any() or at_boundary.all():
            continue
        logs.append(math.log((means[at_boundary].mean() + 0.05 / 255)
                             / (means[~at_boundary].mean() + 0.05 / 255)))
    return float(np.mean(logs)) if logs else 0.0


def _chroma_spread(planes: Planes) -> float:
    """σ(I) + σ(Q)."""
    return float(planes[1].std(dtype=np.float64) + planes[2].std(dtype=np.float64))


def _halved(planes: Planes) -> Planes:
    """2×2 block means of (C, H, W) planes (odd edges dropped)."""
    h, w = planes.shape[1] // 2 * 2, planes.shape[2] // 2 * 2
    halved: Planes = np.float32(0.25) * (planes[:, 0:h:2, 0:w:2] + planes[:, 1:h:2, 0:w:2]
                                         + planes[:, 0:h:2, 1:w:2] + planes[:, 1:h:2, 1:w:2])
    return halved


def change_features(reference: Image, distorted: Image) -> dict[str, float]:
    """The cues of one loaded pair (names: :data:`CHANGE_FEATURE_NAMES`)."""
    ref2, dist2 = _yiq(reference), _yiq(distorted)
    ref, dist = _halved(ref2), _halved(dist2)  # 4× reduced: enough for global statistics
    y_r, y_d = ref[0], dist[0]
    error = (y_d - y_r).astype(np.float64)
    centred = error - error.mean()
    squared = centred * centred
    power = float(squared.mean())
    chroma_delta = dist[1:] - ref[1:]
    chroma_error = float((chroma_delta * chroma_delta).sum(axis=0).mean(dtype=np.float64))
    smoothness = [_correlation(centred[:, :-1], centred[:, 1:]),
                  _correlation(centred[:-1, :], centred[1:, :])]
    hist_r = np.bincount(np.clip(y_r, 0, 255).astype(np.intp).ravel() // 8, minlength=33)
    hist_d = np.bincount(np.clip(y_d, 0, 255).astype(np.intp).ravel() // 8, minlength=33)
    values = (
        (float(y_d.mean(dtype=np.float64)) - float(y_r.mean(dtype=np.float64))) / 255.0,
        math.log((float(y_d.std(dtype=np.float64)) + 1.0)
                 / (float(y_r.std(dtype=np.float64)) + 1.0)),
        math.log((_mean_abs_laplacian(dist2[0]) + 0.5) / (_mean_abs_laplacian(ref2[0]) + 0.5)),
        math.log((_chroma_spread(dist) + 1.0) / (_chroma_spread(ref) + 1.0)),
        float(np.abs(dist[1:].mean(axis=(1, 2), dtype=np.float64)
                     - ref[1:].mean(axis=(1, 2), dtype=np.float64)).sum()) / 255.0,
        chroma_error / (float((error * error).mean()) + chroma_error + 1.0),
        float(np.mean(smoothness)),
        math.log(float((squared * squared).mean()) / (power * power + 1.0) + 1e-3),
        _correlation(np.abs(error), prewitt_magnitude(y_r)),
        _correlation(error, y_r),
        _error_blockiness(distorted.luma, reference.luma),
        0.5 * float(np.abs(hist_d - hist_r).sum()) / y_r.size,
    )
    return dict(zip(CHANGE_FEATURE_NAMES, values, strict=True))


class ChangeExtractor(FullReferenceExtractor):
    """How the distorted image differs from its reference (module docstring)."""

    name = "change"
    version = 1
    feature_names = CHANGE_FEATURE_NAMES
    higher_is_better = (None,) * len(CHANGE_FEATURE_NAMES)
    min_side = 16

    def _pair(self, reference: Image, distorted: Image) -> dict[str, float]:
        """The change cues of a loaded pair."""
        return change_features(reference, distorted)
