"""What every venue module provides, and what it calls with the events it decodes.

A venue module is one file under ``analyzer/venues/``: its endpoints, its subscribe messages,
frozen msgspec Structs for its raw frames, a decoder that turns frames into the normalized
events of ``analyzer.events``, and its order-book sequence rules. The rest of the analyzer
(feeds, books, store, metrics) is venue-agnostic.
"""

from __future__ import annotations

from typing import Protocol

from analyzer.events import (
    BookChange,
    DerivativeTicker,
    Instrument,
    Liquidation,
    OpenInterest,
    Quote,
    Trade,
)

# Channel names used in configs and metric labels (a fixed, bounded set).
CHANNELS = ("depth", "trades", "bookTicker", "markPrice", "openInterest", "liquidations")


class DecodeError(Exception):
    """A frame could not be decoded; the stream goes on. ``channel`` labels the counter."""

    def __init__(self, message: str, channel: str = "other") -> None:
        super().__init__(message)
        self.channel = channel


class UnknownStream(DecodeError):
    """A frame for a stream or symbol that nobody subscribed to; ignored and counted."""


class Sink(Protocol):
    """Receives decoded events. Implemented by the collector's pipeline."""

    def on_trade(self, ev: Trade) -> None: ...
    def on_book(self, ev: BookChange) -> None: ...
    def on_quote(self, ev: Quote) -> None: ...
    def on_ticker(self, ev: DerivativeTicker) -> None: ...
    def on_liquidation(self, ev: Liquidation) -> None: ...
    def on_trade_gap(self, symbol: str, first_missing: int, last_missing: int) -> None:
        """Trade ids ``first_missing..last_missing`` were skipped (e.g. across a reconnect)."""
        ...
    def on_duplicate(self) -> None:
        """A frame already seen (overlapping connections, a replay) was dropped."""
        ...


class SequenceRules(Protocol):
    """A venue's order-book continuity rules, applied by ``analyzer.feed.books``."""

    def is_stale(self, snapshot_id: int, ev: BookChange) -> bool:
        """True if a buffered change is older than the snapshot and must be dropped."""
        ...

    def bridges(self, snapshot_id: int, ev: BookChange) -> bool:
        """True if ``ev`` is the first change to apply on top of a snapshot."""
        ...

    def follows(self, last_id: int, ev: BookChange) -> bool:
        """True if ``ev`` directly follows a change whose last id was ``last_id``."""
        ...


__all__ = [
    "CHANNELS",
    "BookChange",
    "DecodeError",
    "DerivativeTicker",
    "Instrument",
    "Liquidation",
    "OpenInterest",
    "Quote",
    "SequenceRules",
    "Sink",
    "Trade",
    "UnknownStream",
]
