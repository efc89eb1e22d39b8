"""Training: the fused model and its backbones (needs the ``train`` extra).

One subpackage for everything that learns from data, above both :mod:`backbones`
(architectures, export, runtime) and the rest of :mod:`fusion` (datasets, splits,
metrics, features):

* :mod:`fusion.training.fused`: :func:`train_fusion` trains the backbones, computes the
  feature table, fits the stacker and interval, measures on held-out contents and writes
  the bundle.
* :mod:`fusion.training.backbone`: :func:`train_backbone` trains one backbone (frozen
  pretrained trunk: its heads on cached patch features; otherwise end to end).
* :mod:`fusion.training.end_to_end`: the two-stage end-to-end training (synthetic
  severity, then human ratings) with a ``tf.data`` pipeline.

Importing this package imports neither TensorFlow nor Keras; training calls do.
"""

from fusion.training.backbone import TrainingResult, patch_features, train_backbone, train_heads
from fusion.training.fused import add_pair_parts, refit_stacker, save_heads, train_fusion

__all__ = [
    "TrainingResult",
    "add_pair_parts",
    "patch_features",
    "refit_stacker",
    "save_heads",
    "train_backbone",
    "train_fusion",
    "train_heads",
]
