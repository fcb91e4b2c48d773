"""One small LRU cache with a time-to-live, used by every cache of the trust engine.

An entry is a value stored with its birth time (from an injectable clock, ``time.monotonic`` by
default) and an optional *token*: whatever the value depends on (an index version, the very search
objects it came from). :meth:`TTLCache.get` returns the value only while it is younger than the TTL
and its token still matches the caller's (tokens compare element by element, by identity for objects
and by value for ints), and moves it to the most-recently-used end; otherwise it drops it. ``put``
evicts the least recently used entries beyond ``max_entries``. ``max_entries == 0`` or ``ttl <= 0``
disables the cache (``get`` always misses, ``put`` stores nothing).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ["TTLCache", "same_token"]

V = TypeVar("V")


def same_token(a: tuple[Any, ...] | None, b: tuple[Any, ...] | None) -> bool:
    """Tokens match when they have the same length and each pair is the same object or equal ints."""
    if a is None or b is None:
        return a is b
    return len(a) == len(b) and all(x is y or (type(x) is int and x == y) for x, y in zip(a, b, strict=True))


@dataclass(slots=True)
class _Slot(Generic[V]):
    value: V
    born: float
    token: tuple[Any, ...] | None


class TTLCache(Generic[V]):
    """LRU + TTL cache (see the module docstring).

    Parameters
    ----------
    max_entries : int
    ttl : float
        Seconds an entry stays valid (``math.inf``: until evicted).
    clock : callable, optional
        Returns the current time in seconds; ``time.monotonic`` by default (tests inject a fake).

    Attributes
    ----------
    hits, misses, expired : int
        ``expired`` counts entries dropped on ``get`` for age or a stale token.
    """

    def __init__(self, max_entries: int, ttl: float, clock: Callable[[], float] | None = None) -> None:
        if max_entries < 0:
            raise ValueError(f"max_entries must be >= 0, got {max_entries}")
        self.max_entries = int(max_entries)
        self.ttl = float(ttl)
        self.clock = clock if clock is not None else time.monotonic
        self._data: OrderedDict[Hashable, _Slot[V]] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.expired = 0

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0 and self.ttl > 0

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._data

    def keys(self) -> Iterator[Hashable]:
        return iter(list(self._data))

    def get(self, key: Hashable, token: tuple[Any, ...] | None = None) -> V | None:
        """The live value under ``key`` whose token matches ``token``, else None (a stale one is dropped)."""
        slot = self._data.get(key)
        if slot is None:
            self.misses += 1
            return None
        if self.clock() - slot.born > self.ttl or not same_token(slot.token, token):
            del self._data[key]
            self.expired += 1
            self.misses += 1
            return None
        self._data.move_to_end(key)
        self.hits += 1
        return slot.value

    def peek(self, key: Hashable) -> V | None:
        """The stored value regardless of age or token (no LRU move, no counters)."""
        slot = self._data.get(key)
        return None if slot is None else slot.value

    def put(self, key: Hashable, value: V, token: tuple[Any, ...] | None = None) -> None:
        if not self.enabled:
            return
        self._data[key] = _Slot(value, self.clock(), token)
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    def pop(self, key: Hashable) -> V | None:
        slot = self._data.pop(key, None)
        return None if slot is None else slot.value

    def drop_where(self, predicate: Callable[[Hashable, V], bool]) -> int:
        """Remove every entry for which ``predicate(key, value)`` holds; returns how many."""
        doomed = [k for k, s in self._data.items() if predicate(k, s.value)]
        for k in doomed:
            del self._data[k]
        return len(doomed)

    def clear(self) -> None:
        self._data.clear()
