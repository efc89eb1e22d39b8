"""Full-reference extractors: the classic metrics as versioned feature sources.

Each follows the contract of :mod:`fusion.features.contract`
(``compute(distorted, reference)``). Run together on one pair through
:func:`full_reference_features` (or :func:`~fusion.features.contract.run_extractors`),
they share derived planes (luma pyramid, gradients) through the loaded images' memo, so
each image is converted and down-sampled once.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import numpy as np

from fusion.features.contract import Extractor, Mode, run_extractors
from fusion.features.fsim import FSIM_MIN_SIDE, fsim_of
from fusion.features.gmsd import gms_map_of
from fusion.features.haarpsi import HAARPSI_MIN_SIDE, haarpsi_of
from fusion.features.ms_ssim import MS_SSIM_MIN_SIDE, ms_ssim_of
from fusion.features.psnr import PSNR_CAP_DB, mean_squared_error, psnr_from_mse
from fusion.features.ssim import SSIM_WINDOW, auto_downsample_factor, ssim_map_of
from fusion.features.vif import VIFP_MIN_SIDE, vifp_of
from fusion.io import Image, ImageInput

__all__ = [
    "FULL_REFERENCE_EXTRACTORS",
    "PSNR_CAP_DB",
    "FSIMExtractor",
    "FullReferenceExtractor",
    "GMSDExtractor",
    "HaarPSIExtractor",
    "MSSSIMExtractor",
    "PSNRExtractor",
    "SSIMExtractor",
    "VIFpExtractor",
    "full_reference_features",
]

class FullReferenceExtractor(Extractor):
    """Base class of the full-reference extractors: :meth:`_pair` on a loaded pair."""

    mode: ClassVar[Mode] = "fr"

    def _compute(self, distorted: Image, reference: Image | None) -> dict[str, float]:
        if reference is None:  # load_for refuses this before; kept for direct callers
            raise ValueError(f"{self.key} needs a reference")
        return self._pair(reference, distorted)

    @abstractmethod
    def _pair(self, reference: Image, distorted: Image) -> dict[str, float]:
        """The features of a loaded pair (reference first, as the metric functions)."""


class PSNRExtractor(FullReferenceExtractor):
    """MSE on the [0, 1] scale and PSNR in dB (capped at :data:`PSNR_CAP_DB`), over RGB."""

    name = "psnr"
    version = 1
    feature_names = ("mse", "psnr")
    higher_is_better = (False, True)

    def _pair(self, reference: Image, distorted: Image) -> dict[str, float]:
        """MSE and capped PSNR."""
        error = mean_squared_error(reference, distorted)
        return {"mse": error, "psnr": min(psnr_from_mse(error), PSNR_CAP_DB)}


class SSIMExtractor(FullReferenceExtractor):
    """Mean SSIM with the authors' automatic down-sampling (``ssim.m``)."""

    name = "ssim"
    version = 1
    feature_names = ("ssim",)
    higher_is_better = (True,)
    min_side = SSIM_WINDOW

    def _pair(self, reference: Image, distorted: Image) -> dict[str, float]:
        """Mean SSIM after ``ssim.m``'s automatic down-sampling."""
        factor = auto_downsample_factor(reference.shape)
        ssim_map = ssim_map_of(reference, distorted, factor)
        return {"ssim": float(np.mean(ssim_map, dtype=np.float64))}


class MSSSIMExtractor(FullReferenceExtractor):
    """Five-scale MS-SSIM (``msssim.m``)."""

    name = "ms_ssim"
    version = 1
    feature_names = ("ms_ssim",)
    higher_is_better = (True,)
    min_side = MS_SSIM_MIN_SIDE

    def _pair(self, reference: Image, distorted: Image) -> dict[str, float]:
        """Five-scale MS-SSIM."""
        return {"ms_ssim": ms_ssim_of(reference, distorted)}


class GMSDExtractor(FullReferenceExtractor):
    """GMSD (``GMSD.m``); lower is better."""

    name = "gmsd"
    version = 1
    feature_names = ("gmsd",)
    higher_is_better = (False,)
    min_side = 4

    def _pair(self, reference: Image, distorted: Image) -> dict[str, float]:
        """Standard deviation of the gradient magnitude similarity map."""
        similarity = gms_map_of(reference, distorted)
        return {"gmsd": float(np.std(similarity, dtype=np.float64, ddof=1))}


class VIFpExtractor(FullReferenceExtractor):
    """Pixel-domain VIF over four scales (``vifp_mscale.m``)."""

    name = "vifp"
    version = 1
    feature_names = ("vifp",)
    higher_is_better = (True,)
    min_side = VIFP_MIN_SIDE

    def _pair(self, reference: Image, distorted: Image) -> dict[str, float]:
        """Four-scale pixel-domain VIF."""
        return {"vifp": vifp_of(reference, distorted)}


class FSIMExtractor(FullReferenceExtractor):
    """FSIM and FSIMc (``FeatureSIM.m``): phase congruency and gradient similarity."""

    name = "fsim"
    version = 1
    feature_names = ("fsim", "fsimc")
    higher_is_better = (True, True)
    min_side = FSIM_MIN_SIDE

    def _pair(self, reference: Image, distorted: Image) -> dict[str, float]:
        """FSIM (luma) and FSIMc (with the I/Q chroma term)."""
        return fsim_of(reference, distorted)


class HaarPSIExtractor(FullReferenceExtractor):
    """HaarPSI (the authors' ``haarpsi.py``): Haar wavelet similarity, logistic pooling."""

    name = "haarpsi"
    version = 1
    feature_names = ("haarpsi",)
    higher_is_better = (True,)
    min_side = HAARPSI_MIN_SIDE

    def _pair(self, reference: Image, distorted: Image) -> dict[str, float]:
        """HaarPSI with the chroma term for colour pairs."""
        return {"haarpsi": haarpsi_of(reference, distorted)}


#: The full-reference handcrafted block of the fusion model, in output order.
FULL_REFERENCE_EXTRACTORS: tuple[FullReferenceExtractor, ...] = (
    PSNRExtractor(),
    SSIMExtractor(),
    MSSSIMExtractor(),
    GMSDExtractor(),
    VIFpExtractor(),
    FSIMExtractor(),
    HaarPSIExtractor(),
)


def full_reference_features(
    reference: ImageInput,
    distorted: ImageInput,
    *,
    extractors: tuple[FullReferenceExtractor, ...] = FULL_REFERENCE_EXTRACTORS,
) -> dict[str, float]:
    """All full-reference handcrafted features of one pair, sharing intermediate results.

    Parameters
    ----------
    reference, distorted : image
        The pair (anything :func:`fusion.io.load_image` accepts).
    extractors : tuple of FullReferenceExtractor
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
    ShapeMismatchError
        If the two images differ in height or width.
    NonFiniteFeatureError
        If a value is not finite (a guard: every feature is defined for valid input).

    Examples
    --------
    >>> import fusion
    >>> ref, dist = fusion.example_pair("coffee_jpeg")
    >>> sorted(full_reference_features(ref, dist))
    ['fsim', 'fsimc', 'gmsd', 'haarpsi', 'ms_ssim', 'mse', 'psnr', 'ssim', 'vifp']

    """
    parts = run_extractors(extractors, distorted, reference)
    return {n: v for values in parts.values() for n, v in values.items()}
