"""Fast float32 filtering shared by the handcrafted features.

The metrics here need only three kinds of filtering, all reproduced from the authors'
MATLAB code:

* separable Gaussian filtering in ``'valid'`` mode (``filter2(window, img, 'valid')``),
  done by :func:`correlate_valid` as tiled Toeplitz matrix products, which lets BLAS do
  the multiply-adds (about 15× faster than ``scipy.ndimage`` on 512×384 planes here);
* box down-sampling, ``imfilter(img, ones(f)/f^2, 'symmetric', 'same')`` followed by
  ``img(1:f:end, 1:f:end)`` (SSIM, MS-SSIM), or the same with ``conv2`` zero padding (GMSD),
  done by :func:`box_downsample` with block means;
* Prewitt gradients with ``conv2(..., 'same')`` zero padding (GMSD), in
  :func:`prewitt_magnitude`.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from fusion._scratch import scratch
from fusion.io import Image

_TILE = 16  # outputs per Toeplitz block; 16 was fastest on 512×384 planes (2 cores)

Plane = NDArray[np.float32]
@lru_cache(maxsize=32)
def gaussian_window(size: int, sigma: float) -> NDArray[np.float64]:
    """The 1-D factor of MATLAB's ``fspecial('gaussian', size, sigma)``.

    ``fspecial`` normalises the 2-D kernel to sum 1; the outer product of this normalised
    1-D kernel with itself is exactly that 2-D kernel.
    """
    radius = (size - 1) / 2.0
    x = np.arange(size, dtype=np.float64) - radius
    kernel = np.exp(-(x * x) / (2.0 * sigma * sigma))
    kernel /= kernel.sum()
    kernel.flags.writeable = False
    return kernel


@lru_cache(maxsize=32)
def _toeplitz_blocks(
    kernel_bytes: bytes, tile: int, stride: int
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """The banded block B with B[j·stride + k, j] = w_k, and its contiguous transpose."""
    kernel = np.frombuffer(kernel_bytes, dtype=np.float64)
    taps = kernel.size
    block = np.zeros(((tile - 1) * stride + taps, tile), dtype=np.float32)
    for j in range(tile):
        block[j * stride : j * stride + taps, j] = kernel
    block_t = np.ascontiguousarray(block.T)
    block.flags.writeable = False
    block_t.flags.writeable = False
    return block, block_t


def correlate_valid(
    stack: NDArray[np.float32],
    kernel: NDArray[np.float64],
    *,
    stride: int = 1,
    reuse: str | None = None,
) -> Plane:
    """Correlate each plane of ``stack`` with ``kernel`` ⊗ ``kernel`` in ``'valid'`` mode.

    Parameters
    ----------
    stack : ndarray of float32, shape (P, H, W)
        Planes to filter together.
    kernel : ndarray, shape (n,)
        1-D kernel applied along both axes.
    stride : int, default 1
        Keep every ``stride``-th output along each axis, starting with the first (MATLAB's
        ``filter2(w, x, 'valid')`` followed by ``(1:stride:end, 1:stride:end)``); only the
        kept outputs are computed.
    reuse : str, optional
        Write the result into the :func:`~fusion._scratch.scratch` buffer of this tag
        instead of a new array (the caller then owns it only until its next call with
        that tag).

    Returns
    -------
    ndarray of float32, shape (P, ceil((H - n + 1) / stride), ceil((W - n + 1) / stride))
    """
    planes, height, width = stack.shape
    taps = kernel.size
    if height < taps or width < taps:
        raise ValueError(f"planes of {height}×{width} are smaller than the {taps}-tap window")
    out_h = -(-(height - taps + 1) // stride)
    out_w = -(-(width - taps + 1) // stride)
    block, block_t = _toeplitz_blocks(
        np.ascontiguousarray(kernel, np.float64).tobytes(), _TILE, stride
    )

    # Along rows: out[:, i] = Σ_k w_k x[:, i·stride + k], one matrix product per tile.
    rows = scratch("correlate_rows", (planes, out_h, width))
    for start in range(0, out_h, _TILE):
        stop = min(start + _TILE, out_h)
        span = (stop - start - 1) * stride + taps
        first = start * stride
        np.matmul(block_t[: stop - start, :span], stack[:, first : first + span, :],
                  out=rows[:, start:stop, :])

    # Along columns, on the (P·out_h, W) matrix whose rows are contiguous.
    flat = rows.reshape(planes * out_h, width)
    out_shape = (planes, out_h, out_w)
    out = scratch(reuse, out_shape) if reuse else np.empty(out_shape, dtype=np.float32)
    out_flat = out.reshape(planes * out_h, out_w)
    for start in range(0, out_w, _TILE):
        stop = min(start + _TILE, out_w)
        span = (stop - start - 1) * stride + taps
        first = start * stride
        np.matmul(flat[:, first : first + span], block[:span, : stop - start],
                  out=out_flat[:, start:stop])
    return out


def box_downsample(
    plane: NDArray[np.floating], factor: int, padding: Literal["symmetric", "zero"]
) -> Plane:
    """Average ``factor``×``factor`` neighbourhoods and keep every ``factor``-th pixel.

    Reproduces ``imfilter(img, ones(f)/f^2, 'symmetric', 'same')`` then
    ``img(1:f:end, 1:f:end)`` (``padding="symmetric"``), and ``conv2(img, ones(2)/4,
    'same')`` then ``img(1:2:end, 1:2:end)`` (``padding="zero"``). MATLAB centres an
    f-tap box at tap ``floor((f + 1) / 2)``, so output pixel k averages input rows
    ``k·f − c + 1 … k·f − c + f`` (0-based, ``c = floor((f + 1) / 2)``).
    """
    if factor == 1:
        return np.asarray(plane, dtype=np.float32)
    if factor == 2 and plane.shape[0] % 2 == 0 and plane.shape[1] % 2 == 0:
        # The common case: the 2×2 box is anchored at its first tap, no padding is used.
        even = np.asarray(plane, dtype=np.float32)
        total = even[0::2, 0::2] + even[1::2, 0::2]
        total += even[0::2, 1::2]
        total += even[1::2, 1::2]
        total *= np.float32(0.25)
        return total
    before = (factor + 1) // 2 - 1
    out_h, out_w = (math.ceil(s / factor) for s in plane.shape)
    padded_h, padded_w = out_h * factor, out_w * factor
    after_h = max(0, padded_h - plane.shape[0] - before)
    after_w = max(0, padded_w - plane.shape[1] - before)
    mode: Literal["symmetric", "constant"] = "symmetric" if padding == "symmetric" else "constant"
    padded = np.pad(plane, ((before, after_h), (before, after_w)), mode=mode)
    padded = padded[:padded_h, :padded_w].astype(np.float32, copy=False)
    blocks = padded.reshape(out_h, factor, out_w, factor)
    result: Plane = blocks.sum(axis=(1, 3), dtype=np.float32) / np.float32(factor * factor)
    return result


def prewitt_magnitude(plane: Plane) -> Plane:
    """Gradient magnitude with Xue et al.'s Prewitt kernels and ``conv2 'same'`` padding.

    ``dx = [1 0 -1; 1 0 -1; 1 0 -1] / 3`` and ``dy = dx'``; zero padding outside the image.
    The sign convention of ``conv2`` does not matter for the magnitude.
    """
    padded = np.pad(plane, 1, mode="constant")
    col_sum = padded[:-2, :] + padded[1:-1, :] + padded[2:, :]  # 3-row sums, (H, W + 2)
    row_sum = padded[:, :-2] + padded[:, 1:-1] + padded[:, 2:]  # 3-col sums, (H + 2, W)
    gx = (col_sum[:, 2:] - col_sum[:, :-2]) / np.float32(3.0)
    gy = (row_sum[2:, :] - row_sum[:-2, :]) / np.float32(3.0)
    magnitude: Plane = np.sqrt(gx * gx + gy * gy)
    return magnitude


def downsampled_luma(image: Image, factor: int) -> Plane:
    """``box_downsample(image.luma, factor, "symmetric")``, computed once per image."""
    if factor == 1:
        return image.luma
    return image.memoised(
        ("box", factor), lambda: _frozen(box_downsample(image.luma, factor, "symmetric"))
    )


def luma_pyramid(image: Image, level: int) -> Plane:
    """Level ``level`` of the MS-SSIM dyadic pyramid of the luma plane (level 0 = full).

    Level 1 is shared with SSIM's automatic 2× down-sampling (the same filter).
    """
    if level == 0:
        return image.luma
    if level == 1:
        return downsampled_luma(image, 2)
    return image.memoised(
        ("pyramid", level),
        lambda: _frozen(box_downsample(luma_pyramid(image, level - 1), 2, "symmetric")),
    )


#: RGB → YIQ (NTSC), as FSIM's and HaarPSI's authors write it: rows Y, I, Q.
YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
YIQ.flags.writeable = False


def similarity(a: NDArray[np.floating], b: NDArray[np.floating], constant: float
               ) -> NDArray[np.floating]:
    """The SSIM-style similarity (2ab + c) / (a² + b² + c), elementwise, in the inputs' type."""
    return np.asarray((2 * a * b + constant) / (a * a + b * b + constant))


def boxed_rgb255(image: Image, factor: int) -> NDArray[np.float64]:
    """The colour planes on the 0–255 scale, box-averaged ``factor``×, float64.

    Averaged as ``conv2`` with zero padding, then every ``factor``-th pixel kept;
    computed once per image. Integer sources are read as their integer values (the
    authors' MATLAB code reads the uint8 image); a grey image has one plane. Averaging
    commutes with the linear colour transform (YIQ) that FSIM and HaarPSI apply
    afterwards, so it is done first.
    """
    def build() -> NDArray[np.float64]:
        source = image.source if image.source.ndim == 3 else image.source[:, :, None]
        values: NDArray[Any]
        if image.integer_levels is None:  # floats: white level → 255
            planes = (image.rgb if image.source.ndim == 3 else image.luma[:, :, None])
            values = np.asarray(planes, dtype=np.float64) * 255.0
        elif image.integer_levels == 255:  # 8-bit: the box sums are exact in float32
            values = source
        else:
            values = np.asarray(source, dtype=np.float64) * (255.0 / image.integer_levels)
        boxed = np.stack([box_downsample(values[:, :, c], factor, "zero").astype(np.float64)
                          for c in range(values.shape[2])], axis=2)
        boxed.flags.writeable = False
        return boxed

    return image.memoised(("rgb255_box", factor), build)


def _frozen(plane: Plane) -> Plane:
    plane.flags.writeable = False
    return plane
