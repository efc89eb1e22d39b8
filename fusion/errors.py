"""Exceptions raised for bad input, bad models and failed numerics.

Every error the library raises for a bad image or model file is a subclass of
:class:`ValueError` (the data is wrong) or :class:`OSError` (the file is missing or
unreadable), so callers can catch the built-in types, and each message names the
argument and the problem.
"""

from __future__ import annotations

__all__ = [
    "BundleError",
    "ImageNotFoundError",
    "ImageReadError",
    "ImageTooLargeError",
    "ImageTooSmallError",
    "InvalidImageError",
    "NonFiniteFeatureError",
    "ShapeMismatchError",
]


class InvalidImageError(ValueError):
    """An image has an unsupported type, dtype, shape or value range, or non-finite values."""


class ShapeMismatchError(InvalidImageError):
    """A reference and a distorted image do not have the same height and width."""


class ImageTooSmallError(InvalidImageError):
    """An image is smaller than the smallest size a computation needs."""


class ImageTooLargeError(InvalidImageError):
    """An image has more pixels than the configured limit."""


class ImageReadError(OSError):
    """An image file does not exist, cannot be decoded, or is truncated."""


class ImageNotFoundError(ImageReadError, FileNotFoundError):
    """An image path does not exist."""


class NonFiniteFeatureError(ValueError):
    """A feature extractor produced NaN or ±inf; the message names extractor and feature.

    Every extractor defines a finite value for every valid input (degenerate ones
    included), so this is a guard against a numerical bug, never an expected path.
    """


class BundleError(ValueError):
    """A model bundle failed a check while loading (the message names the file and check)."""
