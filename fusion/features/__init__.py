"""Handcrafted quality features: plain metric functions and versioned extractors.

The functions follow scikit-image's signatures (``ssim(image_true, image_test, *,
data_range=None)``) and accept anything :func:`fusion.io.load_image` accepts.
"""

from fusion.features.extractors import (
    FULL_REFERENCE_EXTRACTORS,
    PSNR_CAP_DB,
    BaseExtractor,
    FeatureExtractor,
    GMSDExtractor,
    MSSSIMExtractor,
    PSNRExtractor,
    SSIMExtractor,
    VIFpExtractor,
    full_reference_features,
)
from fusion.features.gmsd import gmsd
from fusion.features.ms_ssim import ms_ssim
from fusion.features.no_reference import (
    NO_REFERENCE_EXTRACTORS,
    CuesExtractor,
    NoReferenceExtractor,
    NSSExtractor,
    PseudoReferenceExtractor,
    no_reference_features,
)
from fusion.features.psnr import mse, psnr
from fusion.features.ssim import ssim
from fusion.features.vif import vifp

__all__ = [
    "FULL_REFERENCE_EXTRACTORS",
    "NO_REFERENCE_EXTRACTORS",
    "PSNR_CAP_DB",
    "BaseExtractor",
    "CuesExtractor",
    "FeatureExtractor",
    "GMSDExtractor",
    "MSSSIMExtractor",
    "NSSExtractor",
    "NoReferenceExtractor",
    "PSNRExtractor",
    "PseudoReferenceExtractor",
    "SSIMExtractor",
    "VIFpExtractor",
    "full_reference_features",
    "gmsd",
    "ms_ssim",
    "mse",
    "no_reference_features",
    "psnr",
    "ssim",
    "vifp",
]
