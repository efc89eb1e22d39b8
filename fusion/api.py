"""``fusion.predict``, ``fusion.load`` and ``fusion.save``: the public entry points.

The embedded default bundles (no-reference and full-reference) ship inside the package
in ``fusion/models/``. Each is loaded on first use, once per process (concurrent first
calls load it once), and kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fusion._once import BuiltOnce

if TYPE_CHECKING:
    from fusion.io import ImageInput
    from fusion.model import FusionModel
    from fusion.prediction import Prediction

__all__ = ["DEFAULT_BUNDLES", "default_bundle_path", "default_model", "load", "predict",
           "save"]

#: Package-relative folders of the embedded default bundles.
DEFAULT_BUNDLES = {"nr": "models/default_nr", "fr": "models/default_fr"}

_defaults: BuiltOnce[FusionModel] = BuiltOnce()


def load(path: str | Path, *, num_threads: int | None = None) -> FusionModel:
    """Load a model bundle (a directory or a ``.zip``), verifying it (see :mod:`fusion.bundle`).

    Parameters
    ----------
    path : str or Path
        A bundle directory or zip (written by :func:`save`).
    num_threads : int, optional
        Threads of each LiteRT interpreter (default: LiteRT's).

    Returns
    -------
    FusionModel
        Fitted, ready to :meth:`~FusionModel.predict`.

    Raises
    ------
    fusion.BundleError
        If any check fails: hashes, files, format version, extractor versions, names.
    """
    from fusion.bundle import load_bundle

    return load_bundle(path, num_threads=num_threads)


def save(model: FusionModel, path: str | Path, *,
         backbone_keras: Mapping[str, str | Path] | None = None,
         training: dict[str, Any] | None = None) -> Path:
    """Save a fitted model as a bundle directory (or a ``.zip`` when ``path`` ends so).

    Parameters
    ----------
    model : FusionModel
        A fitted model.
    path : str or Path
        A new (or empty) directory, or a ``.zip`` file.
    backbone_keras : mapping, optional
        Backbone name → path of its trained heads saved as ``.keras`` (to retrain).
    training : dict, optional
        What to record about the training data and held-out metrics.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If the model is not fitted.
    FileExistsError
        If ``path`` is a directory that is not empty.
    """
    from fusion.bundle import save_bundle

    return save_bundle(model, path, backbone_keras=backbone_keras, training=training)


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
    return _defaults.get(mode, lambda: load(default_bundle_path(mode)))


def predict(image: ImageInput, reference: ImageInput | None = None, *,
            quality_map: bool = False, data_range: float | None = None) -> Prediction:
    """Score an image on 0–100 (higher = better) with the embedded default model.

    ``predict(image)`` uses the no-reference model; ``predict(image, reference)`` the
    full-reference one. The result carries the score, its interval, the mode, the model
    and each component's value (and, on request, a per-patch quality map).

    Parameters
    ----------
    image : str, os.PathLike, PIL.Image.Image or ndarray
        The image to score: H×W, H×W×1, H×W×3 or H×W×4; uint8, uint16, or float in
        [0, 1].
    reference : same types, optional
        Its pristine original, of the same height and width.
    quality_map : bool, default False
        Also return the per-patch quality map.
    data_range : float, optional
        The white level of array input, e.g. 4095 for 12-bit data in a uint16 array or
        255 for float data on 0–255 (default: 1 for floats, the dtype's maximum for
        integers).

    Returns
    -------
    Prediction

    Raises
    ------
    fusion.InvalidImageError
        (a :class:`ValueError`) for an unsupported type, dtype, shape or value range, or
        non-finite pixels; its subclasses :class:`fusion.ShapeMismatchError` (image and
        reference differ in size), :class:`fusion.ImageTooSmallError` and
        :class:`fusion.ImageTooLargeError`.
    fusion.ImageReadError
        (an :class:`OSError`) for a missing, unreadable or truncated file
        (:class:`fusion.ImageNotFoundError` when it does not exist).
    fusion.NonFiniteFeatureError
        (a :class:`ValueError`) if a feature value is not finite, naming the extractor.
    fusion.BundleError
        If the embedded default bundle fails its checks (a damaged install).

    Examples
    --------
    >>> import fusion
    >>> reference, distorted = fusion.example_pair()
    >>> result = fusion.predict(distorted)
    >>> 0 <= result.score <= 100 and result.mode
    'nr'
    """
    mode = "nr" if reference is None else "fr"
    return default_model(mode).predict(image, reference, quality_map=quality_map,
                                       data_range=data_range)
