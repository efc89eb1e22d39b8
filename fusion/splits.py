"""Splits that keep every content (reference image) on one side only.

A model that has seen other distortions of a test image's reference has seen the test
image's content, and its test scores are inflated. Every split here is therefore by
``content_id`` (the reference for full-reference data, the image itself for authentic
no-reference data), never by distorted image, and each function checks its own output.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from numpy.typing import NDArray

from fusion.datasets import Dataset

__all__ = ["ContentKFold", "assert_disjoint", "cross_database", "train_val_test_split"]

Indices = NDArray[np.intp]
GroupsLike = Dataset | Sequence[str] | NDArray[np.str_]


class ContentKFold:
    """K-fold cross-validation by content, seeded, optionally stratified by score.

    Behaves like scikit-learn's ``GroupKFold`` (``split(X, y, groups)``) so it can be
    passed as ``cv=`` to scikit-learn, and also splits a :class:`Dataset` directly.

    Parameters
    ----------
    n_splits : int, default 5
    seed : int, default 0
        Shuffles the contents; the same seed gives the same folds.
    stratify : bool, default True
        Sort contents by their mean score and deal each run of ``n_splits`` neighbours to
        different folds (in a seeded order), so every fold spans the score range. Without
        scores, contents are dealt in shuffled order.

    Examples
    --------
    >>> groups = ["a", "a", "b", "b", "c", "d", "e", "e"]
    >>> folds = list(ContentKFold(n_splits=2, seed=1).split(groups))
    >>> all(set(np.array(groups)[tr]).isdisjoint(np.array(groups)[te]) for tr, te in folds)
    True
    """

    def __init__(self, n_splits: int = 5, *, seed: int = 0, stratify: bool = True) -> None:
        self.n_splits = n_splits
        self.seed = seed
        self.stratify = stratify

    def get_n_splits(self, X: object = None, y: object = None, groups: object = None) -> int:
        """Number of folds (scikit-learn's splitter protocol)."""
        return self.n_splits

    def split(self, X: GroupsLike | object, y: Sequence[float] | NDArray[np.floating] | None
              = None, groups: Sequence[str] | NDArray[np.str_] | None = None
              ) -> Iterator[tuple[Indices, Indices]]:
        """Yield ``(train_indices, test_indices)`` for each fold.

        Parameters
        ----------
        X : Dataset, sequence of content ids, or any array-like
            A :class:`Dataset` supplies its own content ids and scores; a sequence of
            strings is taken as the content ids; otherwise ``groups`` must be given.
        y : array-like, optional
            Scores for stratification (a Dataset's own scores are used by default).
        groups : array-like of str, optional
            Content ids, as for scikit-learn's group splitters.
        """
        content, scores = _groups_and_scores(X, y, groups)
        if self.n_splits < 2:
            raise ValueError(f"n_splits must be at least 2, got {self.n_splits}")
        unique = np.unique(content)
        if unique.size < self.n_splits:
            raise ValueError(f"cannot make {self.n_splits} folds from {unique.size} contents")
        fold_of = _deal(unique, content, scores, self.n_splits, self.seed, self.stratify)
        item_fold = fold_of[np.searchsorted(unique, content)]
        for fold in range(self.n_splits):
            test = np.flatnonzero(item_fold == fold)
            train = np.flatnonzero(item_fold != fold)
            assert_disjoint(content, train, test)
            yield train, test


def train_val_test_split(
    data: GroupsLike, *, fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    seed: int = 0, scores: Sequence[float] | NDArray[np.floating] | None = None,
) -> tuple[Indices, Indices, Indices]:
    """A fixed train / validation / test split by content.

    Contents are shuffled (seeded) and assigned in order until each part holds about its
    fraction of the *contents*. With scores (a Dataset's own by default) the assignment is
    stratified like :class:`ContentKFold`.

    Returns
    -------
    train, validation, test : ndarray of int
        Item indices; no content appears in two of them.
    """
    if len(fractions) != 3 or min(fractions) < 0 or not np.isclose(sum(fractions), 1.0):
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, "
                         f"got {fractions}")
    content, values = _groups_and_scores(data, scores, None)
    unique = np.unique(content)
    if unique.size < 3:
        raise ValueError(f"need at least 3 contents for three parts, got {unique.size}")
    # Deal contents into 20 strata-ordered slots, then give each part its share of slots.
    slots = 20
    slot_of = _deal(unique, content, values, min(slots, unique.size), seed, True)
    order = np.random.default_rng(seed).permutation(int(slot_of.max()) + 1)
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    position = (rank[slot_of] + 0.5) / order.size  # in (0, 1), uniform over contents
    cuts = np.cumsum(fractions)[:2]
    part_of_content = np.searchsorted(cuts, position, side="right")
    part = part_of_content[np.searchsorted(unique, content)]
    train, validation, test = (np.flatnonzero(part == k) for k in range(3))
    assert_disjoint(content, train, validation)
    assert_disjoint(content, train, test)
    assert_disjoint(content, validation, test)
    return train, validation, test


def cross_database(train: Dataset, test: Dataset) -> tuple[Dataset, Dataset]:
    """Check that two databases can serve as train and test set, and return them.

    Raises
    ------
    ValueError
        If their modes differ, or if a content id occurs in both (e.g. TID2008 and
        TID2013 share their 25 references: test on one, train on the other, and the
        test is not content-disjoint).
    """
    if train.mode != test.mode:
        raise ValueError(f"cannot train on {train.name} ({train.mode}) and test on "
                         f"{test.name} ({test.mode})")
    shared = set(train.content_ids) & set(test.content_ids)
    if shared:
        examples = ", ".join(sorted(shared)[:5])
        raise ValueError(f"{train.name} and {test.name} share {len(shared)} content id(s) "
                         f"({examples}); a cross-database test needs disjoint contents")
    return train, test


def assert_disjoint(content: NDArray[np.str_] | Sequence[str], first: Indices,
                    second: Indices) -> None:
    """Raise ``RuntimeError`` if a content id is in both index sets (a split bug)."""
    ids = np.asarray(content)
    overlap = set(ids[first].tolist()) & set(ids[second].tolist())
    if overlap:
        raise RuntimeError(f"split is not content-disjoint: {sorted(overlap)[:5]}")


# --------------------------------------------------------------------------- helpers


def _groups_and_scores(
    data: object, scores: object, groups: object
) -> tuple[NDArray[np.str_], NDArray[np.float64] | None]:
    values: NDArray[np.float64] | None
    if isinstance(data, Dataset):
        content = data.content_ids
        values = data.scores if scores is None else np.asarray(scores, dtype=np.float64)
    elif groups is not None:
        content = np.asarray(groups).astype(str)
        values = None if scores is None else np.asarray(scores, dtype=np.float64)
    elif isinstance(data, (list, tuple, np.ndarray)) and len(data) and \
            isinstance(np.asarray(data).ravel()[0], str):
        content = np.asarray(data).astype(str)
        values = None if scores is None else np.asarray(scores, dtype=np.float64)
    else:
        raise ValueError("give a Dataset, a sequence of content ids, or groups=")
    if content.ndim != 1 or content.size == 0:
        raise ValueError("content ids must be a non-empty one-dimensional sequence")
    if values is not None:
        if values.shape != content.shape:
            raise ValueError(f"{values.size} scores for {content.size} items")
        if not np.isfinite(values).any():
            values = None  # unrated data: nothing to stratify on
    return content, values


def _deal(unique: NDArray[np.str_], content: NDArray[np.str_],
          scores: NDArray[np.float64] | None, n_parts: int, seed: int,
          stratify: bool) -> NDArray[np.intp]:
    """Part index of each unique content, dealt round-robin in (stratified) order."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(unique.size)
    if stratify and scores is not None:
        index = np.searchsorted(unique, content)
        finite = np.isfinite(scores)
        sums = np.bincount(index[finite], weights=scores[finite], minlength=unique.size)
        counts = np.bincount(index[finite], minlength=unique.size)
        means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nanmean(scores))
        order = order[np.argsort(means[order], kind="stable")]
    part = np.empty(unique.size, dtype=np.intp)
    for start in range(0, unique.size, n_parts):
        block = order[start : start + n_parts]
        part[block] = rng.permutation(n_parts)[: block.size]
    return part
