"""The registry of backbones: one dict of factories, looked up by name.

Importing this module does not import Keras or TensorFlow; :func:`get_backbone` does.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["BACKBONES", "BackboneSpec", "get_backbone", "imagenet_classifier", "list_backbones",
           "load_keras", "spec_of"]


@dataclass(frozen=True)
class BackboneSpec:
    """How a registered backbone is built and fed."""

    factory: str  # "module:function" in backbones, imported on use
    patch_size: int
    max_patches: int
    pretrained: bool
    description: str
    options: tuple[tuple[str, Any], ...] = ()


_LITE = "backbones.models:build_efficientnet_iqa"
_APPLICATIONS = "backbones.models:build_applications"
_APPLICATION_NOTE = "(weights=None or a local hash-checked file)"

#: name: (factory, patch size, max patches, pretrained, description)
_TABLE: dict[str, tuple[str, int, int, bool, str]] = {
    "efficientnet_lite0": (_LITE, 224, 9, True, "EfficientNet-Lite0, ImageNet weights (4.7 M)"
                                                ", frozen trunk"),
    "efficientnet_lite1": (_LITE, 224, 9, True, "EfficientNet-Lite1, ImageNet weights (5.4 M)"
                                                ", frozen trunk"),
    "efficientnet_lite2": (_LITE, 224, 9, True, "EfficientNet-Lite2, ImageNet weights (6.1 M)"
                                                ", frozen trunk"),
    "wadiqam": ("backbones.models:build_wadiqam", 32, 64, False,
                "native deep siamese patch network in the manner of WaDIQaM, trained here"),
    "compact": ("backbones.models:build_compact", 32, 64, False,
                "native compact depthwise-separable network, trained here"),
    "resnet50": (_APPLICATIONS, 224, 9, False,
                 f"keras.applications ResNet50 {_APPLICATION_NOTE}"),
    "inceptionv3": (_APPLICATIONS, 299, 4, False,
                    f"keras.applications InceptionV3 {_APPLICATION_NOTE}"),
    "mobilenetv3small": (_APPLICATIONS, 224, 9, False,
                         f"keras.applications MobileNetV3Small {_APPLICATION_NOTE}"),
}

#: The registry: name → how the backbone is built. Factories shared by several entries
#: (EfficientNet-Lite, ``keras.applications``) are told which one by ``name=``.
BACKBONES: dict[str, BackboneSpec] = {
    name: BackboneSpec(factory, size, patches, pretrained, description,
                       (("name", name),) if factory in (_LITE, _APPLICATIONS) else ())
    for name, (factory, size, patches, pretrained, description) in _TABLE.items()
}


def list_backbones() -> list[str]:
    """Names of the registered backbones."""
    return list(BACKBONES)


def spec_of(name: str) -> BackboneSpec:
    """The registry entry of ``name``; an unknown name suggests the closest ones."""
    if name not in BACKBONES:
        close = difflib.get_close_matches(name, BACKBONES, n=3, cutoff=0.4)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown backbone {name!r}{hint} (known: {', '.join(BACKBONES)})")
    return BACKBONES[name]


def get_backbone(name: str, *, mode: str = "nr", weights: Any = "default",
                 **options: Any) -> Any:
    """Build a registered backbone as a Keras model (needs the ``train`` extra).

    Parameters
    ----------
    name : str
        One of :func:`list_backbones`.
    mode : {"nr", "fr"}
    weights : "default", None, or what the factory accepts
        "default": ImageNet for pretrained trunks, none for the others.
    **options
        Passed to the factory (e.g. ``patch_size``, ``trainable_trunk``).
    """
    spec = spec_of(name)
    factory = _factory(spec.factory)
    kwargs: dict[str, Any] = dict(spec.options)
    if weights != "default":
        kwargs["weights"] = weights
    kwargs.update(options)
    return factory(mode=mode, **kwargs)


def imagenet_classifier(name: str = "efficientnet_lite0") -> Callable[[Any], Any]:
    """A callable mapping float RGB images in [0, 1], (N, 224, 224, 3), to 1,000 logits."""
    import numpy as np

    from backbones.efficientnet_lite import build_efficientnet_lite

    model = build_efficientnet_lite(name, input_shape=(224, 224, 3), include_top=True)

    def classify(images: Any) -> Any:
        batch = np.asarray(images, dtype=np.float32)
        if batch.ndim != 4 or batch.shape[1:] != (224, 224, 3):
            raise ValueError(f"images must have shape (N, 224, 224, 3), got {batch.shape}")
        return np.asarray(model.predict(batch, verbose=0))

    return classify


def _factory(path: str) -> Callable[..., Any]:
    import importlib

    from backbones._keras import require_keras

    require_keras()
    module, function = path.split(":")
    factory: Callable[..., Any] = getattr(importlib.import_module(module), function)
    return factory


def load_keras(path: str | Any) -> Any:
    """Load a saved backbone (``.keras``), registering this package's custom layers first."""
    from backbones._keras import require_keras

    keras = require_keras()
    import backbones.models  # noqa: F401 - registers ChannelSplit with Keras

    return keras.saving.load_model(path)
