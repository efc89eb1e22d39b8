"""fusion-iqa: image quality assessment that fuses CNN backbones and handcrafted features.

Scores are on 0–100, higher = better. This release provides the validated image input
(:mod:`fusion.io`) and the full-reference handcrafted features (:mod:`fusion.features`);
the fused model is being built (see the README's status).

Importing this package loads NumPy only: no TensorFlow, Keras, SciPy or scikit-learn.
"""

from fusion._version import __version__
from fusion.errors import (
    ImageNotFoundError,
    ImageReadError,
    ImageTooLargeError,
    ImageTooSmallError,
    InvalidImageError,
    ShapeMismatchError,
)
from fusion.examples import EXAMPLE_NAMES, example_pair
from fusion.features import (
    full_reference_features,
    gmsd,
    ms_ssim,
    mse,
    no_reference_features,
    psnr,
    ssim,
    vifp,
)
from fusion.io import Image, load_image, load_pair

__all__ = [
    "EXAMPLE_NAMES",
    "Image",
    "ImageNotFoundError",
    "ImageReadError",
    "ImageTooLargeError",
    "ImageTooSmallError",
    "InvalidImageError",
    "ShapeMismatchError",
    "__version__",
    "example_pair",
    "full_reference_features",
    "gmsd",
    "load_image",
    "load_pair",
    "ms_ssim",
    "mse",
    "no_reference_features",
    "psnr",
    "ssim",
    "vifp",
]
