"""One Bybit category as the local exchange serves it: the websocket control protocol, the
heartbeat, limits, REST routing and budgets, and its replay and simulation sources.

Docs: https://bybit-exchange.github.io/docs/v5/ws/connect
      https://bybit-exchange.github.io/docs/v5/rate-limit

Websocket ``/v5/public/<category>``: ``{"op":"subscribe","args":[topics],"req_id":..}`` and
``unsubscribe`` are answered ``{"success":..,"ret_msg":..,"conn_id":..,"req_id":..,"op":..}``
(spot's ack says ``"ret_msg":"subscribe"``, the derivatives' ``""``). Refused: more than 10
args in one request ("args size >10"), an unknown topic or symbol (the valid topics of the same
request are subscribed), a topic already subscribed, and more than the connection holds (500
topics, or 21,000 characters of args: docs "Connect"). ``{"op":"ping"}`` is answered
``{"success":true,"ret_msg":"pong",..,"op":"ping"}``. Bybit sends no websocket pings; a
connection that sends nothing for 10 minutes is cut ("if there is no ping-pong ... the
connection will be cut off after 10 minutes"). A subscription to a book or a ticker starts
with its snapshot (from the replay's state or the model).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import msgspec

from analyzer.exchange.emulator import Close, Session
from analyzer.venues.bybit.emulate import info
from analyzer.venues.bybit.emulate.recordings import FEED_IDS
from analyzer.venues.bybit.emulate.render import bad_price
from analyzer.venues.bybit.emulate.simulated import BybitSim
from analyzer.venues.bybit.emulate.state import BybitReplay, recorded_steps
from analyzer.venues.bybit.spec import ARGS_PER_SUBSCRIBE, MAX_STREAMS, WEIGHT_PER_MINUTE

if TYPE_CHECKING:
    from analyzer.exchange.recordings import Recording
    from analyzer.sim import MarketModel

IDLE_TIMEOUT_S = 600.0  # docs "Connect": cut off after 10 minutes without ping-pong
MAX_ARGS_CHARS = 21_000  # docs "Connect": the args of one public connection
# No inbound message rate is documented for public streams: generous, so that only the
# documented limits bite; beyond it the connection is closed as an abuse would be.
MESSAGES_PER_S = 100


class _Request(msgspec.Struct):
    op: str
    args: list[Any] = []
    req_id: str | int | None = None


_request_decoder = msgspec.json.Decoder(_Request)
_encode = msgspec.json.encode


def _conn_id(session: Session) -> str:
    """A UUID naming the connection (stable while it lives)."""
    return str(uuid.UUID(int=(id(session) * 0x9E3779B97F4A7C15) % (1 << 128), version=4))


class EmulatedMarket:
    """The ``MarketEmulator`` of one Bybit category (spot, linear or inverse)."""

    ping_interval = None  # Bybit does not ping: the client does, with {"op":"ping"}
    ping_timeout = None
    idle_timeout_s: float | None = IDLE_TIMEOUT_S
    messages_per_s = MESSAGES_PER_S
    too_many_messages = Close(1008, "too many requests")
    max_streams = MAX_STREAMS
    weight_limit = WEIGHT_PER_MINUTE
    window_s = 60.0

    def __init__(self, category: str) -> None:
        self.market = category
        self.feed = FEED_IDS[category]
        self.path = f"v5/public/{category}"

    # -- websocket -----------------------------------------------------------------------------

    def accepts(self, path: str) -> bool:
        return path == self.path

    def on_open(self, session: Session, path: str, query: str) -> Close | None:
        return None

    def _reply(self, session: Session, op: str, req_id: Any, success: bool = True,
               ret_msg: str = "") -> str:
        body: dict[str, Any] = {"success": success, "ret_msg": ret_msg,
                                "conn_id": _conn_id(session)}
        if req_id is not None or self.market != "spot":
            body["req_id"] = "" if req_id is None else str(req_id)
        body["op"] = op
        return _encode(body).decode()

    def on_message(self, session: Session, message: str | bytes) -> str | Close | None:
        try:
            req = _request_decoder.decode(message)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return self._reply(session, "", None, False, f"Invalid request: {message!r:.80}")
        op, req_id = req.op, req.req_id
        if op == "ping":
            return self._reply(session, "ping", req_id, True, "pong")
        if op not in ("subscribe", "unsubscribe"):
            return self._reply(session, op, req_id, False, f"error:unknown op {op}")
        if not all(isinstance(a, str) for a in req.args) or not req.args:
            return self._reply(session, op, req_id, False, "error:args must be topics")
        if len(req.args) > ARGS_PER_SUBSCRIBE:
            return self._reply(session, op, req_id, False,
                               f"args size >{ARGS_PER_SUBSCRIBE}")
        topics = [a.encode() for a in req.args]
        source = session.source
        if op == "unsubscribe":
            held = [t for t in topics if t in session.streams]
            session.unsubscribe(held)
            for t in held:
                source.unsubscribed(session, t)
            missing = [t for t in topics if t not in held]
            if missing:
                return self._reply(session, op, req_id, False,
                                   f"error:not subscribed,topic:{missing[0].decode()}")
            return self._reply(session, op, req_id)
        errors = []
        new = []
        for t in dict.fromkeys(topics):
            why = "already subscribed" if t in session.streams else source.topic_error(t)
            if why is None:
                new.append(t)
            else:
                errors.append(f"error:{why},topic:{t.decode()}")
        chars = sum(len(t) + 3 for t in session.streams) + sum(len(t) + 3 for t in new)
        if len(session.streams) + len(new) > session.max_streams or chars > MAX_ARGS_CHARS:
            return self._reply(session, op, req_id, False,
                               "error:too many topics for one connection")
        session.subscribe(new)
        for t in new:
            source.subscribed(session, t)
        if errors:
            return self._reply(session, op, req_id, False, ";".join(errors))
        return self._reply(session, op, req_id, True, "subscribe" if self.market == "spot" else "")

    def unwrap(self, stream: bytes, frame: bytes) -> bytes:
        return frame

    def corrupt_price(self, frame: bytes) -> bytes:
        return bad_price(frame)

    # -- REST ----------------------------------------------------------------------------------

    def route(self, path: str) -> str | None:
        return info.ROUTES.get(path)

    def weight(self, endpoint: str, params: dict[str, str]) -> int:
        return 1  # docs "Rate Limit Rules": every request counts one against the IP limit

    def weight_headers(self, used: int) -> list[tuple[str, str]]:
        # per endpoint and UID on Bybit; here the market's budget: requests left, the limit
        return [("X-Bapi-Limit-Status", str(max(0, self.weight_limit - used))),
                ("X-Bapi-Limit", str(self.weight_limit))]

    def over_budget(self, status: int, ip: str, limit: int, until_ms: int) -> tuple[int, bytes]:
        return info.over_budget_body(status)

    # -- sources -------------------------------------------------------------------------------

    def replayed(self, recording: Recording | None) -> BybitReplay:
        if recording is None:
            return BybitReplay(self.market, None)
        return BybitReplay(self.market, recording.exchange_info,
                           recorded_steps(recording.events()))

    def simulated(self, model: MarketModel) -> BybitSim:
        return BybitSim(self.market, self.feed, model)


MARKETS_EMULATED = {FEED_IDS[c]: EmulatedMarket(c) for c in ("spot", "linear", "inverse")}
