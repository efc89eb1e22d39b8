"""Compute (or reuse) the handcrafted features of every item of a dataset."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from fusion.cache import FeatureCache, content_key
from fusion.datasets import Dataset
from fusion.features import (
    FULL_REFERENCE_EXTRACTORS,
    NO_REFERENCE_EXTRACTORS,
    Extractor,
    run_extractors,
)

__all__ = ["FeatureTable", "compute_features", "compute_features_parallel"]


@dataclass
class FeatureTable:
    """Feature vectors of a dataset's items, one row per item.

    Attributes
    ----------
    values : ndarray of shape (n_items, n_features)
        NaN rows for items that failed (see ``errors``).
    feature_names : tuple of str
    higher_is_better : tuple of bool or None
        Direction of each feature (None: no inherent direction).
    extractor_keys : tuple of str
        ``name_Vversion`` of the extractors that produced the columns.
    errors : dict of int to str
        Item index → ``"ExceptionType: message"`` for the items that failed.
    from_cache, computed : int
        How many (item, extractor) results came from the cache and how many were computed.
    """

    values: NDArray[np.float64]
    feature_names: tuple[str, ...]
    higher_is_better: tuple[bool | None, ...]
    extractor_keys: tuple[str, ...]
    errors: dict[int, str] = field(default_factory=dict)
    from_cache: int = 0
    computed: int = 0

    def column(self, name: str) -> NDArray[np.float64]:
        """The values of one feature."""
        try:
            return self.values[:, self.feature_names.index(name)]
        except ValueError:
            raise KeyError(f"no feature {name!r}; have {', '.join(self.feature_names)}") from None

    @property
    def ok(self) -> NDArray[np.bool_]:
        """Mask of the items without error."""
        mask = np.ones(len(self.values), dtype=bool)
        mask[list(self.errors)] = False
        return mask


def compute_features(
    dataset: Dataset,
    extractors: Sequence[Extractor] | None = None,
    *,
    cache: FeatureCache | str | Path | None = None,
    progress: bool | None = None,
) -> FeatureTable:
    """Features of every item, reusing cached ones; a failing item is recorded, not fatal.

    Features are computed by :func:`fusion.features.run_extractors`, as in prediction,
    so the same checks apply: an item whose image is invalid or unreadable, or whose
    features are not all finite, is recorded in ``errors`` with a NaN row.

    Parameters
    ----------
    dataset : Dataset
    extractors : sequence of extractors, optional
        Default: the full-reference extractors for a full-reference dataset, the
        no-reference ones for a no-reference dataset.
    cache : FeatureCache, path or None
        Where to look results up and store new ones (a path opens and closes a cache).
    progress : bool or None
        Show a tqdm progress bar; None shows it on a terminal only.

    Returns
    -------
    FeatureTable
    """
    if extractors is None:
        extractors = FULL_REFERENCE_EXTRACTORS if dataset.mode == "fr" else \
            NO_REFERENCE_EXTRACTORS
    wrong = [e.key for e in extractors if e.mode != dataset.mode]
    if wrong:
        raise ValueError(f"{dataset.name} is a {dataset.mode} dataset; extractors "
                         f"{', '.join(wrong)} are not")
    names = tuple(n for e in extractors for n in e.feature_names)
    directions = tuple(d for e in extractors for d in e.higher_is_better)
    values = np.full((len(dataset), len(names)), math.nan)
    table = FeatureTable(values, names, directions, tuple(e.key for e in extractors))

    owned = cache is not None and not isinstance(cache, FeatureCache)
    store = cache if cache is None or isinstance(cache, FeatureCache) else FeatureCache(cache)
    from tqdm.auto import tqdm

    bar = tqdm(total=len(dataset), desc=f"features {dataset.name}", unit="item",
               disable=None if progress is None else not progress)
    try:
        for index, item in enumerate(dataset):
            try:
                row = _item_features(item.image, item.reference, extractors, store, table)
            except (ValueError, OSError) as exc:
                table.errors[index] = f"{type(exc).__name__}: {exc}"
            else:
                values[index] = row
            bar.update(1)
    finally:
        bar.close()
        if owned and store is not None:
            store.close()
        elif store is not None:
            store.flush()
    return table


def compute_features_parallel(dataset: Dataset, extractors: Sequence[Extractor],
                              cache: str | Path, *, jobs: int = 1,
                              progress: bool = False) -> NDArray[np.float64]:
    """Features of every item in ``jobs`` processes, cached in one HDF5 file.

    Each process fills its own cache (``<stem>_<part>.h5`` beside ``cache``, seeded from
    ``cache``); the parts are merged into ``cache`` at the end and removed, so a later run,
    or one with another number of jobs, reuses everything. Parts left by an interrupted
    run (with any number of jobs) are merged into ``cache`` first, so what they computed
    is not lost.

    Returns
    -------
    ndarray of shape (n_items, n_features)

    Raises
    ------
    RuntimeError
        If any item failed (the first three errors are named).
    """
    import shutil

    from joblib import Parallel, delayed

    merged = Path(cache)
    merged.parent.mkdir(parents=True, exist_ok=True)
    parts = [np.arange(len(dataset))[p::jobs] for p in range(jobs)]
    caches = [merged.with_name(f"{merged.stem}_{p}.h5") for p in range(jobs)]
    leftovers = _leftover_parts(merged)
    if leftovers:  # parts of an interrupted run: keep what they computed
        with FeatureCache(merged) as store:
            store.merge(leftovers)
        for leftover in leftovers:
            leftover.unlink()
    for part_cache in caches:
        if merged.is_file():
            shutil.copyfile(merged, part_cache)
    tables = Parallel(n_jobs=jobs)(
        delayed(compute_features)(dataset.subset(part), extractors, cache=part_cache,
                                  progress=progress and p == 0)
        for p, (part, part_cache) in enumerate(zip(parts, caches, strict=True)))
    values = np.full((len(dataset), len(tables[0].feature_names)), np.nan)
    for part, table in zip(parts, tables, strict=True):
        if table.errors:
            raise RuntimeError(f"feature errors: {dict(list(table.errors.items())[:3])}")
        values[part] = table.values
    with FeatureCache(merged) as store:  # one cache for later runs
        store.merge(caches)
    for part_cache in caches:  # all in the merged cache now
        part_cache.unlink(missing_ok=True)
    return values


def _leftover_parts(merged: Path) -> list[Path]:
    """Part caches (``<stem>_<index>.h5``) left beside ``merged`` by a run that did not finish."""
    leftovers = []
    for path in merged.parent.glob(f"{merged.stem}_*.h5"):
        index = path.stem.rsplit("_", 1)[1]
        if index.isdigit() and int(index) < 256:  # a part index, not e.g. a year
            leftovers.append(path)
    return sorted(leftovers)


def _item_features(image: Path, reference: Path | None,
                   extractors: Sequence[Extractor], cache: FeatureCache | None,
                   table: FeatureTable) -> list[float]:
    key = content_key(image, reference) if cache is not None else ""
    results: dict[str, dict[str, float]] = {}
    for extractor in extractors:
        cached = cache.get(extractor.key, key) if cache is not None else None
        if cached is not None:
            results[extractor.key] = cached
    table.from_cache += len(results)
    if len(results) < len(extractors):
        computed = run_extractors(extractors, image, reference, skip=results,
                                  names=("image", "reference"))
        for extractor_key, values in computed.items():
            results[extractor_key] = values
            if cache is not None:
                cache.put(extractor_key, key, values)
        table.computed += len(computed)
    return [results[e.key][n] for e in extractors for n in e.feature_names]
