"""What the local exchange knows about a replayed Binance market, as released so far.

The exchange keeps its own book per symbol so that a REST depth snapshot is consistent with
the stream it has sent: the book starts from the recording's REST snapshot (when the replay
reaches it), then applies every recorded diff, including diffs a fault kept off the wire (a
venue whose message got lost still has the update in its book). Diffs released before the
snapshot position are held and those newer than the snapshot are applied on top of it, exactly
as a client that buffers the stream would do; ``lastUpdateId`` is then the ``u`` of the last
diff applied. A later recorded snapshot replaces the book only after the recorded diffs broke
their chain (a venue-side gap), since until then the book already is that state.

Trades, aggregate trades, mark/index/funding frames are kept per symbol for the REST answers
(historicalTrades, aggTrades, premiumIndex...). Prices and sizes stay the venue's strings. A
book is keyed by the price string as the venue wrote it: Binance formats a symbol's prices with
the symbol's fixed precision in snapshots and diffs alike, so equal prices are equal strings,
and that lets a diff be applied with one C-level ``dict.update`` (3x cheaper than converting
every level to float); floats are only computed to sort a REST answer.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from typing import Any

import msgspec

from analyzer.venues.binance.emulate.recordings import stream_symbol

# Kinds of stream, by name: only these are decoded; everything else is just forwarded.
OTHER, DEPTH, TRADE, AGG, MARK, INDEX = range(6)

# How Binance writes a size of 0 (it removes the level): "0", "0.0", ... "0.00000000".
ZEROS = frozenset(["0", *("0." + "0" * n for n in range(1, 17))])

# Trades kept per symbol for historicalTrades / aggTrades (oldest dropped beyond this).
MAX_TRADES = 1_000_000


class Diff(msgspec.Struct, gc=False):
    U: int  # first update id in the event
    u: int  # final update id in the event
    b: list[tuple[str, str]]  # bids [price, qty]; qty 0 removes the level
    a: list[tuple[str, str]]  # asks
    E: int = 0  # event time (ms)
    T: int = 0  # transaction time (futures)
    pu: int | None = None  # futures: final update id of the previous event


class _DiffFrame(msgspec.Struct, gc=False):
    data: Diff


class Snapshot(msgspec.Struct, gc=False):
    lastUpdateId: int
    bids: list[tuple[str, str]]
    asks: list[tuple[str, str]]
    E: int = 0  # futures: message output time
    T: int = 0  # futures: transaction time


class _Trade(msgspec.Struct, gc=False):
    t: int  # trade id
    p: str
    q: str
    T: int  # trade time (ms)
    m: bool  # the buyer was the maker
    M: bool = True  # spot: best price match (ignored by clients)
    X: str = "MARKET"  # futures: MARKET, INSURANCE_FUND, ADL, NA


class _TradeFrame(msgspec.Struct, gc=False):
    data: _Trade


class _Agg(msgspec.Struct, gc=False):
    a: int  # aggregate trade id
    p: str
    q: str
    f: int  # first trade id
    l: int  # noqa: E741 - last trade id
    T: int
    m: bool


class _AggFrame(msgspec.Struct, gc=False):
    data: _Agg


class Mark(msgspec.Struct, gc=False):
    E: int  # event time
    p: str  # mark price
    P: str = ""  # estimated settle price
    i: str | None = None  # index price (USDⓈ-M only)
    r: str = ""  # funding rate ("" for delivery contracts)
    T: int = 0  # next funding time (0 for delivery contracts)


class _MarkFrame(msgspec.Struct, gc=False):
    data: Mark


class _Index(msgspec.Struct, gc=False):
    E: int
    i: str  # pair
    p: str  # index price


class _IndexFrame(msgspec.Struct, gc=False):
    data: _Index


_diff_decoder = msgspec.json.Decoder(_DiffFrame)
_snap_decoder = msgspec.json.Decoder(Snapshot)
_trade_decoder = msgspec.json.Decoder(_TradeFrame)
_agg_decoder = msgspec.json.Decoder(_AggFrame)
_mark_decoder = msgspec.json.Decoder(_MarkFrame)
_index_decoder = msgspec.json.Decoder(_IndexFrame)


def decode_snapshot(body: bytes) -> Snapshot:
    return _snap_decoder.decode(body)


def _price(level: tuple[str, str]) -> float:
    try:
        return float(level[0])
    except ValueError:  # a recorded level with a broken price sorts last
        return math.nan


def kind_of(name: bytes) -> tuple[int, str | None]:
    """Kind and symbol of a stream, from its name (``btcusdt@depth@0ms`` -> DEPTH, BTCUSDT)."""
    if b"@indexPrice" in name:
        return INDEX, None
    sym = stream_symbol(name)
    if sym is None:
        return OTHER, None
    rest = name.partition(b"@")[2]
    if rest == b"depth" or rest.startswith(b"depth@"):
        return DEPTH, sym  # diff depth; depth5/10/20 are partial books, only forwarded
    if rest == b"trade":
        return TRADE, sym
    if rest == b"aggTrade":
        return AGG, sym
    if rest.startswith(b"markPrice"):
        return MARK, sym
    return OTHER, sym


class Book:
    """One symbol's book: price -> qty, both strings as the venue wrote them."""

    __slots__ = (
        "E",
        "T",
        "asks",
        "bids",
        "bridged",
        "broken",
        "diffs",
        "installed",
        "last_u",
        "pending",
        "spot",
    )

    def __init__(self, spot: bool, installed: bool) -> None:
        self.spot = spot
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}
        self.last_u = 0
        self.E = 0
        self.T = 0
        # No snapshot in the recording for this symbol: the book is built from diffs alone.
        self.installed = installed
        self.bridged = installed
        self.broken = False  # the recorded chain broke since the last install
        self.pending: deque[Diff] = deque(maxlen=10_000)  # diffs released before the snapshot
        self.diffs = 0  # diffs seen in this pass (fault positions count these)

    def install(self, snap: Snapshot) -> None:
        self.bids = dict(snap.bids)
        self.asks = dict(snap.asks)
        self.last_u = snap.lastUpdateId
        self.E, self.T = snap.E, snap.T
        self.installed = True
        self.bridged = False
        self.broken = False
        pending, self.pending = self.pending, deque(maxlen=10_000)
        for diff in pending:
            self.apply(diff)

    def apply(self, d: Diff) -> bool:
        """Apply a diff; False when it showed a break in the recorded chain."""
        if not self.installed:
            self.pending.append(d)
            return True
        last = self.last_u
        first = d.U
        if d.u <= last:
            return True  # older than the book: dropped, as clients do
        if not self.bridged:
            # The bridging rule: spot U <= L+1 <= u, futures U <= L <= u.
            ok = first <= last + 1 if self.spot else first <= last
            self.bridged = True
        elif self.spot:
            ok = first == last + 1
        else:
            ok = d.pu == last
        if not ok:
            self.broken = True
        for side, levels in ((self.bids, d.b), (self.asks, d.a)):
            side.update(levels)
            for p in [p for p, q in levels if q in ZEROS]:
                del side[p]
        self.last_u = d.u
        self.E, self.T = d.E, d.T
        return ok

    def top(self, limit: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        bids = heapq.nlargest(limit, self.bids.items(), key=_price)
        asks = heapq.nsmallest(limit, self.asks.items(), key=_price)
        return bids, asks

    def best(self) -> tuple[float, float] | None:
        if not self.bids or not self.asks:
            return None
        return max(map(float, self.bids)), min(map(float, self.asks))


class Tape:
    """Trades of one symbol as replayed, for historicalTrades / trades / aggTrades."""

    __slots__ = ("aggs", "qty", "synth_aggs", "trades")

    def __init__(self, synth_aggs: bool) -> None:
        # (id, price, qty, time, buyer is maker, best match)
        self.trades: list[tuple[int, str, str, int, bool, bool]] = []
        # [agg id, price, [qty, ...], first id, last id, time, buyer is maker]
        self.aggs: list[list] = []
        # The recording has trades but no aggTrade stream: aggregate trades like the venue does
        # (consecutive fills of one taker at one price and time share an aggregate id).
        self.synth_aggs = synth_aggs
        self.qty = 0.0  # traded size so far (synthetic open interest)

    def add_trade(self, t: _Trade) -> None:
        self.trades.append((t.t, t.p, t.q, t.T, t.m, t.M))
        self.qty += float(t.q)
        if self.synth_aggs:
            aggs = self.aggs
            last = aggs[-1] if aggs else None
            if (
                last is not None
                and last[4] == t.t - 1
                and last[5] == t.T
                and last[1] == t.p
                and last[6] == t.m
            ):
                last[2].append(t.q)
                last[4] = t.t
            else:
                # Aggregate ids restart from the first trade id: deterministic per recording.
                agg_id = last[0] + 1 if last is not None else t.t
                aggs.append([agg_id, t.p, [t.q], t.t, t.t, t.T, t.m])
            if len(aggs) > MAX_TRADES * 1.1:
                del aggs[: len(aggs) - MAX_TRADES]
        if len(self.trades) > MAX_TRADES * 1.1:
            del self.trades[: len(self.trades) - MAX_TRADES]

    def add_agg(self, a: _Agg) -> None:
        self.aggs.append([a.a, a.p, [a.q], a.f, a.l, a.T, a.m])
        if not self.trades:
            self.qty += float(a.q)
        if len(self.aggs) > MAX_TRADES * 1.1:
            del self.aggs[: len(self.aggs) - MAX_TRADES]

    def last_price(self) -> str | None:
        if self.trades:
            return self.trades[-1][1]
        if self.aggs:
            return self.aggs[-1][1]
        return None


class MarketState:
    """Books, trades and marks of one market, updated by the replay frame by frame (the
    ``ReplayMarket`` of ``analyzer.exchange.emulator``, REST answers aside)."""

    def __init__(
        self,
        market: str,
        first_snapshots: dict[str, bytes],
        agg_symbols: set[str],
        first_ts_ns: int,
    ) -> None:
        self.market = market
        self.spot = market == "spot"
        self.first_snapshot_bodies = first_snapshots
        self._first_snapshots: dict[str, Snapshot] = {}
        self.agg_symbols = agg_symbols  # symbols with a recorded aggTrade stream
        self.first_ts_ns = first_ts_ns
        self.kinds: dict[bytes, tuple[int, str | None]] = {}
        self.decode_errors = 0
        self.chain_breaks = 0
        self.reset()

    def reset(self) -> None:
        self.books: dict[str, Book] = {}
        self.tapes: dict[str, Tape] = {}
        self.marks: dict[str, Mark] = {}
        self.funding_times: dict[str, list[int]] = {}  # distinct next-funding times seen
        self.indexes: dict[str, str] = {}  # pair -> index price (COIN-M indexPrice stream)
        self.recorded: dict[tuple[str, str], bytes] = {}  # other recorded REST bodies
        self.now_ns = self.first_ts_ns  # recorded local time of the last released event

    def classify(self, name: bytes) -> tuple[Any, str | None, bool]:
        """(handler, symbol, is_depth) of a stream: the replay calls ``handler(symbol, frame)``."""
        kind, symbol = kind_of(name)
        handler = {
            DEPTH: self.on_depth, TRADE: self.on_trade, AGG: self.on_agg, MARK: self.on_mark,
            INDEX: self.on_index,
        }.get(kind)
        return handler, symbol, kind == DEPTH

    def depth_seen(self, symbol: str) -> int:
        return self.book(symbol).diffs

    def first_snapshot(self, symbol: str) -> Snapshot | None:
        snap = self._first_snapshots.get(symbol)
        if snap is None and symbol in self.first_snapshot_bodies:
            snap = self._first_snapshots[symbol] = decode_snapshot(
                self.first_snapshot_bodies[symbol]
            )
        return snap

    def book(self, symbol: str) -> Book:
        book = self.books.get(symbol)
        if book is None:
            book = self.books[symbol] = Book(
                self.spot, installed=symbol not in self.first_snapshot_bodies
            )
        return book

    def tape(self, symbol: str) -> Tape:
        tape = self.tapes.get(symbol)
        if tape is None:
            tape = self.tapes[symbol] = Tape(synth_aggs=symbol not in self.agg_symbols)
        return tape

    def on_depth(self, symbol: str, payload: bytes) -> int:
        """Apply a diff; returns its 1-based number among the symbol's diffs (0: undecodable)."""
        try:
            diff = _diff_decoder.decode(payload).data
        except msgspec.DecodeError:
            self.decode_errors += 1
            return 0
        book = self.book(symbol)
        if not book.apply(diff):
            self.chain_breaks += 1
        book.diffs += 1
        return book.diffs

    def on_trade(self, symbol: str, payload: bytes) -> None:
        try:
            trade = _trade_decoder.decode(payload).data
        except msgspec.DecodeError:
            self.decode_errors += 1
            return
        if trade.X == "MARKET":  # insurance-fund and ADL fills are not in the REST trade lists
            self.tape(symbol).add_trade(trade)

    def on_agg(self, symbol: str, payload: bytes) -> None:
        try:
            agg = _agg_decoder.decode(payload).data
        except msgspec.DecodeError:
            self.decode_errors += 1
            return
        self.tape(symbol).add_agg(agg)

    def on_mark(self, symbol: str, payload: bytes) -> None:
        try:
            mark = _mark_decoder.decode(payload).data
        except msgspec.DecodeError:
            self.decode_errors += 1
            return
        self.marks[symbol] = mark
        times = self.funding_times.setdefault(symbol, [])
        if mark.T and (not times or times[-1] != mark.T):
            times.append(mark.T)
            del times[:-2]

    def on_index(self, symbol: str | None, payload: bytes) -> None:
        try:
            index = _index_decoder.decode(payload).data
        except msgspec.DecodeError:
            self.decode_errors += 1
            return
        self.indexes[index.i] = index.p

    def on_snapshot(self, symbol: str, body: bytes) -> None:
        book = self.book(symbol)
        if book.installed and not book.broken:
            return  # the book already is this state (or ahead of it)
        try:
            book.install(decode_snapshot(body))
        except msgspec.DecodeError:
            self.decode_errors += 1

    def on_rest(self, key: tuple[str, str], body: bytes) -> None:
        self.recorded[key] = body
