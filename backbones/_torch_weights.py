"""Read a PyTorch legacy ``.pth`` state dict into NumPy arrays, without importing torch.

The legacy format (``torch.save`` before 1.6, ``_use_new_zipfile_serialization=False``) is
a stream: three small pickles (magic number, protocol version, system info), the state
dict pickle whose tensors refer to storages by a persistent id, a pickle of the storage
keys, then each storage as a little-endian int64 element count followed by its raw bytes.

A plain ``pickle.load`` would execute whatever the file names. :class:`_StateDictUnpickler`
resolves only the four globals a state dict needs (``collections.OrderedDict``,
``torch._utils._rebuild_tensor_v2`` and the ``torch.*Storage`` types, mapped to inert
stand-ins) and refuses every other global, so a tampered file cannot run code. The file's
SHA-256 is checked against an expected value before it is parsed.
"""

from __future__ import annotations

import collections
import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from backbones.hashing import sha256_of

__all__ = ["WeightFileError", "load_state_dict"]

_MAGIC = 0x1950A86A20F9469CFC6C
_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
           "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
           "ByteStorage": np.uint8, "CharStorage": np.int8, "BoolStorage": np.bool_}


class WeightFileError(ValueError):
    """A weight file is missing, altered, or not a state dict this reader accepts."""


class _StorageType:
    def __init__(self, name: str) -> None:
        self.dtype = _DTYPES[name]


class _Storage:
    def __init__(self, dtype: Any, numel: int) -> None:
        self.dtype = dtype
        self.numel = numel
        self.data: NDArray[Any] | None = None


class _TensorSpec:
    def __init__(self, storage: _Storage, offset: int, size: tuple[int, ...],
                 stride: tuple[int, ...]) -> None:
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def to_numpy(self) -> NDArray[Any]:
        data = self.storage.data
        if data is None:
            raise WeightFileError("a tensor refers to a storage that the file does not hold")
        needed = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride,
                                                               strict=True)) + 1
        if self.size and (min(self.size) > 0 and needed > data.size):
            raise WeightFileError("a tensor reaches past the end of its storage")
        view = np.lib.stride_tricks.as_strided(
            data[self.offset:], shape=self.size,
            strides=[s * data.itemsize for s in self.stride],
        )
        return np.array(view, copy=True)


def _rebuild_tensor_v2(storage: _Storage, offset: int, size: tuple[int, ...],
                       stride: tuple[int, ...], *_: Any) -> _TensorSpec:
    return _TensorSpec(storage, int(offset), tuple(size), tuple(stride))


class _StateDictUnpickler(pickle.Unpickler):
    def __init__(self, handle: Any) -> None:
        super().__init__(handle)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from a "
                                     "weight file")

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and pid[5] is None):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r:.80}")
        _, kind, key, _location, numel, _view = pid
        if key not in self.storages:
            self.storages[key] = _Storage(kind.dtype, int(numel))
        return self.storages[key]


def load_state_dict(path: str | Path, *, sha256: str | None) -> dict[str, NDArray[Any]]:
    """Read a legacy-format PyTorch state dict as ``{name: ndarray}``.

    Parameters
    ----------
    path : str or Path
    sha256 : str or None
        Expected hex digest of the file; None skips the check (for tests only).

    Raises
    ------
    WeightFileError
        If the file is missing, its hash differs, or it is not a plain state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightFileError(f"weight file not found: {path}")
    if sha256 is not None:
        actual = sha256_of(path)
        if actual != sha256:
            raise WeightFileError(f"{path} has SHA-256 {actual}, expected {sha256}: the file "
                                  "is not the published one")
    try:
        with open(path, "rb") as handle:
            if _SafeScalarUnpickler(handle).load() != _MAGIC:
                raise WeightFileError(f"{path} is not a legacy PyTorch weight file")
            _SafeScalarUnpickler(handle).load()  # protocol version
            _SafeScalarUnpickler(handle).load()  # system info
            unpickler = _StateDictUnpickler(handle)
            state = unpickler.load()
            keys = _SafeScalarUnpickler(handle).load()
            for key in keys:
                storage = unpickler.storages[key]
                (count,) = struct.unpack("<q", handle.read(8))
                if count != storage.numel:
                    raise WeightFileError(f"storage {key}: {count} elements, expected "
                                          f"{storage.numel}")
                raw = handle.read(count * np.dtype(storage.dtype).itemsize)
                storage.data = np.frombuffer(raw, dtype=storage.dtype)
    except (pickle.UnpicklingError, EOFError, struct.error, KeyError, ValueError) as exc:
        if isinstance(exc, WeightFileError):
            raise
        raise WeightFileError(f"{path} is not a readable state dict ({exc})") from exc
    if not isinstance(state, dict):
        raise WeightFileError(f"{path} holds a {type(state).__name__}, not a state dict")
    return {name: spec.to_numpy() for name, spec in state.items()
            if isinstance(spec, _TensorSpec)}


class _SafeScalarUnpickler(pickle.Unpickler):
    """For the header pickles: plain values only, no globals at all."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
