"""One OKX market as the local exchange serves it: the public websocket's control protocol,
heartbeat and limits, REST routing and budget, and its replay and simulation sources.

Docs: https://www.okx.com/docs-v5/en/#overview-websocket (connect, subscribe, limits, notice)
      https://www.okx.com/docs-v5/en/#public-data-rest-api-get-instruments
      https://www.okx.com/docs-v5/en/#order-book-trading-market-data-get-trades

Websocket ``/ws/v5/public``. ``{"op":"subscribe","args":[{"channel","instId"},...]}`` is
answered per arg: ``{"event":"subscribe","arg":{..},"connId":..}``, or ``{"event":"error",
"code":"60018",..}`` for a channel or instrument that does not exist here (an instrument of
another market too: each market is its own feed), ``64003`` for the VIP-only tick-by-tick
books; a ``books`` subscription then gets its snapshot (``"action":"snapshot"``) before any
update. ``unsubscribe`` likewise. The text ``ping`` is answered ``pong``; the server sends no
websocket pings, and closes a connection that sent nothing for 30 s (4004, "No data received in
30s."). Limits: 480 subscribe/unsubscribe requests an hour per connection (beyond: error
60014, the connection stays), requests under 64 KB (60012). ``restart_notice`` sends the 64008
notice ("the connection will soon be closed for a service upgrade") to every connection of a
market and closes them later, as OKX does before a restart.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import msgspec

from analyzer.exchange.emulator import Close, Session
from analyzer.venues.okx.emulate.recordings import DEPTH_CHANNELS, inst_type
from analyzer.venues.okx.emulate.simulated import OkxSim
from analyzer.venues.okx.emulate.state import OkxReplay
from analyzer.venues.okx.spec import WS_PATH

if TYPE_CHECKING:
    from analyzer.exchange.market import MarketFeed
    from analyzer.exchange.recordings import Recording
    from analyzer.sim import MarketModel

KINDS = {"okx_spot": "SPOT", "okx_swap": "SWAP", "okx_futures": "FUTURES"}
MAX_REQUEST_BYTES = 65_536  # "the total length of multiple channels cannot exceed 64 KB"
REQUESTS_PER_HOUR = 480  # subscribe / unsubscribe / login, per connection
VIP_BOOKS = frozenset(["books-l2-tbt", "books50-l2-tbt"])  # VIP4+ only: error 64003
CHANNELS = {
    # channel -> instrument types it exists for ("INDEX": an index such as BTC-USDT)
    "books": ("SPOT", "SWAP", "FUTURES"),
    "books5": ("SPOT", "SWAP", "FUTURES"),
    "bbo-tbt": ("SPOT", "SWAP", "FUTURES"),
    "trades": ("SPOT", "SWAP", "FUTURES"),
    "tickers": ("SPOT", "SWAP", "FUTURES"),
    "mark-price": ("SWAP", "FUTURES"),
    "open-interest": ("SWAP", "FUTURES"),
    "funding-rate": ("SWAP",),
    "index-tickers": ("INDEX",),
}
NOTICE = ('{"event":"notice","code":"64008","msg":"The connection will soon be closed for a '
          'service upgrade. Please reconnect.","connId":"%s"}')


class _Arg(msgspec.Struct):
    channel: str = ""
    instId: str = ""


class _Request(msgspec.Struct):
    op: str
    args: list[_Arg] = []


_request_decoder = msgspec.json.Decoder(_Request)
_encode = msgspec.json.encode


def conn_id(session: Session) -> str:
    return "%08x" % (id(getattr(session, "client", session)) & 0xFFFFFFFF)


def _error(code: str, msg: str, cid: str) -> str:
    return _encode({"event": "error", "code": code, "msg": msg, "connId": cid}).decode()


class OkxMarket:
    """The ``MarketEmulator`` of one OKX market (feed okx_spot, okx_swap or okx_futures).

    ``checksums``: books carry OKX's legacy CRC32 (True) or 0, as OKX sends since 2026; a test
    may lower ``idle_timeout_s`` on the instance."""

    ping_interval = None  # OKX sends no websocket pings: the client sends "ping"
    ping_timeout = None
    idle_timeout_s: float | None = 30.0
    idle_close = Close(4004, "No data received in 30s.")
    # OKX documents no per-connection message rate for public channels (only the 480 an hour
    # of subscribe requests, answered with 60014): a generous one against floods
    messages_per_s = 100
    too_many_messages = Close(1008, "Too many requests")
    max_streams = 1024
    weight_limit = 20  # GET instruments: 20 requests per 2 s per IP
    window_s = 2.0

    def __init__(self, feed: str) -> None:
        self.feed = feed
        self.kind = KINDS[feed]
        self.market = self.kind
        self.checksums = True
        # subscribe requests per connection: client -> times of the last hour's
        self._requests: dict[Any, list[float]] = {}

    # -- websocket -----------------------------------------------------------------------------

    def accepts(self, path: str) -> bool:
        return "/" + path == WS_PATH

    def on_open(self, session: Session, path: str, query: str) -> Close | None:
        live = {c: t for c, t in self._requests.items() if not getattr(c, "closed", False)}
        self._requests = live
        return None

    def _valid(self, source: Any, channel: str, inst_id: str) -> bool:
        kinds = CHANNELS.get(channel)
        if kinds is None:
            return False
        if kinds == ("INDEX",):
            return inst_id.count("-") == 1 and self.kind != "SPOT"
        if inst_type(inst_id) != self.kind or self.kind not in kinds:
            return False
        return bool(source.knows(inst_id))

    def on_message(self, session: Session, message: str | bytes) -> str | Close | None:
        if message in ("ping", b"ping"):
            return "pong"
        cid = conn_id(session)
        if len(message) > MAX_REQUEST_BYTES:
            return _error("60012", "Invalid request: the request exceeds 64 KB", cid)
        try:
            req = _request_decoder.decode(message)
        except (msgspec.DecodeError, msgspec.ValidationError):
            text = message if isinstance(message, str) else message.decode(errors="replace")
            return _error("60012", f"Invalid request: {text[:200]}", cid)
        if req.op not in ("subscribe", "unsubscribe"):
            return _error("60012", f"Invalid request: unknown op {req.op[:40]!r}", cid)
        client = getattr(session, "client", session)
        now = time.monotonic()
        times = [t for t in self._requests.get(client, ()) if now - t < 3600.0]
        if len(times) >= REQUESTS_PER_HOUR:
            self._requests[client] = times
            return _error("60014", "Requests too frequent.", cid)
        times.append(now)
        self._requests[client] = times
        source = session.source
        streams: list[bytes] = []
        books: list[tuple[str, str]] = []
        for arg in req.args:
            ch, inst = arg.channel, arg.instId
            if ch in VIP_BOOKS and inst_type(inst) == self.kind:
                session.send(_error("64003", "Your trading fee tier doesn't meet the "
                                    "requirement to access this channel", cid).encode())
                continue
            if not self._valid(source, ch, inst):
                session.send(_error(
                    "60018", f"Wrong URL or channel:{ch},instId:{inst} doesn't exist. Please "
                    "use the correct URL, channel and parameters referring to API document.",
                    cid).encode())
                continue
            session.send(_encode({"event": req.op, "arg": {"channel": ch, "instId": inst},
                                  "connId": cid}))
            stream = f"{ch}:{inst}".encode()
            streams.append(stream)
            if req.op == "subscribe" and ch.encode() in DEPTH_CHANNELS \
                    and stream not in session.streams:
                books.append((ch, inst))
        if req.op == "unsubscribe":
            session.unsubscribe(streams)
            return None
        if len(set(session.streams) | set(streams)) > session.max_streams:
            return Close(1008, "Too many channels")
        session.subscribe(streams)
        for ch, inst in books:
            frame = source.snapshot(ch, inst, self.checksums)
            if frame is not None:
                session.send(frame)
        return None

    def unwrap(self, stream: bytes, frame: bytes) -> bytes:
        return frame

    def corrupt_price(self, frame: bytes) -> bytes:
        """A copy of a book frame whose first bid price is not a number."""
        doc = msgspec.json.decode(frame)
        for d in doc.get("data", []):
            d["bids"] = [["not-a-price", "1", "0", "1"], *d.get("bids", [])]
        return _encode(doc)

    # -- REST ----------------------------------------------------------------------------------

    def route(self, path: str) -> str | None:
        return {
            "/api/v5/public/instruments": "instruments",
            "/api/v5/public/time": "time",
            "/api/v5/market/books": "books",
            "/api/v5/market/trades": "trades",
            "/api/v5/market/history-trades": "history-trades",
        }.get(path)

    def weight(self, endpoint: str, params: dict[str, str]) -> int:
        # one request of the budget each (trades: 100 per 2 s on OKX, the listing 20)
        return 1

    def weight_headers(self, used: int) -> list[tuple[str, str]]:
        return []  # OKX sends no usage headers

    def over_budget(self, status: int, ip: str, limit: int, until_ms: int) -> tuple[int, bytes]:
        return 429, b'{"msg":"Too Many Requests","code":"50011"}'

    # -- sources -------------------------------------------------------------------------------

    def replayed(self, recording: Recording | None) -> OkxReplay:
        return OkxReplay(self.kind, recording)

    def simulated(self, model: MarketModel) -> OkxSim:
        return OkxSim(self.kind, self.feed, model, self.checksums)


def restart_notice(feed: MarketFeed, close_after_s: float = 30.0, code: int = 1001) -> int:
    """OKX's restart warning (64008) to every connection of a market, which closes them
    ``close_after_s`` later (call it on the exchange's loop); the connections warned."""
    clients = list(feed.clients)
    for c in clients:
        c.out.append((NOTICE % ("%08x" % (id(c) & 0xFFFFFFFF))).encode())
    feed._flush()
    asyncio.get_running_loop().call_later(close_after_s, _close, feed, clients, code)
    return len(clients)


def _close(feed: MarketFeed, clients: list[Any], code: int) -> None:
    for c in clients:
        if not c.closed:
            feed._spawn(c.conn.close(code, "service upgrade"))
            feed.detach(c)


MARKETS_EMULATED = {feed: OkxMarket(feed) for feed in KINDS}
