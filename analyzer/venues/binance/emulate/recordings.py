"""Binance's recorded traffic: frames, depth snapshots and REST bodies as replay events, and
which market a recording is.

Frames are kept in the combined-stream envelope ``{"stream":<name>,"data":..}``; a frame
recorded from a raw ``/ws`` connection is given its stream name (from its event type and
symbol) and wrapped. Bare REST depth snapshots ``{"lastUpdateId":..}`` are interleaved where
they were fetched; USDⓈ-M and spot bodies carry no symbol, so they belong to the recording's
only depth stream (else to the symbol in the file name). Subscription acks are skipped.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec

from analyzer.exchange.recordings import FRAME, INFO, REST, SNAPSHOT, Event

MARKETS = ("spot", "usdm", "coinm")
FEED_IDS = {m: f"binance_{m}" for m in MARKETS}
ENVELOPE = b'{"stream":"'
_COINM_STREAM = re.compile(rb"^[a-z0-9]+usd_(?:perp|\d{6})@")


class _SymbolOnly(msgspec.Struct):
    symbol: str | None = None  # COIN-M depth bodies name their symbol, USDⓈ-M and spot do not


class _Kline(msgspec.Struct):
    i: str  # interval


class _Order(msgspec.Struct):
    s: str


class _Bare(msgspec.Struct):
    """A frame recorded from a raw ``/ws`` connection (no ``{"stream":..}`` envelope)."""

    e: str | None = None  # event type; spot bookTicker has none
    s: str | None = None
    i: str | None = None  # indexPrice pair
    k: _Kline | None = None
    o: _Order | None = None
    u: int | None = None
    b: Any = None


_bare_decoder = msgspec.json.Decoder(_Bare)
_symbol_decoder = msgspec.json.Decoder(_SymbolOnly)


def stream_symbol(name: bytes) -> str | None:
    """The upper-case symbol a per-symbol stream is about (``btcusd_perp@depth`` -> BTCUSD_PERP);
    None for market-wide (``!bookTicker``) and pair-level (``btcusd@indexPrice``) streams."""
    sym, _, rest = name.partition(b"@")
    if not rest or sym[:1] == b"!" or rest.startswith(b"indexPrice"):
        return None
    return sym.decode().upper()


def bare_stream(payload: bytes) -> bytes | None:
    """Stream name for a frame recorded without the combined envelope (None: not a data frame)."""
    try:
        m = _bare_decoder.decode(payload)
    except msgspec.DecodeError:
        return None
    e = m.e
    if e == "kline" and m.s and m.k:
        name = f"{m.s.lower()}@kline_{m.k.i}"
    elif e == "indexPriceUpdate" and m.i:
        name = f"{m.i.lower()}@indexPrice"
    elif e == "forceOrder" and m.o:
        name = f"{m.o.s.lower()}@forceOrder"
    elif not m.s:
        return None
    elif e in ("trade", "aggTrade"):
        name = f"{m.s.lower()}@{e}"
    elif e == "depthUpdate":
        name = f"{m.s.lower()}@depth"
    elif e == "markPriceUpdate":
        name = f"{m.s.lower()}@markPrice"
    elif e == "24hrTicker":
        name = f"{m.s.lower()}@ticker"
    elif e == "24hrMiniTicker":
        name = f"{m.s.lower()}@miniTicker"
    elif e == "bookTicker" or (e is None and m.u is not None and m.b is not None):
        name = f"{m.s.lower()}@bookTicker"
    else:
        return None
    return name.encode()


def wrap(name: bytes, data: bytes) -> bytes:
    return b"".join((ENVELOPE, name, b'","data":', data, b"}"))


class Inference:
    """Votes for a market: venue URLs decide; else COIN-M symbols (btcusd_perp, btcusd_211231);
    else the fields only one market sends (futures "pu", "X", bookTicker "e"; spot trade "M")."""

    def __init__(self) -> None:
        self.frames = {"spot": 0, "usdm": 0, "coinm": 0}
        self.urls = {"spot": 0, "usdm": 0, "coinm": 0}
        self.coinm_streams = 0

    def url(self, url: str) -> None:
        votes = self.urls
        for market, feed in FEED_IDS.items():
            if feed in url:
                votes[market] += 1
                return
        if "fstream" in url or "/fapi/" in url:
            votes["usdm"] += 1
        elif "dstream" in url or "/dapi/" in url:
            votes["coinm"] += 1
        elif "stream.binance.com" in url or "/api/v3/" in url:
            votes["spot"] += 1

    def stream(self, stream: bytes) -> None:
        if _COINM_STREAM.match(stream):
            self.coinm_streams += 1

    def frame(self, key: bytes, payload: bytes) -> None:
        votes = self.frames
        if b"@depth" in key and b'"depthUpdate"' in payload:
            votes["usdm" if b'"pu":' in payload else "spot"] += 1
        elif key.endswith(b"@trade"):
            if b'"X":"' in payload:
                votes["usdm"] += 1
            elif b'"M":' in payload:
                votes["spot"] += 1
        elif key.endswith(b"@bookTicker"):
            votes["usdm" if b'"e":"bookTicker"' in payload else "spot"] += 1

    def market(self) -> str | None:
        votes = self.urls
        if not any(votes.values()):
            if self.coinm_streams:
                return "coinm"
            votes = self.frames
        best = max(votes, key=votes.__getitem__)
        return best if votes[best] else None


class BinanceRecordings:
    """The ``RecordingFormat`` of Binance (see ``analyzer.exchange.emulator``)."""

    envelope = ENVELOPE

    def payload(self, ts: int, payload: bytes, default_symbol: str | None) -> Event | None:
        if payload.startswith(b'{"lastUpdateId"'):
            sym = _symbol_decoder.decode(payload).symbol or default_symbol
            return ts, SNAPSHOT, sym, payload
        if b'"result"' in payload and b'"id"' in payload:
            return None  # a subscription ack
        name = bare_stream(payload)
        if name is None:
            return None
        return ts, FRAME, name, wrap(name, payload)

    def rest_event(self, ts: int, url: str, body: bytes) -> Event:
        parts = urlsplit(url)
        path = parts.path
        symbol = (parse_qs(parts.query).get("symbol") or [""])[0].upper()
        if path.endswith("/depth") and symbol:
            return ts, SNAPSHOT, symbol, body
        if path.endswith("/exchangeInfo"):
            return ts, INFO, path, body
        return ts, REST, (path, symbol), body

    def symbol_of(self, stream: bytes) -> str | None:
        return stream_symbol(stream)

    def is_depth(self, stream: bytes) -> bool:
        return b"@depth" in stream

    def inference(self) -> Inference:
        return Inference()

    def claims(self, urls: list[str], head: bytes) -> bool:
        if any("binance" in u or "/fapi/" in u or "/dapi/" in u or "/api/v3/" in u
               for u in urls):
            return True
        return ENVELOPE in head or b'"lastUpdateId"' in head or b'"e":"depthUpdate"' in head
