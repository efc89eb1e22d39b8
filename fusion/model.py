"""The fusion model: backbone and handcrafted features → stacker → calibrated 0–100 score.

A :class:`FusionModel` is a mode (``"nr"`` or ``"fr"``), a tuple of extractors (the
exported backbones, wrapped by :class:`BackboneExtractor`, and the handcrafted ones), a
fitted stacking regressor and a conformal interval. ``predict`` loads and validates the
image(s) once, computes every extractor's features, and returns a :class:`Prediction`.
Nothing here imports TensorFlow or Keras.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from fusion.features.extractors import BaseExtractor
from fusion.io import Image, ImageInput, load_image, load_pair

__all__ = ["BackboneExtractor", "FusionModel", "Prediction", "QualityMap"]

_SUMMARY = ("q_weighted", "q_mean", "q_std")


class BackboneExtractor(BaseExtractor):
    """An exported backbone as a versioned extractor (``bb_<name>_<mode>``).

    Its version is the first 8 hex digits of the ``.tflite`` file's SHA-256 (as an int),
    so a retrained backbone never reuses cached features of another.

    A full-reference backbone may also come as ``parts`` (trunk and head ``.tflite``, see
    :class:`backbones.runtime.SplitPairBackbone`): prediction then embeds each reference
    once and reuses it for every image compared with it (same outputs within 1e-4).
    """

    version: int  # type: ignore[misc]
    feature_names: tuple[str, ...]  # type: ignore[misc]
    higher_is_better: tuple[bool | None, ...]  # type: ignore[misc]
    min_side: ClassVar[int] = 32

    def __init__(self, backbone_name: str, litert_path: str | Path, sha256: str, *,
                 max_patches: int = 9, num_threads: int | None = None,
                 parts: tuple[str | Path, str | Path] | None = None) -> None:
        from backbones.runtime import SplitPairBackbone

        self.backbone_name = backbone_name
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
            self.mode = "fr"  # type: ignore[misc]
            self.patch_size = self.pair_runtime.patch_size
            pair_width = self.pair_runtime.head.input_shape[0]
            width = int(self.pair_runtime.head(np.zeros((1, pair_width), np.float32))
                        .shape[1]) - 2
        else:
            self.mode = self.runtime.mode  # type: ignore[misc]
            self.patch_size = self.runtime.patch_size
            width = int(self.runtime(np.zeros((1, self.patch_size, self.patch_size,
                                               self.runtime.channels), np.float32))
                        .shape[1]) - 2
        self.name = f"bb_{backbone_name}_{self.mode}"  # type: ignore[misc]
        self.version = int(sha256[:8], 16)
        prefix = f"bb:{backbone_name}:"
        self.feature_names = tuple(prefix + s for s in _SUMMARY) + tuple(
            f"{prefix}f{i}" for i in range(width))
        self.higher_is_better = (True, True, None) + (None,) * width

    @property
    def runtime(self) -> Any:
        """The whole exported graph (:class:`backbones.runtime.LiteRTBackbone`).

        Loaded on first use: with ``parts``, prediction never needs it.
        """
        if self._runtime is None:
            from backbones.runtime import LiteRTBackbone

            runtime = LiteRTBackbone(self.litert_path, num_threads=self.num_threads)
            if self.parts is not None and runtime.mode != "fr":
                raise ValueError("trunk/head parts are for full-reference backbones")
            self._runtime = runtime
        return self._runtime

    def _outputs(self, reference: Image, distorted: Image) -> tuple[Any, Any, Any]:
        """(pooled vector, patch grid, patch qualities), computed once per image (pair).

        Memoised on the distorted image, keyed by the reference's identity; the memo holds
        the reference, so the identity cannot be reused by another object meanwhile.
        """
        def run() -> tuple[Image, Any]:
            runtime = self.pair_runtime or self.runtime
            return reference, runtime.image_vector(
                distorted.rgb, reference.rgb if self.mode == "fr" else None,
                max_patches=self.max_patches)

        _, outputs = distorted.memoised(("backbone_outputs", self.key, id(reference)), run)
        return outputs  # type: ignore[no-any-return]

    def compute(self, reference: Image, distorted: Image) -> dict[str, float]:
        """Pooled backbone vector of one image (or pair)."""
        vector, _, _ = self._outputs(reference, distorted)
        return dict(zip(self.feature_names, vector.tolist(), strict=True))

    def quality_map(self, reference: Image, distorted: Image) -> QualityMap:
        """Per-patch qualities (0–100) painted at their positions."""
        _, grid, quality = self._outputs(reference, distorted)
        height, width = grid.image_shape
        total = np.zeros((max(height, grid.size), max(width, grid.size)))
        count = np.zeros_like(total)
        for (y, x), q in zip(grid.positions, quality, strict=True):
            total[y : y + grid.size, x : x + grid.size] += 100.0 * float(q)
            count[y : y + grid.size, x : x + grid.size] += 1
        values = np.where(count > 0, total / np.maximum(count, 1), np.nan)[:height, :width]
        return QualityMap(values.astype(np.float32), grid.positions.copy(),
                          (100.0 * np.asarray(quality)).astype(np.float32), grid.size,
                          self.backbone_name)


@dataclass(frozen=True)
class QualityMap:
    """Per-patch quality of one backbone, as an image-sized map and as patches."""

    values: NDArray[np.float32]      # (H, W), mean quality of the patches covering a pixel
    positions: NDArray[np.intp]      # (n, 2) top-left corners
    patch_qualities: NDArray[np.float32]  # (n,) on 0–100
    patch_size: int
    backbone: str

    def overlay(self, image: ImageInput, *, alpha: float = 0.45) -> Any:
        """The image with the map blended over it (red = low quality, green = high)."""
        from PIL import Image as PILImage

        rgb = load_image(image).rgb
        q = np.nan_to_num(self.values, nan=50.0)[..., None] / 100.0
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
        Each backbone's own pooled quality (0–100) and each handcrafted value.
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


class FusionModel:
    """Extractors + fitted stacker + conformal interval, for one mode.

    Build one with :meth:`fit` (or load a bundle with :func:`fusion.load`).
    """

    def __init__(self, mode: str, extractors: Sequence[BaseExtractor], stacker: Any,
                 interval: Any, *, name: str = "fusion", metadata: dict[str, Any] | None = None
                 ) -> None:
        if mode not in ("nr", "fr"):
            raise ValueError(f"mode must be 'nr' or 'fr', got {mode!r}")
        wrong = [e.key for e in extractors if e.mode != mode]
        if wrong:
            raise ValueError(f"extractors {wrong} do not work in mode {mode!r}")
        self.mode = mode
        self.extractors = tuple(extractors)
        self.stacker = stacker
        self.interval = interval
        self.name = name
        self.metadata = dict(metadata or {})
        self.feature_names = tuple(n for e in self.extractors for n in e.feature_names)

    @property
    def min_side(self) -> int:
        """Smallest image side the model accepts."""
        return max(e.min_side for e in self.extractors)

    # ----------------------------------------------------------------- prediction

    def predict(self, image: ImageInput, reference: ImageInput | None = None, *,
                quality_map: bool = False) -> Prediction:
        """Score one image (no-reference model) or one pair (full-reference model).

        Raises
        ------
        ValueError
            If a reference is given to a no-reference model, or missing for a
            full-reference one; for invalid images (see :mod:`fusion.io`).
        """
        ref, dist = self._load(image, reference)
        values = self._features(ref, dist)
        return self._prediction(values, ref, dist, quality_map)

    def predict_batch(self, images: Sequence[ImageInput],
                      references: Sequence[ImageInput] | None = None) -> list[Prediction]:
        """Score several images (or pairs); one stacker call for the batch."""
        if references is not None and len(references) != len(images):
            raise ValueError(f"{len(images)} images but {len(references)} references")
        rows = []
        for i, img in enumerate(images):
            parts = self.extract(img, None if references is None else references[i])
            rows.append({n: v for values in parts.values() for n, v in values.items()})
        return self.predict_features(rows)

    def extract(self, image: ImageInput, reference: ImageInput | None = None, *,
                skip: Collection[str] = ()) -> dict[str, dict[str, float]]:
        """Each extractor's feature values for one image (or pair), by extractor key.

        Parameters
        ----------
        image, reference : image inputs
            As for :meth:`predict`.
        skip : collection of str
            Extractor keys not to compute (e.g. those already in a feature cache).

        Raises
        ------
        ValueError
            As :meth:`predict`, and for non-finite feature values.
        """
        ref, dist = self._load(image, reference)
        return self._extract(ref, dist, skip)

    def predict_features(self, rows: Sequence[Mapping[str, float]]) -> list[Prediction]:
        """Predictions from feature values, with one stacker call for all rows.

        Each row maps feature names to values (the merged dicts of :meth:`extract`).

        Raises
        ------
        ValueError
            If a row lacks one of :attr:`feature_names`.
        """
        if not rows:
            return []
        missing = [n for n in self.feature_names if n not in rows[0]]
        if missing:
            raise ValueError(f"feature values lack {len(missing)} of the model's features, "
                             f"e.g. {missing[:3]}")
        matrix = np.array([[row[n] for n in self.feature_names] for row in rows])
        raw = np.asarray(self.stacker.predict(matrix), dtype=np.float64)
        return [self._assemble(float(r), dict(row), None)
                for r, row in zip(raw, rows, strict=True)]

    def _load(self, image: ImageInput, reference: ImageInput | None) -> tuple[Image, Image]:
        if self.mode == "nr":
            if reference is not None:
                raise ValueError("this is a no-reference model: call predict(image) without "
                                 "a reference, or load a full-reference model")
            dist = load_image(image, name="image", min_side=self.min_side)
            return dist, dist
        if reference is None:
            raise ValueError("this is a full-reference model: call predict(image, reference)")
        ref, dist = load_pair(reference, image, min_side=self.min_side,
                              names=("reference", "image"))
        return ref, dist

    def _extract(self, reference: Image, distorted: Image,
                 skip: Collection[str] = ()) -> dict[str, dict[str, float]]:
        parts = {e.key: e.compute(reference, distorted) for e in self.extractors
                 if e.key not in skip}
        bad = [k for values in parts.values() for k, v in values.items()
               if not math.isfinite(v)]
        if bad:
            raise ValueError(f"non-finite feature values for this image: {bad[:5]}")
        return parts

    def _features(self, reference: Image, distorted: Image) -> dict[str, float]:
        return {n: v for values in self._extract(reference, distorted).values()
                for n, v in values.items()}

    def _prediction(self, values: dict[str, float], reference: Image, distorted: Image,
                    quality_map: bool) -> Prediction:
        row = np.array([[values[n] for n in self.feature_names]])
        raw = float(np.asarray(self.stacker.predict(row)).ravel()[0])
        qmap = None
        if quality_map:
            backbone = next((e for e in self.extractors if isinstance(e, BackboneExtractor)),
                            None)
            if backbone is None:
                raise ValueError("this model has no backbone, so no per-patch quality map")
            qmap = backbone.quality_map(reference, distorted)
        return self._assemble(raw, values, qmap)

    def _assemble(self, raw: float, values: dict[str, float],
                  qmap: QualityMap | None) -> Prediction:
        score = float(self.interval.predict([raw])[0])
        low, high = (float(v) for v in self.interval.predict_interval([raw])[0])
        components: dict[str, float] = {}
        for extractor in self.extractors:
            if isinstance(extractor, BackboneExtractor):
                key = f"bb:{extractor.backbone_name}:q_weighted"
                components[f"{extractor.backbone_name}_quality"] = 100.0 * values[key]
            else:
                components.update({n: values[n] for n in extractor.feature_names})
        return Prediction(score=score, interval=(low, high),
                          coverage=float(self.interval.coverage), mode=self.mode,
                          model=self.name, components=components, quality_map=qmap)

    # ----------------------------------------------------------------- training

    @classmethod
    def fit(cls, mode: str, extractors: Sequence[BaseExtractor], values: NDArray[np.float64],
            scores: NDArray[np.float64], groups: NDArray[np.str_], *, coverage: float = 0.9,
            calibration_fraction: float = 0.2, seed: int = 0, name: str = "fusion",
            metadata: dict[str, Any] | None = None) -> FusionModel:
        """Fit the stacker and the conformal interval on a feature table.

        The items are split by content: ``1 − calibration_fraction`` fits the stacker
        (whose internal cross-validation is content-disjoint too), the rest calibrates
        the interval, so its coverage is measured on predictions for unseen contents.
        """
        from calibrators import ConformalInterval
        from fusion.splits import train_val_test_split
        from fusion.stacking import build_stacker, grouped_splits

        feature_names = [n for e in extractors for n in e.feature_names]
        if values.shape != (len(scores), len(feature_names)):
            raise ValueError(f"values have shape {values.shape}, expected "
                             f"({len(scores)}, {len(feature_names)})")
        fit_part, calibration, _ = train_val_test_split(
            groups, fractions=(1 - calibration_fraction, calibration_fraction, 0.0), seed=seed,
            scores=scores)
        splits = grouped_splits(groups[fit_part], scores[fit_part], seed=seed)
        stacker = build_stacker(feature_names, splits, seed=seed)
        stacker.fit(values[fit_part], scores[fit_part])
        interval = ConformalInterval(coverage=coverage).fit(
            stacker.predict(values[calibration]), scores[calibration])
        return cls(mode, extractors, stacker, interval, name=name, metadata=metadata)
