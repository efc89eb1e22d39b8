"""What a prediction returns: :class:`Prediction`, and its optional :class:`QualityMap`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fusion.io import ImageInput, load_image

__all__ = ["Prediction", "QualityMap"]


@dataclass(frozen=True)
class QualityMap:
    """Per-patch quality, as an image-sized map and as patches.

    ``backbone`` names the source of the patch qualities: a backbone's name, or
    ``"handcrafted"`` for a model without backbone (its own score of each patch pair).
    """

    values: NDArray[np.float32]      # (H, W), mean quality of the patches covering a pixel
    positions: NDArray[np.intp]      # (n, 2) top-left corners
    patch_qualities: NDArray[np.float32]  # (n,) on 0–100
    patch_size: int
    backbone: str

    @classmethod
    def from_patches(cls, positions: NDArray[np.intp], qualities: NDArray[np.floating],
                     size: int, shape: tuple[int, int], source: str) -> QualityMap:
        """Paint square patches' qualities (0–100) into an ``shape``-sized map.

        A pixel gets the mean quality of the patches covering it, NaN where none does.
        """
        height, width = shape
        total = np.zeros((max(height, size), max(width, size)))
        count = np.zeros_like(total)
        for (y, x), q in zip(positions, qualities, strict=True):
            total[y : y + size, x : x + size] += float(q)
            count[y : y + size, x : x + size] += 1
        values = np.where(count > 0, total / np.maximum(count, 1), np.nan)[:height, :width]
        return cls(values.astype(np.float32), np.asarray(positions).copy(),
                   np.asarray(qualities, dtype=np.float32), size, source)

    def overlay(self, image: ImageInput, *, alpha: float = 0.45) -> Any:
        """The image with the map blended over it (red = low quality, green = high)."""
        from PIL import Image as PILImage

        rgb = load_image(image).rgb
        values = np.nan_to_num(self.values, nan=50.0)
        if values.shape != rgb.shape[:2]:  # a map made at a reduced working resolution
            values = np.asarray(PILImage.fromarray(values.astype(np.float32), mode="F")
                                .resize((rgb.shape[1], rgb.shape[0]),
                                        PILImage.Resampling.NEAREST))
        q = values[..., None] / 100.0
        heat = np.concatenate([1.0 - q, q, np.zeros_like(q)], axis=2)
        blended = (1 - alpha) * rgb + alpha * heat
        return PILImage.fromarray(np.round(np.clip(blended, 0, 1) * 255).astype(np.uint8))


@dataclass(frozen=True)
class Prediction:
    """The result of :meth:`FusionModel.predict`.

    Attributes
    ----------
    score : float
        Quality on 0–100, higher = better.
    interval : tuple of float
        (low, high) conformal interval holding the true score with probability
        ``coverage`` (on data like the training data).
    coverage : float
    mode : str
        ``"nr"`` or ``"fr"``.
    model : str
        The model's identifier (bundle name and short hash).
    components : dict of str to float
        Each backbone's own pooled quality (``<name>_quality``, clipped to 0–100) and
        each handcrafted value.
    quality_map : QualityMap or None
        Present when asked for.
    """

    score: float
    interval: tuple[float, float]
    coverage: float
    mode: str
    model: str
    components: dict[str, float] = field(default_factory=dict)
    quality_map: QualityMap | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view (without the quality map)."""
        return {"score": self.score, "interval": list(self.interval),
                "coverage": self.coverage, "mode": self.mode, "model": self.model,
                "components": self.components}
