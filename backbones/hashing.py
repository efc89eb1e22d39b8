"""SHA-256 of files: how weight files, exported backbones and bundles are checked."""

from __future__ import annotations

import hashlib
import os

__all__ = ["sha256_bytes_of", "sha256_of"]

_BLOCK = 1 << 20


def sha256_bytes_of(path: str | os.PathLike[str]) -> bytes:
    """Raw SHA-256 digest of a file's content, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_BLOCK), b""):
            digest.update(block)
    return digest.digest()


def sha256_of(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's content.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> file = pathlib.Path(tempfile.mkdtemp()) / "empty"
    >>> _ = file.write_bytes(b"")
    >>> sha256_of(file)[:16]
    'e3b0c44298fc1c14'
    """
    return sha256_bytes_of(path).hex()
