"""Per-thread reusable work buffers (see :func:`scratch`)."""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
from numpy.typing import NDArray

__all__ = ["SCRATCH_BYTES", "scratch"]

#: Bytes of scratch buffers kept per thread between calls (see :func:`scratch`).
SCRATCH_BYTES = 256 * 2**20

_local = threading.local()


def scratch(tag: str, shape: tuple[int, ...]) -> NDArray[np.float32]:
    """A float32 work buffer of ``shape``, reused by later calls in the same thread.

    Fresh multi-megabyte arrays cost a page fault per 4 KiB on first touch, which on this
    project's reference machine (a 2-core VM) doubled the cost of SSIM; reusing buffers
    avoids that. The contents are garbage on return, and a buffer is only valid until
    the next call with the same ``tag`` and ``shape`` in this thread, so callers must
    not return it (or a view of it) to users. At most :data:`SCRATCH_BYTES` are kept.
    """
    pool: OrderedDict[tuple[str, tuple[int, ...]], NDArray[np.float32]] | None = getattr(
        _local, "pool", None
    )
    if pool is None:
        pool = _local.pool = OrderedDict()
    key = (tag, shape)
    buffer = pool.get(key)
    if buffer is not None:
        pool.move_to_end(key)
        return buffer
    buffer = np.empty(shape, dtype=np.float32)
    pool[key] = buffer
    while sum(b.nbytes for b in pool.values()) > SCRATCH_BYTES and len(pool) > 1:
        pool.popitem(last=False)
    return buffer
