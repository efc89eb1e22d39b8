"""No-reference extractors: features of an image alone, for ``fusion.predict(image)``.

Same contract as the full-reference extractors (``name``, ``version``, ``key``,
``feature_names``, ``compute``), called as ``extractor(image)``.
"""

from __future__ import annotations

import math

from fusion.features.cues import CUE_FEATURE_NAMES, cue_features
from fusion.features.extractors import BaseExtractor
from fusion.features.nss import BRISQUE_FEATURE_NAMES, brisque_features
from fusion.features.pseudo_reference import (
    PSEUDO_REFERENCE_FEATURE_NAMES,
    pseudo_reference_features,
)
from fusion.io import Image, ImageInput, load_image

__all__ = [
    "NO_REFERENCE_EXTRACTORS",
    "CuesExtractor",
    "NSSExtractor",
    "NoReferenceExtractor",
    "PseudoReferenceExtractor",
    "no_reference_features",
]


class NoReferenceExtractor(BaseExtractor):
    """Base class of the no-reference extractors."""

    mode = "nr"
    min_side = 32

    def __call__(self, image: ImageInput) -> dict[str, float]:
        """Compute the features of one image (anything :func:`fusion.io.load_image` takes)."""
        loaded = load_image(image, min_side=self.min_side)
        return self.compute(loaded, loaded)


class NSSExtractor(NoReferenceExtractor):
    """The 36 BRISQUE natural-scene statistics (:mod:`fusion.features.nss`)."""

    name = "nss_brisque"
    version = 1
    feature_names = BRISQUE_FEATURE_NAMES
    higher_is_better = (None,) * len(BRISQUE_FEATURE_NAMES)

    def compute(self, reference: Image, distorted: Image) -> dict[str, float]:
        """BRISQUE features of the (distorted) image."""
        return brisque_features(distorted.luma255)


class PseudoReferenceExtractor(NoReferenceExtractor):
    """PSNR/SSIM/GMSD against re-blurred, re-compressed and denoised copies (30 values)."""

    name = "pseudo_reference"
    version = 1
    feature_names = PSEUDO_REFERENCE_FEATURE_NAMES
    higher_is_better = (None,) * len(PSEUDO_REFERENCE_FEATURE_NAMES)

    def compute(self, reference: Image, distorted: Image) -> dict[str, float]:
        """Pseudo-reference comparisons of the (distorted) image."""
        return pseudo_reference_features(distorted)


class CuesExtractor(NoReferenceExtractor):
    """Sharpness, noise, blockiness, colourfulness and exposure (:mod:`.cues`)."""

    name = "cues"
    version = 2  # 2: blockiness adds ε so that flat block interiors stay finite
    feature_names = CUE_FEATURE_NAMES
    higher_is_better = (True, True, False, False, True, False, False, None, True)

    def compute(self, reference: Image, distorted: Image) -> dict[str, float]:
        """Cheap cues of the (distorted) image."""
        return cue_features(distorted)


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

    Every value is finite: a shape parameter whose fit has no data (e.g. an MSCN field
    without negative products) is reported as 0 instead of NaN.

    Raises
    ------
    ImageTooSmallError
        If a side is below 32 pixels.

    Examples
    --------
    >>> import fusion
    >>> values = no_reference_features(fusion.example_pair()[1])
    >>> len(values)
    75
    """
    loaded = load_image(image, min_side=max(e.min_side for e in extractors))
    values: dict[str, float] = {}
    for extractor in extractors:
        values.update(extractor.compute(loaded, loaded))
    return {k: (0.0 if math.isnan(v) else v) for k, v in values.items()}
