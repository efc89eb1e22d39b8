"""Objects built once per process and shared: a double-checked, thread-safe memo."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["BuiltOnce"]

V = TypeVar("V")


class BuiltOnce(Generic[V]):
    """A thread-safe memo: each key's value is built by its first caller, then shared.

    Concurrent first calls for a key build it once (the lock is taken only on a miss).
    """

    def __init__(self) -> None:
        self._values: dict[Hashable, V] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], V]) -> V:
        """The value of ``key``, built with ``build()`` on the first call."""
        value = self._values.get(key)
        if value is None:
            with self._lock:
                value = self._values.get(key)
                if value is None:
                    value = build()
                    self._values[key] = value
        return value

    def clear(self) -> None:
        """Forget every value (the next call of each key builds it again)."""
        with self._lock:
            self._values.clear()
