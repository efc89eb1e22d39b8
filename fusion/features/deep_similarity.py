"""Deep-feature similarity as a full-reference extractor (LiteRT, no TensorFlow).

Runs the exported pair graph of :mod:`backbones.similarity` — a frozen ImageNet
EfficientNet-Lite0 trunk, compared stage by stage in the manner of LPIPS and DISTS with
uniform weights — on at most four 224×224 patch pairs at native resolution (the same
evenly spaced grid in both images), and averages the patches' values. A pair whose
smaller side is under 224 pixels is first enlarged (bilinear) to 224. The graph ships in
``fusion/data/`` with its SHA-256 below, checked on first use; it is rebuilt by
``python benchmarks/export_similarity.py`` (needs the ``train`` extra).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from backbones.similarity import similarity_names
from fusion._once import BuiltOnce
from fusion.features.full_reference import FullReferenceExtractor
from fusion.io import Image

__all__ = ["DEEP_SIMILARITY_FILE", "DEEP_SIMILARITY_SHA256", "DeepSimilarityExtractor"]

DEEP_SIMILARITY_FILE = Path(__file__).resolve().parents[1] / "data" / \
    "deep_similarity_efficientnet_lite0.tflite"
DEEP_SIMILARITY_SHA256 = "114637e13e16f2405576b7825356a32007bd455e4842b0796b91f57782235afa"
_PATCH = 224
_MAX_PATCHES = 4
_RUNTIME: BuiltOnce[Any] = BuiltOnce()


class DeepSimilarityExtractor(FullReferenceExtractor):
    """Per-stage EfficientNet-Lite0 feature distance, texture and structure similarity."""

    name = "deep_similarity"
    version = 1
    # the graph's outputs, in order (backbones.similarity): distances are lower = better
    feature_names = tuple(f"deep_{n}" for n in similarity_names())
    higher_is_better = tuple(not n.endswith("_distance") for n in similarity_names())
    min_side = 8

    def _function(self) -> Any:
        def build() -> Any:
            from backbones import sha256_of
            from backbones.runtime import LiteRTFunction

            if not DEEP_SIMILARITY_FILE.is_file():
                raise FileNotFoundError(f"deep-similarity graph missing: "
                                        f"{DEEP_SIMILARITY_FILE}")
            digest = sha256_of(DEEP_SIMILARITY_FILE)
            if digest != DEEP_SIMILARITY_SHA256:
                raise ValueError(f"{DEEP_SIMILARITY_FILE}: SHA-256 {digest} differs from "
                                 f"the expected {DEEP_SIMILARITY_SHA256}")
            return LiteRTFunction(DEEP_SIMILARITY_FILE, batch_size=_MAX_PATCHES)

        return _RUNTIME.get(DEEP_SIMILARITY_FILE, build)

    def _pair(self, reference: Image, distorted: Image) -> dict[str, float]:
        """The stage terms, averaged over the patch pairs."""
        from backbones.patches import grid_positions, take_patches

        pair = np.concatenate([_at_least(reference.rgb), _at_least(distorted.rgb)], axis=2)
        height, width = pair.shape[:2]
        positions = grid_positions(height, width, size=_PATCH, max_patches=_MAX_PATCHES)
        values = self._function()(take_patches(pair, positions, size=_PATCH)).mean(axis=0)
        return {n: float(v) for n, v in zip(self.feature_names, values, strict=True)}


def _at_least(rgb: NDArray[np.float32]) -> NDArray[np.float32]:
    """Enlarge (bilinear) so that the smaller side is at least one patch."""
    height, width = rgb.shape[:2]
    if min(height, width) >= _PATCH:
        return np.asarray(rgb, dtype=np.float32)
    from PIL import Image as PILImage

    scale = _PATCH / min(height, width)
    size = (max(_PATCH, math.ceil(width * scale)), max(_PATCH, math.ceil(height * scale)))
    planes = [np.asarray(PILImage.fromarray(np.ascontiguousarray(rgb[:, :, c]), mode="F")
                         .resize(size, PILImage.Resampling.BILINEAR)) for c in range(3)]
    return np.stack(planes, axis=2).astype(np.float32)
