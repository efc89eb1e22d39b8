"""``fusion.predict``, ``fusion.load`` and ``fusion.save``: the public entry points.

The embedded bundles ship inside the package in ``fusion/models/``, two presets of them:

* ``accurate`` (the default): the no-reference model fuses three EfficientNet-Lite
  backbones (Lite0, Lite1, Lite2) with every handcrafted feature;
* ``fast``: the no-reference model fuses one backbone (Lite0, four patches) with the
  cheap handcrafted features only (no pseudo-references, no diagnostics).

Both presets share the full-reference model (handcrafted metrics, already fast). Each
bundle is loaded on first use, once per process (concurrent first calls load it once),
and kept.
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

__all__ = ["DEFAULT_BUNDLES", "DEFAULT_PRESET", "PRESETS", "bundle_location",
           "default_bundle_path", "default_model", "load", "predict", "save"]

#: Package-relative folders of the embedded bundles of each preset, by mode.
PRESETS: dict[str, dict[str, str]] = {
    "accurate": {"nr": "models/default_nr", "fr": "models/default_fr"},
    "fast": {"nr": "models/fast_nr", "fr": "models/default_fr"},
}
#: The preset used when none is named.
DEFAULT_PRESET = "accurate"
#: Package-relative folders of the default preset's bundles.
DEFAULT_BUNDLES = PRESETS[DEFAULT_PRESET]

_defaults: BuiltOnce[FusionModel] = BuiltOnce()


def load(path: str | Path, *, num_threads: int | None = None) -> FusionModel:
    """Load a model bundle (a directory or a ``.zip``), verifying it (see :mod:`fusion.bundle`).

    Parameters
    ----------
    path : str or Path
        A bundle directory or zip (written by :func:`save`), or a preset name
        (``"accurate"``, ``"fast"``: that preset's embedded no-reference model). A preset
        name is never read as a relative path: write ``"./fast"`` for a folder so named.
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

    return load_bundle(bundle_location(path), num_threads=num_threads)


def bundle_location(path: str | Path) -> str | Path:
    """``path`` itself, or for a preset name its embedded no-reference bundle's folder.

    A preset name is never read as a relative path (write ``"./fast"`` for a folder so
    named).
    """
    if isinstance(path, str) and path in PRESETS:
        return default_bundle_path("nr", preset=path)
    return path


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


def default_bundle_path(mode: str, *, preset: str = DEFAULT_PRESET) -> Path:
    """The folder of the embedded bundle of ``mode`` ("nr" or "fr") in ``preset``.

    Raises
    ------
    ValueError
        For an unknown mode or preset.
    FileNotFoundError
        If the bundle is not installed.
    """
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(map(repr, PRESETS))}, "
                         f"got {preset!r}")
    if mode not in PRESETS[preset]:
        raise ValueError(f"mode must be 'nr' or 'fr', got {mode!r}")
    folder = Path(str(resources.files("fusion") / PRESETS[preset][mode]))
    if not (folder / "metadata.json").is_file():
        raise FileNotFoundError(f"the {preset} {mode} bundle is not installed at {folder}; "
                                "train it with benchmarks/train_defaults.py")
    return folder


def default_model(mode: str, *, preset: str = DEFAULT_PRESET) -> FusionModel:
    """The embedded model of ``mode`` ("nr" or "fr") in ``preset``, loaded once.

    Presets that share a bundle (both full-reference ones) share one loaded model.
    """
    folder = default_bundle_path(mode, preset=preset)
    return _defaults.get(str(folder), lambda: load(folder))


def predict(image: ImageInput, reference: ImageInput | None = None, *,
            quality_map: bool = False, data_range: float | None = None,
            preset: str = DEFAULT_PRESET) -> Prediction:
    """Score an image on 0–100 (higher = better) with an embedded model.

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
    preset : {"accurate", "fast"}, default "accurate"
        Which embedded model: ``fast`` trades accuracy for speed without a reference
        (see the README's table); with a reference both presets use the same model.

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
    model = default_model(mode, preset=preset)
    return model.predict(image, reference, quality_map=quality_map, data_range=data_range)
