"""Keras CNN backbones for IQA and the TensorFlow-free runtime that serves them.

This package is the lower layer: architectures (:mod:`backbones.models`, the registry),
the ImageNet weight reader, patch sampling and pooling, the LiteRT export and runtime.
It imports nothing from ``fusion``; training that needs datasets, splits and metrics
lives in :mod:`fusion.training`.

Building (``get_backbone``, ``imagenet_classifier``) needs the ``train`` extra (TensorFlow
+ Keras). Serving (:class:`LiteRTBackbone`), hashing and the patch utilities need
neither; importing this package imports neither.
"""

from backbones.hashing import sha256_of
from backbones.patches import (
    PATCH_SIZE,
    PatchGrid,
    grid_positions,
    pool_outputs,
    random_positions,
    take_patches,
    weighted_quality,
)
from backbones.registry import (
    BACKBONES,
    BackboneSpec,
    get_backbone,
    imagenet_classifier,
    list_backbones,
    load_keras,
    spec_of,
)
from backbones.runtime import BackboneFileError, LiteRTBackbone, SplitPairBackbone

__all__ = [
    "BACKBONES",
    "PATCH_SIZE",
    "BackboneFileError",
    "BackboneSpec",
    "LiteRTBackbone",
    "PatchGrid",
    "SplitPairBackbone",
    "get_backbone",
    "grid_positions",
    "imagenet_classifier",
    "list_backbones",
    "load_keras",
    "pool_outputs",
    "random_positions",
    "sha256_of",
    "spec_of",
    "take_patches",
    "weighted_quality",
]
