"""The simulated market in Binance's own wire format: websocket frames (REST bodies: ``simulated``).

Docs: https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams
      https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams
      https://developers.binance.com/docs/derivatives/coin-margined-futures/websocket-market-streams

One ``SymbolFormat`` per listed instrument turns the model's normalized events into the frames
Binance sends for that symbol, combined-stream envelope included. Shapes, key order and number
formats follow the docs and the recorded frames under ``tests/fixtures``:

    spot   prices and sizes padded to 8 decimals; depthUpdate e,E,s,U,u,b,a with bids best
           first; bookTicker u,s,b,B,a,A (no e/E/T); trade e,E,s,t,p,q,T,m,M (no X)
    USDⓈ-M prices to the symbol's price precision (BTCUSDT: 2 decimals on a 0.10 tick), sizes
           to the lot; depthUpdate e,E,T,s,U,u,pu,b,a with both sides ascending; bookTicker
           e,u,s,b,B,a,A,T,E; aggTrade e,E,a,s,...; markPriceUpdate e,E,s,p,i,P,r,T (a dated
           future sends r "" and T 0)
    COIN-M like USDⓈ-M plus ``ps`` (the pair) after ``s``; sizes are whole contracts;
           bookTicker starts u,e; markPriceUpdate has no ``i``: the index comes per pair on
           ``<pair>@indexPrice@1s``

Rendering is the exchange's hot path (it shares one core with the model), so frames are filled
into preformatted byte templates with one ``%`` each (a depth frame's template holds its
combined-stream envelope too), and the decimal text of every price and size is cached per
symbol: the book revisits the same prices and sizes over and over, and a dict hit is ~5x
cheaper than formatting a float. Event times in milliseconds are cached for all symbols at
once, as the instruments' changes (and many quotes and trades) fall on the same instants.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any

import msgspec

from analyzer.events import BookChange, DerivativeTicker, Liquidation, Quote, Trade

if TYPE_CHECKING:
    from analyzer.events import Instrument

Sink = Callable[[bytes], Any]

MS = 1_000_000
# Decimal texts kept per symbol and cache before it starts over: a busy symbol's sizes reach
# ~12k distinct values in 30 minutes, its prices fewer; the bound caps a long run's memory.
CACHE_LIMIT = 20_000
# Depth stream names a simulated symbol answers on: every speed gets every diff.
DEPTH_SPEEDS = {
    "spot": ("", "@100ms", "@1000ms"),
    "usdm": ("", "@0ms", "@100ms", "@250ms", "@500ms"),
    "coinm": ("", "@0ms", "@100ms", "@250ms", "@500ms"),
}
_TRUE, _FALSE = b"true", b"false"
_encode = msgspec.json.encode


def decimals(step: float) -> int:
    """Decimals of a tick or lot as written (0.1 -> 1, 1e-05 -> 5, 1.0 -> 0)."""
    exp = Decimal(repr(step)).normalize().as_tuple().exponent
    return max(0, -exp) if isinstance(exp, int) else 0


def precisions(market: str, tick: float, lot: float) -> tuple[int, int]:
    """(price, size) decimals Binance writes for a symbol of this market."""
    if market == "spot":
        return 8, 8  # spot pads every number to 8 decimals
    if market == "usdm":
        return max(2, decimals(tick)), decimals(lot)  # BTCUSDT: "61800.20" on a 0.10 tick
    return decimals(tick), decimals(lot)  # COIN-M: "427.90", whole contracts


class Texts(dict[float, bytes]):
    """Decimal texts of numbers, each formatted on its first use: ``texts[x]`` is
    ``head + fmt % x + tail``. Starts over past ``CACHE_LIMIT`` entries."""

    __slots__ = ("fmt", "head", "tail")

    def __init__(self, fmt: bytes, head: bytes = b"", tail: bytes = b"") -> None:
        super().__init__()
        self.fmt, self.head, self.tail = fmt, head, tail

    def __missing__(self, x: float) -> bytes:
        if len(self) >= CACHE_LIMIT:
            self.clear()
        text = self[x] = self.head + self.fmt % x + self.tail
        return text


_MS_TEXT = Texts(b"%d")  # event time in milliseconds -> its text, for every symbol


class SymbolFormat:
    """Frames of one symbol of one market (``market`` is spot, usdm or coinm).

    ``trade_offset``: aggregate trade id = trade id - trade_offset. The model fills one price
    level per trade, so every trade is its own aggregate (f == l), and the id needs no state.
    ``index_sent``: the pair -> event time of the last COIN-M index frame, shared by the pair's
    contracts of one simulation (one index frame per pair and time). ``tape``: the trades
    released, for the REST history.
    """

    __slots__ = (
        "agg_key",
        "agg_tmpl",
        "agg_trade",
        "book_ticker",
        "bt_key",
        "bt_tmpl",
        "depth",
        "depth_frame",
        "depth_keys",
        "depth_tmpl",
        "force_key",
        "force_ms",
        "force_tmpl",
        "index_key",
        "index_sent",
        "index_tmpl",
        "info",
        "lp",
        "lq",
        "mark_key",
        "mark_tmpl",
        "market",
        "pair",
        "pd",
        "pfmt",
        "px",
        "qd",
        "qfmt",
        "qx",
        "spot",
        "symbol",
        "tape",
        "trade",
        "trade_key",
        "trade_offset",
        "trade_tmpl",
    )

    def __init__(
        self,
        market: str,
        info: Instrument,
        trade_offset: int,
        index_sent: dict[str, int] | None = None,
    ) -> None:
        self.market = market
        self.info = info
        self.tape = Trades()
        self.index_sent = {} if index_sent is None else index_sent
        self.force_ms: int | None = None  # time of the last forceOrder sent
        self.spot = market == "spot"
        sym = self.symbol = info.symbol
        low = sym.lower()
        self.pair = sym.split("_", 1)[0]
        self.trade_offset = trade_offset
        self.pd, self.qd = precisions(market, info.tick_size, info.lot_size)
        self.pfmt = b"%%.%df" % self.pd
        self.qfmt = b"%%.%df" % self.qd
        self.px = Texts(self.pfmt)  # price -> b"61800.20"
        self.qx = Texts(self.qfmt)
        self.lp = Texts(self.pfmt, b'["', b'","')  # price -> b'["61800.20","' (a level's start)
        self.lq = Texts(self.qfmt, tail=b'"]')  # size -> b'0.507"]'
        self.depth = self._depth_spot if self.spot else self._depth_futures
        self.book_ticker = self._book_ticker_spot if self.spot else self._book_ticker_futures
        self.trade = self._trade_spot if self.spot else self._trade_futures
        self.agg_trade = self._agg_trade
        s = sym.encode()
        ps = b',"ps":"%s"' % self.pair.encode() if market == "coinm" else b""

        def env(key: bytes, data: bytes) -> bytes:
            return b'{"stream":"' + key + b'","data":' + data + b"}"

        self.depth_keys = tuple(
            (key, b'{"stream":"' + key + b'","data":')
            for key in (f"{low}@depth{speed}".encode() for speed in DEPTH_SPEEDS[market])
        )
        if self.spot:
            self.depth_tmpl = (
                b'{"e":"depthUpdate","E":%b,"s":"' + s + b'","U":%d,"u":%d,"b":[%b],"a":[%b]}'
            )
        else:
            self.depth_tmpl = (
                b'{"e":"depthUpdate","E":%b,"T":%b,"s":"' + s + b'"' + ps
                + b',"U":%d,"u":%d,"pu":%d,"b":[%b],"a":[%b]}'
            )
        # the whole frame of each depth stream, for the usual single depth subscription
        self.depth_frame = {
            key: prefix + self.depth_tmpl + b"}" for key, prefix in self.depth_keys
        }
        self.bt_key = f"{low}@bookTicker".encode()
        if self.spot:
            self.bt_tmpl = env(
                self.bt_key, b'{"u":%d,"s":"' + s + b'","b":"%b","B":"%b","a":"%b","A":"%b"}'
            )
        else:
            # COIN-M writes the update id first (as recorded; USDⓈ-M the event type)
            head = b'{"u":%d,"e":"bookTicker"' if market == "coinm" else b'{"e":"bookTicker","u":%d'
            self.bt_tmpl = env(
                self.bt_key,
                head + b',"s":"' + s + b'"' + ps
                + b',"b":"%b","B":"%b","a":"%b","A":"%b","T":%b,"E":%b}',
            )
        self.trade_key = f"{low}@trade".encode()
        self.agg_key = f"{low}@aggTrade".encode()
        if self.spot:
            self.trade_tmpl = env(
                self.trade_key,
                b'{"e":"trade","E":%b,"s":"' + s
                + b'","t":%b,"p":"%b","q":"%b","T":%b,"m":%b,"M":true}',
            )
            self.agg_tmpl = env(
                self.agg_key,
                b'{"e":"aggTrade","E":%b,"s":"' + s
                + b'","a":%d,"p":"%b","q":"%b","f":%b,"l":%b,"T":%b,"m":%b,"M":true}',
            )
        else:
            self.trade_tmpl = env(
                self.trade_key,
                b'{"e":"trade","E":%b,"T":%b,"s":"' + s
                + b'","t":%b,"p":"%b","q":"%b","X":"MARKET","m":%b}',
            )
            self.agg_tmpl = env(  # futures put the aggregate id before the symbol (recorded)
                self.agg_key,
                b'{"e":"aggTrade","E":%b,"a":%d,"s":"' + s
                + b'","p":"%b","q":"%b","f":%b,"l":%b,"T":%b,"m":%b}',
            )
        self.mark_key = f"{low}@markPrice@1s".encode()
        index = b'"i":"%.8f",' if market == "usdm" else b""
        self.mark_tmpl = env(
            self.mark_key,
            b'{"e":"markPriceUpdate","E":%d,"s":"' + s + b'","p":"%.8f",' + index
            + b'"P":"%.8f","r":"%b","T":%d}',
        )
        self.index_key = f"{self.pair.lower()}@indexPrice@1s".encode()
        self.index_tmpl = env(
            self.index_key,
            b'{"e":"indexPriceUpdate","E":%d,"i":"' + self.pair.encode() + b'","p":"%.8f"}',
        )
        self.force_key = f"{low}@forceOrder".encode()
        self.force_tmpl = env(
            self.force_key,
            b'{"e":"forceOrder","E":%d,"o":{"s":"' + s + b'"' + ps
            + b',"S":"%b","o":"LIMIT","f":"IOC","q":"%b","p":"%b","ap":"%b","X":"FILLED",'
            b'"l":"%b","z":"%b","T":%d}}',
        )

    # -- number texts ------------------------------------------------------------------------

    def _levels(self, levels: list[tuple[float, float]], reverse: bool = False) -> bytes:
        """The levels of a side (not empty: callers skip those), sorted. Most changes touch
        one or two levels of a side: they skip the sort, the comprehension and the join."""
        lp, lq = self.lp, self.lq
        n = len(levels)
        if n == 1:
            ((p, q),) = levels
            return lp[p] + lq[q]
        if n == 2:
            (p, q), (p2, q2) = levels
            if (p > p2) is not reverse:
                p, q, p2, q2 = p2, q2, p, q
            return lp[p] + lq[q] + b"," + lp[p2] + lq[q2]
        return b",".join([lp[p] + lq[q] for p, q in sorted(levels, reverse=reverse)])

    # -- frames ------------------------------------------------------------------------------

    # The frame makers below come in a spot and a futures variant; ``__init__`` binds the
    # right one to the public name (a slot read, no branch and no method lookup per frame).

    def depth_data(self, ev: BookChange) -> bytes:
        """The ``data`` of a depthUpdate; a frame is a ``depth_keys`` prefix + this + ``}``."""
        return self.depth(self.depth_tmpl, ev)

    def _depth_spot(self, tmpl: bytes, ev: BookChange) -> bytes:
        """A depthUpdate into ``tmpl`` (``depth_tmpl`` or a ``depth_frame``). Levels are
        sorted as Binance sends them: spot bids best first, asks best first."""
        bids, asks = ev.bids, ev.asks
        return tmpl % (
            _MS_TEXT[ev.ts_exchange // MS], ev.first_id, ev.last_id,
            self._levels(bids, True) if bids else b"", self._levels(asks) if asks else b"",
        )

    def _depth_futures(self, tmpl: bytes, ev: BookChange) -> bytes:
        """Futures sort both sides by ascending price."""
        ms = _MS_TEXT[ev.ts_exchange // MS]
        bids, asks = ev.bids, ev.asks
        return tmpl % (
            ms, ms, ev.first_id, ev.last_id, ev.prev_id, self._levels(bids) if bids else b"",
            self._levels(asks) if asks else b"",
        )

    def _book_ticker_spot(self, ev: Quote) -> bytes:
        px, qx = self.px, self.qx
        return self.bt_tmpl % (
            ev.update_id, px[ev.bid_price], qx[ev.bid_size], px[ev.ask_price], qx[ev.ask_size],
        )

    def _book_ticker_futures(self, ev: Quote) -> bytes:
        px, qx = self.px, self.qx
        ms = _MS_TEXT[ev.ts_exchange // MS]
        return self.bt_tmpl % (
            ev.update_id, px[ev.bid_price], qx[ev.bid_size], px[ev.ask_price], qx[ev.ask_size],
            ms, ms,
        )

    def _trade_spot(self, ev: Trade) -> bytes:
        ms = _MS_TEXT[ev.ts_exchange // MS]
        m = _TRUE if ev.side == "sell" else _FALSE  # the buyer was the maker: the taker sold
        return self.trade_tmpl % (
            ms, ev.trade_id.encode(), self.px[ev.price], self.qx[ev.size], ms, m,
        )

    def _trade_futures(self, ev: Trade) -> bytes:
        ms = _MS_TEXT[ev.ts_exchange // MS]
        m = _TRUE if ev.side == "sell" else _FALSE
        return self.trade_tmpl % (
            ms, ms, ev.trade_id.encode(), self.px[ev.price], self.qx[ev.size], m,
        )

    def _agg_trade(self, ev: Trade) -> bytes:
        """aggTrade: every trade of the model fills one price level, so it is its own
        aggregate (f == l); both markets' templates take the id right after E or s."""
        ms = _MS_TEXT[ev.ts_exchange // MS]
        tid = ev.trade_id.encode()
        return self.agg_tmpl % (
            ms, int(ev.trade_id) - self.trade_offset, self.px[ev.price], self.qx[ev.size],
            tid, tid, ms, _TRUE if ev.side == "sell" else _FALSE,
        )

    def mark(self, ev: DerivativeTicker) -> bytes:
        """markPriceUpdate; dated futures send ``"r":""`` and ``"T":0``."""
        mark = ev.mark_price or 0.0
        index = ev.index_price or mark
        rate = b"" if ev.funding_rate is None else b"%.8f" % ev.funding_rate
        nxt = (ev.next_funding_time or 0) // MS
        ms = ev.ts_exchange // MS
        if self.market == "usdm":
            return self.mark_tmpl % (ms, mark, index, index, rate, nxt)
        return self.mark_tmpl % (ms, mark, index, rate, nxt)

    def index(self, ev: DerivativeTicker) -> bytes:
        return self.index_tmpl % (ev.ts_exchange // MS, ev.index_price or 0.0)

    def _index_once(self, ev: DerivativeTicker) -> bytes | None:
        """The pair's index frame, once per event time across the pair's contracts."""
        if ev.index_price is None or self.index_sent.get(self.pair) == ev.ts_exchange:
            return None
        self.index_sent[self.pair] = ev.ts_exchange
        return self.index(ev)

    def _force_throttled(self, ev: Liquidation) -> bytes | None:
        """Binance pushes at most one liquidation per symbol per second."""
        last = self.force_ms
        if last is not None and ev.ts_exchange - last < 1000 * MS:
            return None
        self.force_ms = ev.ts_exchange
        return self.force_order(ev)

    def force_order(self, ev: Liquidation) -> bytes:
        q = self.qfmt % ev.size
        p = self.pfmt % ev.price
        return self.force_tmpl % (
            ev.ts_exchange // MS, ev.side.upper().encode(), q, p, p, q, q, ev.ts_exchange // MS
        )

    def frames(self, ev: Any) -> list[tuple[bytes, bytes]]:
        """Every (stream, frame) this event produces on every stream name (the slow, complete
        path: tests, malformed copies). The exchange's release loop renders inline instead."""
        cls = ev.__class__
        if cls is BookChange:
            data = self.depth_data(ev)
            return [(key, prefix + data + b"}") for key, prefix in self.depth_keys]
        if cls is Quote:
            return [(self.bt_key, self.book_ticker(ev))]
        if cls is Trade:
            return [(self.trade_key, self.trade(ev)), (self.agg_key, self.agg_trade(ev))]
        if cls is DerivativeTicker:
            if self.spot:
                return []
            out = [(self.mark_key, self.mark(ev))]
            if self.market == "coinm" and ev.index_price is not None:
                out.append((self.index_key, self.index(ev)))
            return out
        if cls is Liquidation:
            return [(self.force_key, self.force_order(ev))]
        return []

    def outputs(self, sinks: dict[bytes, Sink]) -> dict[type, list[tuple[Any, Sink]]]:
        """Per event class, (render, send) for the subscribed streams (``SymbolRenderer``)."""
        out: dict[type, list[tuple[Any, Sink]]] = {}
        if self.bt_key in sinks:
            out[Quote] = [(self.book_ticker, sinks[self.bt_key])]
        depth = [(key, prefix, sinks[key]) for key, prefix in self.depth_keys if key in sinks]
        if len(depth) == 1:  # one depth speed: render the whole frame at once
            key, _, send = depth[0]
            out[BookChange] = [(partial(self.depth, self.depth_frame[key]), send)]
        elif depth:  # several: render the data once, wrap it per stream
            pairs = tuple((prefix, send) for _, prefix, send in depth)

            def fan_out(data: bytes) -> None:
                for prefix, send in pairs:
                    send(prefix + data + b"}")

            out[BookChange] = [(self.depth_data, fan_out)]
        trades = [(render, sinks[key]) for key, render in
                  ((self.trade_key, self.trade), (self.agg_key, self.agg_trade)) if key in sinks]
        if trades:
            out[Trade] = trades
        if not self.spot:
            tickers = []
            if self.mark_key in sinks:
                tickers.append((self.mark, sinks[self.mark_key]))
            if self.market == "coinm" and self.index_key in sinks:
                tickers.append((self._index_once, sinks[self.index_key]))
            if tickers:
                out[DerivativeTicker] = tickers
        if self.force_key in sinks:
            out[Liquidation] = [(self._force_throttled, sinks[self.force_key])]
        return out

    # -- streams -----------------------------------------------------------------------------

    def streams(self) -> list[bytes]:
        """Every stream name this symbol sends on."""
        out = [key for key, _ in self.depth_keys]
        out += [self.bt_key, self.trade_key, self.agg_key]
        if not self.spot:
            out += [self.mark_key, self.force_key]
        if self.market == "coinm":
            out.append(self.index_key)
        return out


def bad_price(frame: bytes) -> bytes:
    """A copy of a depth frame whose first bid price is not a number."""
    doc = msgspec.json.decode(frame)
    data = doc.get("data", doc)
    data["b"] = [["not-a-price", "1.000"], *data.get("b", [])]
    return _encode(doc)


class Trades:
    """The trades of one symbol as released on the stream, for historicalTrades / aggTrades:
    rows (trade id, price, size, time ms, buyer is maker). Bounded: the oldest go first."""

    __slots__ = ("rows",)
    LIMIT = 100_000  # hours of trades: backfills after a reconnect ask for seconds of them

    def __init__(self) -> None:
        self.rows: list[tuple[int, float, float, int, bool]] = []

    def add(self, ev: Trade) -> None:
        rows = self.rows
        rows.append((int(ev.trade_id), ev.price, ev.size, ev.ts_exchange // MS, ev.side == "sell"))
        if len(rows) > self.LIMIT * 1.1:
            del rows[: len(rows) - self.LIMIT]

    def since(self, from_id: int | None, limit: int) -> list[tuple[int, float, float, int, bool]]:
        rows = self.rows
        if from_id is None or not rows:
            return rows[-limit:]
        start = max(0, from_id - rows[0][0])  # ids are consecutive per symbol
        return rows[start : start + limit]
