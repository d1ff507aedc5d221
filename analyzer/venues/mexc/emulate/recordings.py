"""MEXC's recorded traffic as replay events, both markets.

Contract market: our own captures (``<local ts> <frame>`` lines) or plain frames one per line
with no local time (crypto-crawler's samples, ``tests/fixtures/mexc/frames.ndjson``), timed by
the frame's ``ts`` (ms). A frame's stream is ``<name>:<symbol>`` (``push.depth`` of
``BTC_USDT``: ``depth:BTC_USDT``), as the collector and the simulated market name them; the
symbol follows the data in some frames and leads in others, so each frame's envelope is decoded
(no fixed prefix: ``envelope`` is None). Pongs and acks are skipped.

Spot: our own captures, where every frame is kept byte-exact as ``<local ts> ~<base64>`` (the
spot feed's pushes are binary protobuf; its text answers are captured so too). A push's stream
is its channel (the wrapper's field 1, ``spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT``),
as the collector names it; answers (JSON) are skipped. REST: ``/api/v3/exchangeInfo`` is the
listing, ``/api/v3/depth`` a book snapshot of its ``symbol``. Which market a recording is: its
capture folder (``.../mexc_spot/``), a spot REST path or a spot channel says spot.
"""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import parse_qs, urlsplit

import msgspec

from analyzer.exchange.recordings import FRAME, INFO, REST, SNAPSHOT, Event
from analyzer.venues.base import DecodeError
from analyzer.venues.mexc import protobuf as pb

FEED_ID = "mexc_futures"
MARKET = "futures"
SPOT_FEED_ID = "mexc_spot"
SPOT_INFO = "/api/v3/exchangeInfo"
SPOT_DEPTH = "/api/v3/depth"
# a capture line's base64 of a push: "\n", the channel's length, then "spot@public." (the
# length byte shifts no later group: "cG90QHB1YmxpYy" is "pot@public" from the 4th byte on)
SPOT_HEAD = b"cG90QHB1YmxpYy"
MS = 1_000_000
_TS = re.compile(rb'"ts":(\d{13})')


class _Head(msgspec.Struct):
    channel: str = ""
    symbol: str = ""
    ts: int | str = 0


_head_decoder = msgspec.json.Decoder(_Head, strict=False)


def stream_symbol(stream: bytes) -> str | None:
    sym = (stream.rpartition(b"@") if stream.startswith(b"spot@") else stream.partition(b":"))[2]
    return sym.decode() if sym else None


def is_depth(stream: bytes) -> bool:
    return stream.startswith(b"depth:") or (stream.startswith(b"spot@")
                                            and b".aggre.depth." in stream)


class Inference:
    """Spot if a spot channel, a spot REST path or the spot capture folder says so; else the
    contract market, if a push frame or a MEXC contract URL says so."""

    def __init__(self) -> None:
        self.seen = False
        self.spot = False

    def url(self, url: str) -> None:
        if SPOT_FEED_ID in url or "/api/v3/" in url:
            self.spot = True
        elif "contract" in url or FEED_ID in url:
            self.seen = True

    def stream(self, stream: bytes) -> None:
        if stream.startswith(b"spot@"):
            self.spot = True
        else:
            self.seen = True

    def frame(self, stream: bytes, frame: bytes) -> None:
        pass

    def market(self) -> str | None:
        return "spot" if self.spot else MARKET if self.seen else None


def spot_push(ts: int, line: bytes) -> Event | None:
    """A captured spot frame (``~<base64>``): a push and its channel; None for an answer."""
    try:
        frame = base64.b64decode(line[1:], validate=True)
    except (binascii.Error, ValueError):
        raise msgspec.DecodeError("not a base64 frame") from None
    if frame[:1] == b"{":
        return None  # an ack, a pong, a refusal
    try:
        channel = pb.read_push(frame)[0]
    except DecodeError as exc:
        raise msgspec.DecodeError(str(exc)) from None
    if not channel:
        raise msgspec.DecodeError("a push without a channel")
    return ts, FRAME, channel, frame


class MexcRecordings:
    """The ``RecordingFormat`` of MEXC, both markets (see ``analyzer.exchange.emulator``)."""

    envelope = None

    def payload(self, ts: int, payload: bytes, default_symbol: str | None) -> Event | None:
        if payload[:1] == b"~":
            return spot_push(ts, payload)
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
        split = urlsplit(url)
        if split.path.endswith(SPOT_INFO):
            return ts, INFO, SPOT_INFO, body
        if split.path.endswith(SPOT_DEPTH):
            symbol = (parse_qs(split.query).get("symbol") or [""])[0]
            if symbol:
                return ts, SNAPSHOT, symbol.upper(), body
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
        return b'"channel":"push.' in head or (b" ~Ci" in head and SPOT_HEAD in head)
