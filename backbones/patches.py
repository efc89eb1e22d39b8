"""Patch sampling and pooling: from an image to patches, and from patch outputs to one vector.

* Inference: a deterministic grid of ``size``×``size`` patches at native resolution,
  evenly spaced so that they cover the image (overlapping where needed), with at most
  ``max_patches`` of them, so that the cost is bounded for large images. Images smaller
  than a patch are mirror-padded up to it.
* Training: seeded uniformly random positions.
* Pooling: the fixed-length image-level vector the stacker sees:
  [Σ w·q / Σ w, mean q, std q, mean of each feature] (WaDIQaM's weighted average
  pooling, Bosse et al., IEEE TIP 27(1), 2018, plus feature means), where q and w are the
  per-patch quality and pooling weight. Per-patch qualities and positions are kept for
  quality maps.

NumPy only: used by both the Keras training code and the TensorFlow-free runtime.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["PATCH_SIZE", "PatchGrid", "grid_positions", "pool_outputs", "random_positions",
           "take_patches", "weighted_quality"]

PATCH_SIZE = 224
Positions = NDArray[np.intp]


@dataclass(frozen=True)
class PatchGrid:
    """The patch positions used for one image (for quality maps)."""

    positions: Positions  # (n, 2) top-left (y, x) in the padded image
    size: int
    image_shape: tuple[int, int]


def grid_positions(height: int, width: int, *, size: int = PATCH_SIZE,
                   max_patches: int = 9) -> Positions:
    """Top-left corners of an evenly spaced grid covering an image (after padding).

    ``ceil(side / size)`` patches per axis, reduced in proportion when their product
    exceeds ``max_patches``.
    """
    if max_patches < 1:
        raise ValueError(f"max_patches must be at least 1, got {max_patches}")
    height, width = max(height, size), max(width, size)
    rows, cols = math.ceil(height / size), math.ceil(width / size)
    while rows * cols > max_patches:
        if rows >= cols and rows > 1:
            rows -= 1
        else:
            cols -= 1
    ys = np.linspace(0, height - size, rows).round().astype(np.intp)
    xs = np.linspace(0, width - size, cols).round().astype(np.intp)
    return np.array([(y, x) for y in ys for x in xs], dtype=np.intp)


def random_positions(height: int, width: int, count: int, rng: np.random.Generator, *,
                     size: int = PATCH_SIZE) -> Positions:
    """``count`` uniformly random top-left corners (seeded through ``rng``)."""
    height, width = max(height, size), max(width, size)
    ys = rng.integers(0, height - size + 1, count)
    xs = rng.integers(0, width - size + 1, count)
    return np.stack([ys, xs], axis=1).astype(np.intp)


def take_patches(rgb: NDArray[np.float32], positions: Positions, *,
                 size: int = PATCH_SIZE) -> NDArray[np.float32]:
    """Cut patches of ``size`` at ``positions`` from an (H, W, C) image → (n, size, size, C).

    An image smaller than ``size`` is mirror-padded (symmetric) at its bottom and right.
    """
    height, width = rgb.shape[:2]
    if height < size or width < size:
        rgb = np.pad(rgb, ((0, max(0, size - height)), (0, max(0, size - width)), (0, 0)),
                     mode="symmetric")
    out = np.empty((len(positions), size, size, rgb.shape[2]), dtype=np.float32)
    for i, (y, x) in enumerate(positions):
        out[i] = rgb[y : y + size, x : x + size]
    return out


def weighted_quality(quality: NDArray[np.floating], weight: NDArray[np.floating]) -> float:
    """WaDIQaM's image quality Σ w·q / Σ w of per-patch qualities q and weights w.

    All-zero weights fall back to the plain mean of q. The Keras twin used in training is
    :func:`backbones.models.weighted_average`.

    Examples
    --------
    >>> weighted_quality(np.array([0.2, 0.8]), np.array([1.0, 3.0]))
    0.65
    """
    q = np.asarray(quality, dtype=np.float64).ravel()
    w = np.asarray(weight, dtype=np.float64).ravel()
    total = float(w.sum())
    return float(np.dot(w, q) / total) if total > 0 else float(q.mean())


def pool_outputs(features: NDArray[np.floating], quality: NDArray[np.floating],
                 weight: NDArray[np.floating]) -> NDArray[np.float64]:
    """Image-level vector from per-patch outputs: [Σwq/Σw, mean q, std q, mean features]."""
    q = np.asarray(quality, dtype=np.float64).ravel()
    head = np.array([weighted_quality(q, weight), q.mean(), q.std()])
    return np.concatenate([head, np.asarray(features, dtype=np.float64).mean(axis=0)])
