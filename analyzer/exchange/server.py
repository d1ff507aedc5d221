"""The local exchange: every registered venue's markets, in their own websocket and REST
protocols, on one port.

Every market is routed by a path prefix equal to its feed id, so a collector configured with
the base ``http://127.0.0.1:PORT/<feed id>`` finds the venue's own paths under it, e.g.

    ws://127.0.0.1:PORT/<feed id>/<the venue's websocket path>
    http://127.0.0.1:PORT/<feed id>/<the venue's REST path>?symbol=...

What a market accepts and answers is its venue's ``MarketEmulator`` (``emulator.py``): websocket
paths, control messages, pings, limits, REST routes and weights. The server enforces them the
same way for every venue: more incoming messages a second than the venue allows close the
connection (the venue's code); websocket pings at the venue's interval, and a client that does
not pong in time is dropped with 1011; connections live at most 24 hours.

REST is plain HTTP/1.1 on the same port (websockets answers non-upgrade requests through
``process_request``); one request per connection (``Connection: close``).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import http
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from analyzer.exchange.budget import WeightBudget
from analyzer.exchange.emulator import Close, MarketEmulator, RestError, markets
from analyzer.exchange.errors import ExchangeError
from analyzer.exchange.market import Client, MarketFeed
from analyzer.exchange.replay import Replay
from analyzer.exchange.simulate import SimFeed, Simulation

log = logging.getLogger(__name__)
_ws_log = logging.getLogger("analyzer.exchange.ws")
if _ws_log.level == logging.NOTSET:
    # websockets logs every answered REST request as a rejected handshake at INFO.
    _ws_log.setLevel(logging.WARNING)

T = TypeVar("T")

CONNECTION_AGE_S = 24 * 3600.0


class Session:
    """A websocket connection as the venue's control handler sees it (``emulator.Session``)."""

    __slots__ = ("client", "feed", "max_streams", "route")

    def __init__(self, feed: MarketFeed, client: Client, max_streams: int) -> None:
        self.feed = feed
        self.client = client
        self.max_streams = max_streams
        self.route: str | None = None

    @property
    def streams(self) -> dict[bytes, None]:
        return self.client.streams

    @property
    def combined(self) -> bool:
        return self.client.combined

    @combined.setter
    def combined(self, combined: bool) -> None:
        if combined != self.client.combined:
            self.feed.set_combined(self.client, combined)

    @property
    def source(self) -> Any:
        sim = getattr(self.feed, "sim_market", None)
        return sim if sim is not None else self.feed.state

    def subscribe(self, streams: list[bytes]) -> None:
        self.feed.subscribe(self.client, streams)

    def unsubscribe(self, streams: list[bytes]) -> None:
        self.feed.unsubscribe(self.client, streams)

    def set_combined(self, combined: bool) -> None:
        self.combined = combined

    def send(self, frame: bytes) -> None:
        self.client.out.append(frame)


class LocalExchange:
    """Every market of every registered venue on one local port, replaying recordings
    (``add_replay``) or serving a simulated market (``add_simulation``).

    Parameters: ``ping_interval`` / ``ping_timeout`` override the venues' per-market values
    (tests use ~1 s); ``rest_weight_limit`` and ``rest_window_s`` override the per-IP weight
    budget of every market and its window, ``rest_weight_limits`` that of some markets (by feed
    id: a test starving one market leaves the others be); ``ban_after_429s``: answer 418 for
    ``ban_s`` after that many 429s in a window (None: never ban); ``max_streams`` and
    ``max_messages_per_s`` override the venues' per-connection limits; ``send_timeout_s``: abort
    a client that reads nothing for that long (it would otherwise hold the replay forever, since
    the replay waits for slow readers).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ping_interval: float | None = None,
        ping_timeout: float | None = None,
        rest_weight_limit: int | None = None,
        rest_weight_limits: dict[str, int] | None = None,
        rest_window_s: float | None = None,
        ban_after_429s: int | None = None,
        ban_s: float = 120.0,
        max_streams: int | None = None,
        max_messages_per_s: int | None = None,
        max_connection_age_s: float | None = CONNECTION_AGE_S,
        send_timeout_s: float | None = 30.0,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.emulators: dict[str, MarketEmulator] = markets()  # by feed id
        limits = {f: (rest_weight_limits or {}).get(f) or rest_weight_limit or m.weight_limit
                  for f, m in self.emulators.items()}
        windows = {f: rest_window_s or m.window_s for f, m in self.emulators.items()}
        self.budget = WeightBudget(limits, windows, ban_after_429s, ban_s)
        self.max_streams = max_streams
        self.max_messages_per_s = max_messages_per_s
        self.max_connection_age_s = max_connection_age_s
        self.send_timeout_s = send_timeout_s
        self._feeds: dict[str, MarketFeed] = {f: self._new_feed(f, None) for f in self.emulators}
        self._simulation: Simulation | None = None
        self._server: Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._port = 0
        self._stopped = False
        self.rest_requests = 0
        self.ws_connections = 0

    # ------------------------------------------------------------------------------------------
    # Lifecycle

    def _new_feed(self, feed: str, replay: Replay | None) -> MarketFeed:
        return MarketFeed(
            self.emulators[feed], replay, self.budget.limits[feed], self.send_timeout_s
        )

    def add_replay(self, replay: Replay) -> None:
        """Replay a recording on its market (one replay per market; chain recordings instead)."""
        if self._server is not None:
            raise ExchangeError("add replays before start()")
        if self._simulation is not None:
            raise ExchangeError(f"{replay.feed} is simulated: no replay on it")
        current = self._feeds[replay.feed].replay
        if current is not None:
            raise ExchangeError(
                f"{replay.feed} already replays {current.recording.name}: "
                "one replay per market (pass several paths to one replay to chain them)"
            )
        self._feeds[replay.feed] = self._new_feed(replay.feed, replay)

    def add_simulation(self, sim: Simulation) -> None:
        """Serve a simulated market on every market of its world (one simulation, one clock)."""
        if self._server is not None:
            raise ExchangeError("add the simulation before start()")
        if self._simulation is not None:
            raise ExchangeError("one simulation per exchange (its world holds every venue)")
        feeds: dict[str, SimFeed] = {}
        for feed_id in sim.feed_ids:
            current = self._feeds[feed_id].replay
            if current is not None:
                raise ExchangeError(f"{feed_id} already replays {current.recording.name}")
            feeds[feed_id] = SimFeed(
                self.emulators[feed_id], sim, self.budget.limits[feed_id], self.send_timeout_s
            )
        for feed_id, feed in feeds.items():
            self._feeds[feed_id] = feed
        sim.attach(feeds)
        self._simulation = sim

    @property
    def simulation(self) -> Simulation | None:
        return self._simulation

    async def start(self) -> None:
        if self._server is not None or self._stopped:
            raise ExchangeError("an exchange starts once: make a new one")
        for feed in self._feeds.values():
            feed.bind()
        if self._simulation is not None:
            self._simulation.bind()
        try:
            self._server = await serve(
                self._handle_ws,
                self.host,
                self._requested_port,
                process_request=self._process_request,
                compression=None,
                # Per-connection values are set in _process_request, by the venue.
                ping_interval=None,
                ping_timeout=None,
                write_limit=2**18,
                max_size=2**20,
                server_header=None,
                logger=_ws_log,
            )
        except OSError as exc:
            raise ExchangeError(
                f"cannot listen on {self.host}:{self._requested_port}: {exc.strerror or exc}"
            ) from None
        self._port = self._server.sockets[0].getsockname()[1]
        for feed in self._feeds.values():
            if feed.replay is not None:
                self._tasks.append(
                    asyncio.create_task(self._run_feed(feed), name=f"replay {feed.feed_id}")
                )
        if self._simulation is not None:
            self._tasks.append(
                asyncio.create_task(self._run_simulation(self._simulation), name="simulation")
            )

    async def _run_feed(self, feed: MarketFeed) -> None:
        try:
            await feed.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: replay failed", feed.feed_id)
            assert feed.done is not None
            feed.done.set()

    async def _run_simulation(self, sim: Simulation) -> None:
        try:
            await sim.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the simulation failed")
            sim.finished = True
            assert sim.done is not None
            sim.done.set()

    async def stop(self) -> None:
        self._stopped = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for feed in self._feeds.values():
            await feed.aclose()

    async def __aenter__(self) -> LocalExchange:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def wait_replays_done(self, timeout: float | None = None) -> None:
        """Wait until every replay has played its recording once, and a simulation with a
        duration has run it."""
        waits = [
            f.done.wait()
            for f in self._feeds.values()
            if f.replay is not None and f.done is not None
        ]
        sim = self._simulation
        if sim is not None and sim.end_ns is not None and sim.done is not None:
            waits.append(sim.done.wait())
        await asyncio.wait_for(asyncio.gather(*waits), timeout)

    # ------------------------------------------------------------------------------------------
    # Addresses and state

    @property
    def port(self) -> int:
        if not self._port:
            raise ExchangeError("the exchange is not running")
        return self._port

    def base_url(self, feed: str) -> str:
        """REST base of a market: ``http://127.0.0.1:PORT/<feed id>``."""
        return f"http://{self.host}:{self.port}/{self._feed_id(feed)}"

    def ws_url(self, feed: str) -> str:
        """Websocket base of a market: append the venue's websocket path."""
        return f"ws://{self.host}:{self.port}/{self._feed_id(feed)}"

    def _feed_id(self, feed: str) -> str:
        if feed in self._feeds:
            return feed
        named = [f for f, m in self.emulators.items() if m.market == feed]
        if len(named) != 1:
            raise ExchangeError(f"unknown feed {feed!r}: use one of {', '.join(self._feeds)}")
        return named[0]

    def feed(self, feed: str) -> MarketFeed:
        """The running market (a feed id, or a market name only one venue has): its fault API
        and state."""
        return self._feeds[self._feed_id(feed)]

    @property
    def stats(self) -> dict[str, Any]:
        return {
            "port": self._port,
            "ws_connections": self.ws_connections,
            "rest_requests": self.rest_requests,
            "rest_429": self.budget.rejected,
            "rest_418": self.budget.banned,
            "feeds": {f.feed_id: f.stats() for f in self._feeds.values()},
        }

    def depth(self, feed: str, symbol: str, limit: int = 1000) -> dict[str, Any]:
        """What ``GET depth`` would answer now (without spending weight)."""
        return self.feed(feed).depth_body(symbol.upper(), limit)

    # Fault API, acting now on one market.

    def close_clients(self, feed: str, code: int | None = 1000, reason: str | None = None) -> int:
        return self.feed(feed).close_clients(code, reason)

    def stall(self, feed: str, seconds: float) -> None:
        """The market sends nothing for a while (replay paused; connections stay open)."""
        self.feed(feed).stall(seconds)

    def freeze(self, feed: str, seconds: float) -> None:
        """The connections open now get nothing for a while; new ones are served."""
        self.feed(feed).freeze(seconds)

    def drop_next_depth(self, feed: str, symbol: str, count: int = 1) -> None:
        self.feed(feed).drop_next_depth(symbol, count)

    def inject(self, feed: str, stream: str, payload: bytes) -> int:
        return self.feed(feed).inject(stream, payload)

    # ------------------------------------------------------------------------------------------
    # HTTP

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        feed_id, _, rest = request.path[1:].partition("/")
        emulator = self.emulators.get(feed_id)
        if emulator is None:
            return self._response(404, b"", None)
        if request.headers.get("Upgrade", "").lower() == "websocket":
            if not emulator.accepts(rest.partition("?")[0]):
                return self._response(404, b"", None)
            conn.ping_interval = (
                self.ping_interval if self.ping_interval is not None else emulator.ping_interval
            )
            conn.ping_timeout = (
                self.ping_timeout if self.ping_timeout is not None else emulator.ping_timeout
            )
            return None
        self.rest_requests += 1
        return self._rest(conn, emulator, "/" + rest)

    def _response(
        self,
        status: int,
        body: bytes,
        used: list[tuple[str, str]] | None,
        extra: list[tuple[str, str]] | None = None,
    ) -> Response:
        headers = Headers(
            [
                ("Date", email.utils.formatdate(usegmt=True)),
                ("Content-Type", "application/json;charset=UTF-8"),
                ("Content-Length", str(len(body))),
                ("Connection", "close"),
            ]
        )
        for key, value in used or ():
            headers[key] = value
        for key, value in extra or ():
            headers[key] = value
        return Response(status, http.HTTPStatus(status).phrase, headers, body)

    def _rest(self, conn: ServerConnection, emulator: MarketEmulator, target: str) -> Response:
        parts = urlsplit(target)
        endpoint = emulator.route(parts.path)
        if endpoint is None:
            return self._response(404, b"", None)
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        ip = str(conn.remote_address[0]) if conn.remote_address else "?"
        weight = emulator.weight(endpoint, params)
        now = time.time()
        feed_id = emulator.feed
        status, used, retry = self.budget.charge(ip, feed_id, weight, now)
        used_headers = emulator.weight_headers(used)
        if status != 200:
            retry_s = max(1, int(retry + 0.999))
            status, body = emulator.over_budget(
                status, ip, self.budget.limits[feed_id], int((now + retry) * 1000)
            )
            return self._response(status, body, used_headers, [("Retry-After", str(retry_s))])
        feed = self._feeds[feed_id]
        try:
            body = feed.rest(endpoint, params)
        except RestError as exc:
            return self._response(exc.status, exc.body, used_headers)
        return self._response(200, body, used_headers)

    # ------------------------------------------------------------------------------------------
    # Websocket

    async def _handle_ws(self, conn: ServerConnection) -> None:
        self.ws_connections += 1
        feed_id, _, rest = conn.request.path[1:].partition("/")  # type: ignore[union-attr]
        feed = self._feeds[feed_id]
        emulator = feed.emulator
        path, _, query = rest.partition("?")
        client = Client(conn, True)
        feed.attach(client)
        session = Session(feed, client, self.max_streams or emulator.max_streams)
        loop = asyncio.get_running_loop()
        age = None
        if self.max_connection_age_s is not None:
            age = loop.call_later(
                self.max_connection_age_s, lambda: asyncio.ensure_future(conn.close(1000))
            )
        try:
            close = emulator.on_open(session, path, query)
            if close is not None:
                await conn.close(close.code, close.reason)
                return
            await self._serve_client(conn, feed, session)
        except ConnectionClosed:
            pass
        finally:
            if age is not None:
                age.cancel()
            feed.detach(client)

    async def _serve_client(
        self, conn: ServerConnection, feed: MarketFeed, session: Session
    ) -> None:
        loop = asyncio.get_running_loop()
        emulator = feed.emulator
        limit = self.max_messages_per_s or emulator.messages_per_s
        idle = emulator.idle_timeout_s
        window = 0.0
        count = 0
        messages = aiter(conn)
        while True:
            try:
                if idle is None:
                    message = await anext(messages)
                else:
                    message = await asyncio.wait_for(anext(messages), idle)
            except StopAsyncIteration:
                return
            except TimeoutError:
                close = getattr(emulator, "idle_close", None) or Close(1000, "idle")
                await conn.close(close.code, close.reason)
                return
            now = loop.time()
            if now - window >= 1.0:
                window, count = now, 0
            count += 1
            if count > limit:
                close = emulator.too_many_messages
                await conn.close(close.code, close.reason)
                return
            reply = emulator.on_message(session, message)
            if session.client.out:  # frames the venue queued (session.send): out now, in order
                feed._flush()
            if isinstance(reply, Close):
                await conn.close(reply.code, reply.reason)
                return
            if reply is not None:
                await conn.send(reply)


class ExchangeThread:
    """Runs a LocalExchange on its own event loop in a background thread (sync tests, benchmarks).

    with ExchangeThread(exchange) as ex:
        urllib.request.urlopen(ex.base_url(feed_id) + "/<a REST path of the venue>")
    """

    def __init__(self, exchange: LocalExchange) -> None:
        self.exchange = exchange
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    def start(self, timeout: float = 30.0) -> ExchangeThread:
        self._thread = threading.Thread(target=self._main, name="local-exchange", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise ExchangeError("the local exchange did not start in time")
        if self._error is not None:
            raise self._error
        return self

    def _main(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._serve())
        finally:
            loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        try:
            await self.exchange.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.exchange.stop()

    def call(self, fn: Callable[[], T]) -> T:
        """Run a plain function on the exchange's loop (fault API) and return its result."""

        async def wrapper() -> T:
            return fn()

        return self.run(wrapper())

    def run(self, coro: Awaitable[T], timeout: float | None = None) -> T:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)  # type: ignore[arg-type]

    def wait_replays_done(self, timeout: float | None = None) -> None:
        self.run(self.exchange.wait_replays_done(timeout))

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(30)
            self._thread = None

    @property
    def port(self) -> int:
        return self.exchange.port

    def base_url(self, feed: str) -> str:
        return self.exchange.base_url(feed)

    def ws_url(self, feed: str) -> str:
        return self.exchange.ws_url(feed)

    @property
    def stats(self) -> dict[str, Any]:
        return self.call(lambda: self.exchange.stats)

    def __enter__(self) -> ExchangeThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
