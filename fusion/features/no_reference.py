"""No-reference extractors: features of an image alone, for ``fusion.predict(image)``.

Each follows the contract of :mod:`fusion.features.contract`: ``compute(image)``, with
no reference.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import ClassVar

from fusion.features.contract import Extractor, Mode, run_extractors
from fusion.features.cues import CUE_FEATURE_NAMES, cue_features
from fusion.features.nss import BRISQUE_FEATURE_NAMES, brisque_features
from fusion.features.pseudo_reference import (
    PSEUDO_REFERENCE_FEATURE_NAMES,
    pseudo_reference_features,
)
from fusion.io import Image, ImageInput

__all__ = [
    "NO_REFERENCE_EXTRACTORS",
    "CuesExtractor",
    "NSSExtractor",
    "NoReferenceExtractor",
    "PseudoReferenceExtractor",
    "no_reference_features",
]


class NoReferenceExtractor(Extractor):
    """Base class of the no-reference extractors: :meth:`_image` on a loaded image."""

    mode: ClassVar[Mode] = "nr"
    min_side: ClassVar[int] = 32

    def _compute(self, distorted: Image, reference: Image | None) -> dict[str, float]:
        if reference is not None:  # load_for refuses this before; kept for direct callers
            raise ValueError(f"{self.key} is a no-reference extractor: it takes no reference")
        return self._image(distorted)

    @abstractmethod
    def _image(self, image: Image) -> dict[str, float]:
        """The features of a loaded image."""


class NSSExtractor(NoReferenceExtractor):
    """The 36 BRISQUE natural-scene statistics (:mod:`fusion.features.nss`).

    Degenerate input: a generalised-Gaussian shape parameter whose fit has no data (e.g.
    an MSCN product field without negative values, as in flat regions) is reported as 0,
    the value this version has always given there, instead of NaN.
    """

    name = "nss_brisque"
    version = 1
    feature_names = BRISQUE_FEATURE_NAMES
    higher_is_better = (None,) * len(BRISQUE_FEATURE_NAMES)

    def _image(self, image: Image) -> dict[str, float]:
        """BRISQUE features; a shape parameter whose fit has no data is 0 (see the class)."""
        return {k: (0.0 if math.isnan(v) else v)
                for k, v in brisque_features(image.luma255).items()}


class PseudoReferenceExtractor(NoReferenceExtractor):
    """PSNR/SSIM/GMSD against re-blurred, re-compressed and denoised copies (30 values)."""

    name = "pseudo_reference"
    version = 1
    feature_names = PSEUDO_REFERENCE_FEATURE_NAMES
    higher_is_better = (None,) * len(PSEUDO_REFERENCE_FEATURE_NAMES)

    def _image(self, image: Image) -> dict[str, float]:
        """Pseudo-reference comparisons of the image."""
        return pseudo_reference_features(image)


class CuesExtractor(NoReferenceExtractor):
    """Sharpness, noise, blockiness, colourfulness and exposure (:mod:`.cues`)."""

    name = "cues"
    version = 2  # 2: blockiness adds ε so that flat block interiors stay finite
    feature_names = CUE_FEATURE_NAMES
    higher_is_better = (True, True, False, False, True, False, False, None, True)

    def _image(self, image: Image) -> dict[str, float]:
        """Cheap cues of the image."""
        return cue_features(image)


#: The no-reference handcrafted block of the fusion model, in output order.
NO_REFERENCE_EXTRACTORS: tuple[NoReferenceExtractor, ...] = (
    NSSExtractor(),
    PseudoReferenceExtractor(),
    CuesExtractor(),
)


def no_reference_features(
    image: ImageInput,
    *,
    extractors: tuple[NoReferenceExtractor, ...] = NO_REFERENCE_EXTRACTORS,
) -> dict[str, float]:
    """All no-reference handcrafted features of one image (one load, shared planes).

    Every value is finite (see :class:`NSSExtractor` for the convention on flat data).

    Raises
    ------
    ImageTooSmallError
        If a side is below 32 pixels.
    NonFiniteFeatureError
        If a value is not finite (a guard, naming the extractor and feature).

    Examples
    --------
    >>> import fusion
    >>> values = no_reference_features(fusion.example_pair()[1])
    >>> len(values)
    75
    """
    parts = run_extractors(extractors, image, names=("image", "reference"))
    return {n: v for values in parts.values() for n, v in values.items()}
