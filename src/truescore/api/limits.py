"""The gate in front of the API: authentication before the body is read, per-key rate limits and quotas.

:class:`Gate` is a pure ASGI middleware. For every request it reads only the headers:

- a write (POST, PUT, PATCH, DELETE) without ``Authorization: Bearer <key>`` is answered 401, and one
  with an unknown or revoked key 403, before a byte of the body is received; reads need a key only
  when ``api.require_key_for_reads`` is set;
- a request with a valid key counts against the key's rate: at most ``api.rate_limit_requests`` per
  ``api.rate_window_seconds`` window (fixed windows aligned to the epoch); over it, 429 with
  ``Retry-After`` = seconds to the next window;
- the verified :class:`~truescore.store.service.Principal` is put into ``scope["state"]["principal"]``
  for the routes (:mod:`truescore.api.deps`).

Event quotas (``api.daily_event_quota`` events per key per UTC day) are charged by the write path once
the batch is parsed (:meth:`Limiter.charge_events`), before anything is stored.

Counters live in Redis (``api.redis_url``), in the store's ``rate_counters`` table, or in this process;
see ``api.rate_backend``. Redis and the database are shared by every server process of a store.
"""

from __future__ import annotations

import json
import math
import threading
import time
from typing import Any

import anyio
from starlette.types import ASGIApp, Receive, Scope, Send

from truescore.config import Settings
from truescore.errors import TruescoreError
from truescore.store import Store, service
from truescore.store.service import Principal

__all__ = ["Gate", "Limiter", "RateLimited"]

_WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
_DAY = 86_400


class RateLimited(TruescoreError):
    """Over a rate limit or quota; answered 429 with ``Retry-After``."""

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = max(1, int(retry_after))


class Limiter:
    """Fixed-window counters per key: requests per window and events per UTC day.

    Parameters
    ----------
    store : Store
        Holds the ``rate_counters`` table (database backend).
    settings : Settings
        ``api.rate_*``, ``api.daily_event_quota``, ``api.rate_backend``, ``api.redis_url``.
    """

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.api = settings.api
        backend = self.api.rate_backend
        if backend == "auto":
            backend = "redis" if self.api.redis_url else ("database" if store.dialect == "postgresql" else "memory")
        if backend == "redis" and not self.api.redis_url:
            raise ValueError("api.rate_backend is 'redis' but api.redis_url is not set")
        self.backend = backend
        self._memory: dict[tuple[str, str, int], int] = {}
        self._lock = threading.Lock()
        #: secret -> (principal, expiry) of the keys this process verified (the Gate's cache)
        self.key_cache: dict[str, tuple[Principal | None, float]] = {}
        self._redis: Any = None
        if backend == "redis":
            try:
                import redis
            except ImportError as exc:  # pragma: no cover - the extra is installed with the api
                raise ValueError(f"api.rate_backend 'redis' needs the redis package: {exc}") from None
            self._redis = redis.Redis.from_url(str(self.api.redis_url), socket_timeout=2)

    def _add(self, key_id: str, bucket: str, window: int, n: int, ttl: int) -> int:
        if self.backend == "memory":
            with self._lock:
                k = (key_id, bucket, window)
                value = self._memory.get(k, 0) + n
                self._memory[k] = value
                if len(self._memory) > 100_000:  # forget old windows
                    for old in [x for x in self._memory if x[2] < window]:
                        del self._memory[old]
                return value
        if self.backend == "redis":
            name = f"truescore:rate:{key_id}:{bucket}:{window}"
            pipe = self._redis.pipeline()
            pipe.incrby(name, n)
            pipe.expire(name, ttl)
            return int(pipe.execute()[0])
        return service.add_counter(self.store, key_id, bucket, window, n)

    def hit(self, principal: Principal, now: float | None = None) -> None:
        """Count one request of ``principal``; RateLimited if it is over its rate."""
        limit = principal.rate_limit if principal.rate_limit is not None else self.api.rate_limit_requests
        if limit <= 0:
            return
        now = time.time() if now is None else now
        span = self.api.rate_window_seconds
        window = int(now // span) * span
        piece = self.api.rate_burst_seconds
        if 0 < piece < span:  # the allowance is spread over the window: no whole-window burst at once
            allowance = math.ceil(limit * piece / span)
            start = int(now // piece) * piece
            if self._add(principal.key_id, "burst", start, 1, 2 * piece) > allowance:
                raise RateLimited(f"rate limit: key {principal.key_id} made more than {allowance} requests in "
                                  f"{piece} s ({limit} per {span} s spread over {piece} s slices: "
                                  "api.rate_limit_requests, api.rate_burst_seconds)",
                                  max(1, math.ceil(start + piece - now)))
        if self._add(principal.key_id, "rate", window, 1, 2 * span) > limit:
            raise RateLimited(f"rate limit: key {principal.key_id} made more than {limit} requests in "
                              f"{span} s (api.rate_limit_requests)", math.ceil(window + span - now))

    def forget_keys(self) -> None:
        """Drop every cached key verification: after a key was revoked or deleted through this process (an
        erasure), the next request with it asks the store."""
        self.key_cache.clear()

    def charge_events(self, principal: Principal, n: int, now: float | None = None) -> None:
        """Charge ``n`` events to ``principal``'s daily quota; RateLimited (and nothing charged beyond the
        quota's refusal) if they do not fit."""
        quota = principal.daily_quota if principal.daily_quota is not None else self.api.daily_event_quota
        if quota <= 0 or n <= 0:
            return
        now = time.time() if now is None else now
        day = int(now // _DAY) * _DAY
        total = self._add(principal.key_id, "day", day, n, 2 * _DAY)
        if total > quota:
            self._add(principal.key_id, "day", day, -n, 2 * _DAY)  # a refused batch does not use the quota
            raise RateLimited(f"daily quota: key {principal.key_id} may write {quota} events per UTC day "
                              f"(api.daily_event_quota); {total - n} used, this batch has {n}",
                              math.ceil(day + _DAY - now))


    def refund_events(self, principal: Principal, n: int, now: float | None = None) -> None:
        """Give back ``n`` events charged by :meth:`charge_events` for a batch that was not stored."""
        quota = principal.daily_quota if principal.daily_quota is not None else self.api.daily_event_quota
        if quota <= 0 or n <= 0:
            return
        now = time.time() if now is None else now
        day = int(now // _DAY) * _DAY
        self._add(principal.key_id, "day", day, -n, 2 * _DAY)


class Gate:
    """ASGI middleware: key check and rate limit from the headers alone (see the module docstring)."""

    def __init__(self, app: ASGIApp, store: Store, settings: Settings, limiter: Limiter) -> None:
        self.app = app
        self.store = store
        self.settings = settings
        self.limiter = limiter
        #: verified keys, shared with the limiter so a route can drop them (:meth:`Limiter.forget_keys`)
        self._cache = limiter.key_cache

    async def _principal(self, secret: str) -> Principal | None:
        now = time.monotonic()
        hit = self._cache.get(secret)
        if hit is not None and hit[1] > now:
            return hit[0]
        principal = await anyio.to_thread.run_sync(service.verify_key, self.store, secret)
        ttl = self.settings.api.key_cache_seconds
        if ttl > 0:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[secret] = (principal, now + ttl)
        return principal

    def forget(self) -> None:
        """Drop cached keys (after a revocation through this process)."""
        self.limiter.forget_keys()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        secret = None
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                raw = value.decode("latin-1").strip()
                if raw[:7].lower() == "bearer ":
                    secret = raw[7:].strip() or None
                break
        method = scope.get("method", "GET")
        needs_key = method in _WRITE_METHODS or self.settings.api.require_key_for_reads
        if secret is None:
            if needs_key and _api_path(scope):
                await _answer(send, 401, "this endpoint needs an API key: send 'Authorization: Bearer <key>' "
                                         "(create one with `truescore keys create`)", {"www-authenticate": "Bearer"})
                return
            await self.app(scope, receive, send)
            return
        try:
            principal = await self._principal(secret)
        except Exception:  # the store cannot be asked: let the route answer (503 from the store error)
            await self.app(scope, receive, send)
            return
        if principal is None:
            await _answer(send, 403, "the API key is not valid or was revoked")
            return
        try:
            if self.limiter.backend == "memory":
                self.limiter.hit(principal)
            else:
                await anyio.to_thread.run_sync(self.limiter.hit, principal)
        except RateLimited as exc:
            delay = self.settings.api.rate_refusal_delay_seconds
            if delay > 0:  # a client that ignores Retry-After waits too: cheap refusals cannot become a flood
                await anyio.sleep(min(delay, exc.retry_after))
            await _answer(send, 429, exc.detail, {"retry-after": str(exc.retry_after)})
            return
        except Exception as exc:  # the counters' store (database or Redis) cannot be used: 503, one line
            from truescore.store.errors import unavailable_reason

            reason = unavailable_reason(exc) or f"rate-limit counters unavailable ({exc.__class__.__name__})"
            await _answer(send, 503, f"the store cannot be used: {reason}", {"retry-after": "5"})
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


def _api_path(scope: Scope) -> bool:
    """Everything but the static web page and the docs is the API."""
    path: str = scope.get("path", "")
    return not (path == "/" or path.startswith("/static") or path.startswith("/docs") or path == "/openapi.json")


async def _answer(send: Send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    if status in (401, 403):
        raw.append((b"connection", b"close"))  # the body was not read: do not reuse the connection
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
