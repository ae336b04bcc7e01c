"""Bounded, thread-safe LRU caches: loaded models and lens results.

Lens results are keyed by (model, weights, image digest, options), so a slider that changes
a layer, a head or a colour scale only re-draws from the cache and never re-runs a model.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Generic, Hashable, TypeVar

import numpy as np

V = TypeVar("V")


def nbytes_of(value: object) -> int:
    """Rough memory size of a result: the numpy arrays (and tensors) it holds, recursively."""
    seen: set[int] = set()

    def size(obj: object) -> int:
        if id(obj) in seen:
            return 0
        seen.add(id(obj))
        if isinstance(obj, np.ndarray):
            return obj.nbytes
        if hasattr(obj, "element_size") and hasattr(obj, "nelement"):  # torch.Tensor
            return obj.element_size() * obj.nelement()
        if isinstance(obj, dict):
            return sum(size(v) for v in obj.values())
        if isinstance(obj, (list, tuple)):
            return sum(size(v) for v in obj)
        if hasattr(obj, "__dict__"):
            return size(vars(obj))
        return 0

    return size(value)


class LRUCache(Generic[V]):
    """An LRU cache bounded by item count and by total bytes (``nbytes_of`` each value).

    ``get_or_create`` runs the factory outside the cache lock, but at most once per key at a
    time, so two sessions asking for the same model wait for one load instead of doing two.
    """

    def __init__(self, max_items: int, max_bytes: int | None = None,
                 sizeof: Callable[[object], int] = nbytes_of):
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._sizeof = sizeof
        self._items: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[Hashable, threading.Lock] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    @property
    def total_bytes(self) -> int:
        with self._lock:
            return sum(n for _, n in self._items.values())

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key][0]

    def put(self, key: Hashable, value: V) -> V:
        nbytes = self._sizeof(value) if self.max_bytes is not None else 0
        with self._lock:
            self._items[key] = (value, nbytes)
            self._items.move_to_end(key)
            self._evict()
        return value

    def _evict(self) -> None:
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)
        if self.max_bytes is not None:
            # Always keep the newest item, even when it alone is over the budget.
            while len(self._items) > 1 and sum(n for _, n in self._items.values()) > self.max_bytes:
                self._items.popitem(last=False)

    def get_or_create(self, key: Hashable, factory: Callable[[], V]) -> V:
        value = self.get(key)
        if value is not None:
            return value
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            value = self.get(key)
            if value is None:
                value = self.put(key, factory())
        with self._lock:
            self._key_locks.pop(key, None)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
