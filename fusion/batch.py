"""Batch scoring: folders, manifests and pairs of folders, streamed, resumable, parallel.

:func:`score_batch` reads its input lazily and works in chunks, so memory stays flat in
the number of items:

1. For each item of a chunk it looks the features up in the HDF5 feature cache (when one
   is given), keyed by the files' content.
2. The items with missing features are computed by workers: in this process
   (``jobs=1``), in ``jobs`` worker processes through joblib, or on a Dask cluster through
   joblib's Dask backend (``scheduler=ADDRESS``). Each worker loads a model once and
   keeps it for the following items.
3. The stacker scores the chunk in one call and the rows are appended, in input order,
   to a temporary file beside the output (``.NAME.partial``). New features are committed
   to the cache at least every ``checkpoint_seconds`` (before the chunk's rows), so a
   killed job loses at most that much work.
4. At the end the temporary file is synced and renamed over the output, so a reader
   never sees a half-written result. A killed job leaves the cache it had committed: the
   rerun takes the finished items from there instead of computing them again.

A bad item (missing or corrupt file, mismatched shapes, no matching reference) gets a row
with ``status = "error"`` and the reason; the job goes on.

Outputs (by suffix): ``.csv``, ``.jsonl`` (one object per line, with the components) and
``.parquet`` (needs pyarrow). Columns: ``id, image, reference, mode, status, score, low,
high, coverage, model, from_cache, error``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fusion._once import BuiltOnce
from fusion.api import bundle_location

if TYPE_CHECKING:
    from fusion.cache import FeatureCache
    from fusion.model import FusionModel
    from fusion.prediction import Prediction

__all__ = ["IMAGE_SUFFIXES", "BatchInput", "BatchItem", "BatchSummary", "score_batch"]

#: File suffixes taken as images when a folder is the input.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")

COLUMNS = ("id", "image", "reference", "mode", "status", "score", "low", "high", "coverage",
           "family", "family_p", "model", "from_cache", "error")


@dataclass(frozen=True)
class BatchItem:
    """One thing to score: an image, or an image and its reference.

    ``error`` is set when the input itself is already known to be bad (a folder pair
    whose reference is missing); such an item is reported, not scored.
    """

    id: str
    image: str
    reference: str | None = None
    error: str | None = None

    @property
    def mode(self) -> str:
        """``"fr"`` with a reference, else ``"nr"``."""
        return "nr" if self.reference is None else "fr"


class BatchInput:
    """The items of a batch, read lazily from a manifest, a folder or a pair of folders.

    Parameters
    ----------
    source : str or Path
        A CSV manifest with an ``image`` column and optional ``reference`` and ``id``
        columns (relative paths start at the manifest's folder), or a folder of images.
    references : str or Path, optional
        With a folder ``source``: the folder of references, matched by file name.

    Raises
    ------
    FileNotFoundError
        If ``source`` or ``references`` does not exist.
    ValueError
        For a manifest without an ``image`` column, or ``references`` given with a
        manifest.
    """

    def __init__(self, source: str | Path, references: str | Path | None = None) -> None:
        self.source = Path(source)
        self.references = None if references is None else Path(references)
        if not self.source.exists():
            raise FileNotFoundError(f"batch input {self.source} does not exist")
        if self.references is not None and not self.references.is_dir():
            raise FileNotFoundError(f"reference folder {self.references} does not exist")
        if self.source.is_dir():
            self._names = sorted(
                entry.name for entry in os.scandir(self.source)
                if entry.is_file() and Path(entry.name).suffix.lower() in IMAGE_SUFFIXES)
            self._length = len(self._names)
        else:
            if self.references is not None:
                raise ValueError("a reference folder goes with a folder of images, not with "
                                 "a manifest (give the manifest a reference column)")
            with open(self.source, newline="", encoding="utf-8-sig") as handle:
                header = next(csv.reader(handle), [])
                columns = [c.strip().lower() for c in header]
                if "image" not in columns:
                    raise ValueError(f"manifest {self.source} has no 'image' column "
                                     f"(columns: {header})")
                self._length = sum(1 for row in csv.reader(handle) if any(row))

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[BatchItem]:
        if self.source.is_dir():
            return self._folder_items()
        return self._manifest_items()

    def _folder_items(self) -> Iterator[BatchItem]:
        for name in self._names:
            image = str(self.source / name)
            if self.references is None:
                yield BatchItem(name, image)
                continue
            reference = self.references / name
            error = None if reference.is_file() else \
                f"ImageNotFoundError: no reference named {name!r} in {self.references}"
            yield BatchItem(name, image, str(reference), error)

    def _manifest_items(self) -> Iterator[BatchItem]:
        root = self.source.parent
        with open(self.source, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            for number, raw in enumerate(reader, start=1):
                row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()}
                if not any(row.values()):
                    continue
                image = row.get("image", "")
                reference = row.get("reference") or None
                item_id = row.get("id") or image or f"row {number}"
                if not image:
                    yield BatchItem(item_id, "", reference, f"ValueError: row {number} of "
                                    f"{self.source.name} has an empty 'image' cell")
                    continue
                yield BatchItem(item_id, str(root / image),
                                None if reference is None else str(root / reference))


@dataclass(frozen=True)
class BatchSummary:
    """What a batch did."""

    scored: int
    failed: int
    from_cache: int
    seconds: float
    output: str

    @property
    def rate(self) -> float:
        """Items (scored or failed) per second."""
        return (self.scored + self.failed) / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        return (f"scored {self.scored}, failed {self.failed}, from cache {self.from_cache}, "
                f"{self.seconds:.1f} s, {self.rate:.2f} items/s -> {self.output}")


# --------------------------------------------------------------------------- workers

_models: BuiltOnce[FusionModel] = BuiltOnce()


def _model(bundle: str | None, mode: str, num_threads: int | None) -> FusionModel:
    """The model for ``bundle`` (None: the default of ``mode``), loaded once per process."""

    def build() -> FusionModel:
        from fusion.api import default_bundle_path, default_model, load

        if bundle is None and num_threads is None:
            return default_model(mode)  # shared with fusion.predict
        return load(bundle or default_bundle_path(mode), num_threads=num_threads)

    return _models.get((bundle or "", mode if bundle is None else "", num_threads), build)


def _compute(bundle: str | None, mode: str, num_threads: int | None, image: str,
             reference: str | None, skip: Sequence[str]
             ) -> tuple[dict[str, dict[str, float]] | None, str | None]:
    """Worker task: (features by extractor key, None) or (None, error message).

    Any exception is the item's error: one bad item must not end the job.
    """
    try:
        model = _model(bundle, mode, num_threads)
        return model.extract(image, reference, skip=skip), None
    except Exception as exc:  # recorded in the item's row
        return None, f"{type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------- writers

class _Writer:
    """Rows appended in order to ``.NAME.partial``; :meth:`commit` renames it over NAME."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.temporary = path.with_name(f".{path.name}.partial")
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, rows: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    def commit(self) -> None:
        self._close()
        with open(self.temporary, "rb") as synced:
            os.fsync(synced.fileno())
        os.replace(self.temporary, self.path)

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._close()
        self.temporary.unlink(missing_ok=True)


class _TextWriter(_Writer):
    def __init__(self, path: Path, jsonl: bool) -> None:
        super().__init__(path)
        self.jsonl = jsonl
        self.handle: io.TextIOWrapper = open(self.temporary, "w", newline="",  # noqa: SIM115
                                             encoding="utf-8")
        self.csv = None if jsonl else csv.DictWriter(self.handle, COLUMNS,
                                                     extrasaction="ignore")
        if self.csv is not None:
            self.csv.writeheader()

    def write(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            if self.csv is not None:
                self.csv.writerow({k: "" if row[k] is None else row[k] for k in COLUMNS})
            else:
                self.handle.write(json.dumps(row) + "\n")
        self.handle.flush()

    def _close(self) -> None:
        self.handle.close()


class _ParquetWriter(_Writer):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise ImportError("writing .parquet needs pyarrow: pip install pyarrow "
                              "(or use .csv / .jsonl)") from exc
        self.pa = pa
        types = {"score": pa.float64(), "low": pa.float64(), "high": pa.float64(),
                 "coverage": pa.float64(), "family_p": pa.float64(),
                 "from_cache": pa.bool_()}
        self.schema = pa.schema([(c, types.get(c, pa.string())) for c in COLUMNS])
        self.writer = pq.ParquetWriter(self.temporary, self.schema)

    def write(self, rows: list[dict[str, Any]]) -> None:
        columns = {c: [row[c] for row in rows] for c in COLUMNS}
        self.writer.write_table(self.pa.table(columns, schema=self.schema))

    def _close(self) -> None:
        self.writer.close()


def _check_target(path: Path, what: str) -> None:
    """Refuse, before any work, an output (or cache) path that could not be written."""
    if path.is_dir():
        raise ValueError(f"{what} {path} is an existing folder; give a file name")
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise ValueError(f"{what} {path}: {parent} is not a folder")
    if parent.is_dir() and not os.access(parent, os.W_OK):
        raise ValueError(f"{what} {path}: the folder {parent} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"{what} {path} exists and is not writable")


def _check_output(path: Path) -> None:
    """Refuse, before any work, an output path that could not be written, or its suffix."""
    _check_target(path, "output")
    if path.suffix.lower() not in (".csv", ".jsonl", ".parquet"):
        raise ValueError(f"output {path.name}: the suffix must be .csv, .jsonl or .parquet")


def _writer(path: Path) -> _Writer:
    """The writer for an output path that :func:`_check_output` accepted."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _ParquetWriter(path)
    return _TextWriter(path, jsonl=suffix == ".jsonl")


# --------------------------------------------------------------------------- engine

@contextlib.contextmanager
def _executor(jobs: int, scheduler: Any) -> Iterator[Callable[[list[Any]], list[Any]]]:
    """A function running a list of ``_compute`` argument tuples, in order."""
    if scheduler is None and jobs == 1:
        yield lambda tasks: [_compute(*task) for task in tasks]
        return
    import joblib

    if scheduler is None:
        with joblib.Parallel(n_jobs=jobs, backend="loky") as parallel:
            yield lambda tasks: list(parallel(joblib.delayed(_compute)(*t) for t in tasks))
        return
    try:
        from dask.distributed import Client
    except ImportError as exc:
        raise ImportError("a Dask scheduler needs dask.distributed: pip install "
                          "'fusion-iqa[cluster]'") from exc

    client = scheduler if isinstance(scheduler, Client) else \
        Client(scheduler)  # type: ignore[no-untyped-call]
    try:
        with joblib.parallel_config(backend="dask", client=client), \
                joblib.Parallel(n_jobs=-1) as parallel:
            yield lambda tasks: list(parallel(joblib.delayed(_compute)(*t) for t in tasks))
    finally:
        if client is not scheduler:
            client.close()  # type: ignore[no-untyped-call]


def score_batch(
    source: BatchInput | str | Path,
    out: str | Path,
    *,
    references: str | Path | None = None,
    model: str | Path | None = None,
    jobs: int = 1,
    cache: str | Path | None = None,
    scheduler: Any = None,
    chunk_size: int = 64,
    checkpoint_seconds: float = 10.0,
    progress: bool | None = None,
) -> BatchSummary:
    """Score every item of a batch and write one row per item to ``out``.

    Parameters
    ----------
    source : BatchInput, str or Path
        A manifest CSV or a folder (see :class:`BatchInput`).
    out : str or Path
        ``.csv``, ``.jsonl`` or ``.parquet``; replaced atomically at the end.
    references : str or Path, optional
        A folder of references matched by file name (with a folder ``source``).
    model : str or Path, optional
        A bundle, or a preset name (``"fast"``: that preset's no-reference model);
        default: the embedded default model of each item's mode.
    jobs : int, default 1
        Worker processes on this machine (joblib/loky); 1 computes in this process.
    cache : str or Path, optional
        An HDF5 feature cache to read and fill (see :mod:`fusion.cache`).
    scheduler : str or dask.distributed.Client, optional
        A Dask scheduler address (or client): compute on that cluster instead.
    chunk_size : int, default 64
        Items read, computed and written together.
    checkpoint_seconds : float, default 10
        Commit new features to the cache at least this often (and at the end).
    progress : bool or None
        tqdm progress bar; None shows it on a terminal only.

    Returns
    -------
    BatchSummary

    Raises
    ------
    ValueError
        For a bad ``jobs`` or ``chunk_size``, an output suffix other than ``.csv``,
        ``.jsonl`` or ``.parquet``, or an output or cache path that cannot be written (an
        existing folder, a parent that is a file, no write permission), all checked
        before any item is read.
    fusion.bundle.BundleError
        If ``model`` is not a valid bundle.
    """
    from tqdm.auto import tqdm

    from fusion.cache import FeatureCache

    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    _check_output(Path(out))
    if cache is not None:
        _check_target(Path(cache), "cache")
    items = source if isinstance(source, BatchInput) else BatchInput(source, references)
    bundle = None if model is None else str(Path(bundle_location(model)).resolve())
    parallel = jobs > 1 or scheduler is not None
    num_threads = 1 if parallel else None
    if bundle is not None:
        _model(bundle, "", None)  # fail early on a bad bundle
    writer = _writer(Path(out))
    try:
        store = FeatureCache(cache) if cache is not None else None
    except BaseException:  # e.g. another job holds the cache's lock
        writer.abort()
        raise
    started = time.perf_counter()
    counts = {"scored": 0, "failed": 0, "from_cache": 0}
    bar = tqdm(total=len(items), unit="item", desc="scoring",
               disable=None if progress is None else not progress)
    checkpoint = _Checkpoint(store, checkpoint_seconds)
    # Tasks go to the workers in slices, so features are committed inside a chunk too.
    step = 1 if not parallel else (4 * jobs if scheduler is None else 16)
    try:
        with _executor(jobs, scheduler) as run:
            iterator = iter(items)
            while chunk := list(islice(iterator, chunk_size)):
                rows = _score_chunk(chunk, bundle, num_threads, store, run, counts,
                                    checkpoint, step)
                checkpoint.maybe_commit()  # before the rows that depend on it
                writer.write(rows)
                bar.update(len(chunk))
        if store is not None:
            store.flush()
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    finally:
        bar.close()
        if store is not None:
            store.close()
    return BatchSummary(counts["scored"], counts["failed"], counts["from_cache"],
                        time.perf_counter() - started, str(out))


class _Checkpoint:
    """Commits a feature cache's new entries at least every ``seconds`` (0: every time)."""

    def __init__(self, store: FeatureCache | None, seconds: float) -> None:
        self.store = store
        self.seconds = seconds
        self.last = time.monotonic()

    def maybe_commit(self) -> None:
        if self.store is not None and time.monotonic() - self.last >= self.seconds:
            self.store.flush()
            self.last = time.monotonic()


def _score_chunk(chunk: list[BatchItem], bundle: str | None, num_threads: int | None,
                 store: FeatureCache | None, run: Callable[[list[Any]], list[Any]],
                 counts: dict[str, int], checkpoint: _Checkpoint, step: int
                 ) -> list[dict[str, Any]]:
    """Rows of one chunk, in order; tasks run ``step`` at a time, with checkpoints."""
    from fusion.cache import content_key

    errors: dict[int, str] = {}
    features: dict[int, dict[str, dict[str, float]]] = {}
    cache_keys: dict[int, str] = {}
    tasks: list[tuple[int, tuple[Any, ...]]] = []
    for index, item in enumerate(chunk):
        if item.error is not None:
            errors[index] = item.error
            continue
        model = _model(bundle, item.mode, None)
        if model.mode != item.mode:
            errors[index] = (f"ValueError: the model {model.name} is {model.mode}; this item "
                             f"is {item.mode} ({'with' if item.reference else 'without'} "
                             "a reference)")
            continue
        cached: dict[str, dict[str, float]] = {}
        if store is not None:
            with contextlib.suppress(OSError):  # unreadable: the worker reports why
                cache_keys[index] = content_key(item.image, item.reference)
        if store is not None and index in cache_keys:
            for extractor in model.all_extractors:
                values = store.get(extractor.key, cache_keys[index])
                if values is not None:
                    cached[extractor.key] = values
        features[index] = cached
        if len(cached) < len(model.all_extractors):
            tasks.append((index, (bundle, item.mode, num_threads, item.image, item.reference,
                                  tuple(cached))))
    computed_here = {index for index, _ in tasks}
    from_cache = set(features) - computed_here
    for start in range(0, len(tasks), step):
        part = tasks[start : start + step]
        for (index, _), (computed, error) in zip(part, run([t for _, t in part]),
                                                 strict=True):
            if error is not None:
                errors[index] = error
                del features[index]
                continue
            features[index].update(computed)
            if store is not None and index in cache_keys:
                for extractor_key, values in computed.items():
                    store.put(extractor_key, cache_keys[index], values)
        checkpoint.maybe_commit()
    predictions = _predict(chunk, features, bundle)
    rows = []
    for index, item in enumerate(chunk):
        prediction = predictions.get(index)
        rows.append(_row(item, prediction, errors.get(index), index in from_cache))
        if prediction is None:
            counts["failed"] += 1
        else:
            counts["scored"] += 1
            counts["from_cache"] += index in from_cache
    return rows


def _predict(chunk: list[BatchItem], features: dict[int, dict[str, dict[str, float]]],
             bundle: str | None) -> dict[int, Prediction]:
    """One stacker call per mode for the chunk's items that have features."""
    predictions: dict[int, Prediction] = {}
    for mode in ("nr", "fr"):
        indices = [i for i in sorted(features) if chunk[i].mode == mode]
        if not indices:
            continue
        rows = [{n: v for part in features[i].values() for n, v in part.items()}
                for i in indices]
        results = _model(bundle, mode, None).predict_features(rows)
        predictions.update(zip(indices, results, strict=True))
    return predictions


def _row(item: BatchItem, prediction: Prediction | None, error: str | None,
         from_cache: bool) -> dict[str, Any]:
    row: dict[str, Any] = {"id": item.id, "image": item.image, "reference": item.reference,
                           "mode": item.mode}
    if prediction is None:
        row.update(status="error", score=None, low=None, high=None, coverage=None,
                   family=None, family_p=None, model=None, from_cache=False,
                   error=error or "unknown error")
        return row
    diagnostics = prediction.diagnostics
    row.update(status="ok", score=prediction.score, low=prediction.interval[0],
               high=prediction.interval[1], coverage=prediction.coverage,
               family=None if diagnostics is None else diagnostics.family,
               family_p=None if diagnostics is None else diagnostics.probability,
               model=prediction.model, from_cache=from_cache, error=None,
               components=prediction.components)
    return row
