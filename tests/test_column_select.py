"""The stacker's column selection (fusion.column_select)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from fusion.column_select import ColumnSelect


def test_selects_the_columns_in_order() -> None:
    matrix = np.arange(12.0).reshape(3, 4)
    select = ColumnSelect(np.array([3, 0])).fit(matrix)
    np.testing.assert_array_equal(select.transform(matrix), matrix[:, [3, 0]])
    assert select.n_features_in_ == 4


@pytest.mark.parametrize(("columns", "message"), [
    (np.array([0, 4]), r"lie in \[0, 4\)"),
    (np.array([-1]), r"lie in \[0, 4\)"),
    (np.array([], np.intp), "non-empty"),
    (np.array([0.5]), "integers"),
    (np.array([[0, 1]]), "1-D"),
])
def test_bad_columns_are_refused(columns: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ColumnSelect(columns).fit(np.zeros((2, 4)))


def test_transform_checks_the_fitted_width() -> None:
    select = ColumnSelect(np.array([1])).fit(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="3 features, but ColumnSelect was fitted on 4"):
        select.transform(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="2-D"):
        select.transform(np.zeros(4))
    with pytest.raises(ValueError, match="not fitted"):
        ColumnSelect(np.array([1])).transform(np.zeros((2, 4)))


def test_skops_round_trip_is_small_and_trusted(tmp_path: Path) -> None:
    import skops.io as sio
    from sklearn.compose import ColumnTransformer

    from fusion.bundle import TRUSTED_TYPES

    matrix = np.random.default_rng(0).normal(size=(3, 6000))
    columns = np.arange(10, 4000)
    select = ColumnSelect(columns).fit(matrix)
    sio.dump(select, tmp_path / "select.skops")
    loaded = sio.load(tmp_path / "select.skops", trusted=TRUSTED_TYPES)
    np.testing.assert_array_equal(loaded.transform(matrix), matrix[:, columns])
    # what it replaces keeps the dropped columns as lists, stored element by element
    transformer = ColumnTransformer([("take", "passthrough", columns)]).fit(matrix)
    sio.dump(transformer, tmp_path / "transformer.skops")

    def schema_size(file: Path) -> int:
        with zipfile.ZipFile(file) as archive:
            return len(archive.read("schema.json"))

    assert schema_size(tmp_path / "select.skops") * 20 < schema_size(tmp_path / "transformer.skops")
