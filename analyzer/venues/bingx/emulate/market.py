"""The BingX swap market as the local exchange serves it: gzip binary frames, the server's
``Ping``, one-topic subscriptions with their acks and errors, limits, REST routing and budget.

Docs: https://bingx-api.github.io/docs/#/en-us/swapV2/socket/ (gzip, heartbeat, subscribe)
      https://bingx-api.github.io/docs/#/en-us/swapV2/market-api.html

Websocket ``/swap-market``. Every frame the server sends is gzip-compressed in a binary frame
(``encode``: the core applies it to every payload written; a payload that is gzip already goes
as it is: a replayed capture's frames, byte for byte, and a fault's corrupt one).
``{"id","reqType":"sub"|"unsub","dataType"}`` is answered
``{"id","code":0,"msg":"","dataType":"","data":null}``, or code 80015 "dataType not support"
for an unknown symbol (case-sensitive) or channel, 80403 past ``max_streams`` (200) topics (the
connection stays); an ``@incrDepth`` subscription then gets its snapshot (``action: all``)
before any update. The server sends ``Ping`` every ``ping_s`` seconds (queued with the
market's next write: a stalled market pings late) and counts the ``Pong``s (``pongs``); a
connection that sent nothing for ``idle_timeout_s`` (30 s: no Pong) is closed, as BingX closes
one that stops answering.
"""

from __future__ import annotations

import asyncio
import zlib
from typing import TYPE_CHECKING, Any

import msgspec

from analyzer.exchange.emulator import Close, Session
from analyzer.venues.bingx.emulate.recordings import text_of
from analyzer.venues.bingx.emulate.simulated import BingxSim
from analyzer.venues.bingx.emulate.state import BingxReplay
from analyzer.venues.bingx.spec import WS_PATH

if TYPE_CHECKING:
    from analyzer.exchange.recordings import Recording
    from analyzer.sim import MarketModel

CHANNELS = ("incrDepth", "trade", "bookTicker", "markPrice")
GZIP_MAGIC = b"\x1f\x8b"


class _Request(msgspec.Struct):
    id: str = ""
    reqType: str = ""
    dataType: str = ""


_request = msgspec.json.Decoder(_Request)
_encode = msgspec.json.encode


def gzip_frame(payload: bytes) -> bytes:
    z = zlib.compressobj(1, zlib.DEFLATED, 31)
    return z.compress(payload) + z.flush()


def _answer(req_id: str, code: int = 0, msg: str = "") -> bytes:
    return _encode({"id": req_id, "code": code, "msg": msg, "dataType": "", "data": None})


class BingxMarket:
    """The ``MarketEmulator`` of the BingX swap market (feed bingx_swap); the spot market's
    (``spot.BingxSpotMarket``) changes the hooks marked below."""

    # hooks of the protocol that spot changes
    channels = CHANNELS
    ws_path = WS_PATH
    refused_code, refused_msg = 80015, "dataType not support"
    req_types: tuple[str, ...] = ("sub", "unsub")

    ping_interval = None  # no websocket pings: the server's ``Ping`` is a message
    ping_timeout = None
    idle_timeout_s: float | None = 30.0
    # "do not exceed 10/s" is about subscriptions; Pongs count here too: room for both
    messages_per_s = 20
    too_many_messages = Close(1008, "too many requests")
    max_streams = 200
    weight_limit = 500  # 500 requests per 10 s per IP
    window_s = 10.0

    def __init__(self, feed: str) -> None:
        self.feed = feed
        self.market = "swap"
        self.ping_s = 5.0
        self.pings = 0
        self.pongs = 0

    # -- websocket -----------------------------------------------------------------------------

    def encode(self, payload: bytes) -> bytes:
        return payload if payload[:2] == GZIP_MAGIC else gzip_frame(payload)

    def accepts(self, path: str) -> bool:
        return "/" + path == self.ws_path

    def on_open(self, session: Session, path: str, query: str) -> Close | None:
        loop = asyncio.get_running_loop()

        def ping() -> None:
            if getattr(getattr(session, "client", None), "closed", False):
                return
            session.send(self.ping_frame())
            self.pings += 1
            loop.call_later(self.ping_s, ping)

        loop.call_later(self.ping_s, ping)
        return None

    def answer(self, req_id: str, code: int = 0, msg: str = "") -> bytes:
        """The answer to a request (an ack with code 0), as text (spot: its own form)."""
        return _answer(req_id, code, msg)

    def is_pong(self, message: str | bytes) -> bool:
        return message in ("Pong", b"Pong")

    def ping_frame(self) -> bytes:
        return b"Ping"

    def on_message(self, session: Session, message: str | bytes) -> str | bytes | Close | None:
        if self.is_pong(message):
            self.pongs += 1
            return None
        _answer = self.answer
        try:
            req = _request.decode(message)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return gzip_frame(_answer("", 80014, "invalid params"))
        if req.reqType not in self.req_types or not req.dataType:
            return gzip_frame(_answer(req.id, 80014, "invalid params"))
        symbol, _, channel = req.dataType.partition("@")
        source = session.source
        stream = req.dataType.encode()
        if channel not in self.channels or not source.knows(symbol):
            return gzip_frame(_answer(req.id, self.refused_code, self.refused_msg))
        if req.reqType == "unsub":
            session.unsubscribe([stream])
            return gzip_frame(_answer(req.id))
        if stream not in session.streams and len(session.streams) >= session.max_streams:
            return gzip_frame(_answer(req.id, 80403, "exceeded the maximum number of topics"))
        new = stream not in session.streams
        session.send(_answer(req.id))  # the ack, then the snapshot, then the stream
        if new and channel == "incrDepth":
            frame = source.snapshot(symbol)
            if frame is not None:
                session.send(frame)
        session.subscribe([stream])
        return None

    def unwrap(self, stream: bytes, frame: bytes) -> bytes:
        return frame

    def corrupt_price(self, frame: bytes) -> bytes:
        """A copy of a depth frame whose first bid price is not a number."""
        doc = msgspec.json.decode(text_of(frame))
        doc["data"]["bids"] = [["not-a-price", "1"], *doc["data"].get("bids", [])]
        return _encode(doc)

    # -- REST ----------------------------------------------------------------------------------

    def route(self, path: str) -> str | None:
        return {
            "/openApi/swap/v2/quote/contracts": "contracts",
            "/openApi/swap/v2/quote/premiumIndex": "premiumIndex",
            "/openApi/swap/v2/quote/openInterest": "openInterest",
            "/openApi/swap/v2/quote/trades": "trades",
            "/openApi/swap/v2/quote/fundingRate": "fundingRate",
        }.get(path)

    def weight(self, endpoint: str, params: dict[str, str]) -> int:
        return 1

    def weight_headers(self, used: int) -> list[tuple[str, str]]:
        return [("X-RateLimit-Requests-Remain", str(max(0, self.weight_limit - used))),
                ("X-RateLimit-Requests-Expire", str(int(self.window_s * 1000)))]

    def over_budget(self, status: int, ip: str, limit: int, until_ms: int) -> tuple[int, bytes]:
        return status, _encode({"code": 100410, "msg": "rate limited", "data": None})

    # -- sources -------------------------------------------------------------------------------

    def replayed(self, recording: Recording | None) -> BingxReplay:
        return BingxReplay(recording)

    def simulated(self, model: MarketModel) -> BingxSim:
        return BingxSim(self.feed, model)


MARKETS_EMULATED: dict[str, Any] = {"bingx_swap": BingxMarket("bingx_swap")}
