"""Versioned feature extractors: the handcrafted half of the fusion model's input.

An extractor is a small object with a ``name``, an integer ``version``, the
``feature_names`` it returns and ``__call__(reference, distorted) -> dict[str, float]``.
``key`` (``name_Vversion``) is what feature caches and model bundles record; bumping the
numerics of an extractor bumps its ``version``.

Extractors given already loaded :class:`fusion.io.Image` objects share derived planes
(luma pyramid, gradients) through the images' memo, so running all of them on one pair
converts and down-samples each image once: see :func:`full_reference_features`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from fusion.features.gmsd import gms_map_of
from fusion.features.ms_ssim import MS_SSIM_MIN_SIDE, ms_ssim_of
from fusion.features.psnr import mean_squared_error, psnr_from_mse
from fusion.features.ssim import SSIM_WINDOW, auto_downsample_factor, ssim_map_of
from fusion.features.vif import VIFP_MIN_SIDE, vifp_of
from fusion.io import Image, ImageInput, load_pair

__all__ = [
    "FULL_REFERENCE_EXTRACTORS",
    "PSNR_CAP_DB",
    "BaseExtractor",
    "FeatureExtractor",
    "GMSDExtractor",
    "MSSSIMExtractor",
    "PSNRExtractor",
    "SSIMExtractor",
    "VIFpExtractor",
    "full_reference_features",
]

#: PSNR reported in feature vectors is capped here, so identical images give a finite
#: value (100 dB ⇔ MSE = 1e-10 on the [0, 1] scale).
PSNR_CAP_DB = 100.0


class BaseExtractor(ABC):
    """What every extractor has: a versioned name, named outputs and ``compute``.

    Subclasses set ``name``, ``version``, ``feature_names``, ``higher_is_better`` and
    ``min_side`` and implement :meth:`compute` on loaded images.
    """

    name: ClassVar[str]
    version: ClassVar[int]
    feature_names: ClassVar[tuple[str, ...]]
    #: For each feature, whether a higher value means better quality (None: no direction).
    higher_is_better: ClassVar[tuple[bool | None, ...]]
    min_side: ClassVar[int] = 16
    mode: ClassVar[str] = "fr"

    @property
    def key(self) -> str:
        """``name_Vversion``: the cache and bundle key of this extractor."""
        return f"{self.name}_V{self.version}"

    @abstractmethod
    def compute(self, reference: Image, distorted: Image) -> dict[str, float]:
        """Compute the features of loaded images.

        For no-reference extractors the two arguments are the same image.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}()  # {self.key}: {', '.join(self.feature_names)}"


class FeatureExtractor(BaseExtractor):
    """Base class of the full-reference extractors."""

    def __call__(self, reference: ImageInput, distorted: ImageInput) -> dict[str, float]:
        """Compute the features of one (reference, distorted) pair.

        Parameters
        ----------
        reference, distorted : image
            Anything :func:`fusion.io.load_image` accepts; loaded images are reused as is.

        Returns
        -------
        dict of str to float
            One finite value per name in ``feature_names``.
        """
        ref, dist = load_pair(reference, distorted, min_side=self.min_side)
        return self.compute(ref, dist)


class PSNRExtractor(FeatureExtractor):
    """MSE on the [0, 1] scale and PSNR in dB (capped at :data:`PSNR_CAP_DB`), over RGB."""

    name = "psnr"
    version = 1
    feature_names = ("mse", "psnr")
    higher_is_better = (False, True)

    def compute(self, reference: Image, distorted: Image) -> dict[str, float]:
        """MSE and capped PSNR."""
        error = mean_squared_error(reference, distorted)
        return {"mse": error, "psnr": min(psnr_from_mse(error), PSNR_CAP_DB)}


class SSIMExtractor(FeatureExtractor):
    """Mean SSIM with the authors' automatic down-sampling (``ssim.m``)."""

    name = "ssim"
    version = 1
    feature_names = ("ssim",)
    higher_is_better = (True,)
    min_side = SSIM_WINDOW

    def compute(self, reference: Image, distorted: Image) -> dict[str, float]:
        """Mean SSIM after ``ssim.m``'s automatic down-sampling."""
        factor = auto_downsample_factor(reference.shape)
        ssim_map = ssim_map_of(reference, distorted, factor)
        return {"ssim": float(np.mean(ssim_map, dtype=np.float64))}


class MSSSIMExtractor(FeatureExtractor):
    """Five-scale MS-SSIM (``msssim.m``)."""

    name = "ms_ssim"
    version = 1
    feature_names = ("ms_ssim",)
    higher_is_better = (True,)
    min_side = MS_SSIM_MIN_SIDE

    def compute(self, reference: Image, distorted: Image) -> dict[str, float]:
        """Five-scale MS-SSIM."""
        return {"ms_ssim": ms_ssim_of(reference, distorted)}


class GMSDExtractor(FeatureExtractor):
    """GMSD (``GMSD.m``); lower is better."""

    name = "gmsd"
    version = 1
    feature_names = ("gmsd",)
    higher_is_better = (False,)
    min_side = 4

    def compute(self, reference: Image, distorted: Image) -> dict[str, float]:
        """Standard deviation of the gradient magnitude similarity map."""
        similarity = gms_map_of(reference, distorted)
        return {"gmsd": float(np.std(similarity, dtype=np.float64, ddof=1))}


class VIFpExtractor(FeatureExtractor):
    """Pixel-domain VIF over four scales (``vifp_mscale.m``)."""

    name = "vifp"
    version = 1
    feature_names = ("vifp",)
    higher_is_better = (True,)
    min_side = VIFP_MIN_SIDE

    def compute(self, reference: Image, distorted: Image) -> dict[str, float]:
        """Four-scale pixel-domain VIF."""
        return {"vifp": vifp_of(reference, distorted)}


#: The full-reference handcrafted block of the fusion model, in output order.
FULL_REFERENCE_EXTRACTORS: tuple[FeatureExtractor, ...] = (
    PSNRExtractor(),
    SSIMExtractor(),
    MSSSIMExtractor(),
    GMSDExtractor(),
    VIFpExtractor(),
)


def full_reference_features(
    reference: ImageInput,
    distorted: ImageInput,
    *,
    extractors: tuple[FeatureExtractor, ...] = FULL_REFERENCE_EXTRACTORS,
) -> dict[str, float]:
    """All full-reference handcrafted features of one pair, sharing intermediate results.

    Parameters
    ----------
    reference, distorted : image
        The pair (anything :func:`fusion.io.load_image` accepts).
    extractors : tuple of FeatureExtractor
        Which extractors to run, in output order.

    Returns
    -------
    dict of str to float
        ``feature name -> value``; every value is finite.

    Raises
    ------
    ImageTooSmallError
        If the pair is smaller than the largest ``min_side`` of the extractors (161
        pixels, for MS-SSIM).

    Examples
    --------
    >>> import fusion
    >>> ref, dist = fusion.example_pair("coffee_jpeg")
    >>> sorted(full_reference_features(ref, dist))
    ['gmsd', 'ms_ssim', 'mse', 'psnr', 'ssim', 'vifp']

    """
    min_side = max((e.min_side for e in extractors), default=1)
    ref, dist = load_pair(reference, distorted, min_side=min_side)
    values: dict[str, float] = {}
    for extractor in extractors:
        values.update(extractor.compute(ref, dist))
    bad = [name for name, value in values.items() if not math.isfinite(value)]
    if bad:  # a guard, not an expected path: every feature is defined for valid input
        raise FloatingPointError(f"non-finite feature value(s) {bad} for this pair")
    return values
