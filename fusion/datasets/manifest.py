"""The generic CSV manifest: any rated image collection, described one row per image.

Columns (a header row is required; names are case-insensitive, order is free):

================ ======== =====================================================================
column           required meaning
================ ======== =====================================================================
``image``        yes      path of the image to judge, relative to the manifest's folder or absolute
``reference``    no       path of its pristine reference (full-reference data)
``score``        no       subjective score; ``mos`` or ``dmos`` are accepted as the column name
``content_id``   no       grouping key for splits; default: the reference path, else the image path
``distortion``   no       distortion type
``level``        no       integer distortion level
``scale_min``    no       the raw scale's low end (default 0)
``scale_max``    no       the raw scale's high end (default 100)
``direction``    no       ``higher_is_better`` (default) or ``lower_is_better``
================ ======== =====================================================================

Scores are mapped linearly from [scale_min, scale_max] onto 0–100 with higher = better (a
``dmos`` column defaults to ``lower_is_better``). The mode is full-reference when a
``reference`` column has values.
"""

from __future__ import annotations

import csv
from pathlib import Path

from fusion.datasets._base import Dataset, DatasetItem, ScoreScale

__all__ = ["read_manifest"]

_SCORE_COLUMNS = ("score", "mos", "dmos")


def read_manifest(
    path: str | Path, *, name: str | None = None, root: str | Path | None = None
) -> Dataset:
    """Read a CSV manifest (see the module docstring for the columns).

    Parameters
    ----------
    path : str or Path
        The CSV file.
    name : str, optional
        Dataset name; default: the manifest's folder name.
    root : str or Path, optional
        Folder that relative paths start from; default: the manifest's folder.

    Returns
    -------
    Dataset

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        For a missing ``image`` column, an empty manifest, a non-numeric score or level,
        inconsistent scale columns, or a reference column filled on only some rows; the
        message names the row.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    base = Path(root) if root is not None else path.parent
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None:
            raise ValueError(f"{path}: empty manifest (no header row)")
        columns = {c.strip().lower(): c for c in reader.fieldnames}
        if "image" not in columns:
            raise ValueError(f"{path}: no 'image' column (columns: {', '.join(columns)})")
        score_column = next((columns[c] for c in _SCORE_COLUMNS if c in columns), None)
        rows = list(reader)
    if not rows:
        raise ValueError(f"{path}: the manifest has a header but no rows")

    scale = _scale(rows, columns, score_column, path)
    items = []
    for number, row in enumerate(rows, start=2):  # line numbers as an editor shows them
        items.append(_item(row, columns, score_column, scale, base, f"{path}:{number}"))
    has_reference = [item.reference is not None for item in items]
    if any(has_reference) and not all(has_reference):
        missing = has_reference.index(False) + 2
        raise ValueError(f"{path}:{missing}: reference is empty while other rows have one")
    return Dataset(
        name=name or path.parent.name, mode="fr" if all(has_reference) else "nr",
        items=tuple(items), scale=scale, root=base.resolve(),
        description=f"CSV manifest {path}",
    )


def _get(row: dict[str, str], columns: dict[str, str], key: str) -> str:
    column = columns.get(key)
    return (row.get(column) or "").strip() if column else ""


def _scale(rows: list[dict[str, str]], columns: dict[str, str], score_column: str | None,
           path: Path) -> ScoreScale | None:
    if score_column is None:
        return None
    default_direction = "lower_is_better" if score_column.lower() == "dmos" else \
        "higher_is_better"
    triples = {
        (_get(r, columns, "scale_min") or "0", _get(r, columns, "scale_max") or "100",
         _get(r, columns, "direction") or default_direction)
        for r in rows
    }
    if len(triples) > 1:
        raise ValueError(f"{path}: scale_min/scale_max/direction differ between rows: "
                         f"{sorted(triples)[:3]}")
    low_text, high_text, direction = triples.pop()
    if direction not in ("higher_is_better", "lower_is_better"):
        raise ValueError(f"{path}: direction must be higher_is_better or lower_is_better, "
                         f"got {direction!r}")
    try:
        low, high = float(low_text), float(high_text)
    except ValueError as exc:
        raise ValueError(f"{path}: scale_min/scale_max must be numbers ({exc})") from exc
    if not high > low:
        raise ValueError(f"{path}: scale_max ({high:g}) must exceed scale_min ({low:g})")
    kind = "dmos" if direction == "lower_is_better" else "mos"
    return ScoreScale(low, high, direction == "higher_is_better", kind)


def _item(row: dict[str, str], columns: dict[str, str], score_column: str | None,
          scale: ScoreScale | None, base: Path, where: str) -> DatasetItem:
    image_text = _get(row, columns, "image")
    if not image_text:
        raise ValueError(f"{where}: empty image path")
    image = _path(base, image_text)
    reference_text = _get(row, columns, "reference")
    reference = _path(base, reference_text) if reference_text else None
    raw = None
    if score_column is not None:
        text = (row.get(score_column) or "").strip()
        try:
            raw = float(text) if text else None
        except ValueError:
            raise ValueError(f"{where}: score {text!r} is not a number") from None
    level_text = _get(row, columns, "level")
    try:
        level = int(level_text) if level_text else None
    except ValueError:
        raise ValueError(f"{where}: level {level_text!r} is not an integer") from None
    content_id = _get(row, columns, "content_id") or (reference_text or image_text)
    return DatasetItem(
        image=image, reference=reference,
        score=None if raw is None or scale is None else scale.normalise(raw),
        raw_score=raw, content_id=content_id,
        distortion=_get(row, columns, "distortion") or None, level=level,
    )


def _path(base: Path, text: str) -> Path:
    candidate = Path(text)
    return candidate if candidate.is_absolute() else base / candidate
