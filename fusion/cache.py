"""An HDF5 cache of feature vectors, keyed by image content and extractor version.

* **Keys.** An item's key is the SHA-256 of its image's bytes (the file's bytes for a path,
  the pixels for an array), of its reference's if it has one, and of ``data_range``.
  Renaming or moving files keeps their cache entries; changing one pixel does not.
* **Layout.** One HDF5 group per extractor key (``name_Vversion``, e.g. ``ssim_V1``) with
  a ``keys`` dataset (hex digests) and a ``values`` dataset (one row per key), and the
  feature names as an attribute. A new extractor version is a new group: only its
  features are recomputed, and the old group stays until :meth:`FeatureCache.prune`.
* **Atomic writes.** Entries are held in memory and committed by :meth:`FeatureCache.flush`
  (automatically every ``autosave_every`` new entries, every ``autosave_seconds``, and
  on close), which writes a complete new file beside the cache, syncs it to disk and
  renames it over the cache. A killed run leaves the last committed cache intact and
  readable, and the next run resumes from it.
* **Concurrency.** One writer per cache file: opening for writing takes a lock file
  (``<cache>.lock``, holding the writer's PID; a lock left by a dead process is taken
  over), and a second writer gets :class:`CacheLockedError`. Readers (``mode="r"``) take
  no lock and see the last committed state. Parallel jobs write one cache file each and
  combine them with :meth:`FeatureCache.merge`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from backbones.hashing import sha256_bytes_of

__all__ = ["CacheLockedError", "FeatureCache", "content_key"]

_FORMAT = "fusion-iqa feature cache"
_FORMAT_VERSION = 1


class CacheLockedError(RuntimeError):
    """Another live process holds the cache's write lock."""


def content_key(image: Any, reference: Any = None, *, data_range: float | None = None) -> str:
    """The cache key of an (image, reference) item: a SHA-256 hex digest.

    Parameters
    ----------
    image, reference : path, PIL image, ndarray or fusion Image
        Paths are hashed by file content, arrays by dtype, shape and bytes.
    data_range : float, optional
        Part of the key, since it changes how the pixels are read.
    """
    digest = hashlib.sha256()
    digest.update(b"image:" + _digest(image))
    digest.update(b"|reference:" + (_digest(reference) if reference is not None else b"-"))
    digest.update(f"|data_range:{data_range!r}".encode())
    return digest.hexdigest()


def _digest(obj: Any) -> bytes:
    if isinstance(obj, (str, os.PathLike)):
        return sha256_bytes_of(obj)
    from fusion.io import Image

    digest = hashlib.sha256()

    if isinstance(obj, Image):
        obj = obj.source
    if isinstance(obj, np.ndarray):
        digest.update(f"{obj.dtype.str}{obj.shape}".encode())
        digest.update(np.ascontiguousarray(obj).tobytes())
        return digest.digest()
    if type(obj).__module__.startswith("PIL."):
        digest.update(f"{obj.mode}{obj.size}".encode())
        digest.update(obj.tobytes())
        return digest.digest()
    raise TypeError(f"cannot make a cache key for {type(obj).__name__}")


class _Table:
    """The in-memory entries of one extractor."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)
        self.rows: dict[str, NDArray[np.float64]] = {}


class FeatureCache:
    """Feature vectors per (item key, extractor key), stored in one HDF5 file.

    Parameters
    ----------
    path : str or Path
        The HDF5 file; created on the first flush if it does not exist.
    mode : {"a", "r"}, default "a"
        ``"a"`` reads and writes (taking the write lock); ``"r"`` only reads.
    autosave_every : int, default 200
        Flush after this many new entries.
    autosave_seconds : float, default 30
        Flush on a put when this long has passed since the last flush.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "features.h5"
    >>> with FeatureCache(path) as cache:
    ...     cache.put("psnr_V1", "abc", {"mse": 0.1, "psnr": 10.0})
    >>> FeatureCache(path, mode="r").get("psnr_V1", "abc")
    {'mse': 0.1, 'psnr': 10.0}
    """

    def __init__(self, path: str | Path, *, mode: Literal["a", "r"] = "a",
                 autosave_every: int = 200, autosave_seconds: float = 30.0) -> None:
        if mode not in ("a", "r"):
            raise ValueError(f"mode must be 'a' or 'r', got {mode!r}")
        self.path = Path(path)
        self.mode = mode
        self.autosave_every = autosave_every
        self.autosave_seconds = autosave_seconds
        self._tables: dict[str, _Table] = {}
        self._pending = 0
        self._last_flush = time.monotonic()
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self._locked = False
        if mode == "a":
            self._acquire_lock()
        try:
            self._load()
        except BaseException:
            self._release_lock()
            raise

    # ------------------------------------------------------------------ public API

    def get(self, extractor_key: str, item_key: str) -> dict[str, float] | None:
        """The cached features of one item for one extractor, or None."""
        table = self._tables.get(extractor_key)
        if table is None or item_key not in table.rows:
            return None
        return dict(zip(table.names, table.rows[item_key].tolist(), strict=True))

    def put(self, extractor_key: str, item_key: str, values: Mapping[str, float]) -> None:
        """Store the features of one item (committed at the next flush).

        Raises
        ------
        ValueError
            If the feature names differ from those already stored for ``extractor_key``
            (an extractor whose outputs changed must bump its version).
        """
        if self.mode == "r":
            raise PermissionError(f"{self.path} is open read-only")
        names = tuple(values)
        table = self._tables.setdefault(extractor_key, _Table(names))
        if table.names != names:
            raise ValueError(
                f"{extractor_key}: features {names} differ from the cached {table.names}; "
                "bump the extractor's version when its outputs change"
            )
        table.rows[item_key] = np.array([values[n] for n in names], dtype=np.float64)
        self._pending += 1
        if self._pending >= self.autosave_every or \
                time.monotonic() - self._last_flush >= self.autosave_seconds:
            self.flush()

    def __contains__(self, key: tuple[str, str]) -> bool:
        extractor_key, item_key = key
        table = self._tables.get(extractor_key)
        return table is not None and item_key in table.rows

    def __len__(self) -> int:
        """Number of (extractor, item) entries."""
        return sum(len(t.rows) for t in self._tables.values())

    @property
    def extractor_keys(self) -> list[str]:
        """The extractor keys that have entries."""
        return sorted(self._tables)

    def flush(self) -> None:
        """Commit all entries atomically (temp file, fsync, rename)."""
        if self.mode == "r" or (self._pending == 0 and self.path.exists()):
            return
        import h5py

        temporary = self._temporary(os.getpid())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with h5py.File(temporary, "w") as handle:
                handle.attrs["format"] = _FORMAT
                handle.attrs["format_version"] = _FORMAT_VERSION
                for key, table in sorted(self._tables.items()):
                    group = handle.create_group(key)
                    group.attrs["feature_names"] = json.dumps(list(table.names))
                    keys = list(table.rows)
                    group.create_dataset("keys", data=np.array(keys, dtype="S64"))
                    values = (np.stack([table.rows[k] for k in keys]) if keys
                              else np.zeros((0, len(table.names))))
                    group.create_dataset("values", data=values)
            with open(temporary, "rb") as synced:
                os.fsync(synced.fileno())
            os.replace(temporary, self.path)
        finally:
            if temporary.exists():
                temporary.unlink()
        self._pending = 0
        self._last_flush = time.monotonic()

    def merge(self, others: Iterable[str | Path | FeatureCache]) -> int:
        """Add the entries of other caches (e.g. one per worker); returns how many.

        Entries already present are kept as they are.
        """
        added = 0
        for other in others:
            source = other if isinstance(other, FeatureCache) else \
                FeatureCache(other, mode="r")
            for key, table in source._tables.items():
                mine = self._tables.setdefault(key, _Table(table.names))
                if mine.names != table.names:
                    raise ValueError(f"{key}: feature names differ between caches")
                for item_key, row in table.rows.items():
                    if item_key not in mine.rows:
                        mine.rows[item_key] = row
                        added += 1
        self._pending += added
        self.flush()
        return added

    def prune(self, keep: Iterable[str]) -> list[str]:
        """Drop the groups of extractor keys not in ``keep``; returns the dropped keys."""
        keep_set = set(keep)
        dropped = [k for k in self._tables if k not in keep_set]
        for key in dropped:
            del self._tables[key]
        if dropped:
            self._pending += 1
            self.flush()
        return dropped

    def close(self) -> None:
        """Flush and release the write lock."""
        try:
            self.flush()
        finally:
            self._release_lock()

    def __enter__(self) -> FeatureCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FeatureCache({str(self.path)!r}, mode={self.mode!r}, entries={len(self)})"

    # ------------------------------------------------------------------ internals

    def _load(self) -> None:
        if not self.path.exists():
            return
        import h5py

        try:
            handle = h5py.File(self.path, "r")
        except OSError as exc:
            raise OSError(f"{self.path} is not a readable HDF5 feature cache ({exc})") from exc
        with handle:
            if handle.attrs.get("format") != _FORMAT:
                raise ValueError(f"{self.path} is not a fusion-iqa feature cache")
            version = int(handle.attrs.get("format_version", 0))
            if version > _FORMAT_VERSION:
                raise ValueError(f"{self.path} has cache format {version}; this fusion-iqa "
                                 f"reads up to {_FORMAT_VERSION}: upgrade it")
            for key, group in handle.items():
                table = _Table(json.loads(group.attrs["feature_names"]))
                keys = [k.decode() for k in group["keys"][()]]
                values = np.asarray(group["values"][()], dtype=np.float64)
                table.rows = {k: values[i] for i, k in enumerate(keys)}
                self._tables[key] = table

    def _acquire_lock(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                descriptor = os.open(self._lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                holder = self._lock_holder()
                if holder is not None and holder != os.getpid() and _alive(holder):
                    raise CacheLockedError(
                        f"{self.path} is being written by process {holder}; a cache has one "
                        "writer at a time (use one cache file per process, then merge them)"
                    ) from None
                self._lock_path.unlink(missing_ok=True)  # stale: its writer is gone
                if holder is not None and holder != os.getpid():
                    # a writer killed inside flush() leaves its half-written temp file
                    self._temporary(holder).unlink(missing_ok=True)
                continue
            with os.fdopen(descriptor, "w") as handle:
                handle.write(str(os.getpid()))
            self._locked = True
            return
        raise CacheLockedError(f"could not take the write lock {self._lock_path}")

    def _temporary(self, pid: int) -> Path:
        """The temp file process ``pid`` writes a flush to before renaming it."""
        return self.path.with_name(f".{self.path.name}.{pid}.tmp")

    def _lock_holder(self) -> int | None:
        try:
            return int(self._lock_path.read_text().strip() or "0") or None
        except (OSError, ValueError):
            return None

    def _release_lock(self) -> None:
        if self._locked:
            self._lock_path.unlink(missing_ok=True)
            self._locked = False

    def __del__(self) -> None:  # a forgotten close() must not leave the lock behind
        with contextlib.suppress(Exception):  # e.g. during interpreter shutdown
            self._release_lock()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
