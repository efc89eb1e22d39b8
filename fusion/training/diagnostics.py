"""Train and measure the distortion-family diagnostics (:mod:`fusion.diagnostics`).

The training set holds every synthetic type of both generators on the pristine references
of :mod:`fusion.training.calibrated` (Kodak, scikit-image photographs, best-rated CLIVE
photographs): KADID-10k's 25 types at levels 1–7 and the 13 home-made types at levels 1–5,
each labelled with its family (:func:`fusion.diagnostics.family_of`; a distorted image
equal to its reference is ``"none"``, see :func:`family_labels`), and ``"none"`` items —
each reference, its mirror image and copies down-scaled to 75 % and 50 % (an undistorted
photograph at another size is still undistorted). Full-reference items pair an image with
its reference (a ``"none"`` item with itself); no-reference items are the images alone
(:func:`no_reference_view`).

:func:`cross_validated_probabilities` gives out-of-fold probabilities with folds disjoint
by content, :func:`diagnostics_report` the accuracy, per-family recall, confusion matrix
and expected calibration error, overall and for level 1 alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fusion.datasets import Dataset, DatasetItem
from fusion.diagnostics import FAMILY_NAMES, Diagnoser, family_of
from fusion.features.contract import Extractor

__all__ = ["build_classifier", "cross_validated_probabilities", "diagnostic_synthetic",
           "diagnostics_report", "expected_calibration_error", "family_labels",
           "fit_diagnoser", "no_reference_view", "pristine_variants"]

#: Down-scaling factors of the extra ``"none"`` items (besides the reference and its mirror);
#: a copy whose shorter side would fall below :data:`NONE_MIN_SIDE` is not made.
NONE_SCALES = (0.75, 0.5)
NONE_MIN_SIDE = 192


def pristine_variants(references: Sequence[Path], out_dir: str | Path) -> list[Path]:
    """Each reference's mirror image and down-scaled copies, written once as PNG files.

    Copies whose shorter side would be below :data:`NONE_MIN_SIDE` pixels are skipped.
    """
    from PIL import Image

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    made = []
    for source in references:
        with Image.open(source) as opened:
            rgb = opened.convert("RGB")
        variants = {"mirror": rgb.transpose(Image.Transpose.FLIP_LEFT_RIGHT)}
        for scale in NONE_SCALES:
            size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
            if min(size) < NONE_MIN_SIDE:
                continue
            variants[f"scale{round(scale * 100)}"] = rgb.resize(size, Image.Resampling.LANCZOS)
        for name, image in variants.items():
            path = out / f"{source.stem}__none__{name}.png"
            if not path.exists():
                image.save(path)
            made.append(path)
    return made


def diagnostic_synthetic(data: str | Path, work: str | Path, *, jobs: int = 1,
                         kadid_work: str | Path | None = None, kodak: int | None = None,
                         clive_best: int = 16, packages: bool = True,
                         kadid_levels: Sequence[int] = (1, 2, 3, 4, 5, 6, 7),
                         classic_levels: Sequence[int] = (1, 2, 3, 4, 5),
                         progress: bool = False) -> Dataset:
    """The full-reference training set of the diagnostics (module docstring).

    Parameters
    ----------
    data : folder
        The shared data folder (Kodak, CLIVE, KADID-10k's score file).
    work : folder
        Where the home-made distortions and the ``"none"`` variants are written.
    kadid_work : folder, optional
        Where the KADID-10k set is (or is to be) made; default ``work`` (the
        full-reference benchmark's folder reuses its images).
    kodak, clive_best, packages
        Which references (see :func:`fusion.training.calibrated.reference_groups`).
    kadid_levels, classic_levels
        Levels of each generator.

    Returns
    -------
    Dataset
        Mode ``"fr"``; content ids ``<group>/<name>``; ``distortion`` is the type (or
        ``"none"``) and ``level`` its level (0 for ``"none"``).
    """
    from joblib import Parallel, delayed

    from fusion.distortions import DISTORTIONS, generate_synthetic
    from fusion.training.calibrated import calibrated_synthetic, reference_groups

    data, work = Path(data), Path(work)
    kadid_root = Path(kadid_work) if kadid_work is not None else work
    groups = reference_groups(data, kadid_root, clive_best=clive_best, kodak=kodak,
                              packages=packages)
    kadid = calibrated_synthetic(groups, kadid_root / "synthetic",
                                 data / "score_files" / "kadid10k" / "names_with_mos.txt",
                                 levels=kadid_levels, jobs=jobs, progress=progress)
    classic = Parallel(n_jobs=jobs)(
        delayed(generate_synthetic)(paths, work / "classic" / group, kinds=list(DISTORTIONS),
                                    levels=classic_levels, max_side=512)
        for group, paths in groups.items())
    items = list(kadid)
    for group, made in zip(groups, classic, strict=True):
        items += [replace(i, content_id=f"{group}/{i.content_id}") for i in made]
    references = {i.content_id: i.reference for i in kadid if i.reference is not None}
    for content, reference in references.items():
        group = content.split("/", 1)[0]
        for variant in pristine_variants([reference], work / "none" / group):
            items.append(DatasetItem(image=variant, reference=variant, score=None,
                                     raw_score=None, content_id=content, distortion="none",
                                     level=0))
    return Dataset(name="diagnostics_synthetic", mode="fr", items=tuple(items), scale=None,
                   root=work, description=(
                       f"{kadid.description}; plus the 13 home-made types at levels "
                       f"{min(classic_levels)}–{max(classic_levels)} and, as 'none', each "
                       "reference, its mirror and copies down-scaled to 75 % and 50 %"))


def no_reference_view(dataset: Dataset) -> Dataset:
    """The same items as images alone (no-reference mode)."""
    return replace(dataset, mode="nr", name=f"{dataset.name}_nr",
                   items=tuple(replace(i, reference=None) for i in dataset))


def family_labels(dataset: Dataset, unchanged: NDArray[np.bool_] | None = None
                  ) -> NDArray[np.intp]:
    """Each item's family as an index into :data:`FAMILY_NAMES`.

    ``unchanged`` marks items whose distorted image equals its reference pixel for pixel
    (mean squared error 0): they are labelled ``"none"`` whatever made them, since nothing
    can tell them from an undistorted image — KADID-10k's mean shift at level 3 shifts by
    0, and its mildest blurs can leave a small image unchanged after rounding.
    """
    labels = np.array([FAMILY_NAMES.index(family_of(i.distortion)) for i in dataset],
                      dtype=np.intp)
    if unchanged is not None:
        if len(unchanged) != len(labels):
            raise ValueError(f"{len(unchanged)} unchanged flags for {len(labels)} items")
        labels[np.asarray(unchanged, dtype=bool)] = FAMILY_NAMES.index("none")
    return labels


def build_classifier(splits: Sequence[tuple[NDArray[np.intp], NDArray[np.intp]]], *,
                     seed: int = 0) -> Any:
    """Boosted trees whose probabilities are calibrated by temperature scaling.

    ``splits`` are the (train, test) index pairs of the calibration's cross-validation
    (content-disjoint, :func:`fusion.stacking.grouped_splits`): the temperature is fitted
    on the trees' out-of-fold probabilities, i.e. on contents they were not fitted on,
    then one model is fitted on every item (``ensemble=False``: one set of trees to
    store and to run). Temperature scaling (one parameter) keeps the ranking of the
    families and fixes the trees' over-confidence on new contents; isotonic calibration
    per class measured worse (expected calibration error 0.08 against 0.02 without a
    reference, ``benchmarks/diagnostics.py``).
    """
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier

    trees = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.08, max_leaf_nodes=15,
                                           min_samples_leaf=40, l2_regularization=1.0,
                                           random_state=seed)
    return CalibratedClassifierCV(trees, method="temperature", cv=list(splits),
                                  ensemble=False)


def fit_diagnoser(values: NDArray[np.float64], feature_names: Sequence[str],
                  labels: NDArray[np.intp], contents: NDArray[Any], *,
                  extractors: Sequence[Extractor] = (), seed: int = 0) -> Diagnoser:
    """Fit a :class:`Diagnoser` on a feature matrix with family labels.

    Raises
    ------
    ValueError
        If the shapes differ or a value is not finite.
    """
    from fusion.stacking import grouped_splits

    values = np.asarray(values, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.intp)
    if values.shape != (len(labels), len(feature_names)):
        raise ValueError(f"features have shape {values.shape}, expected "
                         f"({len(labels)}, {len(feature_names)})")
    if len(np.asarray(contents)) != len(labels):
        raise ValueError("one content id per row is needed")
    if not np.isfinite(values).all():
        raise ValueError("diagnostic features must be finite")
    splits = grouped_splits(np.asarray(contents), labels.astype(np.float64), seed=seed)
    classifier = build_classifier(splits, seed=seed).fit(values, labels)
    # The folds were only needed to fit; keep their count, not 5 index arrays (smaller,
    # faster to load bundles).
    classifier.set_params(cv=len(splits))
    return Diagnoser(feature_names, classifier, extractors)


def cross_validated_probabilities(values: NDArray[np.float64], labels: NDArray[np.intp],
                                  contents: NDArray[Any], *, folds: int = 5,
                                  seed: int = 0) -> NDArray[np.float64]:
    """Out-of-fold class probabilities, folds disjoint by content."""
    from fusion.splits import ContentKFold

    names = [f"f{k}" for k in range(values.shape[1])]
    proba = np.full((len(labels), len(FAMILY_NAMES)), np.nan)
    for train, test in ContentKFold(folds, seed=seed).split(np.asarray(contents),
                                                            labels.astype(np.float64)):
        diagnoser = fit_diagnoser(values[train], names, labels[train],
                                  np.asarray(contents)[train], seed=seed)
        proba[test] = diagnoser.probabilities_of(values[test])
    return proba


def expected_calibration_error(proba: NDArray[np.float64], labels: NDArray[np.intp], *,
                               bins: int = 15) -> float:
    """Top-label expected calibration error (Guo et al., ICML 2017), equal-width bins.

    Σ_b (n_b / n) · |accuracy_b − mean confidence_b| over bins of the top probability.
    """
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            error += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(error)


def diagnostics_report(proba: NDArray[np.float64], labels: NDArray[np.intp],
                       levels: NDArray[np.intp]) -> dict[str, Any]:
    """Accuracy, per-family recall, confusion matrix and ECE; level 1 also alone.

    Returns
    -------
    dict
        ``all``, ``level_1`` and ``level_2_plus`` (with ``"none"`` items in both of the
        last two, so each is a complete problem), each with ``n``, ``top1``, ``ece``,
        ``recall`` (per family) and ``confusion`` (rows: true family, columns: predicted,
        in :data:`FAMILY_NAMES` order).
    """
    none = labels == FAMILY_NAMES.index("none")

    def part(mask: NDArray[np.bool_]) -> dict[str, Any]:
        predicted = proba[mask].argmax(axis=1)
        truth = labels[mask]
        confusion = np.zeros((len(FAMILY_NAMES),) * 2, dtype=int)
        np.add.at(confusion, (truth, predicted), 1)
        recall = {f: (float(confusion[k, k] / confusion[k].sum()) if confusion[k].sum()
                      else None) for k, f in enumerate(FAMILY_NAMES)}
        return {"n": int(mask.sum()), "top1": float(np.mean(predicted == truth)),
                "ece": expected_calibration_error(proba[mask], truth), "recall": recall,
                "confusion": confusion.tolist()}

    return {"families": list(FAMILY_NAMES), "all": part(np.ones(len(labels), dtype=bool)),
            "level_1": part((levels == 1) | none), "level_2_plus": part((levels >= 2) | none)}
