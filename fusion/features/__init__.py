"""Handcrafted quality features: plain metric functions and versioned extractors.

The metric functions follow scikit-image's signatures, **reference first**
(``ssim(image_true, image_test, *, data_range=None)``), and accept anything
:func:`fusion.io.load_image` accepts. The extractors follow the one contract of
:mod:`fusion.features.contract`, **distorted first**: ``compute(distorted,
reference=None)``, as pyiqa's metrics.
"""

from fusion.features.contract import Extractor, check_finite, load_for, run_extractors
from fusion.features.fsim import fsim
from fusion.features.full_reference import (
    FULL_REFERENCE_EXTRACTORS,
    PSNR_CAP_DB,
    FSIMExtractor,
    FullReferenceExtractor,
    GMSDExtractor,
    HaarPSIExtractor,
    MSSSIMExtractor,
    PSNRExtractor,
    SSIMExtractor,
    VIFpExtractor,
    full_reference_features,
)
from fusion.features.gmsd import gmsd
from fusion.features.haarpsi import haarpsi
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
    "CuesExtractor",
    "Extractor",
    "FSIMExtractor",
    "FullReferenceExtractor",
    "GMSDExtractor",
    "HaarPSIExtractor",
    "MSSSIMExtractor",
    "NSSExtractor",
    "NoReferenceExtractor",
    "PSNRExtractor",
    "PseudoReferenceExtractor",
    "SSIMExtractor",
    "VIFpExtractor",
    "check_finite",
    "fsim",
    "full_reference_features",
    "gmsd",
    "haarpsi",
    "load_for",
    "ms_ssim",
    "mse",
    "no_reference_features",
    "psnr",
    "run_extractors",
    "ssim",
    "vifp",
]
