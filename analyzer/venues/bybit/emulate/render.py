"""The simulated market in Bybit's own frames (REST bodies: ``simulated`` and ``info``).

Docs: https://bybit-exchange.github.io/docs/v5/websocket/public/orderbook
      https://bybit-exchange.github.io/docs/v5/websocket/public/trade
      https://bybit-exchange.github.io/docs/v5/websocket/public/ticker
      https://bybit-exchange.github.io/docs/v5/websocket/public/all-liquidation

One ``SymbolFormat`` per listed instrument turns the model's events into the frames of its
topics: ``orderbook.<N>.<SYM>`` (N = 50, 200, 500, 1000), ``orderbook.1.<SYM>``,
``publicTrade.<SYM>`` and, for derivatives, ``tickers.<SYM>`` and ``allLiquidation.<SYM>``.

Books. Bybit's book topic is a window of the best N levels per side: a snapshot on subscribe,
then deltas of the window (a level pushed out of it is sent with size 0, a level that comes
into it with its size), ``u`` rising by exactly 1 per message of the topic. The model's book is
deeper than any window, so each symbol keeps a mirror of it (sorted prices per side) and turns
each model change into the change of every subscribed window. A model change that never reached
the renderer (a ``drop_depth`` fault, a stretch with nobody subscribed) shows as a hole in the
model's ids (spot style: each change starts right after the last); the mirror is rebuilt from
the model and ``u`` skips one, so a client sees the hole as a venue's client would.

Snapshots on subscribe. The model may be up to one step ahead of the released stream. So the
snapshot of a new subscription is taken from the model at once (its last change id L) and,
unless the release is known to be there already (before the clock starts, or when the last
change released is L), held and sent just before the first change after L: the changes up to
L released meanwhile went out with ``u`` at or below the snapshot's (stale to the client, which
discards them), and the first change after it carries the snapshot's ``u`` + 1. Bybit's ``u``
starts high here, as it does on the venue: a ``u`` of 1 means a restart (a snapshot).

``orderbook.1`` is the best bid and ask, always sent as a snapshot (Bybit sends only those on
the 1-level book), one per change of the top (the model's Quotes). Tickers: a snapshot on
subscribe (the model's state now), then deltas carrying only what changed (mark and index
every second, funding when it changes, open interest when the model publishes it). Bybit's
``openInterest`` is both sides, twice the model's one-side figure (the collector halves it).

Hot path: preformatted byte templates, decimal texts cached per symbol.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec

from analyzer.events import BookChange, DerivativeTicker, Liquidation, OpenInterest, Quote, Trade
from analyzer.venues.bybit.emulate.info import decimals

if TYPE_CHECKING:
    from analyzer.events import Instrument
    from analyzer.sim import MarketModel

Sink = Callable[[bytes], Any]
MS = 1_000_000
CACHE_LIMIT = 20_000
BOOK_DEPTHS = {"spot": (50, 200, 1000), "linear": (50, 200, 500, 1000),
               "inverse": (50, 200, 500, 1000)}
_encode = msgspec.json.encode


class Texts(dict[float, bytes]):
    """``texts[x]`` is ``head + fmt % x + tail``, formatted on first use (bounded)."""

    __slots__ = ("fmt", "head", "tail")

    def __init__(self, fmt: bytes, head: bytes = b"", tail: bytes = b"") -> None:
        super().__init__()
        self.fmt, self.head, self.tail = fmt, head, tail

    def __missing__(self, x: float) -> bytes:
        if len(self) >= CACHE_LIMIT:
            self.clear()
        text = self[x] = self.head + (self.fmt % x if x else b"0") + self.tail
        return text


def _noop(_: Any) -> None:
    return None


class Mirror:
    """The model's book as released: per side, keys sorted best first (asks: price, bids:
    -price) and sizes by price."""

    __slots__ = ("ask_keys", "asks", "bid_keys", "bids", "last_id", "valid")

    def __init__(self) -> None:
        self.valid = False
        self.last_id = 0
        self.bid_keys: list[float] = []
        self.ask_keys: list[float] = []
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}

    def load(self, last_id: int, bids: list[tuple[float, float]],
             asks: list[tuple[float, float]]) -> None:
        self.bids = dict(bids)
        self.asks = dict(asks)
        self.bid_keys = sorted(-p for p in self.bids)
        self.ask_keys = sorted(self.asks)
        self.last_id = last_id
        self.valid = True

    def top(self, n: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        bids, asks = self.bids, self.asks
        return ([(-k, bids[-k]) for k in self.bid_keys[:n]],
                [(k, asks[k]) for k in self.ask_keys[:n]])


def _apply(keys: list[float], sizes: dict[float, float], levels: list[tuple[float, float]],
           sign: float, windows: list[tuple[int, dict[float, float]]]) -> None:
    """Apply one side of a change; write into each window's ``out`` every level whose place
    in that window changed (its size in it, or 0 when it left)."""
    for p, q in levels:
        k = sign * p
        i = bisect_left(keys, k)
        present = i < len(keys) and keys[i] == k
        if not q:
            if not present:
                continue  # a delete of a level the book does not hold
            del keys[i]
            del sizes[p]
            for n, out in windows:
                if i < n:
                    out[p] = 0.0
                    if len(keys) >= n:
                        pp = sign * keys[n - 1]
                        out[pp] = sizes[pp]
        elif present:
            sizes[p] = q
            for n, out in windows:
                if i < n:
                    out[p] = q
        else:
            keys.insert(i, k)
            sizes[p] = q
            for n, out in windows:
                if i < n:
                    out[p] = q
                    if len(keys) > n:
                        pp = sign * keys[n]
                        out[pp] = 0.0


class SymbolFormat:
    """The frames of one simulated Bybit symbol (``SymbolRenderer``)."""

    def __init__(self, category: str, info: Instrument, model: MarketModel) -> None:
        self.category = category
        self.info = info
        self.model = model
        self.tape = Tape()
        sym = self.symbol = info.symbol
        s = sym.encode()
        self.derivative = category != "spot"
        self.dated = info.expiry is not None
        self.pd, self.qd = decimals(info.tick_size), decimals(info.lot_size)
        pfmt, qfmt = b"%%.%df" % self.pd, b"%%.%df" % self.qd
        self.px = Texts(pfmt)
        self.qx = Texts(qfmt)
        self.lp = Texts(pfmt, b'["', b'","')
        self.lq = Texts(qfmt, tail=b'"]')
        self.depths = BOOK_DEPTHS[category]
        self.book_keys = {n: f"orderbook.{n}.{sym}".encode() for n in self.depths}
        self.book_tmpl = {
            n: b'{"topic":"' + key + b'","type":"%b","ts":%d,"data":{"s":"' + s
            + b'","b":[%b],"a":[%b],"u":%d,"seq":%d},"cts":%d}'
            for n, key in self.book_keys.items()
        }
        # u starts high, as Bybit's do: a message with u == 1 means a restart (a snapshot)
        base = model.snapshot(info.venue, sym).last_id % 10**8 + 10**6
        self.u: dict[int, int] = dict.fromkeys(self.depths, base)
        self.mirror = Mirror()
        self.pending: list[tuple[Any, int]] = []  # (session, depth) waiting for ``snap``
        self.snap: BookChange | None = None  # the model's book when they subscribed
        self.book_sinks: list[tuple[int, Sink]] = []
        self.top_key = f"orderbook.1.{sym}".encode()
        self.top_tmpl = (b'{"topic":"' + self.top_key + b'","type":"snapshot","ts":%d,"data":{"s":"'
                         + s + b'","b":[%b],"a":[%b],"u":%d,"seq":%d},"cts":%d}')
        self.top_u = base
        self.trade_key = f"publicTrade.{sym}".encode()
        self.trade_tmpl = (b'{"topic":"' + self.trade_key + b'","type":"snapshot","ts":%d,'
                           b'"data":[{"T":%d,"s":"' + s + b'","S":"%b","v":"%b","p":"%b",'
                           b'"i":"%b","BT":false}]}')
        self.ticker_key = f"tickers.{sym}".encode()
        self.ticker_head = b'{"topic":"' + self.ticker_key + b'","type":"'
        self.cs = 0  # ticker cross sequence
        self.sent: dict[str, bytes] = {}  # the ticker fields as last sent on the topic
        self.liq_key = f"allLiquidation.{sym}".encode()
        self.liq_tmpl = (b'{"topic":"' + self.liq_key + b'","type":"snapshot","ts":%d,'
                         b'"data":[{"T":%d,"s":"' + s + b'","S":"%b","v":"%b","p":"%b"}]}')

    # -- streams --

    def streams(self) -> list[bytes]:
        out = [*self.book_keys.values(), self.top_key, self.trade_key]
        if self.derivative:
            out += [self.ticker_key, self.liq_key]
        return out

    def outputs(self, sinks: dict[bytes, Sink]) -> dict[type, list[tuple[Any, Sink]]]:
        out: dict[type, list[tuple[Any, Sink]]] = {}
        self.book_sinks = [(n, sinks[k]) for n, k in self.book_keys.items() if k in sinks]
        if self.book_sinks:
            out[BookChange] = [(self.book, _noop)]  # ``book`` sends to each window itself
        if self.top_key in sinks:
            out[Quote] = [(self.top, sinks[self.top_key])]
        if self.trade_key in sinks:
            out[Trade] = [(self.trade, sinks[self.trade_key])]
        if self.derivative:
            if self.ticker_key in sinks:
                out[DerivativeTicker] = [(self.ticker, sinks[self.ticker_key])]
                out[OpenInterest] = [(self.open_interest, sinks[self.ticker_key])]
            if self.liq_key in sinks:
                out[Liquidation] = [(self.liquidation, sinks[self.liq_key])]
        return out

    def frames(self, ev: Any) -> list[tuple[bytes, bytes]]:
        """Frames of an event without touching any state (malformed-frame faults)."""
        cls = ev.__class__
        ms = ev.ts_exchange // MS
        if cls is BookChange:
            return [(key, self.book_tmpl[n] % (b"delta", ms, self._levels(ev.bids),
                                               self._levels(ev.asks), self.u[n] + 1,
                                               ev.last_id, ms))
                    for n, key in self.book_keys.items()]
        if cls is Quote:
            return [(self.top_key, self._top_frame(ev, self.top_u + 1))]
        if cls is Trade:
            return [(self.trade_key, self._trade_frame(ev))]
        if cls is Liquidation and self.derivative:
            return [(self.liq_key, self._liq_frame(ev))]
        if cls is DerivativeTicker and self.derivative:
            return [(self.ticker_key, self._ticker_frame(b"delta", ms, self._fields(ev)))]
        return []

    # -- books --

    def _levels(self, levels: Any) -> bytes:
        lp, lq = self.lp, self.lq
        return b",".join([lp[p] + lq[q] for p, q in levels])

    def subscribe_book(self, session: Any, depth: int) -> None:
        """A new subscription's snapshot: taken now, sent before the first change after it;
        at once when the release is known to have reached the model (the clock has not
        started, or the last change released is the model's last)."""
        snap = self.snap = self.model.snapshot(self.info.venue, self.symbol)
        self.pending.append((session, depth))
        m = self.mirror
        if self.model.now_ns == self.model.start_ns or (m.valid and m.last_id == snap.last_id):
            self._flush_snapshots(snap.ts_exchange // MS)

    def forget(self, session: Any, depth: int) -> None:
        self.pending = [p for p in self.pending if p != (session, depth)]

    def book(self, ev: BookChange) -> None:
        """Send one model change to every subscribed window (the pair's send is a no-op)."""
        m = self.mirror
        snap = self.snap
        if snap is not None and ev.first_id > snap.last_id:
            self._flush_snapshots(ev.ts_exchange // MS)
        if not m.valid or ev.first_id != m.last_id + 1:
            # a change never seen (dropped, or nobody listened): start again from the model
            # (its later changes re-apply: sizes are absolute), and every window's u skips
            # one so that its clients see the hole
            now = self.model.snapshot(self.info.venue, self.symbol)
            m.load(ev.first_id - 1, now.bids, now.asks)
            for n in self.u:
                self.u[n] += 1
        m.last_id = ev.last_id
        sinks = self.book_sinks
        bid_out: list[tuple[int, dict[float, float]]] = [(n, {}) for n, _ in sinks]
        ask_out: list[tuple[int, dict[float, float]]] = [(n, {}) for n, _ in sinks]
        _apply(m.bid_keys, m.bids, ev.bids, -1.0, bid_out)
        _apply(m.ask_keys, m.asks, ev.asks, 1.0, ask_out)
        ms = ev.ts_exchange // MS
        lp, lq = self.lp, self.lq
        for (n, send), (_, bids), (_, asks) in zip(sinks, bid_out, ask_out, strict=True):
            if not bids and not asks:
                continue  # nothing in this window changed: Bybit sends nothing
            u = self.u[n] = self.u[n] + 1
            send(self.book_tmpl[n] % (
                b"delta", ms, b",".join([lp[p] + lq[q] for p, q in bids.items()]),
                b",".join([lp[p] + lq[q] for p, q in asks.items()]), u, ev.last_id, ms))

    def _flush_snapshots(self, ms: int) -> None:
        """Send the held snapshots: the release has passed their model id."""
        snap, self.snap = self.snap, None
        due, self.pending = self.pending, []
        assert snap is not None
        self.mirror.load(snap.last_id, snap.bids, snap.asks)
        lp, lq = self.lp, self.lq
        for session, n in due:
            bids, asks = self.mirror.top(n)
            session.send(self.book_tmpl[n] % (
                b"snapshot", ms, b",".join([lp[p] + lq[q] for p, q in bids]),
                b",".join([lp[p] + lq[q] for p, q in asks]), self.u[n], snap.last_id, ms))

    def depth(self, limit: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        snap = self.model.snapshot(self.info.venue, self.symbol)
        return snap.bids[:limit], snap.asks[:limit]

    # -- the 1-level book --

    def _top_frame(self, ev: Quote, u: int) -> bytes:
        ms = ev.ts_exchange // MS
        return self.top_tmpl % (ms, self.lp[ev.bid_price] + self.lq[ev.bid_size],
                                self.lp[ev.ask_price] + self.lq[ev.ask_size], u,
                                max(ev.update_id, 0), ms)

    def top(self, ev: Quote) -> bytes:
        self.top_u += 1
        return self._top_frame(ev, self.top_u)

    def top_snapshot(self) -> bytes | None:
        snap = self.model.snapshot(self.info.venue, self.symbol)
        if not snap.bids or not snap.asks:
            return None
        now = self.model.now_ns
        q = Quote(self.info.venue, self.symbol, now, now, snap.bids[0][0], snap.bids[0][1],
                  snap.asks[0][0], snap.asks[0][1], snap.last_id)
        return self._top_frame(q, self.top_u)

    # -- trades and liquidations --

    def trade_id(self, tid: str) -> bytes:
        """Spot ids are digits; derivatives' are UUIDs (made from the model's id)."""
        if not self.derivative:
            return tid.encode()
        return b"%08x-0000-5000-8000-%012x" % (int(tid) >> 48, int(tid) & 0xFFFFFFFFFFFF)

    def _trade_frame(self, ev: Trade) -> bytes:
        ms = ev.ts_exchange // MS
        return self.trade_tmpl % (ms, ms, b"Buy" if ev.side == "buy" else b"Sell",
                                  self.qx[ev.size], self.px[ev.price], self.trade_id(ev.trade_id))

    def trade(self, ev: Trade) -> bytes:
        return self._trade_frame(ev)

    def _liq_frame(self, ev: Liquidation) -> bytes:
        ms = ev.ts_exchange // MS
        # S is the liquidated position's side: a sell order closes a long ("Buy")
        return self.liq_tmpl % (ms, ms, b"Buy" if ev.side == "sell" else b"Sell",
                                self.qx[ev.size], self.px[ev.price])

    def liquidation(self, ev: Liquidation) -> bytes:
        return self._liq_frame(ev)

    # -- tickers --

    def _fields(self, ev: DerivativeTicker) -> dict[str, bytes]:
        px = self.px
        mark = ev.mark_price or 0.0
        index = ev.index_price or mark
        f = {"markPrice": px[mark], "indexPrice": px[index]}
        if self.dated:
            f["basis"] = b"%.*f" % (self.pd, mark - index)
            f["basisRate"] = b"%.8f" % ((mark - index) / index if index else 0.0)
        else:
            if ev.funding_rate is not None:
                f["fundingRate"] = b"%.8f" % ev.funding_rate
            if ev.next_funding_time is not None:
                f["nextFundingTime"] = b"%d" % (ev.next_funding_time // MS)
            if ev.funding_interval_hours is not None:
                f["fundingIntervalHour"] = b"%g" % ev.funding_interval_hours
        return f

    def _oi_fields(self, ev: OpenInterest, mark: float | None) -> dict[str, bytes]:
        both = 2 * ev.open_interest  # Bybit: "the sum of both sides"
        if self.info.inverse:  # the value in coin: contracts of 1 USD over the price
            value = both * self.info.contract_size / mark if mark else 0.0
        else:
            value = 2 * (ev.value_usd or 0.0)
        return {"openInterest": b"%.*f" % (self.qd, both), "openInterestValue": b"%.8f" % value}

    def _ticker_frame(self, kind: bytes, ms: int, fields: dict[str, bytes]) -> bytes:
        self.cs += 1
        body = b",".join([b'"%b":"%b"' % (k.encode(), v) for k, v in fields.items()])
        return (self.ticker_head + kind + b'","data":{"symbol":"' + self.symbol.encode()
                + b'",' + body + b'},"cs":%d,"ts":%d}' % (self.cs, ms))

    def _delta(self, ms: int, fields: dict[str, bytes]) -> bytes | None:
        sent = self.sent
        changed = {k: v for k, v in fields.items() if sent.get(k) != v}
        if not changed:
            return None
        sent.update(changed)
        return self._ticker_frame(b"delta", ms, changed)

    def ticker(self, ev: DerivativeTicker) -> bytes | None:
        return self._delta(ev.ts_exchange // MS, self._fields(ev))

    def open_interest(self, ev: OpenInterest) -> bytes | None:
        mark = self.sent.get("markPrice")
        return self._delta(ev.ts_exchange // MS,
                           self._oi_fields(ev, float(mark) if mark else None))

    def ticker_snapshot(self) -> bytes:
        """The whole ticker now, from the model; later deltas are relative to it."""
        model, venue = self.model, self.info.venue
        tk = model.ticker(venue, self.symbol)
        fields = self._fields(tk)
        fields |= self._oi_fields(model.open_interest(venue, self.symbol), tk.mark_price)
        if self.dated:
            assert self.info.expiry is not None
            when = datetime.fromtimestamp(self.info.expiry // 1_000_000_000, UTC)
            fields |= {"fundingRate": b"", "nextFundingTime": b"",
                       "deliveryTime": when.strftime("%Y-%m-%dT%H:%M:%SZ").encode(),
                       "deliveryFeeRate": b"0.0005" if self.info.inverse else b"0"}
        self.sent = dict(fields)
        return self._ticker_frame(b"snapshot", model.now_ns // MS, fields)


class Tape:
    """The trades released, per symbol, for ``recent-trade`` (rows: id, price, size, ms,
    side). Bounded: the oldest go first."""

    __slots__ = ("rows",)
    LIMIT = 100_000

    def __init__(self) -> None:
        self.rows: list[tuple[str, float, float, int, str]] = []

    def add(self, ev: Trade) -> None:
        rows = self.rows
        rows.append((ev.trade_id, ev.price, ev.size, ev.ts_exchange // MS, ev.side))
        if len(rows) > self.LIMIT * 1.1:
            del rows[: len(rows) - self.LIMIT]


def bad_price(frame: bytes) -> bytes:
    """A copy of a book frame whose first bid price is not a number."""
    doc = msgspec.json.decode(frame)
    data = doc["data"]
    data["b"] = [["not-a-price", "1"], *data.get("b", [])]
    return _encode(doc)
