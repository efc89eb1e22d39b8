"""The dataset model: items of (image, reference, score, content id, distortion, level)."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, overload

import numpy as np
from numpy.typing import NDArray

__all__ = ["Dataset", "DatasetItem", "ScoreScale"]

Mode = Literal["fr", "nr"]


@dataclass(frozen=True)
class ScoreScale:
    """A database's raw score scale and its linear map onto 0–100, higher = better.

    Attributes
    ----------
    low, high : float
        The nominal ends of the raw scale (as the database documents it).
    higher_is_better : bool
        False for DMOS-style scores.
    kind : str
        ``"mos"``, ``"dmos"`` or another short label for reports.
    """

    low: float
    high: float
    higher_is_better: bool
    kind: str = "mos"

    def normalise(self, raw: float) -> float:
        """Map a raw score linearly onto 0–100 with higher = better (no clipping)."""
        fraction = (raw - self.low) / (self.high - self.low)
        return 100.0 * (fraction if self.higher_is_better else 1.0 - fraction)

    def describe(self) -> str:
        """E.g. ``"DMOS 0–1, lower = better"``."""
        direction = "higher" if self.higher_is_better else "lower"
        return f"{self.kind.upper()} {self.low:g}–{self.high:g}, {direction} = better"


@dataclass(frozen=True)
class DatasetItem:
    """One rated (or synthetic) image.

    Attributes
    ----------
    image : Path
        The image to judge (the distorted image in full-reference data).
    reference : Path or None
        Its pristine reference, None for no-reference data.
    score : float or None
        The subjective score mapped onto 0–100, higher = better; None when unrated.
    raw_score : float or None
        The score as the database gives it.
    content_id : str
        What must not be split across train and test: the reference's name for
        full-reference data, the image itself for authentic no-reference data.
    distortion : str or None
        Distortion type, where the database records one.
    level : int or None
        Distortion level (1 = mildest), where recorded.
    """

    image: Path
    reference: Path | None
    score: float | None
    raw_score: float | None
    content_id: str
    distortion: str | None = None
    level: int | None = None


@dataclass(frozen=True)
class Dataset(Sequence[DatasetItem]):
    """An IQA database: its items plus the database name, mode and score scale.

    Indexing with an int gives a :class:`DatasetItem`; with a slice, a list or an array
    of indices it gives a new :class:`Dataset` holding those items.
    """

    name: str
    mode: Mode
    items: tuple[DatasetItem, ...]
    scale: ScoreScale | None = None
    root: Path | None = None
    description: str = ""
    _content_ids: tuple[str, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.mode not in ("fr", "nr"):
            raise ValueError(f"mode must be 'fr' or 'nr', got {self.mode!r}")
        if self.mode == "fr" and any(item.reference is None for item in self.items):
            raise ValueError(f"full-reference dataset {self.name!r} has items without reference")

    @property
    def score_kind(self) -> str:
        """``"mos"``, ``"dmos"``, ... or ``"none"`` for unrated (synthetic) data."""
        return self.scale.kind if self.scale is not None else "none"

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[DatasetItem]:
        return iter(self.items)

    @overload
    def __getitem__(self, index: int) -> DatasetItem: ...

    @overload
    def __getitem__(self, index: slice | Sequence[int] | NDArray[np.integer]) -> Dataset: ...

    def __getitem__(
        self, index: int | slice | Sequence[int] | NDArray[np.integer]
    ) -> DatasetItem | Dataset:
        if isinstance(index, (int, np.integer)):
            return self.items[int(index)]
        if isinstance(index, slice):
            return self.subset(range(len(self))[index])
        return self.subset(index)

    def subset(self, indices: Sequence[int] | NDArray[np.integer] | range) -> Dataset:
        """A dataset of the items at ``indices`` (same name, mode and scale)."""
        return replace(self, items=tuple(self.items[int(i)] for i in indices))

    @property
    def scores(self) -> NDArray[np.float64]:
        """Normalised scores (NaN for unrated items)."""
        return np.array([math.nan if i.score is None else i.score for i in self.items])

    @property
    def raw_scores(self) -> NDArray[np.float64]:
        """Raw scores as the database gives them (NaN for unrated items)."""
        return np.array([math.nan if i.raw_score is None else i.raw_score for i in self.items])

    @property
    def content_ids(self) -> NDArray[np.str_]:
        """The content id of each item, as an array (for grouped splits)."""
        return np.array([item.content_id for item in self.items], dtype=str)

    @property
    def levels(self) -> NDArray[np.float64]:
        """Distortion levels (NaN where unknown)."""
        return np.array([math.nan if i.level is None else i.level for i in self.items])

    @property
    def distortions(self) -> list[str | None]:
        """Distortion types (None where unknown)."""
        return [item.distortion for item in self.items]

    def missing_files(self) -> list[Path]:
        """Image and reference paths that do not exist on disk."""
        paths = {item.image for item in self.items}
        paths |= {item.reference for item in self.items if item.reference is not None}
        return sorted(p for p in paths if not p.exists())

    def write_manifest(self, path: str | Path) -> Path:
        """Write the items as a CSV manifest that :func:`read_manifest` reads back.

        Paths are written relative to the manifest's folder where possible. ``score``
        holds the raw score and the scale columns say what it means, so reading the file
        back gives the same normalised scores.
        """
        path = Path(path)
        base = path.parent.resolve()
        columns = ["image", "reference", "score", "content_id", "distortion", "level",
                   "scale_min", "scale_max", "direction"]
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            for item in self.items:
                writer.writerow([
                    _relative(item.image, base),
                    "" if item.reference is None else _relative(item.reference, base),
                    _number(item.raw_score), item.content_id,
                    item.distortion or "", "" if item.level is None else item.level,
                    "" if self.scale is None else f"{self.scale.low:g}",
                    "" if self.scale is None else f"{self.scale.high:g}",
                    "" if self.scale is None else
                    ("higher_is_better" if self.scale.higher_is_better else "lower_is_better"),
                ])
        return path

    def summary(self) -> str:
        """One line: name, mode, item and content counts, scale."""
        scale = self.scale.describe() if self.scale else "unrated"
        return (f"{self.name}: {len(self)} items, {len(set(self.content_ids))} contents, "
                f"mode {self.mode}, {scale}")


def _relative(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base).as_posix()
    except ValueError:
        return str(path)


def _number(value: float | None) -> str:
    return "" if value is None else repr(float(value))
