"""One rate-limited REST queue per venue.

Every REST call of a venue (depth snapshots for resyncs, open-interest polls, trade backfills,
instrument metadata) goes through one queue and one token bucket sized in the venue's request
weight, so a reconnect that invalidates hundreds of books cannot turn into a request storm and a
ban. Answers that ask us to back off pause the whole queue:

- 429 (throttled) for the ``Retry-After`` the venue asks for;
- a ban (403, a WAF or a ban, and whatever else the venue uses: ``ban_statuses``) for
  ``Retry-After`` if given, else for a ban backoff that doubles with each ban in a row (60 s up
  to 30 min); each ban is logged once.

``Retry-After`` is delta-seconds or an HTTP-date, clamped to an hour; an unreadable one is a
default, never an exception. Queued requests are retried (429, 5xx, network errors, timeouts),
never dropped: the only requests lost are those a full queue refuses at ``submit``, and those are
counted. Every answer is counted by HTTP status, and a request that got no answer by ``"timeout"``
or ``"error"``. HTTP is done with urllib in a worker thread: REST is a few requests a second at
most, and it keeps the dependency list short.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import http.client
import logging
import math
import random
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC

log = logging.getLogger(__name__)

Callback = Callable[[bytes, int], None]

RETRY_AFTER_MAX = 3600.0  # seconds; a longer Retry-After is retried after this (and re-answered)
REJECT_LOG_SECONDS = 10.0  # a full queue is logged at most this often


class RestError(Exception):
    """A REST request failed for a reason retrying now will not fix; the message is one line."""


class RestBanned(RestError):
    """The venue answered 418 or 403: it bans this client for a while."""


class RestUnavailable(RestError):
    """A ``get`` with bounded tries used them all up (no answer, 5xx or 429)."""


class _Retry(Exception):
    """A failure worth retrying after a backoff; the message is its one-line cause."""


def retry_after(value: str | None, default: float, now: float | None = None) -> float:
    """Seconds to wait for a ``Retry-After`` value, delta-seconds or an HTTP-date (RFC 9110
    10.2.3), clamped to [0, RETRY_AFTER_MAX]; absent or unreadable: ``default``. Never raises."""
    if value is None:
        return default
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
            if when.tzinfo is None:  # "-0000": UTC by RFC 5322
                when = when.replace(tzinfo=UTC)
            seconds = when.timestamp() - (time.time() if now is None else now)
        except (TypeError, ValueError, IndexError, OverflowError):
            return default
    if not math.isfinite(seconds):
        return default
    return min(max(seconds, 0.0), RETRY_AFTER_MAX)


def _no_answer(exc: BaseException) -> tuple[str, str]:
    """(status label, one-line cause) of a request that got no HTTP answer."""
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError):
        return "timeout", "timed out"
    if isinstance(reason, socket.gaierror):
        return "error", f"DNS lookup failed ({reason.strerror})"
    if isinstance(reason, ConnectionRefusedError):
        return "error", "connection refused"
    if isinstance(reason, http.client.RemoteDisconnected):
        return "error", "connection closed without an answer"
    if isinstance(reason, ConnectionResetError):
        return "error", "connection reset"
    if isinstance(reason, ssl.SSLError):
        return "error", f"TLS error ({reason.reason or reason})"
    if isinstance(reason, http.client.HTTPException):
        return "error", f"bad HTTP answer ({type(reason).__name__})"
    text = (reason.strerror if isinstance(reason, OSError) else None) or str(reason)
    return "error", " ".join(text.split()) or type(reason).__name__


@dataclass(slots=True)
class Request:
    path: str
    weight: int
    callback: Callback
    key: str | None = None
    attempts: int = 0


@dataclass(slots=True)
class RestStats:
    requests: int = 0  # attempts, retries included
    errors: int = 0  # failed attempts, whatever the cause
    throttled: int = 0  # 429 answers
    bans: int = 0  # ban answers (``ban_statuses``)
    rejected: int = 0  # submits refused by a full queue: the only requests ever lost
    callback_errors: int = 0  # responses whose handler raised
    waited_seconds: float = 0.0  # time spent waiting for budget, Retry-After or a ban
    used_weight: int = 0  # the venue's used-weight header, last seen (if it sends one)
    # attempts by HTTP status; "timeout" and "error" for those that got no answer
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
        throttle_default: float = 60.0,
        ban_backoff: tuple[float, float] = (60.0, 1800.0),
        retry_backoff: tuple[float, float] = (0.5, 30.0),
        ban_statuses: tuple[int, ...] = (403,),
        used_weight_header: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.capacity = float(weight_per_minute)
        self.rate = weight_per_minute / 60.0  # weight refilled per second
        self.tokens = self.capacity
        self.updated = time.monotonic()
        self.headers = {"User-Agent": "analyzer", **(headers or {})}
        self.timeout = timeout
        self.throttle_default = throttle_default  # a 429 without a readable Retry-After
        self.ban_backoff = ban_backoff  # (first, longest) pause of a ban without Retry-After
        self.retry_backoff = retry_backoff  # (first, longest) between retries of a failure
        self.ban_statuses = ban_statuses
        self.used_weight_header = used_weight_header
        self.queue: asyncio.Queue[Request] = asyncio.Queue(max_queue)
        self.keys: set[str] = set()
        self.stats = RestStats()
        self.paused_until = 0.0  # monotonic; no request leaves before
        self.banned_until = 0.0
        self.ban_streak = 0  # bans since the last answer that was not one
        self.last_failure: str | None = None  # "<url>: <cause>", until the next success
        self._reject_log_at = 0.0

    def __len__(self) -> int:
        return self.queue.qsize()

    def submit(self, path: str, weight: int, callback: Callback, key: str | None = None) -> bool:
        """Queue a request; a request whose key is already queued is not queued twice. False if
        not queued: a duplicate, or a full queue (counted in ``stats.rejected``)."""
        if key is not None:
            if key in self.keys:
                return False
            self.keys.add(key)
        try:
            self.queue.put_nowait(Request(path, weight, callback, key))
        except asyncio.QueueFull:
            if key is not None:
                self.keys.discard(key)
            self.stats.rejected += 1
            now = time.monotonic()
            if now >= self._reject_log_at:
                self._reject_log_at = now + REJECT_LOG_SECONDS
                log.error("REST queue of %s is full (%d waiting): %s not queued (%d refused so "
                          "far)", self.base_url, self.queue.qsize(), path, self.stats.rejected)
            return False
        return True

    async def get(self, path: str, weight: int = 1, *, tries: int | None = None) -> bytes:
        """Fetch now (outside the queue's order, inside its budget and pauses): for metadata.
        With ``tries``, give up after that many failed attempts (RestUnavailable) or at a ban
        (RestBanned) instead of waiting: start-up must not hang on a venue it cannot use."""
        await self._take(weight)
        return await self._fetch_retrying(path, tries)

    async def run(self) -> None:
        """Serve the queue until cancelled; no failure of a request or its callback ends it."""
        while True:
            req = await self.queue.get()
            try:
                await self._take(req.weight)
                body = await self._fetch_retrying(req.path)
            except RestError as exc:
                log.error("REST %s%s failed, not retried: %s", self.base_url, req.path, exc)
                continue
            except Exception:
                self.stats.errors += 1
                self._count("error")
                log.exception("REST %s%s failed, not retried", self.base_url, req.path)
                continue
            finally:
                if req.key is not None:
                    self.keys.discard(req.key)
            try:
                req.callback(body, time.time_ns())
            except Exception:
                self.stats.callback_errors += 1
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

    async def _fetch_retrying(self, path: str, tries: int | None = None) -> bytes:
        delay, longest = self.retry_backoff
        failures = 0
        while True:
            cause = None
            try:
                return await self._attempt(path)
            except RestBanned:  # logged once, by _ban
                if tries is not None:
                    raise
            except _Retry as exc:
                failures += 1
                if tries is not None and failures >= tries:
                    raise RestUnavailable(f"{exc} ({failures} tries)") from None
                cause = exc
            # honour a Retry-After or ban pause; otherwise back off with jitter
            wait = max(delay * (0.5 + random.random()), self.paused_until - time.monotonic())
            if cause is not None:
                log.warning("REST %s%s: %s; retrying in %.1f s", self.base_url, path, cause, wait)
            self.stats.waited_seconds += wait
            await asyncio.sleep(wait)
            delay = min(delay * 2, longest)

    async def _attempt(self, path: str) -> bytes:
        """One request: the body of a 2xx answer; raises _Retry, RestBanned or RestError."""
        url = self.base_url + path
        self.stats.requests += 1
        try:
            status, headers, body = await self._in_thread(url)
        except ValueError as exc:  # a malformed URL: a config error, not worth retrying
            self._failed(url, "error", str(exc))
            raise RestError(str(exc)) from None
        except (OSError, http.client.HTTPException) as exc:  # URLError is an OSError
            label, cause = _no_answer(exc)
            self._failed(url, label, cause)
            raise _Retry(cause) from None
        if self.used_weight_header is not None:
            used = headers.get(self.used_weight_header)
            if used and used.isdigit():
                self.stats.used_weight = int(used)
        if status < 400:
            self._count(str(status))
            self.ban_streak = 0
            self.last_failure = None
            return body
        if status == 429:
            self.stats.throttled += 1
            pause = retry_after(headers.get("Retry-After"), self.throttle_default)
            self._pause(pause)
            cause = "HTTP 429 (throttled)"
        elif status in self.ban_statuses:
            self._ban(status, headers)
            self._failed(url, str(status), f"HTTP {status} (banned)")
            raise RestBanned(f"HTTP {status} (banned)")
        elif status >= 500:
            cause = f"HTTP {status}"
        else:
            self._failed(url, str(status), f"HTTP {status}: {body[:200]!r}")
            raise RestError(f"HTTP {status}: {body[:200]!r}")
        self._failed(url, str(status), cause)
        raise _Retry(cause)

    async def _in_thread(self, url: str) -> tuple[int, Mapping[str, str], bytes]:
        """``_fetch`` in a daemon thread of its own, not the loop's executor: asyncio.run() joins
        the executor at exit, so a venue that never answers would hold the process for the whole
        timeout after a run ended or was cancelled."""
        result: concurrent.futures.Future[tuple[int, Mapping[str, str], bytes]]
        result = concurrent.futures.Future()

        def work() -> None:
            if not result.set_running_or_notify_cancel():
                return
            try:
                result.set_result(self._fetch(url))
            except Exception as exc:
                result.set_exception(exc)

        threading.Thread(target=work, name="rest-fetch", daemon=True).start()
        return await asyncio.wrap_future(result)

    def _fetch(self, url: str) -> tuple[int, Mapping[str, str], bytes]:
        """(status, headers, body) of one GET; in a worker thread, so it touches no state."""
        req = urllib.request.Request(url, headers=self.headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as exc:
            try:
                body = exc.read(200)
            except (OSError, http.client.HTTPException):
                body = b""
            finally:
                exc.close()
            return exc.code, exc.headers or {}, body

    def _ban(self, status: int, headers: Mapping[str, str]) -> None:
        self.stats.bans += 1
        now = time.monotonic()
        if now < self.banned_until:
            return  # another answer of the ban already in force
        first, longest = self.ban_backoff
        backoff = min(first * 2 ** min(self.ban_streak, 30), longest)
        pause = retry_after(headers.get("Retry-After"), backoff)
        self.ban_streak += 1
        self.banned_until = now + pause
        self._pause(pause)
        log.error("%s answered %d: banned (ban #%d in a row); pausing all its REST requests for "
                  "%.1f s", self.base_url, status, self.ban_streak, pause)

    def _pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, time.monotonic() + seconds)

    def _failed(self, url: str, label: str, cause: str) -> None:
        self.stats.errors += 1
        self._count(label)
        self.last_failure = f"{url}: {cause}"

    def _count(self, status: str) -> None:
        self.stats.by_status[status] = self.stats.by_status.get(status, 0) + 1
