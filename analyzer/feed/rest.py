"""One rate-limited REST queue per venue.

Every REST call of a venue (depth snapshots for resyncs, open-interest polls, trade backfills,
instrument metadata) goes through one queue and one token bucket sized in the venue's request
weight, so a reconnect that invalidates hundreds of books cannot turn into a request storm and a
ban. A 429 or 418 stops the queue for the ``Retry-After`` the venue asks for; requests are kept
and retried, never dropped. HTTP is done with urllib in a worker thread: REST is a few requests a
second at most, and it keeps the dependency list short.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

Callback = Callable[[bytes, int], None]


class RestError(Exception):
    """A REST request failed for a reason retrying will not fix (4xx other than 429/418)."""


@dataclass(slots=True)
class Request:
    path: str
    weight: int
    callback: Callback
    key: str | None = None
    attempts: int = 0


@dataclass(slots=True)
class RestStats:
    requests: int = 0
    errors: int = 0
    throttled: int = 0  # 429 / 418 answers
    waited_seconds: float = 0.0  # time spent waiting for budget or Retry-After
    used_weight: int = 0  # the venue's X-MBX-USED-WEIGHT-1M, last seen
    by_status: dict[str, int] = field(default_factory=dict)


class RestQueue:
    def __init__(
        self,
        base_url: str,
        weight_per_minute: int,
        *,
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
        max_queue: int = 10_000,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.capacity = float(weight_per_minute)
        self.rate = weight_per_minute / 60.0  # weight refilled per second
        self.tokens = self.capacity
        self.updated = time.monotonic()
        self.headers = {"User-Agent": "analyzer", **(headers or {})}
        self.timeout = timeout
        self.queue: asyncio.Queue[Request] = asyncio.Queue(max_queue)
        self.keys: set[str] = set()
        self.stats = RestStats()
        self.paused_until = 0.0

    def __len__(self) -> int:
        return self.queue.qsize()

    def submit(self, path: str, weight: int, callback: Callback, key: str | None = None) -> bool:
        """Queue a request; a request whose key is already queued is not queued twice."""
        if key is not None:
            if key in self.keys:
                return False
            self.keys.add(key)
        try:
            self.queue.put_nowait(Request(path, weight, callback, key))
        except asyncio.QueueFull:
            log.error("REST queue of %s is full; request %s not queued", self.base_url, path)
            if key is not None:
                self.keys.discard(key)
            return False
        return True

    async def get(self, path: str, weight: int = 1) -> bytes:
        """Fetch now (outside the queue's order, inside its budget): for start-up metadata."""
        await self._take(weight)
        return await self._fetch_retrying(path)

    async def run(self) -> None:
        while True:
            req = await self.queue.get()
            await self._take(req.weight)
            try:
                body = await self._fetch_retrying(req.path)
            except RestError as exc:
                log.error("REST %s failed: %s", req.path, exc)
                body = b""
            if req.key is not None:
                self.keys.discard(req.key)
            if body:
                try:
                    req.callback(body, time.time_ns())
                except Exception:
                    log.exception("handling REST response of %s failed", req.path)

    async def _take(self, weight: int) -> None:
        while True:
            now = time.monotonic()
            if now < self.paused_until:
                wait = self.paused_until - now
            else:
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= weight or self.tokens >= self.capacity:
                    self.tokens -= weight
                    return
                wait = (weight - self.tokens) / self.rate
            self.stats.waited_seconds += wait
            await asyncio.sleep(wait)

    async def _fetch_retrying(self, path: str) -> bytes:
        delay = 0.5
        while True:
            try:
                return await asyncio.to_thread(self._fetch, path)
            except RestError:
                raise
            except (OSError, urllib.error.URLError) as exc:
                self.stats.errors += 1
                log.warning("REST %s%s: %s; retrying in %.1fs", self.base_url, path, exc, delay)
            # honour a Retry-After pause; otherwise back off with jitter
            wait = max(delay * (0.5 + random.random()), self.paused_until - time.monotonic())
            self.stats.waited_seconds += wait
            await asyncio.sleep(wait)
            delay = min(delay * 2, 30.0)

    def _fetch(self, path: str) -> bytes:
        self.stats.requests += 1
        req = urllib.request.Request(self.base_url + path, headers=self.headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                self._count(str(resp.status), resp.headers)
                return resp.read()
        except urllib.error.HTTPError as exc:
            self._count(str(exc.code), exc.headers)
            if exc.code in (429, 418):
                self.stats.throttled += 1
                retry_after = float(exc.headers.get("Retry-After") or 60)
                self.paused_until = time.monotonic() + retry_after
                log.warning("%s answered %d: pausing REST for %.0fs", self.base_url, exc.code,
                            retry_after)
                raise OSError(f"HTTP {exc.code}") from None
            if exc.code >= 500:
                raise OSError(f"HTTP {exc.code}") from None
            raise RestError(f"HTTP {exc.code}: {exc.read()[:200]!r}") from None

    def _count(self, status: str, headers: object) -> None:
        self.stats.by_status[status] = self.stats.by_status.get(status, 0) + 1
        used = getattr(headers, "get", lambda _k: None)("X-MBX-USED-WEIGHT-1M")
        if used:
            self.stats.used_weight = int(used)
