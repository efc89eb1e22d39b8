"""Import Keras for building and training, or say which extra installs it."""

from __future__ import annotations

from types import ModuleType

__all__ = ["require_keras"]


def require_keras() -> ModuleType:
    """The ``keras`` module; ImportError naming the ``train`` extra when it is missing."""
    try:
        import keras
    except ImportError as exc:
        raise ImportError("building, training or exporting backbones needs TensorFlow and "
                          "Keras: pip install 'fusion-iqa[train]' (prediction does not)"
                          ) from exc
    module: ModuleType = keras
    return module
