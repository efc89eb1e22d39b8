"""``fusion.predict`` and ``fusion.load``: the public entry points to the fused model.

The embedded default bundles (no-reference and full-reference) ship inside the package
in ``fusion/models/``. Each is loaded on first use, once per process (a lock makes
concurrent first calls safe), and kept.
"""

from __future__ import annotations

import threading
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fusion.io import ImageInput
    from fusion.model import FusionModel, Prediction

__all__ = ["DEFAULT_BUNDLES", "default_bundle_path", "default_model", "load", "predict"]

#: Package-relative folders of the embedded default bundles.
DEFAULT_BUNDLES = {"nr": "models/default_nr", "fr": "models/default_fr"}

_lock = threading.Lock()
_defaults: dict[str, FusionModel] = {}


def load(path: str | Path, *, num_threads: int | None = None) -> FusionModel:
    """Load a model bundle (a directory or a ``.zip``), verifying it (see :mod:`fusion.bundle`).

    Raises
    ------
    fusion.bundle.BundleError
        If any check fails: hashes, files, format version, extractor versions, names.
    """
    from fusion.bundle import load_bundle

    return load_bundle(path, num_threads=num_threads)


def default_bundle_path(mode: str) -> Path:
    """The folder of the embedded default bundle of ``mode`` ("nr" or "fr").

    Raises
    ------
    FileNotFoundError
        If the bundle is not installed.
    """
    if mode not in DEFAULT_BUNDLES:
        raise ValueError(f"mode must be 'nr' or 'fr', got {mode!r}")
    folder = Path(str(resources.files("fusion") / DEFAULT_BUNDLES[mode]))
    if not (folder / "metadata.json").is_file():
        raise FileNotFoundError(f"the default {mode} bundle is not installed at {folder}; "
                                "train it with benchmarks/train_defaults.py")
    return folder


def default_model(mode: str) -> FusionModel:
    """The embedded default model of ``mode`` ("nr" or "fr"), loaded once."""
    model = _defaults.get(mode)
    if model is None:
        folder = default_bundle_path(mode)
        with _lock:
            model = _defaults.get(mode)
            if model is None:
                model = load(folder)
                _defaults[mode] = model
    return model


def predict(image: ImageInput, reference: ImageInput | None = None, *,
            quality_map: bool = False) -> Prediction:
    """Score an image on 0–100 (higher = better) with the embedded default model.

    ``predict(image)`` uses the no-reference model; ``predict(image, reference)`` the
    full-reference one. The result carries the score, its interval, the mode, the model
    and each component's value (and, on request, a per-patch quality map).

    Examples
    --------
    >>> import fusion
    >>> reference, distorted = fusion.example_pair()
    >>> result = fusion.predict(distorted)
    >>> 0 <= result.score <= 100 and result.mode
    'nr'
    """
    mode = "nr" if reference is None else "fr"
    return default_model(mode).predict(image, reference, quality_map=quality_map)
