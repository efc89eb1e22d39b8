"""fusion-iqa: image quality assessment that fuses CNN backbones and handcrafted features.

Scores are on 0–100, higher = better: ``fusion.predict(image)`` (no reference) and
``fusion.predict(image, reference)`` (full reference) use the embedded default models;
``fusion.load(path)`` loads another bundle and ``fusion.save(model, path)`` writes one.
:class:`FusionModel` is the estimator behind them (``fit``, ``predict``).

Importing this package loads NumPy only: no TensorFlow, Keras, SciPy or scikit-learn.
"""

from fusion._version import __version__
from fusion.api import load, predict, save
from fusion.errors import (
    BundleError,
    ImageNotFoundError,
    ImageReadError,
    ImageTooLargeError,
    ImageTooSmallError,
    InvalidImageError,
    NonFiniteFeatureError,
    ShapeMismatchError,
)
from fusion.examples import EXAMPLE_NAMES, example_pair
from fusion.features import (
    fsim,
    full_reference_features,
    gmsd,
    haarpsi,
    ms_ssim,
    mse,
    no_reference_features,
    psnr,
    ssim,
    vifp,
)
from fusion.io import Image, load_image, load_pair
from fusion.model import FusionModel
from fusion.prediction import Prediction, QualityMap

__all__ = [
    "EXAMPLE_NAMES",
    "BundleError",
    "FusionModel",
    "Image",
    "ImageNotFoundError",
    "ImageReadError",
    "ImageTooLargeError",
    "ImageTooSmallError",
    "InvalidImageError",
    "NonFiniteFeatureError",
    "Prediction",
    "QualityMap",
    "ShapeMismatchError",
    "__version__",
    "example_pair",
    "fsim",
    "full_reference_features",
    "gmsd",
    "haarpsi",
    "load",
    "load_image",
    "load_pair",
    "ms_ssim",
    "mse",
    "no_reference_features",
    "predict",
    "psnr",
    "save",
    "ssim",
    "vifp",
]
