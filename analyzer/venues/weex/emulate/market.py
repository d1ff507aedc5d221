"""WEEX futures and spot as the local exchange serves them: the V3 public websocket's control
protocol, its pings and limits, REST routing and budget, and their replay and simulation
sources. One class serves both markets (``WeexMarket(feed, spot=...)``): the spot socket speaks
the same protocol with the same limits (``decode``'s module doc, "Spot"); what differs is the
channels (spot: ``bookTicker``, no mark or index) and the REST paths and weights
(``/api/v3/...`` on ``api-spot.weex.com``).

Docs: https://www.weex.com/api-doc/contract/Websocket/websocket-intro
      https://www.weex.com/api-doc/contract/Market_API/GetContractInfo

Websocket ``/v3/ws/public``. On connect the server sends ``{"cid":..,"event":"connected",
"time":..}``. ``{"method":"SUBSCRIBE","params":[..],"id":n}``: a book stream gets its
``depthSnapshot`` first and a trade stream its ``tradeSnapshot`` (the latest 20), then the
answer ``{"result":true,"id":n}``; a stream that does not exist here (an unknown symbol or
channel) is refused, ``{"result":false,"id":n,"msg":"INVALID_ARGUMENT: invalid symbol : X"}``,
the request's other streams are subscribed, and the sixth refusal on a socket closes it (1007).
A delisted symbol (``delisted``) is acked and its book stream sends one empty snapshot with
``U = u = 0``, then nothing. ``UNSUBSCRIBE`` likewise; ``{"method":"PING","id":n}`` is answered
``{"result":true,"id":n}``. Limits: 100 channels a connection, 240 subscribe/unsubscribe
operations an hour (beyond: refused). The server pings ``{"event":"ping","time":"<ms>"}``
every ``ping_seconds`` (60 s) and closes a socket that left more than ``MAX_MISSED_PINGS``
(10) of them unanswered by a ``{"method":"PONG",..}``; no websocket pings.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import TYPE_CHECKING, Any

import msgspec

from analyzer.exchange.emulator import Close, Session
from analyzer.venues.weex.emulate.replay import WeexReplay
from analyzer.venues.weex.emulate.sim import WeexSim
from analyzer.venues.weex.spec import WS_PATH

if TYPE_CHECKING:
    from analyzer.exchange.recordings import Recording
    from analyzer.sim import MarketModel

OPS_PER_HOUR = 240
MAX_CHANNELS = 100
MAX_REFUSALS = 5  # the sixth closes the socket
MAX_MISSED_PINGS = 10
CHANNELS = ("depth15", "depth200", "trade", "ticker")
# the spot ticker exists (24 h fields, no mark or index); the simulated market renders none
SPOT_CHANNELS = ("depth15", "depth200", "trade", "ticker", "bookTicker")
ROUTES = {
    "/capi/v3/market/exchangeInfo": "exchangeInfo",
    "/capi/v3/market/premiumIndex": "premiumIndex",
    "/capi/v3/market/openInterest": "openInterest",
    "/capi/v3/market/depth": "depth",
    "/capi/v3/market/trades": "trades",
    "/capi/v3/market/time": "time",
}
WEIGHTS = {"exchangeInfo": 1, "premiumIndex": 1, "openInterest": 2, "depth": 1, "trades": 5,
           "time": 1}
SPOT_ROUTES = {
    "/api/v3/exchangeInfo": "exchangeInfo",
    "/api/v3/market/depth": "depth",
    "/api/v3/market/trades": "trades",
    "/api/v3/time": "time",
}
SPOT_WEIGHTS = {"exchangeInfo": 20, "depth": 5, "trades": 25, "time": 1}


class _Request(msgspec.Struct):
    method: str
    params: list[str] = []
    id: int | str | None = None


_request_decoder = msgspec.json.Decoder(_Request)
_encode = msgspec.json.encode


class _Conn:
    """What the venue keeps per connection: its operations of the last hour, refusals and
    unanswered pings."""

    __slots__ = ("missed", "ops", "refusals")

    def __init__(self) -> None:
        self.ops: list[float] = []
        self.refusals = 0
        self.missed = 0


def canonical(stream: str, channels: tuple[str, ...] = CHANNELS) -> tuple[str, str] | None:
    """(SYMBOL, channel) of a stream name (``@depth`` is ``depth15``); None: not one."""
    symbol, at, channel = stream.partition("@")
    if not at or not symbol:
        return None
    channel = "depth15" if channel == "depth" else channel
    return (symbol.upper(), channel) if channel in channels else None


class WeexMarket:
    """The ``MarketEmulator`` of WEEX futures, or of spot with ``spot`` (a test may lower
    ``ping_seconds`` or add to ``delisted`` on the instance)."""

    ping_interval = None  # WEEX pings with messages of its own
    ping_timeout = None
    idle_timeout_s: float | None = None
    messages_per_s = 50  # none documented: generous, against floods
    too_many_messages = Close(1008, "Too many requests")
    max_streams = MAX_CHANNELS
    weight_limit = 500  # per IP per 10 s
    window_s = 10.0

    def __init__(self, feed: str = "weex_futures", *, spot: bool = False) -> None:
        self.feed = feed
        self.spot = spot
        self.market = "spot" if spot else "futures"
        self.channels = SPOT_CHANNELS if spot else CHANNELS
        self.routes = SPOT_ROUTES if spot else ROUTES
        self.weights = SPOT_WEIGHTS if spot else WEIGHTS
        self.ping_seconds = 60.0
        self.delisted: set[str] = set()
        self.conns: dict[Any, _Conn] = {}

    # -- websocket -----------------------------------------------------------------------------

    def accepts(self, path: str) -> bool:
        return "/" + path == WS_PATH

    def on_open(self, session: Session, path: str, query: str) -> Close | None:
        client = getattr(session, "client", session)
        self.conns = {c: s for c, s in self.conns.items() if not getattr(c, "closed", False)}
        self.conns[client] = _Conn()
        session.send(_encode({"cid": str(uuid.uuid4()), "event": "connected",
                              "time": str(time.time_ns() // 1_000_000)}))
        feed = getattr(session, "feed", None)
        if feed is not None:
            feed._flush()
            feed._spawn(self._pinger(session, client))
        return None

    async def _pinger(self, session: Session, client: Any) -> None:
        """The server's pings; a socket that leaves too many unanswered is closed."""
        feed: Any = getattr(session, "feed", None)
        while True:
            await asyncio.sleep(self.ping_seconds)
            state = self.conns.get(client)
            if state is None or client.closed:
                return
            state.missed += 1
            if state.missed > MAX_MISSED_PINGS:
                await client.conn.close(1000, "ping timeout")
                return
            session.send(b'{"event":"ping","time":"%d"}' % (time.time_ns() // 1_000_000))
            feed._flush()

    def on_message(self, session: Session, message: str | bytes) -> str | Close | None:
        client = getattr(session, "client", session)
        state = self.conns.setdefault(client, _Conn())
        try:
            req = _request_decoder.decode(message)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return self._refuse(state, None, "INVALID_ARGUMENT: invalid request")
        method = req.method.upper()
        if method == "PONG":
            state.missed = 0
            return None
        if method == "PING":
            return _encode({"result": True, "id": req.id}).decode()
        if method not in ("SUBSCRIBE", "UNSUBSCRIBE"):
            return self._refuse(state, req.id, f"INVALID_ARGUMENT: invalid method : "
                                f"{req.method[:40]}")
        now = time.monotonic()
        state.ops = [t for t in state.ops if now - t < 3600.0]
        if len(state.ops) >= OPS_PER_HOUR:
            return self._refuse(state, req.id, "RESOURCE_EXHAUSTED: too many operations")
        state.ops.append(now)
        source = session.source
        streams: list[bytes] = []
        refused: str | None = None
        books: list[tuple[str, int]] = []
        trades: list[str] = []
        for name in req.params:
            c = canonical(name, self.channels)
            if c is None:
                refused = refused or f"INVALID_ARGUMENT: invalid event : {name[:60]}"
                continue
            symbol, channel = c
            if not source.knows(symbol) and symbol not in self.delisted:
                refused = refused or f"INVALID_ARGUMENT: invalid symbol : {symbol[:40]}"
                continue
            stream = f"{symbol}@{channel}".encode()
            if method == "SUBSCRIBE" and symbol in self.delisted:
                if channel.startswith("depth"):
                    session.send(b'{"e":"depthSnapshot","E":%d,"s":"%s","U":0,"u":0,"l":%s,'
                                 b'"d":"SNAPSHOT","b":[],"a":[]}' % (
                                     time.time_ns() // 1_000_000, symbol.encode(),
                                     channel[5:].encode()))
                continue
            streams.append(stream)
            if method == "SUBSCRIBE" and stream not in session.streams:
                if channel.startswith("depth"):
                    books.append((symbol, int(channel[5:])))
                elif channel == "trade":
                    trades.append(symbol)
        if method == "UNSUBSCRIBE":
            session.unsubscribe(streams)
        else:
            if len(set(session.streams) | set(streams)) > session.max_streams:
                return self._refuse(state, req.id, "INVALID_ARGUMENT: too many channels")
            session.subscribe(streams)
            for symbol, n in books:
                frame = source.snapshot(symbol, n)
                if frame is not None:
                    session.send(frame)
            for symbol in trades:
                frame = source.trade_snapshot(symbol)
                if frame is not None:
                    session.send(frame)
        if refused is not None:
            return self._refuse(state, req.id, refused)
        return _encode({"result": True, "id": req.id}).decode()

    def _refuse(self, state: _Conn, rid: Any, msg: str) -> str | Close:
        state.refusals += 1
        if state.refusals > MAX_REFUSALS:
            return Close(1007, "too many invalid requests")
        return _encode({"result": False, "id": rid, "msg": msg}).decode()

    def unwrap(self, stream: bytes, frame: bytes) -> bytes:
        return frame

    def corrupt_price(self, frame: bytes) -> bytes:
        """A copy of a depth frame whose first bid price is not a number."""
        return frame.replace(b'"b":[', b'"b":[["not-a-price","1"],', 1)

    # -- REST ----------------------------------------------------------------------------------

    def route(self, path: str) -> str | None:
        return self.routes.get(path)

    def weight(self, endpoint: str, params: dict[str, str]) -> int:
        return self.weights.get(endpoint, 1)

    def weight_headers(self, used: int) -> list[tuple[str, str]]:
        return []  # none documented

    def over_budget(self, status: int, ip: str, limit: int, until_ms: int) -> tuple[int, bytes]:
        return 429, b'{"code":-1003,"msg":"Too many requests"}'

    # -- sources -------------------------------------------------------------------------------

    def replayed(self, recording: Recording | None) -> WeexReplay:
        return WeexReplay(recording, spot=self.spot)

    def simulated(self, model: MarketModel) -> WeexSim:
        return WeexSim(self.feed, model, spot=self.spot)


MARKETS_EMULATED = {"weex_futures": WeexMarket(), "weex_spot": WeexMarket("weex_spot", spot=True)}
