"""Normalized events: the one contract between venue modules and the rest of the analyzer.

Every venue module turns raw frames into these shapes and nothing else crosses that boundary.
The meaning of each field is written here once.

Common fields
    venue        feed id of the market the event came from, ``<exchange>_<market>`` (one id per
                 endpoint family, so that the same symbol on two markets of one exchange, e.g.
                 its spot and linear ``BTCUSDT``, never collide; see ``analyzer.venues``).
    symbol       the venue's own symbol, upper case as the venue spells it (``BTCUSDT``,
                 ``BTCUSD_PERP``, ``BTCUSD_250926``).
    ts_exchange  the venue's event time, integer nanoseconds since the Unix epoch (venues send
                 milliseconds or microseconds; they are scaled, never rounded).
    ts_local     local receipt time of the frame, integer nanoseconds since the epoch
                 (``time.time_ns()`` when the frame was read from the socket).

Prices are floats in the quote currency; sizes are floats in the venue's own unit (base
currency for spot and linear contracts, contracts for inverse ones; see ``Instrument``).
"""

from __future__ import annotations

from typing import Literal

import msgspec

Side = Literal["buy", "sell"]
MarketType = Literal["spot", "perpetual", "future"]

# A price level: (price, size). A size of 0 removes the level.
Level = tuple[float, float]


class Trade(msgspec.Struct, gc=False):
    """One execution. ``side`` is the taker's side (a buyer who was the maker means the taker
    sold). ``trade_id`` is the venue's id as text (some venues use UUIDs); storage is
    idempotent on (venue, symbol, trade_id). ``kind`` is ``trade`` or ``aggTrade`` (an
    aggregate of fills at one price by one taker order), or ``insurance_fund`` / ``adl`` for
    non-market executions."""

    venue: str
    symbol: str
    ts_exchange: int
    ts_local: int
    trade_id: str
    price: float
    size: float
    side: Side
    kind: str = "trade"


class BookChange(msgspec.Struct, gc=False):
    """A change to an L2 order book. Levels are absolute (the new size at that price, not a
    delta); size 0 removes the level. ``is_snapshot`` true means: discard prior state, these
    levels are the whole (visible) book. ``first_id`` / ``last_id`` are the venue's update ids
    covered by this change (a snapshot has first_id == last_id == its id); ``prev_id`` is the
    venue's pointer to the previous change's last id where it sends one, else -1. ``checksum``
    is the venue's checksum of the book after this change (0: none sent; see
    ``SequenceRules.checksum``)."""

    venue: str
    symbol: str
    ts_exchange: int
    ts_local: int
    is_snapshot: bool
    bids: list[Level]
    asks: list[Level]
    first_id: int
    last_id: int
    prev_id: int = -1
    checksum: int = 0


class Quote(msgspec.Struct, gc=False):
    """Best bid and ask with their sizes. ``source`` is ``venue`` for the venue's own top-of-book
    stream and ``book`` for the top of our rebuilt book. ``update_id`` is the
    venue update id the quote reflects (-1 if the venue sends none)."""

    venue: str
    symbol: str
    ts_exchange: int
    ts_local: int
    bid_price: float
    bid_size: float
    ask_price: float
    ask_size: float
    update_id: int = -1
    source: str = "venue"


class BookSnapshot(msgspec.Struct, gc=False):
    """The top ``len(bids)`` / ``len(asks)`` levels of a rebuilt, in-sync book, sampled by the
    collector at a fixed interval. Bids best first (descending), asks best first (ascending).
    ``update_id`` is the venue update id the book had reached."""

    venue: str
    symbol: str
    ts_exchange: int
    ts_local: int
    update_id: int
    bids: list[Level]
    asks: list[Level]


class DerivativeTicker(msgspec.Struct, gc=False):
    """Mark, index and funding of a derivative. Any field the frame does not carry is None (a
    COIN-M markPrice frame has no index; a dated future has no funding). ``funding_rate`` is per
    funding interval (not annualised); ``next_funding_time`` in ns since the epoch;
    ``funding_interval_hours`` from the venue's funding info when known."""

    venue: str
    symbol: str
    ts_exchange: int
    ts_local: int
    mark_price: float | None = None
    index_price: float | None = None
    funding_rate: float | None = None
    next_funding_time: int | None = None
    funding_interval_hours: float | None = None


class OpenInterest(msgspec.Struct, gc=False):
    """Open interest in contracts (linear: base currency units; inverse: contracts of
    ``contract_size`` quote units). ``value_usd`` when the venue reports it, else None."""

    venue: str
    symbol: str
    ts_exchange: int
    ts_local: int
    open_interest: float
    value_usd: float | None = None


class Liquidation(msgspec.Struct, gc=False):
    """A forced order. ``side`` is the side of the liquidation order itself (a long position is
    liquidated by a sell). Some venues sample them (at most one per symbol per second)."""

    venue: str
    symbol: str
    ts_exchange: int
    ts_local: int
    side: Side
    price: float
    size: float


class Instrument(msgspec.Struct, gc=False):
    """A tradable instrument. ``inverse`` true: contracts are worth ``contract_size`` units of the
    quote currency and settle in the base (COIN-M); linear contracts are worth ``contract_size``
    units of the base. A venue whose linear sizes are contracts of some coins each has them
    converted to base units at decode: its ``contract_size`` is then 1 and ``contract_value``
    the coins a contract is worth (what the venue's own sizes are multiplied by; 1 elsewhere).
    ``expiry`` is ns since the epoch for dated futures, None otherwise. ``tick_size`` /
    ``lot_size`` are the minimum price and size increments."""

    venue: str
    symbol: str
    exchange: str
    market: MarketType
    base: str
    quote: str
    inverse: bool
    contract_size: float
    tick_size: float
    lot_size: float
    expiry: int | None = None
    ts_local: int = 0
    contract_value: float = 1.0


class Gap(msgspec.Struct, gc=False):
    """A break in a book's update sequence (or another reason to distrust the book: crossed,
    a disagreement with the venue's best bid/ask) and what the collector did about it.
    ``expected_id`` is the last update id the book had applied; ``received_id`` the id the
    offending change claimed to follow (its ``prev_id``, else its first id - 1); for a
    ``checksum`` gap, the venue's checksum and ours; for ``trades_missing`` (a reconnect's
    hole in the trades that the venue's recent trades do not reach back across: action
    ``none``), the venue times (ns) of the last trade seen before it and of the oldest trade
    the venue still had; -1 where not applicable."""

    venue: str
    symbol: str
    ts_local: int
    reason: str
    expected_id: int
    received_id: int
    action: str = "resync"


Event = (
    Trade | BookChange | BookSnapshot | Quote | DerivativeTicker | OpenInterest | Liquidation
    | Instrument | Gap
)
