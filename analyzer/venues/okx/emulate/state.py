"""What the local exchange knows about a replayed OKX market, as released so far.

Books: each recorded ``books`` frame is applied to the exchange's own book of its instrument,
levels kept as the recorded texts (a snapshot frame replaces the book; size "0" removes a
level), also the frames a fault kept off the wire (a venue whose message got lost still has
the update). A client that subscribes to a book the replay has already started gets a snapshot
rendered from that book, with its checksum and the last ``seqId`` (recordings from before
seqIds: none), so that the recorded updates after it chain to it; a client that subscribes
before the recorded snapshot is released gets that one, in its place in the recording.

REST: the instrument listing per ``instType`` from the recording (cryptofeed's ``OKX.0``), else
one made up for the instruments the recording streams (see ``info``); recent trades: the
recorded ``trades`` frames released so far (the last ``TRADES_KEPT`` per instrument), as fills.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from analyzer.exchange.emulator import RestError
from analyzer.venues.okx.emulate import info
from analyzer.venues.okx.emulate.books import ZERO_SIZES, TextBook, snapshot_frame
from analyzer.venues.okx.emulate.recordings import DEPTH_CHANNELS, inst_type

if TYPE_CHECKING:
    from analyzer.exchange.market import MarketFeed
    from analyzer.exchange.recordings import Recording


class _BookData(msgspec.Struct, gc=False):
    asks: list[list[str]]
    bids: list[list[str]]
    ts: str = "0"
    checksum: int = 0
    seqId: int | None = None  # absent before 2023
    prevSeqId: int | None = None


class _BookFrame(msgspec.Struct, gc=False):
    data: list[_BookData]
    action: str = "update"


class _TradeData(msgspec.Struct, gc=False):
    tradeId: str
    px: str
    sz: str
    side: str
    ts: str
    count: str = "1"  # absent before 2023: one fill


class _TradesFrame(msgspec.Struct, gc=False):
    data: list[_TradeData]


_book_decoder = msgspec.json.Decoder(_BookFrame)
_trades_decoder = msgspec.json.Decoder(_TradesFrame)
TRADES_KEPT = 2000  # per instrument: more than a request returns (500)


class ReplayTextBook(TextBook):
    """A replayed book: levels are set in the price dicts only, and the sorted prices made
    again when a snapshot or a depth answer asks for the top (rare), not on every frame."""

    __slots__ = ("ordered",)

    def __init__(self) -> None:
        super().__init__()
        self.ordered = True

    def top(self, n: int) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
        if not self.ordered:
            self.bid_keys = sorted(-p for p in self.bids)
            self.ask_keys = sorted(self.asks)
            self.ordered = True
        return super().top(n)


class ReplayBook:
    """One instrument's book as replayed: levels, last seqId and time, whether the recording
    sends checksums, and the update frames of this pass (fault positions count them)."""

    __slots__ = ("book", "checksums", "seq_id", "ts_ms", "updates")

    def __init__(self) -> None:
        self.book = ReplayTextBook()
        self.seq_id: int | None = None
        self.ts_ms = 0
        self.checksums = True
        self.updates = 0

    def apply(self, d: _BookData) -> None:
        book = self.book
        book.ordered = False
        for side, levels in ((book.bids, d.bids), (book.asks, d.asks)):
            for lv in levels:
                try:
                    price = float(lv[0])
                except (ValueError, IndexError):
                    continue  # a broken recorded level: nothing to keep
                sz = lv[1] if len(lv) > 1 else "0"
                if sz in ZERO_SIZES or (sz.startswith("0") and not sz.strip("0.")):
                    side.pop(price, None)
                else:
                    side[price] = (lv[0], sz, lv[3] if len(lv) > 3 else "1")
        self.seq_id = d.seqId
        self.ts_ms = int(d.ts) if d.ts.isdigit() else self.ts_ms
        self.checksums = d.checksum != 0


class OkxReplay:
    """The ``ReplayMarket`` of an OKX market (``kind``: SPOT, SWAP or FUTURES)."""

    def __init__(self, kind: str, recording: Recording | None) -> None:
        self.kind = kind
        self.listings: dict[str, bytes] = dict(recording.listings) if recording else {}
        self.seen: set[str] = set(recording.symbols) if recording else set()
        self.first_ts = recording.first_ts if recording else 0
        self.decode_errors = 0
        self.chain_breaks = 0
        self.reset()

    def reset(self) -> None:
        self.books: dict[str, ReplayBook] = {}
        self.recorded: dict[tuple[str, str], bytes] = {}
        # per instrument, the trades as the channel sent them: tradeId, px, sz, side, ts, count
        self.trades: dict[str, list[tuple[str, str, str, str, int, int]]] = {}
        self.now_ns = self.first_ts

    # -- the released frames -------------------------------------------------------------------

    def classify(self, stream: bytes) -> tuple[Any, str | None, bool]:
        channel, _, inst = stream.partition(b":")
        if channel in DEPTH_CHANNELS:
            return self.on_book, inst.decode(), True
        if channel == b"trades" and inst:
            return self.on_trades, inst.decode(), False
        return None, inst.decode() or None, False

    def on_trades(self, inst_id: str, frame: bytes) -> None:
        try:
            msg = _trades_decoder.decode(frame)
        except msgspec.DecodeError:
            self.decode_errors += 1
            return
        rows = self.trades.setdefault(inst_id, [])
        for t in msg.data:
            if t.ts.isdigit() and t.count.isdigit():
                rows.append((t.tradeId, t.px, t.sz, t.side, int(t.ts), int(t.count)))
        if len(rows) > TRADES_KEPT * 1.5:
            del rows[: len(rows) - TRADES_KEPT]

    def on_book(self, inst_id: str, frame: bytes) -> int:
        """Apply a recorded book frame; its 1-based number among the instrument's updates
        (0: a snapshot, which faults leave alone, or undecodable)."""
        try:
            msg = _book_decoder.decode(frame)
        except msgspec.DecodeError:
            self.decode_errors += 1
            return 0
        rb = self.books.get(inst_id)
        if rb is None:
            rb = self.books[inst_id] = ReplayBook()
        snapshot = msg.action == "snapshot"
        for d in msg.data:
            if snapshot:
                rb.book.clear()
            elif d.prevSeqId is not None and rb.seq_id is not None and d.prevSeqId != rb.seq_id:
                self.chain_breaks += 1
            rb.apply(d)
        if snapshot:
            return 0
        rb.updates += 1
        return rb.updates

    def depth_seen(self, symbol: str) -> int:
        rb = self.books.get(symbol)
        return rb.updates if rb is not None else 0

    def on_snapshot(self, symbol: str, body: bytes) -> None:
        return None  # OKX snapshots come on the socket

    def on_rest(self, key: tuple[str, str], body: bytes) -> None:
        self.recorded[key] = body

    # -- subscriptions -------------------------------------------------------------------------

    def knows(self, inst_id: str) -> bool:
        """The recording streams the instrument, or its listing has it."""
        if inst_id in self.seen:
            return True
        body = self.listings.get(info.listing_key(inst_type(inst_id) or ""))
        return body is not None and f'"instId":"{inst_id}"'.encode() in body

    def snapshot(self, channel: str, inst_id: str, checksums: bool) -> bytes | None:
        """A book's snapshot now, once the replay has released its recorded one (None before:
        the recorded one will come)."""
        rb = self.books.get(inst_id)
        if rb is None or channel.encode() not in DEPTH_CHANNELS:
            return None
        return snapshot_frame(channel, inst_id, rb.book, rb.ts_ms or self.now_ns // 1_000_000,
                              rb.seq_id, checksums and rb.checksums)

    # -- REST ----------------------------------------------------------------------------------

    def rest(self, feed: MarketFeed, endpoint: str, params: dict[str, str]) -> bytes:
        if endpoint == "time":
            return info.time_body(feed.now_ms())
        if endpoint == "books":
            return info.books_body(self.depth(feed, params.get("instId", ""),
                                              int(params.get("sz", "1") or 1)))
        if endpoint == "trades":
            inst = info.inst_id_param(params)
            limit = info.trades_limit(params)
            return info.trades_body(inst, self.trades.get(inst, [])[-limit:], limit)
        if endpoint == "history-trades":
            inst = info.inst_id_param(params)
            limit, after = info.history_params(params)
            return info.trades_body(inst, self.trades.get(inst, []), limit, after)
        kind = info.inst_type_param(params)
        body = self.listings.get(info.listing_key(kind))
        if body is not None:
            return body
        ids = sorted(s for s in self.seen if inst_type(s) == kind)
        return info.synthetic_listing(kind, ids, self.books)

    def depth(self, feed: MarketFeed, symbol: str, limit: int) -> dict[str, Any]:
        rb = self.books.get(symbol)
        if rb is None:
            raise RestError(400, {"code": "51001", "msg": "Instrument ID does not exist",
                                  "data": []})
        bids, asks = rb.book.top(limit)
        return {"asks": [[p, s, "0", c] for p, s, c in asks],
                "bids": [[p, s, "0", c] for p, s, c in bids], "ts": str(rb.ts_ms)}
