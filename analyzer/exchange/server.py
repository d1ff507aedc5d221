"""The local exchange: Binance's websocket and REST protocols for its three markets on one port.

Every market is routed by a path prefix equal to its feed id, so a collector configured with
the base ``http://127.0.0.1:PORT/binance_usdm`` finds

    ws://127.0.0.1:PORT/binance_usdm/stream?streams=btcusdt@depth@0ms/btcusdt@trade
    ws://127.0.0.1:PORT/binance_usdm/ws            (raw frames; also /ws/<stream>/<stream>)
    http://127.0.0.1:PORT/binance_usdm/fapi/v1/depth?symbol=BTCUSDT&limit=1000

Websocket: combined streams send ``{"stream":..,"data":..}``, raw ones the data alone;
``SUBSCRIBE`` / ``UNSUBSCRIBE`` / ``LIST_SUBSCRIPTIONS`` / ``SET_PROPERTY`` / ``GET_PROPERTY``
are answered as Binance does. More than ``max_streams`` streams or more incoming messages a
second than Binance allows (10 futures, 5 spot) close the connection with 1008. The server
pings (futures every 180 s, spot every 20 s) and drops a client that does not pong in time
(futures 600 s, spot 60 s) with 1011; connections live at most 24 hours.

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

import msgspec
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from analyzer.exchange import binance
from analyzer.exchange.errors import ExchangeError
from analyzer.exchange.market import Client, MarketFeed
from analyzer.exchange.recordings import FEED_IDS, MARKET_OF_FEED, MARKETS
from analyzer.exchange.replay import Replay
from analyzer.exchange.simulate import SimFeed, Simulation

log = logging.getLogger(__name__)
_ws_log = logging.getLogger("analyzer.exchange.ws")
if _ws_log.level == logging.NOTSET:
    # websockets logs every answered REST request as a rejected handshake at INFO.
    _ws_log.setLevel(logging.WARNING)

T = TypeVar("T")

# Binance's websocket limits, per market.
PING_INTERVAL = {"spot": 20.0, "usdm": 180.0, "coinm": 180.0}
PING_TIMEOUT = {"spot": 60.0, "usdm": 600.0, "coinm": 600.0}
MESSAGES_PER_S = {"spot": 5, "usdm": 10, "coinm": 10}
MAX_STREAMS = 1024
CONNECTION_AGE_S = 24 * 3600.0


class _Control(msgspec.Struct):
    method: str
    params: list[Any] = []
    id: int | str | None = None


_control_decoder = msgspec.json.Decoder(_Control)
_encode = msgspec.json.encode


def _ws_error(code: int, msg: str, req_id: Any = None) -> str:
    body: dict[str, Any] = {"code": code, "msg": msg}
    if req_id is not None:
        body["id"] = req_id
    return _encode(body).decode()


class LocalExchange:
    """Binance spot, USDⓈ-M and COIN-M on one local port, replaying recordings (``add_replay``)
    or serving a simulated market (``add_simulation``).

    Parameters: ``ping_interval`` / ``ping_timeout`` override Binance's per-market values (tests
    use ~1 s); ``rest_weight_limit`` overrides the per-IP weight budget of every market (spot
    6000, futures 2400) per ``rest_window_s``; ``ban_after_429s``: answer 418 for ``ban_s``
    after that many 429s in a window (None: never ban); ``max_messages_per_s`` overrides the
    incoming message limit; ``send_timeout_s``: abort a client that reads nothing for that long
    (it would otherwise hold the replay forever, since the replay waits for slow readers).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ping_interval: float | None = None,
        ping_timeout: float | None = None,
        rest_weight_limit: int | None = None,
        rest_window_s: float = 60.0,
        ban_after_429s: int | None = None,
        ban_s: float = 120.0,
        max_streams: int = MAX_STREAMS,
        max_messages_per_s: int | None = None,
        max_connection_age_s: float | None = CONNECTION_AGE_S,
        send_timeout_s: float | None = 30.0,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        limits = {m: rest_weight_limit or binance.DEFAULT_WEIGHT_LIMIT[m] for m in MARKETS}
        self.budget = binance.WeightBudget(limits, rest_window_s, ban_after_429s, ban_s)
        self.max_streams = max_streams
        self.max_messages_per_s = max_messages_per_s
        self.max_connection_age_s = max_connection_age_s
        self.send_timeout_s = send_timeout_s
        self._feeds: dict[str, MarketFeed] = {m: self._new_feed(m, None) for m in MARKETS}
        self._simulation: Simulation | None = None
        self._server: Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._port = 0
        self._stopped = False
        self.rest_requests = 0
        self.ws_connections = 0

    # ------------------------------------------------------------------------------------------
    # Lifecycle

    def _new_feed(self, market: str, replay: Replay | None) -> MarketFeed:
        return MarketFeed(market, replay, self.budget.limits[market], self.send_timeout_s)

    def add_replay(self, replay: Replay) -> None:
        """Replay a recording on its market (one replay per market; chain recordings instead)."""
        if self._server is not None:
            raise ExchangeError("add replays before start()")
        if self._simulation is not None:
            raise ExchangeError(f"{replay.feed} is simulated: no replay on it")
        current = self._feeds[replay.market].replay
        if current is not None:
            raise ExchangeError(
                f"{replay.feed} already replays {current.recording.name}: "
                "one replay per market (pass several paths to one replay to chain them)"
            )
        self._feeds[replay.market] = self._new_feed(replay.market, replay)

    def add_simulation(self, sim: Simulation) -> None:
        """Serve a simulated market on every market of its world (one simulation, one clock)."""
        if self._server is not None:
            raise ExchangeError("add the simulation before start()")
        if self._simulation is not None:
            raise ExchangeError("one simulation per exchange (its world holds every venue)")
        feeds: dict[str, SimFeed] = {}
        for feed_id in sim.feed_ids:
            market = MARKET_OF_FEED[feed_id]
            current = self._feeds[market].replay
            if current is not None:
                raise ExchangeError(f"{feed_id} already replays {current.recording.name}")
            feeds[feed_id] = SimFeed(
                market, sim, self.budget.limits[market], self.send_timeout_s
            )
        for feed_id, feed in feeds.items():
            self._feeds[MARKET_OF_FEED[feed_id]] = feed
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
                # Per-connection values are set in _process_request, by market.
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
        """REST base of a market, e.g. ``http://127.0.0.1:PORT/binance_usdm``."""
        self._market(feed)
        return f"http://{self.host}:{self.port}/{feed}"

    def ws_url(self, feed: str) -> str:
        """Websocket base of a market: append ``/stream?streams=...`` or ``/ws``."""
        self._market(feed)
        return f"ws://{self.host}:{self.port}/{feed}"

    def _market(self, feed: str) -> str:
        market = MARKET_OF_FEED.get(feed) or (feed if feed in MARKETS else None)
        if market is None:
            raise ExchangeError(f"unknown feed {feed!r}: use one of {', '.join(FEED_IDS.values())}")
        return market

    def feed(self, feed: str) -> MarketFeed:
        """The running market (``binance_usdm`` or ``usdm``): its fault API and state."""
        return self._feeds[self._market(feed)]

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
        market = MARKET_OF_FEED.get(feed_id)
        if market is None:
            return self._response(404, b"", None)
        if request.headers.get("Upgrade", "").lower() == "websocket":
            if not (rest.startswith(("ws", "stream"))):
                return self._response(404, b"", None)
            conn.ping_interval = (
                self.ping_interval if self.ping_interval is not None else PING_INTERVAL[market]
            )
            conn.ping_timeout = (
                self.ping_timeout if self.ping_timeout is not None else PING_TIMEOUT[market]
            )
            return None
        self.rest_requests += 1
        return self._rest(conn, market, "/" + rest)

    def _response(
        self, status: int, body: bytes, used: int | None, extra: list[tuple[str, str]] | None = None
    ) -> Response:
        headers = Headers(
            [
                ("Date", email.utils.formatdate(usegmt=True)),
                ("Content-Type", "application/json;charset=UTF-8"),
                ("Content-Length", str(len(body))),
                ("Connection", "close"),
            ]
        )
        if used is not None:
            headers["X-MBX-USED-WEIGHT-1M"] = str(used)
            headers["X-MBX-USED-WEIGHT"] = str(used)
        for key, value in extra or ():
            headers[key] = value
        return Response(status, http.HTTPStatus(status).phrase, headers, body)

    def _rest(self, conn: ServerConnection, market: str, target: str) -> Response:
        parts = urlsplit(target)
        endpoint = binance.endpoint_of(market, parts.path)
        if endpoint is None:
            return self._response(404, b"", None)
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        ip = str(conn.remote_address[0]) if conn.remote_address else "?"
        weight = binance.WEIGHTS[endpoint](market, params)
        now = time.time()
        status, used, retry = self.budget.charge(ip, market, weight, now)
        if status != 200:
            retry_s = max(1, int(retry + 0.999))
            body = binance.over_budget_body(
                status, ip, self.budget.limits[market], int((now + retry) * 1000)
            )
            return self._response(status, body, used, [("Retry-After", str(retry_s))])
        feed = self._feeds[market]
        try:
            body = feed.rest(endpoint, params)
        except binance.RestError as exc:
            return self._response(exc.status, exc.body, used)
        return self._response(200, body, used)

    # ------------------------------------------------------------------------------------------
    # Websocket

    async def _handle_ws(self, conn: ServerConnection) -> None:
        self.ws_connections += 1
        feed_id, _, rest = conn.request.path[1:].partition("/")  # type: ignore[union-attr]
        market = MARKET_OF_FEED[feed_id]
        feed = self._feeds[market]
        parts = urlsplit(rest)
        combined = parts.path.startswith("stream")
        if combined:
            names = (parse_qs(parts.query).get("streams") or [""])[0].split("/")
        else:
            names = parts.path[3:].split("/") if parts.path.startswith("ws/") else []
        client = Client(conn, combined)
        feed.attach(client)
        loop = asyncio.get_running_loop()
        age = None
        if self.max_connection_age_s is not None:
            age = loop.call_later(
                self.max_connection_age_s, lambda: asyncio.ensure_future(conn.close(1000))
            )
        try:
            initial = [n.encode() for n in names if n]
            if len(initial) > self.max_streams:
                await conn.close(1008, "Too many streams")
                return
            feed.subscribe(client, initial)
            await self._serve_client(conn, feed, client)
        except ConnectionClosed:
            pass
        finally:
            if age is not None:
                age.cancel()
            feed.detach(client)

    async def _serve_client(self, conn: ServerConnection, feed: MarketFeed, client: Client) -> None:
        loop = asyncio.get_running_loop()
        limit = self.max_messages_per_s or MESSAGES_PER_S[feed.market]
        window = 0.0
        count = 0
        async for message in conn:
            now = loop.time()
            if now - window >= 1.0:
                window, count = now, 0
            count += 1
            if count > limit:
                await conn.close(1008, "Too many requests")
                return
            reply = self._control(feed, client, message)
            if reply is None:
                await conn.close(1008, "Too many streams")
                return
            await conn.send(reply)

    def _control(self, feed: MarketFeed, client: Client, message: str | bytes) -> str | None:
        """Answer one client message (None: the client asked for too many streams)."""
        try:
            req = _control_decoder.decode(message)
        except msgspec.ValidationError as exc:
            return _ws_error(2, f"Invalid request: {exc}")
        except msgspec.DecodeError as exc:
            return _ws_error(3, f"Invalid JSON: {exc}")
        method, params, req_id = req.method, req.params, req.id
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not all(isinstance(p, str) for p in params):
                return _ws_error(2, "Invalid request: stream names must be strings", req_id)
            names = [p.encode() for p in params]
            if method == "SUBSCRIBE":
                if len(set(client.streams) | set(names)) > self.max_streams:
                    return None
                feed.subscribe(client, names)
            else:
                feed.unsubscribe(client, names)
            return _encode({"result": None, "id": req_id}).decode()
        if method == "LIST_SUBSCRIPTIONS":
            return _encode({"result": [n.decode() for n in client.streams], "id": req_id}).decode()
        if (
            method == "SET_PROPERTY"
            and len(params) == 2
            and params[0] == "combined"
            and isinstance(params[1], bool)
        ):
            feed.set_combined(client, params[1])
            return _encode({"result": None, "id": req_id}).decode()
        if method == "GET_PROPERTY" and params == ["combined"]:
            return _encode({"result": client.combined, "id": req_id}).decode()
        return _ws_error(
            2,
            f"Invalid request: unknown variant `{method}`, expected one of `SUBSCRIBE`, "
            "`UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`",
            req_id,
        )


class ExchangeThread:
    """Runs a LocalExchange on its own event loop in a background thread (sync tests, benchmarks).

    with ExchangeThread(exchange) as ex:
        urllib.request.urlopen(ex.base_url("binance_usdm") + "/fapi/v1/exchangeInfo")
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
