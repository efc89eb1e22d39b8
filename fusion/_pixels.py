"""Conversions shared by the distortion generators: unit floats ↔ uint8, codec round trips.

Both :mod:`fusion.distortions` (the classic types) and :mod:`fusion._kadid_ops` (KADID-10k's
types) work on RGB float64 images in [0, 1] and hand 8-bit images to Pillow.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["codec_operation", "to_uint8", "unit_of"]

Array = NDArray[np.float64]


def to_uint8(unit: Array) -> NDArray[np.uint8]:
    """Clip to [0, 1] and round to 8 bits (half up)."""
    return np.asarray(np.floor(np.clip(unit, 0.0, 1.0) * 255.0 + 0.5), dtype=np.uint8)


def unit_of(image: Any) -> Array:
    """An RGB Pillow image (or uint8 array) as float64 in [0, 1]."""
    return np.asarray(image, dtype=np.float64) / 255.0


def codec_operation(fmt: str, **options: object
                    ) -> Callable[[Array, float, np.random.Generator], Array]:
    """A distortion that encodes with Pillow's ``fmt`` at the level's setting and decodes.

    The setting is ``quality`` for JPEG and WebP, and the compression ratio
    (``quality_layers=[value]``) for JPEG 2000; ``options`` are passed to the encoder.
    """
    def apply(unit: Array, value: float, rng: np.random.Generator) -> Array:
        from PIL import Image

        key = {"JPEG": "quality", "WEBP": "quality", "JPEG2000": "quality_layers"}[fmt]
        setting: object = [value] if fmt == "JPEG2000" else int(value)
        buffer = io.BytesIO()
        Image.fromarray(to_uint8(unit)).save(buffer, format=fmt, **{key: setting}, **options)
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            return unit_of(decoded.convert("RGB"))

    return apply
