"""MEXC's contract market as the local exchange serves it: the websocket control protocol, the
heartbeat, limits, REST routing and budgets, and its replay and simulation sources.

Docs: https://mexcdevelop.github.io/apidocs/contract_v1_en/#websocket-api

Websocket ``/edge``: ``{"method":"sub.<name>","param":{"symbol":"BTC_USDT",...}}`` (name:
``depth``, ``deal``, ``depth.full``, ``ticker``, ``funding.rate``) is answered
``{"channel":"rs.sub.<name>","data":"success","ts":<ms>}``; ``unsub.<name>`` likewise
(``rs.unsub.<name>``); an unknown contract or method ``{"channel":"rs.error","data":"<why>",
"ts":<ms>}``. ``{"method":"ping"}`` is answered ``{"channel":"pong","data":<ms>}``. "If no ping is
received within 1 minute, the connection will be disconnected": the idle limit (closed 1003
"ping check expired", mxcdevelop/APIDoc#57). MEXC sends no websocket pings. No subscription
limit is documented: the 30 of MEXC's spot streams. Book snapshots are REST (nothing is sent on
subscription).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from analyzer.exchange.emulator import Close, Session
from analyzer.venues.mexc.emulate import info
from analyzer.venues.mexc.emulate.recordings import FEED_ID, MARKET
from analyzer.venues.mexc.emulate.render import bad_price
from analyzer.venues.mexc.emulate.simulated import MexcSim
from analyzer.venues.mexc.emulate.state import MexcReplay
from analyzer.venues.mexc.spec import MAX_STREAMS

if TYPE_CHECKING:
    from analyzer.exchange.recordings import Recording
    from analyzer.sim import MarketModel

IDLE_TIMEOUT_S = 60.0
NAMES = ("depth", "deal", "depth.full", "ticker", "funding.rate")
# No inbound message rate is documented: generous, so that only the documented limits bite.
MESSAGES_PER_S = 100
WEIGHT_LIMIT = 600  # "20 times / 2 seconds" an endpoint, as one budget a minute


class _Request(msgspec.Struct):
    method: str
    param: dict[str, Any] = {}


_request_decoder = msgspec.json.Decoder(_Request)
_encode = msgspec.json.encode


class EmulatedMarket:
    """The ``MarketEmulator`` of MEXC's contract market."""

    ping_interval = None  # MEXC does not ping: the client does, with {"method":"ping"}
    ping_timeout = None
    idle_timeout_s: float | None = IDLE_TIMEOUT_S
    idle_close = Close(1003, "ping check expired")
    messages_per_s = MESSAGES_PER_S
    too_many_messages = Close(1008, "too many requests")
    max_streams = MAX_STREAMS
    weight_limit = WEIGHT_LIMIT
    window_s = 60.0

    def __init__(self) -> None:
        self.market = MARKET
        self.feed = FEED_ID

    # -- websocket -----------------------------------------------------------------------------

    def accepts(self, path: str) -> bool:
        return path == "edge"

    def on_open(self, session: Session, path: str, query: str) -> Close | None:
        return None

    @staticmethod
    def _now_ms(session: Session) -> int:
        source = session.source
        model = getattr(source, "model", None)
        return (model.now_ns if model is not None else source.now_ns) // 1_000_000

    def _reply(self, session: Session, channel: str, data: Any) -> str:
        return _encode({"channel": channel, "data": data,
                        "ts": self._now_ms(session)}).decode()

    def on_message(self, session: Session, message: str | bytes) -> str | Close | None:
        try:
            req = _request_decoder.decode(message)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return self._reply(session, "rs.error", "request format error")
        method = req.method
        if method == "ping":
            return _encode({"channel": "pong", "data": self._now_ms(session)}).decode()
        op, _, name = method.partition(".")
        if op not in ("sub", "unsub") or name not in NAMES:
            return self._reply(session, "rs.error", f"method {method[:40]} not supported")
        symbol = req.param.get("symbol")
        if not isinstance(symbol, str) or not symbol:
            return self._reply(session, "rs.error", "param symbol is required")
        stream = f"{name}:{symbol}".encode()
        if op == "unsub":
            if stream in session.streams:
                session.unsubscribe([stream])
            return self._reply(session, f"rs.unsub.{name}", "success")
        why = session.source.stream_error(symbol)
        if why is not None:
            return self._reply(session, "rs.error", why)
        if stream not in session.streams:
            if len(session.streams) >= session.max_streams:
                return self._reply(session, "rs.error", "too many subscriptions")
            session.subscribe([stream])
        return self._reply(session, f"rs.sub.{name}", "success")

    def unwrap(self, stream: bytes, frame: bytes) -> bytes:
        return frame

    def corrupt_price(self, frame: bytes) -> bytes:
        return bad_price(frame)

    # -- REST ----------------------------------------------------------------------------------

    def route(self, path: str) -> str | None:
        return info.route(path)

    def weight(self, endpoint: str, params: dict[str, str]) -> int:
        return 10 if endpoint == "detail" else 1  # detail: "1 times / 5 seconds"

    def weight_headers(self, used: int) -> list[tuple[str, str]]:
        return []  # MEXC reports no weight

    def over_budget(self, status: int, ip: str, limit: int, until_ms: int) -> tuple[int, bytes]:
        return info.over_budget_body(status)

    # -- sources -------------------------------------------------------------------------------

    def replayed(self, recording: Recording | None) -> MexcReplay:
        if recording is None:
            return MexcReplay(None)
        return MexcReplay(recording.exchange_info, set(recording.symbols))

    def simulated(self, model: MarketModel) -> MexcSim:
        return MexcSim(self.feed, model)


MARKETS_EMULATED = {FEED_ID: EmulatedMarket()}
