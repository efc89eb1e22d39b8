"""Keras CNN backbones for IQA and the TensorFlow-free runtime that serves them.

Building and training (``get_backbone``, ``imagenet_classifier``, ``backbones.training``)
need the ``train`` extra (TensorFlow + Keras). Serving (:class:`LiteRTBackbone`) and the
patch utilities need neither; importing this package imports neither.
"""

from backbones.patches import (
    PATCH_SIZE,
    PatchGrid,
    grid_positions,
    pool_outputs,
    random_positions,
    take_patches,
)
from backbones.registry import (
    BACKBONES,
    get_backbone,
    imagenet_classifier,
    list_backbones,
    load_keras,
)
from backbones.runtime import BackboneFileError, LiteRTBackbone

__all__ = [
    "BACKBONES",
    "PATCH_SIZE",
    "BackboneFileError",
    "LiteRTBackbone",
    "PatchGrid",
    "get_backbone",
    "grid_positions",
    "imagenet_classifier",
    "list_backbones",
    "load_keras",
    "pool_outputs",
    "random_positions",
    "take_patches",
]
