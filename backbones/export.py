"""Export a trained Keras backbone to LiteRT and check that the two agree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["export_litert", "export_litert_float16", "export_pair_parts",
           "max_litert_difference", "pair_parts"]


def export_litert(model: Any, path: str | Path) -> Path:
    """Write ``model`` as a float32 LiteRT flatbuffer with Keras's own exporter."""
    from backbones._keras import require_keras

    require_keras()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.export(str(path), format="litert", verbose=False)
    return path


def export_litert_float16(model: Any, path: str | Path) -> Path:
    """Write ``model`` as a LiteRT flatbuffer with float16 weights (half the size).

    The graph still computes in float32 (the weights are widened when loaded), so the
    runtime and its speed are unchanged; outputs differ from the float32 export by the
    weights' rounding (measure it with :func:`max_litert_difference`). Goes through a
    SavedModel and TensorFlow's converter, as Keras's own exporter writes float32 only.
    """
    import tempfile

    from backbones._keras import require_keras

    require_keras()
    import tensorflow as tf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        model.export(folder, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
        path.write_bytes(converter.convert())
    return path


def max_litert_difference(model: Any, path: str | Path, patches: Any) -> float:
    """Largest absolute difference between Keras and LiteRT outputs on ``patches``."""
    from backbones.runtime import LiteRTBackbone

    expected = np.asarray(model(np.asarray(patches, np.float32), training=False))
    actual = LiteRTBackbone(path)(patches)
    return float(np.abs(expected - actual).max())


def pair_parts(model: Any) -> tuple[Any, Any]:
    """Split a full-reference backbone into (trunk, head) Keras models sharing its layers.

    ``trunk``: patches (N, S, S, 3) → embedding (N, E), the siamese branch;
    ``head``: [reference embedding ‖ distorted embedding] (N, 2E) → the full model's output.
    Composed, they compute what ``model`` computes on six-channel patches.
    """
    from backbones._keras import require_keras
    from backbones.models import ChannelSplit

    keras = require_keras()
    if int(model.input_shape[-1]) != 6:
        raise ValueError(f"{model.name} is not a full-reference backbone (input "
                         f"{model.input_shape})")
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(nested) != 1:
        raise ValueError(f"{model.name}: expected one nested trunk model, found {len(nested)}")
    size = int(model.input_shape[1])
    patches = keras.Input((size, size, 3), name="patches")
    maps = nested[0](patches)
    maps = maps if isinstance(maps, (list, tuple)) else [maps]
    pooled = [model.get_layer(f"trunk_gap{i}")(m) for i, m in enumerate(maps)]
    embedding = model.get_layer("trunk_levels")(pooled)
    trunk = keras.Model(patches, embedding, name=f"{model.name}_trunk_part")

    width = int(embedding.shape[-1])
    pair = keras.Input((2 * width,), name="embedding_pair")
    f_ref, f_dist = ChannelSplit(width, name="split_embeddings")(pair)
    difference = model.get_layer("difference")([f_dist, f_ref])
    features = model.get_layer("fr_features")([difference, f_dist])
    normalised = model.get_layer("feature_norm")(features)
    hidden = model.get_layer("quality_dropout")(model.get_layer("quality_hidden")(normalised))
    quality = model.get_layer("quality")(hidden)
    weight = model.get_layer("weight")(model.get_layer("weight_hidden")(normalised))
    output = model.get_layer("features_quality_weight")([features, quality, weight])
    head = keras.Model(pair, output, name=f"{model.name}_head_part")
    return trunk, head


def export_pair_parts(model: Any, folder: str | Path, stem: str) -> tuple[Path, Path]:
    """Export a full-reference backbone's trunk and head parts, checked against it.

    Writes ``<stem>.trunk.tflite`` and ``<stem>.head.tflite`` after checking that
    LiteRT's composition of the two equals the Keras model within 1e-4 on random pairs.

    Raises
    ------
    ValueError
        If the composition differs (the parts would score differently).
    """
    from backbones.runtime import LiteRTFunction

    trunk, head = pair_parts(model)
    folder = Path(folder)
    trunk_path = export_litert(trunk, folder / f"{stem}.trunk.tflite")
    head_path = export_litert(head, folder / f"{stem}.head.tflite")
    size = int(model.input_shape[1])
    pairs = np.random.default_rng(0).random((3, size, size, 6)).astype(np.float32)
    expected = np.asarray(model(pairs, training=False))
    embed = LiteRTFunction(trunk_path)
    composed = LiteRTFunction(head_path)(np.concatenate(
        [embed(pairs[..., :3]), embed(pairs[..., 3:])], axis=1))
    difference = float(np.abs(expected - composed).max())
    if difference > 1e-4:
        raise ValueError(f"{model.name}: the exported parts differ from the model by "
                         f"{difference:.2e}")
    return trunk_path, head_path
