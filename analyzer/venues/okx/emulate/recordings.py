"""OKX's recorded traffic as replay events, and which market a recording is.

Frames are ``{"arg":{"channel":..,"instId":..},...}``; a frame's stream is ``channel:instId``
(``books:BTC-USDT``), the name the collector and the exchange's subscriptions use, cut from the
frame's first bytes (no decode). OKX captures (cryptofeed's ``OKX.ws.*`` files, analyzer
captures ``<ts> <frame>``) mix instruments of every market on one connection, so a replay of
one market (``market=okx_swap``) serves only what its clients subscribe: the market emulator
refuses other markets' instruments. Acks, errors and notices are skipped. REST bodies
(``/api/v5/public/instruments?instType=...``: cryptofeed's ``OKX.0`` file, analyzer captures'
``{"rest":..,"body":..}`` lines) are listings, kept per instrument type.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from analyzer.exchange.recordings import FRAME, INFO, REST, Event

ARG = b'{"arg":{"channel":"'
INST = b'","instId":"'
MARKET_OF_TYPE = {"SPOT": "okx_spot", "SWAP": "okx_swap", "FUTURES": "okx_futures"}
DEPTH_CHANNELS = frozenset([b"books", b"books-l2-tbt", b"books50-l2-tbt"])
INDEX_CHANNELS = frozenset([b"index-tickers"])


def inst_type(inst_id: str) -> str | None:
    """SPOT (BTC-USDT), SWAP (BTC-USDT-SWAP), FUTURES (BTC-USD-250926), OPTION (5 parts)."""
    parts = inst_id.split("-")
    if len(parts) == 2:
        return "SPOT"
    if len(parts) == 3:
        if parts[2] == "SWAP":
            return "SWAP"
        if parts[2].isdigit():
            return "FUTURES"
    if len(parts) == 5:
        return "OPTION"
    return None


def stream_of(frame: bytes) -> bytes | None:
    """``channel:instId`` of a data frame in OKX's compact layout (None: not one)."""
    if not frame.startswith(ARG):
        return None
    end = frame.find(b'"', 19)
    if end < 0 or frame[end : end + 12] != INST:
        return None
    stop = frame.find(b'"', end + 12)
    if stop < 0:
        return None
    return frame[19:end] + b":" + frame[end + 12 : stop]


class Inference:
    """Votes for a market: an analyzer capture's folder (the feed id) or an OKX URL decides;
    else the instrument type most streams are about."""

    def __init__(self) -> None:
        self.urls = dict.fromkeys(MARKET_OF_TYPE.values(), 0)
        self.streams = dict.fromkeys(MARKET_OF_TYPE.values(), 0)

    def url(self, url: str) -> None:
        for feed in self.urls:
            if feed in url:
                self.urls[feed] += 1
                return

    def stream(self, stream: bytes) -> None:
        _, _, inst = stream.partition(b":")
        feed = MARKET_OF_TYPE.get(inst_type(inst.decode()) or "")
        if feed is not None:
            self.streams[feed] += 1

    def frame(self, stream: bytes, frame: bytes) -> None:
        return None

    def market(self) -> str | None:
        votes = self.urls if any(self.urls.values()) else self.streams
        best = max(votes, key=votes.__getitem__)
        return best if votes[best] else None


class OkxRecordings:
    """The ``RecordingFormat`` of OKX (see ``analyzer.exchange.emulator``)."""

    # the stream is channel AND instId, not one quoted string: every frame goes through payload
    envelope = None

    def payload(self, ts: int, payload: bytes, default_symbol: str | None) -> Event | None:
        stream = stream_of(payload)
        if stream is None:
            return None  # an ack, an error, a notice, "pong"
        return ts, FRAME, stream, payload

    def rest_event(self, ts: int, url: str, body: bytes) -> Event:
        parts = urlsplit(url)
        if parts.path.endswith("/public/instruments"):
            kind = (parse_qs(parts.query).get("instType") or [""])[0].upper()
            return ts, INFO, f"/api/v5/public/instruments?instType={kind}", body
        return ts, REST, (parts.path, parts.query), body

    def symbol_of(self, stream: bytes) -> str | None:
        channel, _, inst = stream.partition(b":")
        if channel in INDEX_CHANNELS or not inst:
            return None  # an index, not an instrument
        return inst.decode()

    def is_depth(self, stream: bytes) -> bool:
        return stream.partition(b":")[0] in DEPTH_CHANNELS

    def inference(self) -> Inference:
        return Inference()

    def claims(self, urls: list[str], head: bytes) -> bool:
        if any("okx.com" in u or "okex.com" in u or "/okx_" in u for u in urls):
            return True
        return ARG in head and INST in head
