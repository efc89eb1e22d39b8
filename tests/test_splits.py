"""Content-disjoint splits: no content id ever appears on both sides."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fusion.datasets import Dataset, DatasetItem, read_tid2013
from fusion.splits import ContentKFold, assert_disjoint, cross_database, train_val_test_split


def _dataset(n_contents: int = 25, per_content: int = 12, seed: int = 0,
             name: str = "fake", prefix: str = "r") -> Dataset:
    rng = np.random.default_rng(seed)
    items = []
    for c in range(n_contents):
        base = rng.uniform(10, 90)
        for k in range(per_content):
            items.append(DatasetItem(image=Path(f"{prefix}{c}_{k}.png"),
                                     reference=Path(f"{prefix}{c}.png"),
                                     score=float(np.clip(base + rng.normal(0, 5), 0, 100)),
                                     raw_score=None, content_id=f"{prefix}{c}"))
    return Dataset(name=name, mode="fr", items=tuple(items))


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("n_splits", [2, 5, 10])
def test_kfold_is_content_disjoint_and_covers_everything(seed: int, n_splits: int) -> None:
    ds = _dataset(seed=seed)
    ids = ds.content_ids
    seen = np.zeros(len(ds), dtype=int)
    for train, test in ContentKFold(n_splits, seed=seed).split(ds):
        assert set(ids[train]).isdisjoint(ids[test])
        assert len(train) + len(test) == len(ds)
        seen[test] += 1
    assert np.all(seen == 1)  # every item is tested exactly once


def test_kfold_is_seeded_and_stratified() -> None:
    ds = _dataset(n_contents=40)
    first = [t.tolist() for _, t in ContentKFold(5, seed=3).split(ds)]
    again = [t.tolist() for _, t in ContentKFold(5, seed=3).split(ds)]
    other = [t.tolist() for _, t in ContentKFold(5, seed=4).split(ds)]
    assert first == again and first != other
    fold_means = [ds.scores[t].mean() for _, t in ContentKFold(5, seed=3).split(ds)]
    unstratified = [ds.scores[t].mean()
                    for _, t in ContentKFold(5, seed=3, stratify=False).split(ds)]
    assert np.std(fold_means) < np.std(unstratified)


def test_kfold_with_scikit_learn() -> None:
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import cross_val_score

    ds = _dataset()
    x = ds.scores[:, None] + np.random.default_rng(0).normal(0, 1, (len(ds), 1))
    scores = cross_val_score(Ridge(), x, ds.scores, groups=ds.content_ids,
                             cv=ContentKFold(5))
    assert scores.shape == (5,) and np.all(scores > 0.9)


def test_train_val_test_split_is_disjoint() -> None:
    ds = _dataset(n_contents=50)
    train, val, test = train_val_test_split(ds, seed=1)
    ids = ds.content_ids
    for a, b in ((train, val), (train, test), (val, test)):
        assert set(ids[a]).isdisjoint(ids[b])
    assert len(train) + len(val) + len(test) == len(ds)
    fractions = np.array([len(set(ids[p])) for p in (train, val, test)]) / 50
    assert np.allclose(fractions, (0.6, 0.2, 0.2), atol=0.08)


@pytest.mark.shared_data
def test_splits_on_tid2013_never_share_a_reference(shared_data: Path) -> None:
    tid = read_tid2013(shared_data / "score_files" / "tid2013")
    refs = np.array([i.reference.name.lower() for i in tid if i.reference is not None])
    for train, test in ContentKFold(5, seed=0).split(tid):
        assert set(refs[train]).isdisjoint(refs[test])
    train, val, test = train_val_test_split(tid)
    assert set(refs[train]).isdisjoint(refs[test]) and set(refs[val]).isdisjoint(refs[test])


def test_cross_database_refuses_shared_contents() -> None:
    a, b = _dataset(name="a"), _dataset(name="b", prefix="s")
    assert cross_database(a, b) == (a, b)
    with pytest.raises(ValueError, match="share 25 content id"):
        cross_database(a, _dataset(name="c"))


def test_split_errors() -> None:
    with pytest.raises(ValueError, match="cannot make 5 folds from 3 contents"):
        list(ContentKFold(5).split(["a", "b", "c", "a"]))
    with pytest.raises(ValueError, match="fractions"):
        train_val_test_split(_dataset(), fractions=(0.5, 0.5, 0.5))
    with pytest.raises(RuntimeError, match="not content-disjoint"):
        assert_disjoint(np.array(["a", "b"]), np.array([0]), np.array([0]))
