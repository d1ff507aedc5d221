"""BingX's recorded traffic (swap and spot) as replay events, and which market a recording is.

Formats: plain frames, one decompressed JSON frame per line (the fixtures' JKorf samples),
timed by the frame's own time (``frame_time``); analyzer captures, ``<ts> <frame>`` lines,
where BingX's gzip frames are kept byte-exact as ``<ts> ~<base64>``
(``analyzer.store.capture``).

A captured frame is replayed as it was captured: its event's payload is the gzip bytes, which
the market's ``encode`` sends unchanged (byte-faithful, and no frame gzipped again: that was
the costliest step of a replay). It is inflated once, when its line is read, for its stream
(a swap frame's ``dataType`` comes first, a spot frame's last: all of it is needed either way,
and a partial inflate saves little); ``text_of`` hands that text on to the replay's book and
REST state (the last frame inflated is remembered: the replay asks for the frame it has just
read), so no frame is inflated twice.

Data frames: swap ``{"code":0,"dataType":"<symbol>@<channel>",...}`` (as text, the core's
envelope fast path: the stream runs to the next quote); spot ``{"code":0,"data":{...},
"dataType":"<symbol>@<channel>","success":true}`` (the stream is the last ``dataType``).
``Ping``, the spot ping, acks and errors are skipped; REST bodies (``{"rest":..,"body":..}``
lines) are kept by path, the swap contracts and the spot symbols as the instrument listings.

Market: a spot-layout frame (``data`` first, or a ``success`` key: swap frames have none) makes
it spot, a swap-layout frame swap; else the paths say (a capture's folder is its feed id,
``bingx_spot``; a REST path ``/openApi/spot/``); else swap, the market of the samples.
"""

from __future__ import annotations

import binascii
import zlib
from binascii import a2b_base64
from urllib.parse import parse_qs, urlsplit

import msgspec

from analyzer.exchange.recordings import FRAME, INFO, REST, Event

ENVELOPE = b'{"code":0,"dataType":"'
SPOT_ENVELOPE = b'{"code":0,"data":'
DATA_TYPE = b'"dataType":"'
GZIP_MAGIC = b"\x1f\x8b"
CONTRACTS = "/openApi/swap/v2/quote/contracts"
SPOT_SYMBOLS = "/openApi/spot/v1/common/symbols"
LISTINGS = (CONTRACTS, SPOT_SYMBOLS)


class _Times(msgspec.Struct):
    T: int = 0
    E: int = 0
    time: int = 0
    timestamp: int = 0  # spot depth (JKorf's model)


class _Timed(msgspec.Struct):
    ts: int = 0
    timestamp: int = 0  # spot frames' envelope
    data: _Times | list[_Times] | None = None


_timed = msgspec.json.Decoder(_Timed)


def frame_time(frame: bytes) -> int | None:
    """A frame's own time in ns (``ts`` or ``timestamp``, else its data's latest time)."""
    try:
        doc = _timed.decode(text_of(frame))
    except (msgspec.DecodeError, msgspec.ValidationError, zlib.error):
        return None
    d = doc.data[0] if isinstance(doc.data, list) and doc.data else doc.data
    ms = doc.ts or doc.timestamp or (
        max(d.T, d.E, d.time, d.timestamp) if isinstance(d, _Times) else 0)
    return ms * 1_000_000 if ms else None


# the last frame inflated and its text (``text_of``): a replay reads a frame, then hands it to
# its state; an identity test, so a frame read by another replay in between is just inflated
_last: tuple[bytes, bytes] = (b"", b"")


def text_of(frame: bytes) -> bytes:
    """A recorded frame's text: a gzip frame inflated (raises zlib.error if it does not), any
    other as it is."""
    global _last
    if frame[:2] != GZIP_MAGIC:
        return frame
    if frame is _last[0]:
        return _last[1]
    text = zlib.decompress(frame, 31)
    _last = (frame, text)
    return text


def stream_of(text: bytes) -> bytes | None:
    """The stream of a data frame's text, swap or spot layout (None: not a data frame)."""
    if text.startswith(ENVELOPE):
        start = len(ENVELOPE)
        return text[start : text.find(b'"', start)]
    if text.startswith(SPOT_ENVELOPE):
        i = text.rfind(DATA_TYPE)
        if i > 0:
            start = i + len(DATA_TYPE)
            return text[start : text.find(b'"', start)]
    return None


class Inference:
    """The market of a recording (module doc): frames first, then paths, else swap."""

    def __init__(self) -> None:
        self.by_frames: str | None = None
        self.by_urls: str | None = None

    def url(self, url: str) -> None:
        if "bingx_spot" in url or "/openApi/spot/" in url:
            self.by_urls = "bingx_spot"
        elif self.by_urls is None and ("bingx_swap" in url or "/openApi/swap/" in url):
            self.by_urls = "bingx_swap"

    def stream(self, stream: bytes) -> None:
        return None

    def frame(self, stream: bytes, frame: bytes) -> None:
        if self.by_frames == "bingx_spot":
            return
        try:
            text = text_of(frame)
        except zlib.error:
            return
        if text.startswith(SPOT_ENVELOPE) or b'"success"' in text.lower():
            self.by_frames = "bingx_spot"
        elif text.startswith(ENVELOPE):
            self.by_frames = "bingx_swap"

    def market(self) -> str | None:
        return self.by_frames or self.by_urls or "bingx_swap"


class BingxRecordings:
    """The ``RecordingFormat`` of BingX (see ``analyzer.exchange.emulator``)."""

    envelope = ENVELOPE

    def payload(self, ts: int, payload: bytes, default_symbol: str | None) -> Event | None:
        global _last
        if payload[:1] == b"~":  # a captured binary frame: sent as it was captured
            try:
                frame = a2b_base64(payload[1:])
                text = zlib.decompress(frame, 31)
            except (binascii.Error, zlib.error, ValueError):
                raise msgspec.DecodeError("not a gzip frame") from None
            _last = (frame, text)  # (text_of, inlined: this is the replay's hot path)
        else:  # a text frame the envelope did not match (spot's layout)
            frame = text = payload
        if text.startswith(ENVELOPE):
            start = len(ENVELOPE)
            return ts, FRAME, text[start : text.find(b'"', start)], frame
        stream = stream_of(text)
        return None if stream is None else (ts, FRAME, stream, frame)  # None: pings, acks

    def frame_time(self, frame: bytes) -> int | None:
        return frame_time(frame)

    def rest_event(self, ts: int, url: str, body: bytes) -> Event:
        parts = urlsplit(url)
        for listing in LISTINGS:
            if parts.path.endswith(listing):
                return ts, INFO, listing, body
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
        if any("bingx" in u for u in urls) or b'{"rest":"/openApi/' in head:
            return True  # (a capture starts with the listing's REST body)
        spot = SPOT_ENVELOPE in head and DATA_TYPE in head
        return (ENVELOPE in head or spot) and b"@" in head
