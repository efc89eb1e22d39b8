"""An exported backbone (LiteRT) as a versioned feature extractor."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from backbones.runtime import LiteRTBackbone, SplitPairBackbone
from fusion.features.contract import Extractor, Mode
from fusion.io import Image
from fusion.prediction import QualityMap

__all__ = ["SUMMARY_NAMES", "BackboneExtractor"]

#: The pooled head outputs that open every backbone's block (see
#: :func:`backbones.patches.pool_outputs`).
SUMMARY_NAMES = ("q_weighted", "q_mean", "q_std")


class BackboneExtractor(Extractor):
    """An exported backbone as a versioned extractor (``bb_<name>_<mode>[_p<patches>]``).

    Its version is the first 8 hex digits of the ``.tflite`` file's SHA-256 (as an int),
    so a retrained backbone never reuses cached features of another; a patch count other
    than nine is part of the name, so features pooled over another count are not reused
    either.

    ``tuned`` (a description of a quality-tuned branch, e.g. its training data, as
    recorded in the bundle) says that the graph's last feature is the per-patch quality
    of a quality-tuned copy of the trunk's upper stages
    (:func:`fusion.training.tuning.tuned_backbone`): its mean over the patches is named
    ``bb:<backbone>:q_tuned`` (higher is better), which the stacker fits as its own block.

    A full-reference backbone may also come as ``parts`` (trunk and head ``.tflite``, see
    :class:`backbones.runtime.SplitPairBackbone`): prediction then embeds each reference
    once and reuses it for every image compared with it (same outputs within 1e-4).
    """

    version: int  # type: ignore[misc]
    mode: Mode  # type: ignore[misc]
    feature_names: tuple[str, ...]  # type: ignore[misc]
    higher_is_better: tuple[bool | None, ...]  # type: ignore[misc]
    min_side: ClassVar[int] = 32

    def __init__(self, backbone_name: str, litert_path: str | Path, sha256: str, *,
                 max_patches: int = 9, num_threads: int | None = None,
                 parts: tuple[str | Path, str | Path] | None = None,
                 tuned: Mapping[str, Any] | None = None) -> None:
        self.backbone_name = backbone_name
        self.tuned = None if tuned is None else dict(tuned)
        self.litert_path = Path(litert_path)
        self.sha256 = sha256
        self.max_patches = max_patches
        self.num_threads = num_threads
        self._runtime: Any = None
        self.parts = None if parts is None else (Path(parts[0]), Path(parts[1]))
        self.pair_runtime = None if self.parts is None else SplitPairBackbone(
            *self.parts, num_threads=num_threads)
        if self.pair_runtime is not None:
            # The parts serve prediction: the six-channel graph is not even loaded.
            self.mode = "fr"
            self.patch_size = self.pair_runtime.patch_size
            pair_width = self.pair_runtime.head.input_shape[0]
            width = int(self.pair_runtime.head(np.zeros((1, pair_width), np.float32))
                        .shape[1]) - 2
        else:
            self.mode = self.runtime.mode
            self.patch_size = self.runtime.patch_size
            width = int(self.runtime(np.zeros((1, self.patch_size, self.patch_size,
                                               self.runtime.channels), np.float32))
                        .shape[1]) - 2
        # The patch count changes the pooled features: it is part of the name (and so of
        # the cache key) whenever it is not the registry's default of nine.
        patches = "" if max_patches == 9 else f"_p{max_patches}"
        self.name = f"bb_{backbone_name}_{self.mode}{patches}"  # type: ignore[misc]
        self.version = int(sha256[:8], 16)
        prefix = f"bb:{backbone_name}:"
        plain = width - (self.tuned is not None)
        if plain < 1:
            raise ValueError(f"{self.litert_path}: {width} feature columns is too few for "
                             "a tuned backbone")
        self.feature_names = tuple(prefix + s for s in SUMMARY_NAMES) + tuple(
            f"{prefix}f{i}" for i in range(plain)) + (
            (f"{prefix}q_tuned",) if self.tuned is not None else ())
        self.higher_is_better = (True, True, None) + (None,) * plain + (
            (True,) if self.tuned is not None else ())

    @property
    def runtime(self) -> Any:
        """The whole exported graph (:class:`backbones.runtime.LiteRTBackbone`).

        Loaded on first use: with ``parts``, prediction never needs it.
        """
        if self._runtime is None:
            runtime = LiteRTBackbone(self.litert_path, num_threads=self.num_threads)
            if self.parts is not None and runtime.mode != "fr":
                raise ValueError("trunk/head parts are for full-reference backbones")
            self._runtime = runtime
        return self._runtime

    @property
    def weight_precision(self) -> str:
        """``"float16"`` or ``"float32"``: how the exported graph stores its weights."""
        graph = self.pair_runtime.trunk if self.pair_runtime is not None else self.runtime
        return str(graph.weight_precision)

    def _outputs(self, distorted: Image, reference: Image | None) -> tuple[Any, Any, Any]:
        """(pooled vector, patch grid, patch qualities), computed once per image (pair).

        Memoised on the distorted image, keyed by the reference's identity; the memo holds
        the reference, so the identity cannot be reused by another object meanwhile.
        """
        if (reference is None) != (self.mode == "nr"):
            raise ValueError(f"{self.key} is a {self.mode} backbone: "
                             + ("it takes no reference" if self.mode == "nr"
                                else "it needs a reference"))

        def run() -> tuple[Image | None, Any]:
            runtime = self.pair_runtime or self.runtime
            return reference, runtime.image_vector(
                distorted.rgb, None if reference is None else reference.rgb,
                max_patches=self.max_patches)

        _, outputs = distorted.memoised(("backbone_outputs", self.key, id(reference)), run)
        return outputs  # type: ignore[no-any-return]

    def _compute(self, distorted: Image, reference: Image | None) -> dict[str, float]:
        """Pooled backbone vector of one image (or pair)."""
        vector, _, _ = self._outputs(distorted, reference)
        return dict(zip(self.feature_names, vector.tolist(), strict=True))

    def quality_map(self, distorted: Image, reference: Image | None = None) -> QualityMap:
        """Per-patch qualities (0–100) painted at their positions (loaded images)."""
        _, grid, quality = self._outputs(distorted, reference)
        return QualityMap.from_patches(grid.positions, 100.0 * np.asarray(quality), grid.size,
                                       grid.image_shape, self.backbone_name)
