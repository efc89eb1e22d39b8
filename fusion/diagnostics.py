"""Diagnostics: which family of distortion dominates an image (or pair), with probabilities.

A :class:`Diagnoser` is a calibrated classifier over the seven :data:`FAMILY_NAMES` — the
six distortion families of :data:`fusion.kadid.FAMILIES` and ``"none"`` — fed by features
the model computes anyway (the no-reference handcrafted block; the full-reference metrics)
plus cheap cues of its own: with a reference,
:class:`fusion.features.change.ChangeExtractor` (*how* the pair differs); without,
:class:`fusion.features.distortion_cues.DistortionCuesExtractor` (traces of the colour
and spatial families). It is trained on the synthetic distortions of both
generators (:func:`family_of` groups their types), by
:mod:`fusion.training.diagnostics`, and stored in a model bundle beside the stacker.

:class:`Diagnostics` is what a prediction carries: each family's probability and the
dominant family. Importing this module loads NumPy only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fusion._fast_trees import FastCalibratedTrees
from fusion.features.contract import Extractor
from fusion.kadid import FAMILIES, KADID_TYPES

__all__ = ["CLASSIC_FAMILIES", "FAMILY_NAMES", "Diagnoser", "Diagnostics", "family_of"]

#: The classes of the diagnostics, in probability order.
FAMILY_NAMES: tuple[str, ...] = (*FAMILIES, "none")

#: The family of each of :data:`fusion.distortions.DISTORTIONS` (the home-made types),
#: grouped as KADID-10k groups its own (``quantization`` with its spatial quantization).
CLASSIC_FAMILIES: dict[str, str] = {
    "gaussian_noise": "noise", "color_noise": "noise", "impulse_noise": "noise",
    "gaussian_blur": "blur", "motion_blur": "blur",
    "pixelate": "spatial", "quantization": "spatial",
    "jpeg": "compression", "jpeg2000": "compression", "webp": "compression",
    "contrast_decrease": "exposure_contrast", "darken": "exposure_contrast",
    "saturation_decrease": "colour",
}
_KADID_FAMILIES = {f"kadid_{t.name}": t.family for t in KADID_TYPES}


def family_of(kind: str | None) -> str:
    """The family of a distortion type of either generator; ``"none"`` for no distortion.

    Raises
    ------
    ValueError
        For a type neither generator has.

    Examples
    --------
    >>> family_of("kadid_lens_blur"), family_of("webp"), family_of("none")
    ('blur', 'compression', 'none')
    """
    if kind in (None, "", "none"):
        return "none"
    family = _KADID_FAMILIES.get(str(kind)) or CLASSIC_FAMILIES.get(str(kind))
    if family is None:
        raise ValueError(f"unknown distortion type {kind!r}: not one of "
                         "fusion.distortions.DISTORTIONS or KADID_DISTORTIONS")
    return family


@dataclass(frozen=True)
class Diagnostics:
    """Which distortion family dominates, and how sure the model is.

    Attributes
    ----------
    probabilities : dict of str to float
        One calibrated probability per name of :data:`FAMILY_NAMES`; they sum to 1.
    family : str
        The most probable family (``"none"``: no distortion recognised).
    probability : float
        Its probability.
    """

    probabilities: dict[str, float]
    family: str
    probability: float

    @classmethod
    def from_probabilities(cls, probabilities: ArrayLike,
                           families: Sequence[str] = FAMILY_NAMES) -> Diagnostics:
        """From one row of class probabilities in ``families`` order."""
        row = np.asarray(probabilities, dtype=np.float64)
        best = int(np.argmax(row))
        return cls({f: float(p) for f, p in zip(families, row, strict=True)},
                   families[best], float(row[best]))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view."""
        return {"family": self.family, "probability": self.probability,
                "probabilities": dict(self.probabilities)}


class Diagnoser:
    """A fitted family classifier on named features.

    Parameters
    ----------
    feature_names : sequence of str
        The classifier's input columns, looked up by name in a prediction's feature values.
    classifier : object
        A fitted scikit-learn classifier with ``predict_proba`` whose ``classes_`` are
        indices into ``families``. A temperature-calibrated boosted-trees classifier (what
        :mod:`fusion.training.diagnostics` fits) is run by
        :class:`fusion._fast_trees.FastCalibratedTrees`, with the same probabilities; a
        loaded bundle's diagnostics are that stacked form itself (``diagnostics.npz``).
    extractors : sequence of Extractor
        Extractors the diagnoser needs beyond the model's own (e.g. the change cues);
        the model runs them with its own, on the same loaded image.
    families : sequence of str
        The class names (default :data:`FAMILY_NAMES`).
    """

    def __init__(self, feature_names: Sequence[str], classifier: Any,
                 extractors: Sequence[Extractor] = (),
                 families: Sequence[str] = FAMILY_NAMES) -> None:
        self.feature_names = tuple(feature_names)
        self.classifier = classifier
        self.extractors = tuple(extractors)
        self.families = tuple(families)
        # The same probabilities, computed without scikit-learn's per-tree Python loop.
        self._fast = FastCalibratedTrees.of(classifier)

    def predict_proba(self, rows: Sequence[Mapping[str, float]]) -> NDArray[np.float64]:
        """Class probabilities (n_rows, n_families) of feature-value rows.

        Raises
        ------
        ValueError
            If a row lacks one of :attr:`feature_names`.
        """
        missing = [n for n in self.feature_names if rows and n not in rows[0]]
        if missing:
            raise ValueError(f"the diagnostics need {len(missing)} feature(s) the values "
                             f"lack, e.g. {missing[:3]}")
        matrix = np.array([[row[n] for n in self.feature_names] for row in rows],
                          dtype=np.float64)
        return self.probabilities_of(matrix)

    def probabilities_of(self, matrix: ArrayLike) -> NDArray[np.float64]:
        """Class probabilities of a matrix whose columns are :attr:`feature_names`."""
        values = np.asarray(matrix, dtype=np.float64)
        if values.ndim != 2 or values.shape[1] != len(self.feature_names):
            raise ValueError(f"features have shape {values.shape}, expected "
                             f"(n, {len(self.feature_names)})")
        proba = np.zeros((len(values), len(self.families)))
        runner = self.classifier if self._fast is None else self._fast
        known = np.asarray(runner.predict_proba(values), dtype=np.float64)
        proba[:, np.asarray(self.classifier.classes_, dtype=np.intp)] = known
        return proba

    def diagnose(self, rows: Sequence[Mapping[str, float]]) -> list[Diagnostics]:
        """:class:`Diagnostics` of each row."""
        if not rows:
            return []
        return [Diagnostics.from_probabilities(p, self.families)
                for p in self.predict_proba(rows)]
