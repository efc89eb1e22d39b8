"""What a prediction returns: :class:`Prediction`, and its optional :class:`QualityMap`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fusion.diagnostics import FAMILY_NAMES, Diagnostics
from fusion.io import ImageInput, load_image

__all__ = ["FAMILY_COLOURS", "LEGEND_HEIGHT", "Prediction", "QualityMap"]

#: Height in pixels of the family legend strip of :meth:`QualityMap.overlay`.
LEGEND_HEIGHT = 18
#: The colour of each distortion family's marks in :meth:`QualityMap.overlay`.
FAMILY_COLOURS: dict[str, tuple[int, int, int]] = {
    "blur": (31, 119, 180), "noise": (148, 103, 189), "compression": (255, 127, 14),
    "colour": (227, 119, 194), "exposure_contrast": (188, 189, 34),
    "spatial": (23, 190, 207), "none": (255, 255, 255),
}


@dataclass(frozen=True)
class QualityMap:
    """Per-patch quality, as an image-sized map and as patches.

    ``backbone`` names the source of the patch qualities: a backbone's name, or
    ``"handcrafted"`` for a model without backbone (its own score of each patch pair).
    ``patch_families`` names each patch's dominant distortion family when the model has
    diagnostics (:mod:`fusion.diagnostics`); :meth:`overlay` marks them, with a legend.
    """

    values: NDArray[np.float32]      # (H, W), mean quality of the patches covering a pixel
    positions: NDArray[np.intp]      # (n, 2) top-left corners
    patch_qualities: NDArray[np.float32]  # (n,) on 0–100
    patch_size: int
    backbone: str
    patch_families: tuple[str, ...] | None = None

    @classmethod
    def from_patches(cls, positions: NDArray[np.intp], qualities: NDArray[np.floating],
                     size: int, shape: tuple[int, int], source: str, *,
                     families: tuple[str, ...] | None = None) -> QualityMap:
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
        if families is not None and len(families) != len(positions):
            raise ValueError(f"{len(families)} patch families for {len(positions)} patches")
        return cls(values.astype(np.float32), np.asarray(positions).copy(),
                   np.asarray(qualities, dtype=np.float32), size, source, families)

    def overlay(self, image: ImageInput, *, alpha: float = 0.45) -> Any:
        """The image with the map blended over it (red = low quality, green = high).

        With :attr:`patch_families`, each patch's centre carries a square in its
        family's colour, and a legend strip along the bottom edge names the families
        shown. The overlay has the image's size.
        """
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
        picture = PILImage.fromarray(np.round(np.clip(blended, 0, 1) * 255).astype(np.uint8))
        if self.patch_families is None:
            return picture
        return self._with_family_legend(picture, values.shape)

    def _with_family_legend(self, picture: Any, map_shape: tuple[int, ...]) -> Any:
        """Family squares at the patch centres, and a legend strip along the bottom edge.

        The strip is drawn inside the image (white, 18 pixels), so the overlay keeps the
        image's size.
        """
        from PIL import ImageDraw

        assert self.patch_families is not None
        scale_y, scale_x = picture.height / map_shape[0], picture.width / map_shape[1]
        draw = ImageDraw.Draw(picture)
        half = max(3, round(min(picture.size) / 40))
        for (y, x), family in zip(self.positions, self.patch_families, strict=True):
            cy = round((y + self.patch_size / 2) * scale_y)
            cx = round((x + self.patch_size / 2) * scale_x)
            draw.rectangle((cx - half, cy - half, cx + half, cy + half),
                           fill=FAMILY_COLOURS[family], outline=(255, 255, 255))
        top = picture.height - LEGEND_HEIGHT
        draw.rectangle((0, top, picture.width, picture.height), fill=(255, 255, 255))
        left = 4
        for family in (f for f in FAMILY_NAMES if f in self.patch_families):
            draw.rectangle((left, top + 4, left + 9, top + 13), fill=FAMILY_COLOURS[family],
                           outline=(0, 0, 0))
            draw.text((left + 13, top + 3), family, fill=(0, 0, 0))
            left += 13 + round(draw.textlength(family)) + 10
        return picture


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
    diagnostics : Diagnostics or None
        Which distortion family dominates, with a calibrated probability per family
        (:mod:`fusion.diagnostics`); None for a model without diagnostics.
    """

    score: float
    interval: tuple[float, float]
    coverage: float
    mode: str
    model: str
    components: dict[str, float] = field(default_factory=dict)
    quality_map: QualityMap | None = None
    diagnostics: Diagnostics | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view (without the quality map); ``diagnostics`` is null without."""
        return {"score": self.score, "interval": list(self.interval),
                "coverage": self.coverage, "mode": self.mode, "model": self.model,
                "components": self.components,
                "diagnostics": None if self.diagnostics is None else self.diagnostics.to_dict()}
