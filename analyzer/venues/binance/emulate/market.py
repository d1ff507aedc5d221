"""One Binance market as the local exchange serves it: websocket paths, the control protocol,
pings and limits, REST routing and budgets, and its replay and simulation sources.

Docs: https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams
      https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams

Websocket: ``/stream?streams=a/b`` sends combined frames ``{"stream":..,"data":..}``, ``/ws``
(also ``/ws/<stream>/<stream>``) raw ones, the data alone. USDⓈ-M also serves them under
``/public`` (books and best bid/ask only) and ``/market`` (the other streams only), as the
venue does since 2026-04-23: a stream asked on the other path is acknowledged and never sent
(undocumented; users report the venue's retired root paths behave so); the root paths still
serve every stream here, for the clients of the peers' benchmark, which predate the split.
``SUBSCRIBE`` / ``UNSUBSCRIBE`` / ``LIST_SUBSCRIPTIONS`` / ``SET_PROPERTY`` / ``GET_PROPERTY``
are answered as Binance does. More than ``max_streams`` streams or more incoming messages a
second than Binance allows (10 futures, 5 spot) close the connection with 1008. The server
pings (futures every 180 s, spot every 20 s) and drops a client that does not pong in time
(futures 600 s, spot 60 s).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import msgspec

from analyzer.exchange.emulator import Close, Session
from analyzer.venues.binance.emulate import rest as api
from analyzer.venues.binance.emulate.recordings import ENVELOPE, FEED_IDS, MARKETS
from analyzer.venues.binance.emulate.render import bad_price
from analyzer.venues.binance.emulate.simulated import BinanceSim
from analyzer.venues.binance.emulate.state import MarketState
from analyzer.venues.binance.spec import MARKETS as SPECS
from analyzer.venues.binance.spec import route_of

if TYPE_CHECKING:
    from analyzer.exchange.market import MarketFeed
    from analyzer.exchange.recordings import Recording
    from analyzer.sim import MarketModel

# Binance's websocket limits, per market.
PING_INTERVAL = {"spot": 20.0, "usdm": 180.0, "coinm": 180.0}
PING_TIMEOUT = {"spot": 60.0, "usdm": 600.0, "coinm": 600.0}
MESSAGES_PER_S = {"spot": 5, "usdm": 10, "coinm": 10}
MAX_STREAMS = 1024


class _Control(msgspec.Struct):
    method: str
    params: list[Any] = []
    id: int | str | None = None


_control_decoder = msgspec.json.Decoder(_Control)
_encode = msgspec.json.encode
_TOO_MANY_STREAMS = Close(1008, "Too many streams")


def _ws_error(code: int, msg: str, req_id: Any = None) -> str:
    body: dict[str, Any] = {"code": code, "msg": msg}
    if req_id is not None:
        body["id"] = req_id
    return _encode(body).decode()


def raw_payload(key: bytes, payload: bytes) -> bytes:
    """The ``data`` of a combined-stream frame, for raw ``/ws`` clients (sliced, not parsed)."""
    start = 20 + len(key)  # len('{"stream":"') + name + len('","data":')
    if (
        payload.startswith(ENVELOPE)
        and payload[start - 9 : start] == b'","data":'
        and payload.endswith(b"}")
    ):
        return payload[start:-1]
    return payload


class BinanceReplay(MarketState):
    """The ``ReplayMarket`` of a Binance market: its state plus the REST answers from it."""

    def rest(self, feed: MarketFeed, endpoint: str, params: dict[str, str]) -> bytes:
        return api.HANDLERS[endpoint](feed, params)

    def depth(self, feed: MarketFeed, symbol: str, limit: int) -> dict[str, Any]:
        return api.depth_body(feed, symbol, limit)


class EmulatedMarket:
    """The ``MarketEmulator`` of one Binance market (``market``: spot, usdm or coinm)."""

    idle_timeout_s = None
    too_many_messages = Close(1008, "Too many requests")
    max_streams = MAX_STREAMS
    window_s = 60.0

    def __init__(self, market: str) -> None:
        self.market = market
        self.feed = FEED_IDS[market]
        self.ping_interval = PING_INTERVAL[market]
        self.ping_timeout = PING_TIMEOUT[market]
        self.messages_per_s = MESSAGES_PER_S[market]
        self.weight_limit = api.DEFAULT_WEIGHT_LIMIT[market]
        self.routes = SPECS[self.feed].routes

    # -- websocket -----------------------------------------------------------------------------

    def _route(self, path: str) -> tuple[str | None, str]:
        """(the path's route, the rest): ``public/stream`` -> ("public", "stream")."""
        if self.routes:
            head, _, rest = path.partition("/")
            if head in ("public", "market"):
                return head, rest
        return None, path

    def _served(self, session: Session, names: list[bytes]) -> list[bytes]:
        """The streams of ``names`` that the session's path sends (every one at the root)."""
        if session.route is None:
            return names
        return [n for n in names if route_of(n.decode()) == session.route]

    def accepts(self, path: str) -> bool:
        return self._route(path)[1].startswith(("ws", "stream"))

    def on_open(self, session: Session, path: str, query: str) -> Close | None:
        session.route, path = self._route(path)
        combined = path.startswith("stream")
        if combined:
            names = (parse_qs(query).get("streams") or [""])[0].split("/")
        else:
            names = path[3:].split("/") if path.startswith("ws/") else []
        session.combined = combined
        initial = [n.encode() for n in names if n]
        if len(initial) > session.max_streams:
            return _TOO_MANY_STREAMS
        session.subscribe(self._served(session, initial))
        return None

    def on_message(self, session: Session, message: str | bytes) -> str | Close | None:
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
                if len(set(session.streams) | set(names)) > session.max_streams:
                    return _TOO_MANY_STREAMS
                session.subscribe(self._served(session, names))
            else:
                session.unsubscribe(names)
            return _encode({"result": None, "id": req_id}).decode()
        if method == "LIST_SUBSCRIPTIONS":
            return _encode({"result": [n.decode() for n in session.streams], "id": req_id}).decode()
        if (
            method == "SET_PROPERTY"
            and len(params) == 2
            and params[0] == "combined"
            and isinstance(params[1], bool)
        ):
            session.combined = params[1]
            return _encode({"result": None, "id": req_id}).decode()
        if method == "GET_PROPERTY" and params == ["combined"]:
            return _encode({"result": session.combined, "id": req_id}).decode()
        return _ws_error(
            2,
            f"Invalid request: unknown variant `{method}`, expected one of `SUBSCRIBE`, "
            "`UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`",
            req_id,
        )

    def unwrap(self, stream: bytes, frame: bytes) -> bytes:
        return raw_payload(stream, frame)

    def corrupt_price(self, frame: bytes) -> bytes:
        return bad_price(frame)

    # -- REST ----------------------------------------------------------------------------------

    def route(self, path: str) -> str | None:
        return api.endpoint_of(self.market, path)

    def weight(self, endpoint: str, params: dict[str, str]) -> int:
        return api.WEIGHTS[endpoint](self.market, params)

    def weight_headers(self, used: int) -> list[tuple[str, str]]:
        return [("X-MBX-USED-WEIGHT-1M", str(used)), ("X-MBX-USED-WEIGHT", str(used))]

    def over_budget(self, status: int, ip: str, limit: int, until_ms: int) -> tuple[int, bytes]:
        return status, api.over_budget_body(status, ip, limit, until_ms)

    # -- sources -------------------------------------------------------------------------------

    def replayed(self, recording: Recording | None) -> BinanceReplay:
        if recording is None:
            return BinanceReplay(self.market, {}, set(), 0)
        agg_symbols = {
            n.partition(b"@")[0].decode().upper()
            for n in recording.streams
            if n.endswith(b"@aggTrade")
        }
        return BinanceReplay(
            self.market, dict(recording.first_snapshots), agg_symbols, recording.first_ts
        )

    def simulated(self, model: MarketModel) -> BinanceSim:
        return BinanceSim(self.market, self.feed, model)


MARKETS_EMULATED = {FEED_IDS[m]: EmulatedMarket(m) for m in MARKETS}
