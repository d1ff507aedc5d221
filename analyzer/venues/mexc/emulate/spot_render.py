"""The simulated MEXC spot market in MEXC's own wire format: protobuf push frames.

Docs: https://mexcdevelop.github.io/apidocs/spot_v3_en/#websocket-market-streams
Schema: mexcdevelop/websocket-proto @ 7b8ac7a6 (``analyzer.venues.mexc.protobuf``)

One ``SpotFormat`` per listed pair turns the model's events into the frames of its channels,
each interval (100ms, 10ms) a channel of its own: ``aggre.depth`` (one push per model change:
``fromVersion``/``toVersion`` are the change's first and last ids, spot style, so a change that
never reaches the client is a gap by MEXC's rule), ``aggre.deals`` (one deal a push; MEXC
batches a window's deals, one a push is a window of one), ``aggre.bookTicker`` (the model's
quote, ``version`` its update id: the book version whose top it shows). Frames are laid out as
the recorded ones are: the wrapper's channel, symbol and sendTime, then the body; no
``symbolId``, ``createTime`` or ``tradeId`` (recorded frames lack the first two; the third is
not read by anyone here). Prices and quantities are written with the pair's tick and lot
decimals ("84270.01", "0.00019169" in the recordings: the model's floats, read back, are the
same floats).

Rendering is the exchange's hot path: each price and size becomes its field bytes (key, length,
text) once, cached; a frame is joins of cached bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any

from analyzer.events import BookChange, Quote, Trade
from analyzer.venues.mexc import protobuf as pb

if TYPE_CHECKING:
    from analyzer.events import Instrument
    from analyzer.sim import MarketModel

Sink = Callable[[bytes], Any]
MS = 1_000_000
CACHE_LIMIT = 20_000
INTERVALS = ("100ms", "10ms")
KINDS = {"depth": "spot@public.aggre.depth.v3.api.pb",
         "deals": "spot@public.aggre.deals.v3.api.pb",
         "bookTicker": "spot@public.aggre.bookTicker.v3.api.pb"}
BODY = {"depth": pb.DEPTH, "deals": pb.DEALS, "bookTicker": pb.BOOK_TICKER}


def decimals(step: float) -> int:
    """Decimals of a tick or lot as written (0.01 -> 2, 1e-05 -> 5, 1.0 -> 0)."""
    exp = Decimal(repr(step)).normalize().as_tuple().exponent
    return max(0, -exp) if isinstance(exp, int) else 0


class Field(dict[float, bytes]):
    """``field[x]``: the protobuf field (key, length, decimal text) of a number."""

    __slots__ = ("fmt", "key")

    def __init__(self, key: int, fmt: bytes) -> None:
        super().__init__()
        self.key = bytes((key,))
        self.fmt = fmt

    def __missing__(self, x: float) -> bytes:
        if len(self) >= CACHE_LIMIT:
            self.clear()
        text = self.fmt % x
        out = self[x] = self.key + pb.varint(len(text)) + text
        return out


class Varints(dict[int, bytes]):
    """``v[n]``: a field's key then the varint of n (times in ms repeat across events)."""

    __slots__ = ("key",)

    def __init__(self, key: int) -> None:
        super().__init__()
        self.key = bytes((key,))

    def __missing__(self, n: int) -> bytes:
        if len(self) >= CACHE_LIMIT:
            self.clear()
        out = self[n] = self.key + pb.varint(n)
        return out


class SpotTape:
    """The deals released of a pair, for ``/api/v3/trades``: (ms, price, quantity, taker sold),
    oldest first, the latest ``LIMIT``."""

    __slots__ = ("rows",)
    LIMIT = 20_000

    def __init__(self) -> None:
        self.rows: list[tuple[int, float, float, bool]] = []

    def add(self, ev: Trade) -> None:
        rows = self.rows
        rows.append((ev.ts_exchange // MS, ev.price, ev.size, ev.side == "sell"))
        if len(rows) > self.LIMIT * 1.1:
            del rows[: len(rows) - self.LIMIT]


class SpotFormat:
    """The frames of one simulated MEXC spot pair (``SymbolRenderer``)."""

    def __init__(self, info: Instrument, model: MarketModel) -> None:
        self.info = info
        self.model = model
        self.symbol = sym = info.symbol
        self.tape = SpotTape()
        self.pfmt = b"%%.%df" % decimals(info.tick_size)
        self.qfmt = b"%%.%df" % decimals(info.lot_size)
        # level and bid fields: 1 price, 2 quantity; the bookTicker's ask: 3 and 4
        self.p1, self.q2 = Field(0x0A, self.pfmt), Field(0x12, self.qfmt)
        self.p3, self.q4 = Field(0x1A, self.pfmt), Field(0x22, self.qfmt)
        self.send_time = Varints(0x30)  # the wrapper's field 6
        self.deal_time = Varints(0x20)  # a deal's field 4
        self.bt_time = Varints(0x30)  # the bookTicker's field 6
        # (channel name, wrapper head: channel and symbol, body key, body tail: eventType) by
        # stream key
        self.heads: dict[bytes, tuple[str, bytes, bytes, bytes]] = {}
        for kind, name in KINDS.items():
            for interval in INTERVALS:
                channel = f"{name}@{interval}@{sym}".encode()
                event_type = f"{name}@{interval}".encode()
                tail = pb.string(3 if kind == "depth" else 2, event_type)
                self.heads[channel] = (kind, pb.string(pb.CHANNEL, channel)
                                       + pb.string(pb.SYMBOL, sym.encode()),
                                       pb.key(BODY[kind], pb.LEN), tail)

    # -- streams --

    def streams(self) -> list[bytes]:
        return list(self.heads)

    def outputs(self, sinks: dict[bytes, Sink]) -> dict[type, list[tuple[Any, Sink]]]:
        out: dict[type, list[tuple[Any, Sink]]] = {}
        by = {"depth": BookChange, "deals": Trade, "bookTicker": Quote}
        render = {"depth": self.depth, "deals": self.deal, "bookTicker": self.quote}
        for key, (kind, head, body_key, tail) in self.heads.items():
            send = sinks.get(key)
            if send is not None:
                out.setdefault(by[kind], []).append(
                    (partial(render[kind], head, body_key, tail), send))
        return out  # (released trades fill the REST tape whether subscribed or not)

    def frames(self, ev: Any) -> list[tuple[bytes, bytes]]:
        """Every frame of an event, subscribed or not (malformed-frame faults)."""
        kind = {BookChange: "depth", Trade: "deals", Quote: "bookTicker"}.get(ev.__class__)
        if kind is None:
            return []
        render = {"depth": self.depth, "deals": self.deal, "bookTicker": self.quote}[kind]
        return [(key, render(head, body_key, tail, ev))
                for key, (k, head, body_key, tail) in self.heads.items() if k == kind]

    def _push(self, head: bytes, ms: int, body_key: bytes, body: bytes) -> bytes:
        return b"".join((head, self.send_time[ms], body_key, pb.varint(len(body)), body))

    # -- frames --

    def depth(self, head: bytes, body_key: bytes, tail: bytes, ev: BookChange) -> bytes:
        p1, q2 = self.p1, self.q2
        parts = []
        for tag, levels in ((b"\x0a", ev.asks), (b"\x12", ev.bids)):
            for p, q in levels:
                item = p1[p] + q2[q]
                parts.append(tag + pb.varint(len(item)) + item)
        parts.append(tail)
        parts.append(pb.string(4, b"%d" % ev.first_id))
        parts.append(pb.string(5, b"%d" % ev.last_id))
        return self._push(head, ev.ts_exchange // MS, body_key, b"".join(parts))

    def deal(self, head: bytes, body_key: bytes, tail: bytes, ev: Trade) -> bytes:
        ms = ev.ts_exchange // MS
        item = b"".join((self.p1[ev.price], self.q2[ev.size],
                         b"\x18\x01" if ev.side == "buy" else b"\x18\x02", self.deal_time[ms]))
        return self._push(head, ms, body_key, b"\x0a" + pb.varint(len(item)) + item + tail)

    def quote(self, head: bytes, body_key: bytes, tail: bytes, ev: Quote) -> bytes:
        ms = ev.ts_exchange // MS
        body = b"".join((self.p1[ev.bid_price], self.q2[ev.bid_size], self.p3[ev.ask_price],
                         self.q4[ev.ask_size], pb.string(5, b"%d" % ev.update_id),
                         self.bt_time[ms]))
        return self._push(head, ms, body_key, body)

    # -- REST bodies --

    def text(self, fmt: bytes, x: float) -> str:
        return (fmt % x).decode()

    def depth_body(self, limit: int) -> dict[str, Any]:
        """``/api/v3/depth``: the model's book now (ahead of, and consistent with, the stream:
        ``lastUpdateId`` is the last id of the changes emitted so far)."""
        snap = self.model.snapshot(self.info.venue, self.symbol)
        pf, qf = self.pfmt, self.qfmt
        return {"lastUpdateId": snap.last_id,
                "bids": [[(pf % p).decode(), (qf % q).decode()] for p, q in snap.bids[:limit]],
                "asks": [[(pf % p).decode(), (qf % q).decode()] for p, q in snap.asks[:limit]]}

    def trades_body(self, limit: int) -> list[dict[str, Any]]:
        """``/api/v3/trades``: the latest deals, newest first, as MEXC writes them."""
        pf, qf = self.pfmt, self.qfmt
        return [{"id": None, "price": (pf % p).decode(), "qty": (qf % q).decode(),
                 "quoteQty": f"{p * q:.8f}", "time": ms, "isBuyerMaker": sold,
                 "isBestMatch": True, "tradeType": "ASK" if sold else "BID"}
                for ms, p, q, sold in reversed(self.tape.rows[-limit:])]


def _field(field: int, wt: int, value: int | bytes) -> bytes:
    if isinstance(value, int):
        return pb.integer(field, value)
    if wt == pb.LEN:
        return pb.string(field, value)
    return pb.key(field, wt) + value  # fixed64, fixed32


def bad_price(frame: bytes) -> bytes:
    """A copy of a depth push whose first level's price is not a number."""
    out = []
    for field, wt, value in pb.fields(frame):
        if field == pb.DEPTH and isinstance(value, bytes):
            body, done = [], False
            for f, w, v in pb.fields(value):
                if f in (1, 2) and not done and isinstance(v, bytes):
                    qty = next((x for g, _, x in pb.fields(v) if g == 2), b"1")
                    v = pb.level(b"not-a-price", qty if isinstance(qty, bytes) else b"1")
                    done = True
                body.append(_field(f, w, v))
            value = b"".join(body)
        out.append(_field(field, wt, value))
    return b"".join(out)


__all__ = ["INTERVALS", "KINDS", "SpotFormat", "SpotTape", "bad_price", "decimals"]
