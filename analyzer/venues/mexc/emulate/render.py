"""The simulated market in MEXC's own frames, and the venue's book behind its REST answers.

Docs: https://mexcdevelop.github.io/apidocs/contract_v1_en/#websocket-api

One ``SymbolFormat`` per listed contract turns the model's events into the frames of its streams
(named ``<name>:<SYM>`` as the collector names them): ``depth`` (push.depth), ``deal``
(push.deal, the 2022 layout: one deal a frame), ``depth.full`` (push.depth.full: the best bid
and ask of each model Quote; MEXC sends the top 5/10/20, the collector reads the first),
``ticker`` (push.ticker once a second: mark, index, funding rate, ``holdVol``) and
``funding.rate`` (push.funding.rate when the rate or the next settlement changes). Sizes are
whole contracts (model base units / the contract size, ``info.CONTRACT_SIZES``).

The venue's book (``VenueBook``). MEXC numbers its book's versions one per push; its REST depth
is the book at a version, and ``depth_commits`` the latest versions' changes. So each symbol
keeps the book as released (a mirror of the model's changes), its version, and the last
``COMMITS_KEPT`` versions' changes; every model change released to a subscriber is one version
and one push. A change that never reached the renderer (a ``drop_depth`` fault, or no depth
subscriber for a while) shows as a hole in the model's ids: the next change then takes the
model's book whole, its difference from the mirror is one version whose push is never sent
(what the client lost; ``depth_commits`` has it), and the model's changes already in that book
are not sent either (they are in that version): the next push sent is that version + 1, a gap
to the client, mended by the commits. Before any change was mirrored (no subscriber yet), the
mirror is the model's book (which may be up to one step ahead of the stream: the changes it
already holds are not sent).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from analyzer.events import BookChange, DerivativeTicker, OpenInterest, Quote, Trade
from analyzer.venues.mexc.emulate.info import COMMITS_KEPT, CONTRACT_SIZES

if TYPE_CHECKING:
    from analyzer.events import Instrument
    from analyzer.sim import MarketModel

Sink = Callable[[bytes], Any]
MS = 1_000_000
CACHE_LIMIT = 20_000
_encode = msgspec.json.encode


def _noop(_: Any) -> None:
    return None


class Texts(dict[float, bytes]):
    """``texts[x]``: the JSON number text of a price, or of a size in whole contracts."""

    __slots__ = ("per",)

    def __init__(self, per: float = 0.0) -> None:
        super().__init__()
        self.per = per  # sizes: base units a contract (0: a price)

    def __missing__(self, x: float) -> bytes:
        if len(self) >= CACHE_LIMIT:
            self.clear()
        text = self[x] = b"%d" % round(x / self.per) if self.per else repr(x).encode()
        return text


class VenueBook:
    """The book as MEXC has it: price -> size (model units) per side, its version, the model
    id it has reached, and its latest versions (version, bids, asks) for ``depth_commits``."""

    __slots__ = ("asks", "bids", "commits", "model_id", "valid", "version")

    def __init__(self, version: int) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.version = version
        self.model_id = -1
        self.valid = False
        self.commits: deque[tuple[int, list[tuple[float, float]], list[tuple[float, float]]]] = (
            deque(maxlen=COMMITS_KEPT))

    def load(self, snap: BookChange) -> None:
        self.bids, self.asks = dict(snap.bids), dict(snap.asks)
        self.model_id = snap.last_id
        self.valid = True

    def apply(self, bids: list[tuple[float, float]], asks: list[tuple[float, float]]) -> int:
        """One version: the levels set (size 0 removes); returns its number."""
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for p, q in levels:
                if q:
                    side[p] = q
                else:
                    side.pop(p, None)
        self.version += 1
        self.commits.append((self.version, bids, asks))
        return self.version

    def catch_up(self, snap: BookChange) -> None:
        """Take the model's book whole as one version (the difference; its push is lost)."""
        diff: list[list[tuple[float, float]]] = []
        for mine, theirs in ((self.bids, dict(snap.bids)), (self.asks, dict(snap.asks))):
            d = [(p, 0.0) for p in mine if p not in theirs]
            d += [(p, q) for p, q in theirs.items() if mine.get(p) != q]
            diff.append(d)
        if diff[0] or diff[1]:
            self.apply(diff[0], diff[1])
        self.model_id = snap.last_id

    def top(self, limit: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        return (sorted(self.bids.items(), reverse=True)[:limit],
                sorted(self.asks.items())[:limit])


class SymbolFormat:
    """The frames of one simulated MEXC contract (``SymbolRenderer``)."""

    def __init__(self, info: Instrument, model: MarketModel) -> None:
        self.info = info
        self.model = model
        self.symbol = sym = info.symbol
        self.tape = Tape()
        self.cs = CONTRACT_SIZES.get(info.base, info.lot_size)
        self.px = Texts()
        self.qx = Texts(self.cs)
        s = sym.encode()
        self.keys = {n: f"{n}:{sym}".encode() for n in (
            "depth", "deal", "depth.full", "ticker", "funding.rate")}
        self.depth_tmpl = (b'{"channel":"push.depth","data":{"asks":[%b],"bids":[%b],'
                           b'"version":%d},"symbol":"' + s + b'","ts":%d}')
        self.full_tmpl = (b'{"channel":"push.depth.full","data":{"asks":[[%b,%b,1]],'
                          b'"bids":[[%b,%b,1]],"version":%d},"symbol":"' + s + b'","ts":%d}')
        self.deal_tmpl = (b'{"channel":"push.deal","data":{"M":2,"O":3,"T":%d,"p":%b,"t":%d,'
                          b'"v":%b},"symbol":"' + s + b'","ts":%d}')
        self.ticker_tmpl = (b'{"channel":"push.ticker","data":{"ask1":%b,"bid1":%b,'
                            b'"contractId":1,"fairPrice":%b,"fundingRate":%b,"holdVol":%d,'
                            b'"indexPrice":%b,"lastPrice":%b,"symbol":"' + s
                            + b'","timestamp":%d,"volume24":0},"symbol":"' + s + b'","ts":%d}')
        self.funding_tmpl = (b'{"channel":"push.funding.rate","data":{"rate":%b,"symbol":"' + s
                             + b'","nextSettleTime":%d},"symbol":"' + s + b'","ts":%d}')
        # versions start high, as MEXC's do, deterministic per seed
        self.book_state = VenueBook(model.snapshot(info.venue, sym).last_id % 10**8 + 10**9)
        self.depth_send: Sink | None = None
        self.top: tuple[bytes, bytes, bytes, bytes] = (b"0", b"0", b"0", b"0")
        self.hold: float | None = None  # open interest, base units (the last published)
        self.funding_sent: tuple[float | None, int | None] = (None, None)

    # -- streams --

    def streams(self) -> list[bytes]:
        return list(self.keys.values())

    def outputs(self, sinks: dict[bytes, Sink]) -> dict[type, list[tuple[Any, Sink]]]:
        k = self.keys
        out: dict[type, list[tuple[Any, Sink]]] = {}
        self.depth_send = sinks.get(k["depth"])
        if self.depth_send is not None:
            out[BookChange] = [(self.book, _noop)]  # ``book`` sends (or not) itself
        if k["depth.full"] in sinks:
            out[Quote] = [(self.quote, sinks[k["depth.full"]])]
        if k["deal"] in sinks:
            out[Trade] = [(self.deal, sinks[k["deal"]])]
        tickers = []
        if k["ticker"] in sinks:
            tickers.append((self.ticker, sinks[k["ticker"]]))
        if k["funding.rate"] in sinks:
            tickers.append((self.funding, sinks[k["funding.rate"]]))
        if tickers:
            out[DerivativeTicker] = tickers
        out[OpenInterest] = [(self.open_interest, _noop)]  # kept for holdVol
        return out

    def frames(self, ev: Any) -> list[tuple[bytes, bytes]]:
        """Frames of an event without touching any state (malformed-frame faults)."""
        cls = ev.__class__
        if cls is BookChange:
            return [(self.keys["depth"], self._depth_frame(ev.bids, ev.asks,
                                                           self.book_state.version + 1,
                                                           ev.ts_exchange // MS))]
        if cls is Trade:
            return [(self.keys["deal"], self.deal(ev))]
        if cls is Quote:
            return [(self.keys["depth.full"], self.quote(ev))]
        return []

    # -- books --

    def _levels(self, levels: list[tuple[float, float]]) -> bytes:
        px, qx = self.px, self.qx
        return b",".join([b"[%b,%b,1]" % (px[p], qx[q]) if q else b"[%b,0,0]" % px[p]
                          for p, q in levels])

    def _depth_frame(self, bids: list[tuple[float, float]], asks: list[tuple[float, float]],
                     version: int, ms: int) -> bytes:
        return self.depth_tmpl % (self._levels(asks), self._levels(bids), version, ms)

    def book(self, ev: BookChange) -> None:
        """One released model change: a version and its push (module doc)."""
        vb = self.book_state
        if not vb.valid:
            vb.load(self.model.snapshot(self.info.venue, self.symbol))
        if ev.last_id <= vb.model_id:
            return  # already in the book (taken from the model, ahead of the stream)
        if ev.first_id != vb.model_id + 1:  # changes never seen: the model's book, unsent
            vb.catch_up(self.model.snapshot(self.info.venue, self.symbol))
            if ev.last_id <= vb.model_id:
                return
        vb.model_id = ev.last_id
        version = vb.apply(ev.bids, ev.asks)
        if self.depth_send is not None:
            self.depth_send(self._depth_frame(ev.bids, ev.asks, version, ev.ts_exchange // MS))

    def current(self) -> VenueBook:
        """The venue's book now: the mirror while a subscriber keeps it current, else the
        model's book (nobody sees versions then)."""
        vb = self.book_state
        if self.depth_send is None or not vb.valid:
            snap = self.model.snapshot(self.info.venue, self.symbol)
            if vb.valid:
                vb.catch_up(snap)
            else:
                vb.load(snap)
        return vb

    def contracts(self, levels: list[tuple[float, float]]) -> list[list[float | int]]:
        cs = self.cs
        return [[p, round(q / cs), 1 if q else 0] for p, q in levels]

    def depth_body(self, limit: int) -> dict[str, Any]:
        vb = self.current()
        bids, asks = vb.top(limit)
        return {"asks": self.contracts(asks), "bids": self.contracts(bids),
                "version": vb.version, "timestamp": self.model.now_ns // MS}

    def commits_body(self, limit: int) -> list[dict[str, Any]]:
        vb = self.book_state
        return [{"asks": self.contracts(a), "bids": self.contracts(b), "version": v}
                for v, b, a in list(vb.commits)[-limit:]]

    # -- top of book, deals --

    def quote(self, ev: Quote) -> bytes:
        px, qx = self.px, self.qx
        return self.full_tmpl % (px[ev.ask_price], qx[ev.ask_size], px[ev.bid_price],
                                 qx[ev.bid_size], self.book_state.version,
                                 ev.ts_exchange // MS)

    def deal(self, ev: Trade) -> bytes:
        ms = ev.ts_exchange // MS
        return self.deal_tmpl % (1 if ev.side == "buy" else 2, self.px[ev.price], ms,
                                 self.qx[ev.size], ms)

    # -- tickers --

    def open_interest(self, ev: OpenInterest) -> None:
        self.hold = ev.open_interest

    def _hold(self) -> int:
        if self.hold is None:
            self.hold = self.model.open_interest(self.info.venue, self.symbol).open_interest
        return round(self.hold / self.cs)

    def ticker(self, ev: DerivativeTicker) -> bytes:
        ms = ev.ts_exchange // MS
        mark = ev.mark_price or 0.0
        index = ev.index_price or mark
        m = repr(mark).encode()
        return self.ticker_tmpl % (m, m, m, repr(ev.funding_rate or 0.0).encode(), self._hold(),
                                   repr(index).encode(), m, ms, ms)

    def funding(self, ev: DerivativeTicker) -> bytes | None:
        now = (ev.funding_rate, ev.next_funding_time)
        if ev.funding_rate is None or now == self.funding_sent:
            return None
        self.funding_sent = now
        ms = ev.ts_exchange // MS
        return self.funding_tmpl % (repr(ev.funding_rate).encode(),
                                    (ev.next_funding_time or 0) // MS, ms)


class Tape:
    """The deals released, per symbol, for ``contract/deals`` (price, size in base units, ms,
    side). Bounded: the oldest go first."""

    __slots__ = ("rows",)
    LIMIT = 100_000

    def __init__(self) -> None:
        self.rows: list[tuple[float, float, int, str]] = []

    def add(self, ev: Trade) -> None:
        rows = self.rows
        rows.append((ev.price, ev.size, ev.ts_exchange // MS, ev.side))
        if len(rows) > self.LIMIT * 1.1:
            del rows[: len(rows) - self.LIMIT]


def bad_price(frame: bytes) -> bytes:
    """A copy of a push.depth frame whose first bid price is not a number."""
    doc = msgspec.json.decode(frame)
    doc["data"]["bids"] = [["not-a-price", 1, 1], *doc["data"].get("bids", [])]
    return _encode(doc)
