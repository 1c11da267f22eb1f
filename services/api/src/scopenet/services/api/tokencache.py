"""The token cache auth_token is handed in keystone mode, and the verdicts kept beside its entries.

One cache for every thread of the API process (auth_token's own fallback keeps one per pooled
client), bounded, entries living the ``time=`` auth_token gives them (its ``token_cache_time``).
``keystone.py`` says how the two are used.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


class NeedsKeystone(Exception):
    """A cache miss on the event loop: this token must go to Keystone, from the thread pool."""


@dataclass(frozen=True)
class Verdict:
    """What auth_token concluded about a token, kept beside its cache entry."""

    project_id: str
    roles: tuple[str, ...]
    expires: float
    """The token's own expiry (epoch seconds): past it the verdict no longer holds."""
    user_id: str | None = None


class SharedTokenCache:
    """A memcache-like client (``get``/``set`` with ``time=``) every thread shares; bounded.

    Inside ``cached_only()`` (the event loop's attempt) a miss raises ``NeedsKeystone`` instead
    of answering None, so auth_token never goes on to call Keystone from the loop. Each entry may
    carry a ``Verdict``; a ``set`` (new data) drops it, and it goes when the entry goes."""

    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._lock = threading.Lock()
        self._items: dict[str, tuple[float, Any]] = {}
        self._verdicts: dict[str, Verdict] = {}
        self._local = threading.local()

    def last_key(self) -> str | None:
        """The key this thread last asked for (the entry auth_token just used)."""
        return getattr(self._local, "last_key", None)

    def remember(self, key: str, verdict: Verdict) -> None:
        with self._lock:
            if key in self._items:
                self._verdicts[key] = verdict

    def verdict(self, key: str | None) -> Verdict | None:
        if key is None:
            return None
        with self._lock:
            item = self._items.get(key)
            if item is None or (item[0] and item[0] <= _now()):
                return None
            return self._verdicts.get(key)

    @contextlib.contextmanager
    def cached_only(self) -> Iterator[None]:
        self._local.cached_only = True
        try:
            yield
        finally:
            self._local.cached_only = False

    def get(self, key: str) -> Any:
        self._local.last_key = key
        with self._lock:
            item = self._items.get(key)
            if item is not None and item[0] and item[0] <= _now():
                del self._items[key]
                self._verdicts.pop(key, None)
                item = None
        if item is None:
            if getattr(self._local, "cached_only", False):
                raise NeedsKeystone(key)
            return None
        return item[1]

    def set(self, key: str, value: Any, time: float = 0, **_: Any) -> bool:
        expires = _now() + time if time else 0.0
        with self._lock:
            self._items.pop(key, None)
            self._verdicts.pop(key, None)
            if len(self._items) >= self._max:
                self._evict()
            self._items[key] = (expires, value)
        return True

    def delete(self, key: str, time: float = 0) -> None:
        with self._lock:
            self._items.pop(key, None)
            self._verdicts.pop(key, None)

    def size(self) -> int:
        # Not __len__: auth_token tests the cache object for truth, and an empty one must count.
        return len(self._items)

    def _evict(self) -> None:
        """Drop what expired; if still full, the oldest tenth (dicts keep insertion order)."""
        now = _now()
        for k in [k for k, (exp, _) in self._items.items() if exp and exp <= now]:
            del self._items[k]
        if len(self._items) >= self._max:
            for k in list(self._items)[: max(1, self._max // 10)]:
                del self._items[k]
        self._verdicts = {k: v for k, v in self._verdicts.items() if k in self._items}


def _now() -> float:
    return time.monotonic()
