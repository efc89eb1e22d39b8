"""Export a trained Keras backbone to LiteRT and check that the two agree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["export_litert", "max_litert_difference"]


def export_litert(model: Any, path: str | Path) -> Path:
    """Write ``model`` as a float32 LiteRT flatbuffer with Keras's own exporter."""
    from backbones._keras import require_keras

    require_keras()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.export(str(path), format="litert", verbose=False)
    return path


def max_litert_difference(model: Any, path: str | Path, patches: Any) -> float:
    """Largest absolute difference between Keras and LiteRT outputs on ``patches``."""
    from backbones.runtime import LiteRTBackbone

    expected = np.asarray(model(np.asarray(patches, np.float32), training=False))
    actual = LiteRTBackbone(path)(patches)
    return float(np.abs(expected - actual).max())
