"""A shard's state, as it goes over NATS: what the analytics need from a shard each tick.

Frames (Polars, the schemas of ``analyzer.analytics.live``), each one Arrow IPC stream,
zstd-compressed:

    books        one row per book: id, venue, symbol, sync status, last change (local and
                 venue time), last update id; ``ts`` is the shard's tick
    levels       the books' analysis windows (``levels.window``): the exact levels from the
                 best until the largest notional is filled, at most ``[analytics] max_levels``
                 a side
    extra        per book and band, the notional resting deeper within the band
    tickers      the latest mark, index and funding of each symbol, and when they came
    oi           the latest open interest of each symbol
    instruments  the definitions of the shard's symbols (with the increments and contract
                 value that the portfolio's valuation reads)
    funding      funding marks (the last ticker of a funding period) new since the last state

A state is one message or, when larger than the server's ``max_payload``, several parts: the
non-book frames, then whole books in each of the others. Its numbering and size travel
in headers, so that a consumer catching up decodes only the states it uses: ``Nats-Msg-Id``
``<shard>:<epoch>:<seq>:<part>`` (JetStream drops a retried publish), ``Analyzer-Shard``,
``-Epoch``, ``-Seq``, ``-Part``, ``-Parts``, ``-Ts`` (the shard's tick, ns), ``-Books``.

Size: a book's window is ~2 x 50-100 levels at BTC density (16 bytes a level before
compression), so a state is a few kB a book a tick; ``benchmarks`` and the README's Shards
section give the measured figures.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import msgspec
import polars as pl

from analyzer.analytics.live import (
    BOOK_SCHEMA,
    FUNDING_SCHEMA,
    INSTRUMENT_SCHEMA,
    OI_SCHEMA,
    TICKER_SCHEMA,
)

BOOK_FRAMES = ("books", "levels", "extra")
OTHER_FRAMES = ("tickers", "oi", "instruments", "funding")
SCHEMAS = {"books": BOOK_SCHEMA, "tickers": TICKER_SCHEMA, "oi": OI_SCHEMA,
           "instruments": INSTRUMENT_SCHEMA, "funding": FUNDING_SCHEMA}
COMPRESSION = "zstd"
# room left in a message for its headers and the envelope
HEADROOM = 4096

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(dict[str, bytes]).decode


@dataclass(slots=True)
class ShardState:
    """One tick of one shard (frames as in the module docstring)."""

    books: pl.DataFrame
    levels: pl.DataFrame
    extra: pl.DataFrame
    tickers: pl.DataFrame
    oi: pl.DataFrame
    instruments: pl.DataFrame
    funding: pl.DataFrame


def _ipc(df: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.write_ipc_stream(buf, compression=COMPRESSION)
    return buf.getvalue()


def _frame(data: bytes) -> pl.DataFrame:
    return pl.read_ipc_stream(io.BytesIO(data))


def encode(state: ShardState, max_payload: int) -> list[bytes]:
    """The state's message payloads, each at most ``max_payload - HEADROOM`` bytes: one, or,
    if larger, the non-book frames in a first part and the books split evenly over as many
    parts as it takes. A single book's window larger than that (``max_levels`` set huge)
    raises ValueError."""
    limit = max_payload - HEADROOM
    others = {name: _ipc(getattr(state, name)) for name in OTHER_FRAMES}
    n_books = state.books.height

    def books(lo: int, hi: int) -> dict[str, bytes]:
        ids = pl.col("book").is_between(lo, hi - 1)
        return {"books": _ipc(state.books.slice(lo, hi - lo)),
                "levels": _ipc(state.levels.filter(ids)), "extra": _ipc(state.extra.filter(ids))}

    whole = _encode(others | books(0, n_books))
    if len(whole) <= limit:
        return [whole]
    head = _encode(others)
    parts = max(1, math.ceil(len(whole) / limit))
    while True:
        out = [_encode(books(n_books * i // parts, n_books * (i + 1) // parts))
               for i in range(parts)]
        biggest = max(len(p) for p in out)
        if biggest <= limit and len(head) <= limit:
            return [head, *out]
        if parts >= n_books or len(head) > limit:
            raise ValueError(f"a part of the state takes {max(biggest, len(head))} bytes, over "
                             f"the message limit of {limit}: lower [analytics] max_levels")
        parts = min(n_books, max(parts + 1, math.ceil(parts * biggest / limit)))


def decode(payloads: list[bytes]) -> ShardState:
    """The state of a shard's parts (book ids as the shard numbered them)."""
    frames: dict[str, list[pl.DataFrame]] = {}
    for payload in payloads:
        for name, data in _decode(payload).items():
            frames.setdefault(name, []).append(_frame(data))
    return ShardState(**{name: pl.concat(frames[name]) for name in (*BOOK_FRAMES,
                                                                      *OTHER_FRAMES)})


def decode_funding(payload: bytes) -> pl.DataFrame | None:
    """A part's funding marks (the first part's; None in the others)."""
    data = _decode(payload).get("funding")
    return None if data is None else _frame(data)
