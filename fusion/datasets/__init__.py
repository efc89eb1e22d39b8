"""Human-rated IQA databases and CSV manifests as :class:`Dataset` objects.

>>> from fusion.datasets import load_dataset
>>> ds = load_dataset("tid2013", "/data/tid2013")          # doctest: +SKIP
>>> ds = load_dataset("manifest", "my_ratings.csv")        # doctest: +SKIP

Scores are mapped linearly onto 0–100 with higher = better (:data:`SCALES`); the raw
scores are kept.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fusion.datasets._base import Dataset, DatasetItem, ScoreScale
from fusion.datasets.manifest import read_manifest
from fusion.datasets.native import (
    SCALES,
    read_clive,
    read_csiq,
    read_kadid10k,
    read_koniq10k,
    read_live,
    read_tid2008,
    read_tid2013,
)

__all__ = [
    "READERS",
    "SCALES",
    "Dataset",
    "DatasetItem",
    "ScoreScale",
    "load_dataset",
    "read_clive",
    "read_csiq",
    "read_kadid10k",
    "read_koniq10k",
    "read_live",
    "read_manifest",
    "read_tid2008",
    "read_tid2013",
]

#: Reader of each supported database name; ``"manifest"`` reads a CSV manifest.
READERS: dict[str, Callable[..., Dataset]] = {
    "live": read_live,
    "csiq": read_csiq,
    "tid2013": read_tid2013,
    "tid2008": read_tid2008,
    "kadid10k": read_kadid10k,
    "clive": read_clive,
    "koniq10k": read_koniq10k,
    "manifest": read_manifest,
}


def load_dataset(name: str, path: str | Path, **options: Any) -> Dataset:
    """Load a database from its folder (or a CSV manifest from its path).

    Parameters
    ----------
    name : str
        One of :data:`READERS` (``live``, ``csiq``, ``tid2013``, ``tid2008``,
        ``kadid10k``, ``clive``, ``koniq10k``, ``manifest``), case-insensitive.
    path : str or Path
        The database's folder, or the manifest file.
    **options
        Passed to the reader (e.g. ``score_file=``).

    Raises
    ------
    ValueError
        For an unknown name (the message suggests the closest one).
    """
    key = name.strip().lower().replace("-", "").replace("_", "")
    aliases = {"kadid": "kadid10k", "koniq": "koniq10k", "livec": "clive",
               "livewild": "clive", "csv": "manifest", "liver2": "live"}
    key = aliases.get(key, key)
    if key not in READERS:
        import difflib

        close = difflib.get_close_matches(key, READERS, n=2)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise ValueError(f"unknown database {name!r}{hint} (known: {', '.join(READERS)})")
    return READERS[key](path, **options)
