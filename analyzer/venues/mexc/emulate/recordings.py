"""MEXC's recorded traffic as replay events.

Recordings hold MEXC frames as our own captures (``<local ts> <frame>`` lines) or plain frames one
per line with no local time (crypto-crawler's samples, ``tests/fixtures/mexc/frames.ndjson``),
timed by the frame's ``ts`` (ms). A frame's stream is ``<name>:<symbol>`` (``push.depth`` of
``BTC_USDT``: ``depth:BTC_USDT``), as the collector and the simulated market name them; the
symbol follows the data in some frames and leads in others, so each frame's envelope is decoded
(no fixed prefix: ``envelope`` is None). Pongs and acks are skipped.
"""

from __future__ import annotations

import re

import msgspec

from analyzer.exchange.recordings import FRAME, INFO, REST, Event

FEED_ID = "mexc_futures"
MARKET = "futures"
MS = 1_000_000
_TS = re.compile(rb'"ts":(\d{13})')


class _Head(msgspec.Struct):
    channel: str = ""
    symbol: str = ""
    ts: int | str = 0


_head_decoder = msgspec.json.Decoder(_Head, strict=False)


def stream_symbol(stream: bytes) -> str | None:
    _, _, sym = stream.partition(b":")
    return sym.decode() if sym else None


def is_depth(stream: bytes) -> bool:
    return stream.startswith(b"depth:")


class Inference:
    """One market: any push frame or a MEXC contract URL says so."""

    def __init__(self) -> None:
        self.seen = False

    def url(self, url: str) -> None:
        if "contract" in url or FEED_ID in url:
            self.seen = True

    def stream(self, stream: bytes) -> None:
        self.seen = True

    def frame(self, stream: bytes, frame: bytes) -> None:
        pass

    def market(self) -> str | None:
        return MARKET if self.seen else None


class MexcRecordings:
    """The ``RecordingFormat`` of MEXC's contract market (see ``analyzer.exchange.emulator``)."""

    envelope = None

    def payload(self, ts: int, payload: bytes, default_symbol: str | None) -> Event | None:
        head = _head_decoder.decode(payload)
        if not head.channel.startswith("push.") or not head.symbol:
            return None  # a pong, an ack, a REST body
        return ts, FRAME, f"{head.channel[5:]}:{head.symbol}".encode(), payload

    def frame_time(self, payload: bytes) -> int | None:
        """A frame's exchange time (ns); None for a line that is no push."""
        m = _TS.search(payload)
        if m is not None:
            return int(m[1]) * MS
        try:
            head = _head_decoder.decode(payload)
        except msgspec.DecodeError:
            return None
        return int(head.ts) * MS if head.ts and str(head.ts).isdigit() else None

    def rest_event(self, ts: int, url: str, body: bytes) -> Event:
        path = url.split("?", 1)[0]
        if path.endswith("/contract/detail"):
            return ts, INFO, url, body
        parts = path.rstrip("/").split("/")
        return ts, REST, (path, parts[-1] if len(parts) > 5 else ""), body

    def symbol_of(self, stream: bytes) -> str | None:
        return stream_symbol(stream)

    def is_depth(self, stream: bytes) -> bool:
        return is_depth(stream)

    def inference(self) -> Inference:
        return Inference()

    def claims(self, urls: list[str], head: bytes) -> bool:
        if any("mexc" in u for u in urls):
            return True
        return b'"channel":"push.' in head
