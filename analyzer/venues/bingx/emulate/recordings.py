"""BingX swap's recorded traffic as replay events, and which market a recording is.

Formats: plain frames, one decompressed JSON frame per line (the fixtures' JKorf samples),
timed by the frame's own time (``frame_time``); analyzer captures, ``<ts> <frame>`` lines,
where BingX's gzip frames are kept byte-exact as ``<ts> ~<base64>``: inflated here. A data
frame is ``{"code":0,"dataType":"<symbol>@<channel>",...}``: the stream runs from the envelope to
the next quote. ``Ping``, acks and errors are skipped; REST bodies (``{"rest":..,"body":..}``
lines) are kept by path, the contracts listing as the instrument listing.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from urllib.parse import parse_qs, urlsplit

import msgspec

from analyzer.exchange.recordings import FRAME, INFO, REST, Event

ENVELOPE = b'{"code":0,"dataType":"'
CONTRACTS = "/openApi/swap/v2/quote/contracts"


class _Times(msgspec.Struct):
    T: int = 0
    E: int = 0
    time: int = 0


class _Timed(msgspec.Struct):
    ts: int = 0
    data: _Times | list[_Times] | None = None


_timed = msgspec.json.Decoder(_Timed)


def frame_time(frame: bytes) -> int | None:
    """A frame's own time in ns (``ts``, else its data's ``T``/``E``/``time``)."""
    try:
        doc = _timed.decode(frame)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    d = doc.data[0] if isinstance(doc.data, list) and doc.data else doc.data
    ms = doc.ts or (max(d.T, d.E, d.time) if isinstance(d, _Times) else 0)
    return ms * 1_000_000 if ms else None


class Inference:
    """One market: any BingX recording is the swap market."""

    def url(self, url: str) -> None:
        return None

    def stream(self, stream: bytes) -> None:
        return None

    def frame(self, stream: bytes, frame: bytes) -> None:
        return None

    def market(self) -> str | None:
        return "bingx_swap"


class BingxRecordings:
    """The ``RecordingFormat`` of BingX (see ``analyzer.exchange.emulator``)."""

    envelope = ENVELOPE

    def payload(self, ts: int, payload: bytes, default_symbol: str | None) -> Event | None:
        if payload.startswith(b"~"):  # a captured binary frame
            try:
                payload = zlib.decompress(base64.b64decode(payload[1:]), 31)
            except (binascii.Error, zlib.error, ValueError):
                raise msgspec.DecodeError("not a gzip frame") from None
            if payload.startswith(ENVELOPE):
                start = len(ENVELOPE)
                return ts, FRAME, payload[start : payload.find(b'"', start)], payload
        return None  # Ping, acks, errors

    def frame_time(self, frame: bytes) -> int | None:
        return frame_time(frame)

    def rest_event(self, ts: int, url: str, body: bytes) -> Event:
        parts = urlsplit(url)
        if parts.path.endswith(CONTRACTS):
            return ts, INFO, CONTRACTS, body
        symbol = (parse_qs(parts.query).get("symbol") or [""])[0]
        return ts, REST, (parts.path, symbol), body

    def symbol_of(self, stream: bytes) -> str | None:
        symbol, at, _ = stream.partition(b"@")
        return symbol.decode() if at else None

    def is_depth(self, stream: bytes) -> bool:
        return stream.endswith(b"@incrDepth")

    def inference(self) -> Inference:
        return Inference()

    def claims(self, urls: list[str], head: bytes) -> bool:
        if any("bingx" in u for u in urls):
            return True
        return ENVELOPE in head and b"@" in head
