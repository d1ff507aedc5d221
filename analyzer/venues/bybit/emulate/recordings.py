"""Bybit's recorded traffic as replay events, and which category a recording is.

Three layouts hold Bybit frames: our own captures and hftbacktest-style files (``<local ts>
<frame>`` lines, REST bodies as ``{"rest": path, "body": ...}``), and plain frames one per line
with no local time (nautilus_trader's ``*.data`` files, tardis-node's samples), timed by the
frame's own ``ts``. A frame is replayed as recorded, keyed by its ``topic``: every data frame
Bybit sends starts with it, except a few recorded ones (the key then comes from a decode).
Replies (``op``: pong, subscribe) are skipped.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import msgspec

from analyzer.exchange.recordings import FRAME, INFO, REST, Event

ENVELOPE = b'{"topic":"'
CATEGORIES = ("spot", "linear", "inverse")
FEED_IDS = {c: f"bybit_{c}" for c in CATEGORIES}
MS = 1_000_000
_URL = re.compile(r"/v5/public/(?:spot|linear|inverse)|(?<!/api)/v5/market/")
_INVERSE = re.compile(r"^[A-Z0-9]+USD(?:[FGHJKMNQUVXZ]\d{2})?$")


class _Head(msgspec.Struct):
    topic: str | None = None
    ts: int | None = None
    op: str | None = None


_head_decoder = msgspec.json.Decoder(_Head)
_TS = re.compile(rb'"ts":(\d{13})')


def topic_symbol(topic: bytes) -> str | None:
    """The symbol a topic is about: its last dot-separated part (``orderbook.50.BTCUSDT``)."""
    name, _, sym = topic.rpartition(b".")
    return sym.decode() if name and sym else None


def is_depth(topic: bytes) -> bool:
    """Book topics deeper than 1 level (``orderbook.1`` is the best bid/ask)."""
    return topic.startswith(b"orderbook.") and not topic.startswith(b"orderbook.1.")


def category_of_symbol(symbol: str) -> str:
    """linear or inverse from a derivative's symbol (BTCUSD, BTCUSDH26: inverse)."""
    return "inverse" if _INVERSE.match(symbol) else "linear"


class Inference:
    """Votes for a category: URLs (``/v5/public/<category>``, ``category=`` and our capture
    folders ``bybit_<category>``) decide; else the topics: tickers or liquidations mean a
    derivative, whose symbol tells linear from inverse; book depths 500 exist on derivatives
    only; with nothing else, spot."""

    def __init__(self) -> None:
        self.urls = dict.fromkeys(CATEGORIES, 0)
        self.derivative = 0
        self.symbols: set[str] = set()

    def url(self, url: str) -> None:
        for c, feed in FEED_IDS.items():
            if feed in url or f"/v5/public/{c}" in url or f"category={c}" in url:
                self.urls[c] += 1
                return

    def stream(self, stream: bytes) -> None:
        sym = topic_symbol(stream)
        if sym:
            self.symbols.add(sym)
        if stream.startswith((b"tickers.", b"allLiquidation.", b"liquidation.",
                              b"orderbook.500.")):
            self.derivative += 1

    def frame(self, stream: bytes, frame: bytes) -> None:
        if b'"fundingRate"' in frame or b'"openInterest"' in frame:
            self.derivative += 1

    def market(self) -> str | None:
        if any(self.urls.values()):
            return max(self.urls, key=self.urls.__getitem__)
        if not self.symbols:
            return None
        if not self.derivative:
            return "spot"
        kinds = {category_of_symbol(s) for s in self.symbols}
        return kinds.pop() if len(kinds) == 1 else None


class BybitRecordings:
    """The ``RecordingFormat`` of Bybit (see ``analyzer.exchange.emulator``)."""

    envelope = ENVELOPE

    def payload(self, ts: int, payload: bytes, default_symbol: str | None) -> Event | None:
        head = _head_decoder.decode(payload)
        if head.topic is None:
            return None  # a reply: pong, subscribe ack
        return ts, FRAME, head.topic.encode(), payload

    def frame_time(self, payload: bytes) -> int | None:
        """The exchange time of a frame recorded without a local time (ns; None: not a frame
        of ours to time, e.g. a reply)."""
        m = _TS.search(payload)
        if m is not None:
            return int(m[1]) * MS
        try:
            head = _head_decoder.decode(payload)
        except msgspec.DecodeError:
            return None
        return head.ts * MS if head.ts else None

    def rest_event(self, ts: int, url: str, body: bytes) -> Event:
        parts = urlsplit(url)
        symbol = (parse_qs(parts.query).get("symbol") or [""])[0].upper()
        if parts.path.endswith("/instruments-info"):
            return ts, INFO, url, body
        return ts, REST, (parts.path, symbol), body

    def symbol_of(self, stream: bytes) -> str | None:
        return topic_symbol(stream)

    def is_depth(self, stream: bytes) -> bool:
        return is_depth(stream)

    def inference(self) -> Inference:
        return Inference()

    def claims(self, urls: list[str], head: bytes) -> bool:
        if any("bybit" in u or _URL.search(u) for u in urls):
            return True
        return ENVELOPE in head or b'"topic":"orderbook.' in head
