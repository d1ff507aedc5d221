"""The REST queue and start-up against real HTTP servers on 127.0.0.1: throttles, bans, errors
and unreachable venues are waited out, counted and reported in one line, never a traceback or a
REST task that silently dies."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from analyzer import config
from analyzer.collector import Collector, CollectorError
from analyzer.feed import rest
from analyzer.feed.rest import RestQueue

OK = (200, {}, b'{"ok":true}')
Answer = tuple[int, dict[str, str], bytes] | str  # or "drop": close without answering; "slow"


class Venue:
    """An HTTP server on 127.0.0.1 answering from a script: each request takes the next answer,
    the last one repeats. Records (monotonic time, path) of every request."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers) or [OK]
        self.hits: list[tuple[float, str]] = []
        lock = threading.Lock()
        venue = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with lock:
                    venue.hits.append((time.monotonic(), self.path))
                    answer = venue.answers.pop(0) if len(venue.answers) > 1 else venue.answers[0]
                if answer == "drop":
                    self.close_connection = True
                    return
                if answer == "slow":  # longer than the client's timeout
                    time.sleep(1.0)
                    answer = OK
                assert not isinstance(answer, str)
                status, headers, body = answer
                with contextlib.suppress(OSError):  # the client may have given up
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"

    def gaps(self) -> list[float]:
        """Seconds between consecutive requests."""
        times = [t for t, _ in self.hits]
        return [b - a for a, b in itertools.pairwise(times)]

    def __enter__(self) -> Venue:
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def silent_venue() -> Iterator[str]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


def queue(url: str, **kw: Any) -> RestQueue:
    """A queue of a venue that bans with 418 (Binance) as well as 403."""
    kw.setdefault("retry_backoff", (0.05, 0.1))
    kw.setdefault("ban_statuses", (403, 418))
    return RestQueue(url, 6000, **kw)


async def served(q: RestQueue, *paths: str, callback: Callable[[bytes, int], None] | None = None,
                 timeout: float = 10) -> list[bytes]:
    """Submit ``paths`` to ``q`` served by its run() task; the bodies, once all arrived."""
    bodies: list[bytes] = []
    task = asyncio.create_task(q.run())
    try:
        for p in paths:
            assert q.submit(p, 1, callback or (lambda body, _ts: bodies.append(body)), key=p)
        deadline = time.monotonic() + timeout
        while len(bodies) < len(paths) and time.monotonic() < deadline:
            assert not task.done(), task  # run() never ends of a failure
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return bodies


# -- Retry-After --

def test_retry_after_is_seconds_or_an_http_date_bounded_and_never_raises() -> None:
    now = time.time()
    assert rest.retry_after("120", 7.0) == 120.0
    assert rest.retry_after(" 0 ", 7.0) == 0.0
    assert 89.0 <= rest.retry_after(formatdate(now + 90, usegmt=True), 7.0) <= 90.0
    assert rest.retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 7.0) == 0.0  # in the past
    assert rest.retry_after("Wed, 21 Oct 2015 07:28:00 -0000", 7.0) == 0.0  # naive: UTC
    assert rest.retry_after("86400", 7.0) == rest.RETRY_AFTER_MAX
    assert rest.retry_after("-5", 7.0) == 0.0
    for garbage in (None, "", "soon", "nan", "inf", "1e999", "Wed, 99 Foo 2015 99:99:99 GMT",
                    "Mon, 1 Jan 99999 00:00:00 GMT", "\x00", "12 s"):
        assert rest.retry_after(garbage, 7.0) == 7.0, garbage


def test_429_with_seconds_pauses_then_succeeds() -> None:
    with Venue((429, {"Retry-After": "1"}, b""), OK) as venue:
        q = queue(venue.url)
        assert asyncio.run(q.get("/x")) == OK[2]
    assert venue.gaps()[0] >= 0.95
    assert q.stats.throttled == 1 and q.stats.bans == 0
    assert q.stats.by_status == {"429": 1, "200": 1}


def test_429_with_an_http_date_pauses_then_succeeds() -> None:
    """An HTTP-date used to raise ValueError: out of get(), and out of run() for good."""
    when = formatdate(time.time() + 2, usegmt=True)  # whole seconds: a pause in (1, 2]
    with Venue((429, {"Retry-After": when}, b""), OK) as venue:
        q = queue(venue.url)
        assert asyncio.run(served(q, "/x")) == [OK[2]]
    assert 0.9 <= venue.gaps()[0] < 3.0
    assert q.stats.by_status == {"429": 1, "200": 1}


def test_429_with_garbage_retry_after_pauses_for_the_default() -> None:
    with Venue((429, {"Retry-After": "soon"}, b""), OK) as venue:
        q = queue(venue.url, throttle_default=0.5)
        assert asyncio.run(q.get("/x")) == OK[2]
    assert 0.45 <= venue.gaps()[0] < 2.0
    assert q.stats.throttled == 1


# -- bans --

def test_418_and_403_are_bans_that_pause_the_whole_queue_with_a_growing_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Neither says Retry-After: the ban backoff (0.4 s, then doubled) applies; a request made
    meanwhile waits too; one log line per ban."""
    with Venue((418, {}, b""), (403, {}, b"<html>Forbidden</html>"), OK) as venue:
        q = queue(venue.url, ban_backoff=(0.4, 5.0))
        with caplog.at_level(logging.WARNING, logger="analyzer.feed.rest"):
            assert asyncio.run(served(q, "/banned")) == [OK[2]]
    (t0, _), (t1, _), (t2, _) = venue.hits  # 418; 403; 200
    assert t1 - t0 >= 0.38  # the first ban
    assert t2 - t1 >= 0.78  # the second in a row: twice as long
    assert q.stats.bans == 2 and q.stats.throttled == 0
    assert q.stats.by_status == {"418": 1, "403": 1, "200": 1}
    bans = [r for r in caplog.records if "banned" in r.getMessage()]
    assert len(bans) == 2, [r.getMessage() for r in caplog.records]

    # a request made during a ban waits for its end too (whichever of the two is answered
    # first after it: the venue answers in order of arrival)
    with Venue((418, {}, b""), OK, OK) as venue:
        q = queue(venue.url, ban_backoff=(0.4, 5.0))

        async def main() -> list[bytes]:
            task = asyncio.create_task(served(q, "/banned"))
            while not venue.hits:
                await asyncio.sleep(0.01)
            other = await q.get("/other")  # made during the ban
            return [other, *await task]

        assert asyncio.run(main()) == [OK[2], OK[2]]
    (t0, _), (t1, _), (t2, _) = venue.hits
    assert min(t1, t2) - t0 >= 0.38  # nothing reached the venue during the ban


def test_a_ban_with_retry_after_pauses_for_it() -> None:
    with Venue((418, {"Retry-After": "1"}, b""), OK) as venue:
        q = queue(venue.url, ban_backoff=(30.0, 60.0))
        assert asyncio.run(asyncio.wait_for(q.get("/x"), 5)) == OK[2]
    assert 0.95 <= venue.gaps()[0] < 3.0
    assert q.stats.bans == 1


# -- errors --

def test_5xx_is_retried() -> None:
    with Venue((503, {}, b"busy"), (500, {}, b""), OK) as venue:
        q = queue(venue.url)
        assert asyncio.run(served(q, "/x")) == [OK[2]]
    assert q.stats.by_status == {"503": 1, "500": 1, "200": 1}
    assert q.stats.errors == 2


def test_no_answer_and_timeouts_are_counted_and_retried() -> None:
    with Venue("drop", "slow", OK) as venue:
        q = queue(venue.url, timeout=0.3)
        assert asyncio.run(served(q, "/x")) == [OK[2]]
    assert q.stats.by_status == {"error": 1, "timeout": 1, "200": 1}
    assert q.last_failure is None  # cleared by the success


def test_a_closed_port_is_counted_and_bounded_tries_give_up_in_one_line() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    q = queue(url)
    with pytest.raises(rest.RestUnavailable) as err:
        asyncio.run(q.get("/x", tries=3))
    assert str(err.value) == "connection refused (3 tries)"
    assert q.stats.by_status == {"error": 3}
    assert q.last_failure == f"{url}/x: connection refused"


def test_queued_requests_to_an_unreachable_venue_are_kept() -> None:
    q = queue(f"http://127.0.0.1:{closed_port()}")

    async def main() -> None:
        task = asyncio.create_task(q.run())
        q.submit("/x", 1, lambda _b, _t: None, key="x")
        await asyncio.sleep(0.5)
        assert not task.done()
        assert "x" in q.keys  # still being retried, not dropped
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert q.stats.by_status["error"] >= 3


def test_a_full_queue_refuses_counts_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    q = RestQueue("http://127.0.0.1:9", 6000, max_queue=2)
    with caplog.at_level(logging.ERROR, logger="analyzer.feed.rest"):
        accepted = [q.submit(f"/x{i}", 1, lambda _b, _t: None, key=f"x{i}") for i in range(50)]
    assert accepted == [True, True] + [False] * 48
    assert q.stats.rejected == 48
    assert len(q) == 2 and q.keys == {"x0", "x1"}
    assert len(caplog.records) == 1, [r.getMessage() for r in caplog.records]


def test_a_raising_callback_or_failing_fetch_does_not_end_run() -> None:
    """The HTTP-date 429 used to end run() with ValueError; a callback raising is counted."""
    when = formatdate(time.time() + 1, usegmt=True)
    with Venue((429, {"Retry-After": when}, b""), OK) as venue:
        q = queue(venue.url)
        got: list[str] = []

        def callback(body: bytes, _ts: int) -> None:
            got.append(body.decode())
            if len(got) == 1:
                raise ValueError("a handler bug")

        async def main() -> None:
            task = asyncio.create_task(q.run())
            q.submit("/a", 1, callback)
            q.submit("/b", 1, callback)
            deadline = time.monotonic() + 10
            while len(got) < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert not task.done(), task
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        asyncio.run(main())
    assert len(got) == 2
    assert q.stats.callback_errors == 1


# -- start-up --

def collector_for(tmp_path: Path, rest_url: str) -> Collector:
    return Collector(config.parse({
        "feeds": [{"venue": "binance_usdm", "symbols": ["BTCUSDT"], "rest_url": rest_url,
                   "ws_url": f"ws://127.0.0.1:{closed_port()}"}],
        "store": {"data_dir": str(tmp_path / "data"),
                  "database": str(tmp_path / "data" / "analyzer.duckdb")},
        "metrics": {"port": 0},
    }))


def start_error(collector: Collector, limit: float) -> tuple[str, float]:
    """The CollectorError of ``collector.start()``, and how long it took."""

    async def main() -> None:
        try:
            await asyncio.wait_for(collector.start(), limit)
        finally:
            await collector.stop()

    t0 = time.monotonic()
    with pytest.raises(CollectorError) as err:
        asyncio.run(main())
    return str(err.value), time.monotonic() - t0


@pytest.mark.parametrize("status", [403, 418])
def test_a_ban_on_exchange_info_fails_start_in_one_line(tmp_path: Path, status: int) -> None:
    with Venue((status, {}, b"<html>\n<body>Forbidden</body>\n</html>")) as venue:
        message, took = start_error(collector_for(tmp_path, venue.url), 10)
    assert message == (f"binance_usdm: cannot read instruments from {venue.url}"
                       f"/fapi/v1/exchangeInfo: HTTP {status} (banned)")
    assert took < 2.0
    assert len(venue.hits) == 1  # a ban is not hammered


def test_an_unreachable_venue_fails_start_quickly_in_one_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    message, took = start_error(collector_for(tmp_path, url), 15)
    assert message == (f"binance_usdm: cannot read instruments from {url}/fapi/v1/exchangeInfo: "
                       "connection refused (4 tries)")
    assert took < 7.0


def test_every_venue_that_fails_start_is_named(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{closed_port()}"
    with Venue((403, {}, b"")) as venue:
        collector = Collector(config.parse({
            "feeds": [{"venue": "binance_usdm", "symbols": ["BTCUSDT"], "rest_url": venue.url},
                      {"venue": "binance_spot", "symbols": ["BTCUSDT"], "rest_url": closed}],
            "store": {"data_dir": str(tmp_path / "data"),
                      "database": str(tmp_path / "data" / "analyzer.duckdb")},
            "metrics": {"port": 0},
        }))
        message, _ = start_error(collector, 15)
    assert message == (
        f"binance_usdm: cannot read instruments from {venue.url}/fapi/v1/exchangeInfo: "
        f"HTTP 403 (banned); binance_spot: cannot read instruments from {closed}"
        "/api/v3/exchangeInfo: connection refused (4 tries)")


def test_run_duration_counts_start_up(tmp_path: Path) -> None:
    """A venue that never answers: run(2) ends after 2 s, the event loop included (the fetch
    thread still waiting for its 10 s socket timeout does not hold it)."""
    with silent_venue() as url:
        collector = collector_for(tmp_path, url)
        t0 = time.monotonic()
        with pytest.raises(CollectorError) as err:
            asyncio.run(collector.run(2))
        took = time.monotonic() - t0
    assert str(err.value) == (f"stopped after 2 s while still starting: binance_usdm: "
                              f"no answer from {url} yet")
    assert took < 3.0


@pytest.mark.parametrize("venue", ["closed", "silent"])
def test_cli_unreachable_venue_is_one_line_and_honours_duration(
    tmp_path: Path, venue: str,
) -> None:
    with contextlib.ExitStack() as stack:
        url = (f"http://127.0.0.1:{closed_port()}" if venue == "closed"
               else stack.enter_context(silent_venue()))
        cfg = tmp_path / "c.toml"
        cfg.write_text(
            f'log_level = "ERROR"\n'
            f'[[feeds]]\nvenue = "binance_usdm"\nsymbols = ["BTCUSDT"]\n'
            f'ws_url = "ws://127.0.0.1:{closed_port()}"\nrest_url = "{url}"\n'
            f'[store]\ndata_dir = "{tmp_path}/data"\ndatabase = "{tmp_path}/data/a.duckdb"\n'
            f"[metrics]\nport = 0\n"
        )
        t0 = time.monotonic()
        r = subprocess.run([sys.executable, "-m", "analyzer.cli", "collect", "-c", str(cfg),
                            "--duration", "3"], capture_output=True, text=True, timeout=30)
        took = time.monotonic() - t0
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("analyzer: ") and "binance_usdm" in r.stderr
    assert ("connection refused" if venue == "closed" else "no answer") in r.stderr
    assert took < 10.0
