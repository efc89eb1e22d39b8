"""Handcrafted quality features: plain metric functions and versioned extractors.

The functions follow scikit-image's signatures (``ssim(image_true, image_test, *,
data_range=None)``) and accept anything :func:`fusion.io.load_image` accepts.
"""

from fusion.features.extractors import (
    FULL_REFERENCE_EXTRACTORS,
    PSNR_CAP_DB,
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
from fusion.features.psnr import mse, psnr
from fusion.features.ssim import ssim
from fusion.features.vif import vifp

__all__ = [
    "FULL_REFERENCE_EXTRACTORS",
    "PSNR_CAP_DB",
    "FeatureExtractor",
    "GMSDExtractor",
    "MSSSIMExtractor",
    "PSNRExtractor",
    "SSIMExtractor",
    "VIFpExtractor",
    "full_reference_features",
    "gmsd",
    "ms_ssim",
    "mse",
    "psnr",
    "ssim",
    "vifp",
]
