"""The BingX spot market as the local exchange serves it (feed bingx_spot): the swap market's
websocket machinery (gzip binary frames, one topic a request, the ``action: all`` snapshot on
an ``@incrDepth`` subscription, limits; ``market``) with spot's socket path, heartbeat, acks,
frame layout, trades and REST.

Docs: https://bingx-api.github.io/docs/#/en-us/spot/socket/ (path ``/market``, gzip, ping,
      subscribe), https://bingx-api.github.io/docs/#/en-us/spot/market-api.html
No real spot frame is recorded: the layouts are those of the samples named in
``analyzer.venues.bingx.spot``.

Socket ``/market``. Every ``ping_s`` (5 s live) the server sends ``{"ping":"<id>","time":
"<local time text>"}``; a ``{"pong":"<id>",...}`` answer with an id it sent counts in
``pongs`` (a bare ``Pong`` does not); a connection silent for 30 s is closed. Requests
``{"id","reqType","dataType"}`` (``reqType`` ``sub``, ``unsub``, or absent: a sub, as the
docs' example has it) are answered ``{"id","code":0,"msg":"SUCCESS","timestamp"}``; an unknown
symbol or channel (spot has ``incrDepth``, ``trade``, ``bookTicker`` here) gets code 100400.

Frames (``SpotFormat``): ``{"code":0,"data":{...},"dataType":"<stream>","success":true}``.
``@incrDepth``: the swap renderer's window and numbering (``render.SymbolFormat``), its ids
stepping by one (no skip: none documented nor probed on spot), the time as the data's
``timestamp`` (JKorf's spot model). ``@trade``: one trade a frame, the model's trade id as
``t`` (digits as text), ``m`` the buyer-was-maker flag, ``E``/``T``. ``@bookTicker``: ``b, B,
a, A, E``. REST: the symbols listing and recent trades (by id, the socket's ids).

Replay (``BingxSpotReplay``): a capture of ``bingx_spot`` (``recordings`` tells it from a
swap one), its frames sent as captured.
"""

from __future__ import annotations

import time
import zlib
from typing import TYPE_CHECKING, Any

import msgspec

from analyzer.exchange.emulator import RestError
from analyzer.venues.bingx.emulate import info
from analyzer.venues.bingx.emulate.book import Ids
from analyzer.venues.bingx.emulate.market import BingxMarket
from analyzer.venues.bingx.emulate.recordings import SPOT_SYMBOLS, text_of
from analyzer.venues.bingx.emulate.render import SymbolFormat
from analyzer.venues.bingx.emulate.simulated import BingxSim
from analyzer.venues.bingx.emulate.state import BingxReplay, ReplayBook
from analyzer.venues.bingx.spec import SPOT_WS_PATH

if TYPE_CHECKING:
    from analyzer.events import Instrument, Quote, Trade
    from analyzer.exchange.market import MarketFeed
    from analyzer.exchange.recordings import Recording
    from analyzer.exchange.simulate import SimFeed
    from analyzer.sim import MarketModel

MS = 1_000_000
SPOT_CHANNELS = ("incrDepth", "trade", "bookTicker")
NO_SYMBOL = info.error(100204, "symbol does not exist")
_encode = msgspec.json.encode


class _Pong(msgspec.Struct):
    pong: str


_pong = msgspec.json.Decoder(_Pong)


class SpotTape:
    """The trades released of a spot pair (REST recent trades): (id, ms, price, size, sell),
    oldest first, the latest ``LIMIT``."""

    __slots__ = ("rows", "volume")
    LIMIT = 10_000

    def __init__(self) -> None:
        self.rows: list[tuple[int, int, float, float, bool]] = []
        self.volume = 0.0

    def add(self, ev: Trade) -> None:
        self.volume += ev.size
        rows = self.rows
        rows.append((int(ev.trade_id), ev.ts_exchange // MS, ev.price, ev.size,
                     ev.side == "sell"))
        if len(rows) > self.LIMIT * 1.1:
            del rows[: len(rows) - self.LIMIT]


class SpotFormat(SymbolFormat):
    """The spot frames of one pair (module doc); the book machinery is the swap's."""

    def __init__(self, instrument: Instrument, model: MarketModel) -> None:
        super().__init__(instrument, model)
        sym = self.symbol
        self.tape = SpotTape()  # type: ignore[assignment]
        self.ids = Ids(model.seed, sym, skips_per_minute=0.0, tag="bingx_spot")
        tail = ',"dataType":"' + sym + '@%s","success":true}'
        self.depth_tmpl = ('{"code":0,"data":{"action":"%s","lastUpdateId":%d,"timestamp":%d,'
                           '"bids":[%s],"asks":[%s]}' + tail % "incrDepth")
        self.spot_trade_tmpl = ('{"code":0,"data":{"E":%d,"T":%d,"e":"trade","m":%s,'
                                '"p":"%s","q":"%s","s":"' + sym + '","t":"%s"}'
                                + tail % "trade")
        self.bbo_tmpl = ('{"code":0,"data":{"A":"%s","B":"%s","E":%d,"a":"%s","b":"%s",'
                         '"e":"bookTicker","s":"' + sym + '"}' + tail % "bookTicker")

    def streams(self) -> list[bytes]:
        keys = self.keys
        return [keys[ch] for ch in SPOT_CHANNELS]

    def trade(self, ev: Trade) -> bytes:  # type: ignore[override]
        ms = ev.ts_exchange // MS
        return (self.spot_trade_tmpl % (ms, ms, "true" if ev.side == "sell" else "false",
                                        self.px[ev.price], self.qx[ev.size], ev.trade_id)
                ).encode()

    def bbo(self, ev: Quote) -> bytes:
        px, qx = self.px, self.qx
        return (self.bbo_tmpl % (qx[ev.ask_size], qx[ev.bid_size], ev.ts_exchange // MS,
                                 px[ev.ask_price], px[ev.bid_price])).encode()

    def frames(self, ev: Any) -> list[tuple[bytes, bytes]]:
        if ev.__class__.__name__ == "Trade":
            return [(self.keys["trade"], self.trade(ev))]
        return super().frames(ev)


class BingxSpotSim(BingxSim):
    """The ``SimMarket`` of the BingX spot market: spot frames, the listing and recent
    trades from the model."""

    def renderer(self, instrument: Instrument) -> SpotFormat:
        f = SpotFormat(instrument, self.model)
        self.formats[f.symbol] = f
        return f

    def rest(self, feed: SimFeed, endpoint: str, params: dict[str, str]) -> bytes:
        symbol = params.get("symbol", "")
        if endpoint == "symbols":
            return info.spot_symbols([info.spot_symbol(i.symbol, i.tick_size, i.lot_size)
                                      for i in self.model.instruments()
                                      if i.venue == self.feed_id])
        if not self.knows(symbol):
            raise RestError(200, NO_SYMBOL)
        if endpoint == "trades":
            f = self.formats[symbol]
            px, qx = f.px, f.qx
            limit = info.limit_of(params, 100, 100)
            rows = f.tape.rows[-limit:]  # type: ignore[attr-defined]
            return info.spot_trades([(i, ms, px[p], qx[q], sell) for i, ms, p, q, sell in rows],
                                    limit, self.model.now_ns // MS)
        raise RestError(404, info.error(100400, "Invalid parameter"))


class BingxSpotReplay(BingxReplay):
    """What the exchange keeps of a replayed BingX spot market (a capture of ``bingx_spot``,
    its frames sent as captured: ``recordings``): books from ``@incrDepth`` frames (spot's
    layout: data before dataType; the snapshot rendered so), trades with ids from ``@trade``;
    REST answers the recorded symbols listing (else one made up for the symbols streamed) and
    recent trades."""

    listing_path = SPOT_SYMBOLS

    def reset(self) -> None:
        super().reset()
        self.spot_trades: dict[str, list[tuple[int, int, str, str, bool]]] = {}

    def classify(self, stream: bytes) -> tuple[Any, str | None, bool]:
        symbol, _, channel = stream.decode().partition("@")
        if channel == "incrDepth":
            return self.on_depth, symbol, True
        if channel == "trade":
            return self.on_spot_trade, symbol, False
        return None, symbol or None, False

    def on_spot_trade(self, symbol: str, frame: bytes) -> None:
        try:
            t = _spot_trade.decode(text_of(frame)).data
        except (msgspec.DecodeError, zlib.error):
            self.decode_errors += 1
            return
        rows = self.spot_trades.setdefault(symbol, [])
        rows.append((int(t.t), t.T, t.p, t.q, t.m))
        if len(rows) > 2200:
            del rows[:200]

    def snapshot(self, symbol: str) -> bytes | None:
        book = self.books.get(symbol)
        if book is None or book.last_id < 0:
            return None
        return spot_snapshot(book, symbol, self.now_ns // MS)

    def rest(self, feed: MarketFeed, endpoint: str, params: dict[str, str]) -> bytes:
        symbol = params.get("symbol", "")
        if endpoint == "symbols":
            if self.listing is not None:
                return self.listing
            return info.spot_symbols([info.spot_symbol(s, 0.01, 0.0001)
                                      for s in sorted(self.seen)])
        if symbol not in self.seen:
            raise RestError(200, NO_SYMBOL)
        if endpoint == "trades":
            limit = info.limit_of(params, 100, 100)
            return info.spot_trades(self.spot_trades.get(symbol, [])[-limit:], limit,
                                    self.now_ns // MS)
        raise RestError(200, info.error(100400, f"{endpoint} not recorded"))


class _SpotTrade(msgspec.Struct, gc=False):
    t: str
    p: str
    q: str
    T: int
    m: bool


class _SpotTradeFrame(msgspec.Struct, gc=False):
    data: _SpotTrade


_spot_trade = msgspec.json.Decoder(_SpotTradeFrame)


def spot_snapshot(book: ReplayBook, symbol: str, now_ms: int) -> bytes:
    """The spot ``action: all`` frame of a replayed book (timed ``now_ms`` if no frame had a
    time)."""
    bids, asks = book.texts()
    return (f'{{"code":0,"data":{{"action":"all","lastUpdateId":{book.last_id},'
            f'"timestamp":{book.time or now_ms},"bids":{bids},"asks":{asks}}},'
            f'"dataType":"{symbol}@incrDepth","success":true}}').encode()


class BingxSpotMarket(BingxMarket):
    """The ``MarketEmulator`` of the BingX spot market (module doc)."""

    channels = SPOT_CHANNELS
    ws_path = SPOT_WS_PATH
    refused_code, refused_msg = 100400, "ILLEGAL_ARGUMENT: dataType not support"
    req_types = ("sub", "unsub", "")

    def __init__(self, feed: str) -> None:
        super().__init__(feed)
        self.market = "spot"
        self.sent_pings: dict[str, None] = {}  # ids of the pings sent lately

    def answer(self, req_id: str, code: int = 0, msg: str = "") -> bytes:
        return _encode({"id": req_id, "code": code, "msg": msg or "SUCCESS",
                        "timestamp": int(time.time() * 1000)})

    def ping_frame(self) -> bytes:
        ping_id = f"{self.pings:032x}"
        self.sent_pings[ping_id] = None
        if len(self.sent_pings) > 100:
            del self.sent_pings[next(iter(self.sent_pings))]
        return _encode({"ping": ping_id,
                        "time": time.strftime("%Y-%m-%dT%H:%M:%S.000+0800")})

    def is_pong(self, message: str | bytes) -> bool:
        head = message[:12]
        if (head.decode(errors="replace") if isinstance(head, bytes) else head).find(
                '"pong"') < 0:
            return False
        try:
            return _pong.decode(message).pong in self.sent_pings
        except (msgspec.DecodeError, msgspec.ValidationError):
            return False

    def route(self, path: str) -> str | None:
        return {"/openApi/spot/v1/common/symbols": "symbols",
                "/openApi/spot/v1/market/trades": "trades"}.get(path)

    def replayed(self, recording: Recording | None) -> BingxSpotReplay:
        return BingxSpotReplay(recording)

    def simulated(self, model: MarketModel) -> BingxSpotSim:
        return BingxSpotSim(self.feed, model)


__all__ = ["BingxSpotMarket", "BingxSpotReplay", "BingxSpotSim", "SpotFormat", "SpotTape"]
