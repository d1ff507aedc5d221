"""Readers for recorded Binance traffic, replayed by the local exchange.

Three layouts are read; each yields the same events in recorded order.

hftbacktest lines
    gzip (or plain) text, one ``<local ts> <frame>`` per line; the timestamp is nanoseconds
    (19 digits) or microseconds (16 digits), normalised by digit count. Bare REST depth
    snapshots ``{"lastUpdateId":..}`` are interleaved where they were fetched; USDⓈ-M and spot
    bodies carry no symbol, so they belong to the file's only depth stream (else to the symbol
    in the file name, ``btcusdt_20240808.gz``). A recording may span several files, read in order.
analyzer captures
    the same line format; REST bodies are recorded as
    ``<ts> {"rest":"/fapi/v1/depth?symbol=BTCUSDT&limit=1000","body":{...}}``.
cryptofeed captures
    a folder with ``X.ws.<n>.<m>.txt`` (first line ``<url> <-> <ts>``, sent frames
    ``<url> <- <ts>: <json>``, received frames ``<ts>: <json>``; ts in seconds with a fraction),
    ``X.http.<n>.<m>.txt`` (``<url> -> <ts>: <body>`` depth snapshots, the symbol in the url) and
    ``X.0.txt`` (exchangeInfo in the same layout, plus a ``configuration:`` line, ignored).

Events are plain tuples ``(ts_ns, kind, key, payload)``, cheap to make and unpack per frame:

    FRAME     key: stream name (bytes, as in the frame); payload: the frame exactly as recorded
    SNAPSHOT  key: symbol (str, upper case); payload: the REST depth body
    REST      key: (path, symbol or ""); payload: another recorded REST body (analyzer captures)
    INFO      key: the REST path; payload: an exchangeInfo body
"""

from __future__ import annotations

import gzip
import heapq
import io
import logging
import re
import zlib
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec

from analyzer.exchange.errors import ExchangeError

log = logging.getLogger(__name__)

FRAME, SNAPSHOT, REST, INFO = 0, 1, 2, 3
Event = tuple[int, int, Any, bytes]

MARKETS = ("spot", "usdm", "coinm")
FEED_IDS = {m: f"binance_{m}" for m in MARKETS}
MARKET_OF_FEED = {feed: m for m, feed in FEED_IDS.items()}

ENVELOPE = b'{"stream":"'
_GZIP_MAGIC = b"\x1f\x8b"
# Local timestamps by digit count: ns, µs, ms, s.
_TS_SCALE = {19: 1, 16: 1_000, 13: 1_000_000, 10: 1_000_000_000}
_COINM_STREAM = re.compile(rb"^[a-z0-9]+usd_(?:perp|\d{6})@")
_LINE = re.compile(rb"^\d{10,19} [{\[]")
# Cryptofeed file names: X.ws.1.0.txt, X.http.0.0.txt, X.0.txt.
_CF_WS = re.compile(r"^(?P<prefix>.+)\.ws\.\d+\.\d+\.txt$")
_CF_ANY = re.compile(r"^(?P<prefix>.+?)\.(?:ws\.\d+\.\d+|http\.\d+\.\d+|\d+)\.txt$")
# Frames with no market-specific sign are not looked at beyond this many (market inference).
_HINT_FRAMES = 5000


class _RestLine(msgspec.Struct):
    rest: str  # "/fapi/v1/depth?symbol=BTCUSDT&limit=1000"
    body: msgspec.Raw  # the body, kept as recorded


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
_rest_decoder = msgspec.json.Decoder(_RestLine)
_symbol_decoder = msgspec.json.Decoder(_SymbolOnly)


def stream_symbol(name: bytes) -> str | None:
    """The upper-case symbol a per-symbol stream is about (``btcusd_perp@depth`` -> BTCUSD_PERP);
    None for market-wide (``!bookTicker``) and pair-level (``btcusd@indexPrice``) streams."""
    sym, _, rest = name.partition(b"@")
    if not rest or sym[:1] == b"!" or rest.startswith(b"indexPrice"):
        return None
    return sym.decode().upper()


def _bare_stream(payload: bytes) -> bytes | None:
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


def _wrap(name: bytes, data: bytes) -> bytes:
    return b"".join((ENVELOPE, name, b'","data":', data, b"}"))


def _sec_to_ns(text: bytes) -> int:
    whole, _, frac = text.partition(b".")
    return int(whole) * 1_000_000_000 + int((frac + b"000000000")[:9])


def _open_binary(path: Path) -> io.BufferedIOBase:
    with path.open("rb") as f:
        magic = f.read(2)
    if magic == _GZIP_MAGIC:
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def _chunks(path: Path, cut: list[bool]) -> Iterator[bytes]:
    """The decompressed bytes of a plain or gzip file, member after member. A capture cut short
    by a crash ends in an incomplete gzip member: everything before the cut is still read."""
    with path.open("rb") as f:
        if f.read(2) != _GZIP_MAGIC:
            f.seek(0)
            while chunk := f.read(1 << 20):
                yield chunk
            return
        f.seek(0)
        d = zlib.decompressobj(31)
        started = False
        while raw := f.read(1 << 18):
            while raw:
                try:
                    out = d.decompress(raw)
                except zlib.error as exc:
                    log.warning("%s: corrupt gzip data (%s), the rest is skipped", path, exc)
                    cut.append(True)
                    return
                started = True
                if out:
                    yield out
                if not d.eof:
                    break
                raw = d.unused_data  # the next member
                d = zlib.decompressobj(31)
                started = False
        if started and not d.eof:
            log.warning("%s: the last gzip member is cut short, read up to the cut", path)
            cut.append(True)


def _lines(path: Path) -> Iterator[bytes]:
    """Lines without their end of line; splitting big blocks is ~3x cheaper than readline()."""
    rest = b""
    cut: list[bool] = []
    for chunk in _chunks(path, cut):
        lines = (rest + chunk).split(b"\n") if rest else chunk.split(b"\n")
        rest = lines.pop()
        yield from lines
    if rest and not cut:  # after a cut, the last line is a fragment
        yield rest


def _rest_event(ts: int, url: str, body: bytes) -> Event:
    parts = urlsplit(url)
    path = parts.path
    symbol = (parse_qs(parts.query).get("symbol") or [""])[0].upper()
    if path.endswith("/depth") and symbol:
        return ts, SNAPSHOT, symbol, body
    if path.endswith("/exchangeInfo"):
        return ts, INFO, path, body
    return ts, REST, (path, symbol), body


class _Source:
    """One part of a recording (a set of files read in order)."""

    name: str
    default_symbol: str | None = None  # owner of symbol-less bare snapshots

    def events(self) -> Iterator[Event]:  # pragma: no cover - abstract
        raise NotImplementedError

    def urls(self) -> list[str]:
        return []


class _LinesSource(_Source):
    """hftbacktest files and analyzer captures: ``<ts> <frame>`` lines."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = list(paths)
        self.name = ", ".join(str(p) for p in self.paths)

    def urls(self) -> list[str]:
        # The analyzer's captures live in <dir>/<feed id>/: the folder names the market.
        return [str(p) for p in self.paths]

    def events(self) -> Iterator[Event]:
        scale = _TS_SCALE
        default_symbol = self.default_symbol
        for path in self.paths:
            for line in _lines(path):
                sp = line.find(b" ")
                if sp < 10:
                    continue
                try:
                    ts = int(line[:sp]) * scale[sp]
                except (ValueError, KeyError):
                    continue
                payload = line[sp + 1 :]
                if payload.endswith(b"\r"):
                    payload = payload.rstrip()
                if payload.startswith(ENVELOPE):
                    yield ts, FRAME, payload[11 : payload.find(b'"', 11)], payload
                    continue
                try:
                    if payload.startswith(b'{"lastUpdateId"'):
                        sym = _symbol_decoder.decode(payload).symbol or default_symbol
                        yield ts, SNAPSHOT, sym, payload
                    elif payload.startswith(b'{"rest"'):
                        rec = _rest_decoder.decode(payload)
                        yield _rest_event(ts, rec.rest, bytes(rec.body))
                    elif b'"result"' in payload and b'"id"' in payload:
                        continue  # a subscription ack
                    else:
                        name = _bare_stream(payload)
                        if name is not None:
                            yield ts, FRAME, name, _wrap(name, payload)
                except msgspec.DecodeError:
                    log.warning("%s: skipped an unreadable line: %.80r", path, payload)


class _CryptofeedSource(_Source):
    """A cryptofeed capture folder: ws frames merged with the REST snapshots by time."""

    def __init__(self, folder: Path, prefix: str) -> None:
        self.folder = folder
        self.prefix = prefix
        self.ws_files = sorted(folder.glob(f"{glob_escape(prefix)}.ws.*.txt"))
        self.http_files = sorted(folder.glob(f"{glob_escape(prefix)}.http.*.txt"))
        self.info_files = sorted(
            p
            for p in folder.glob(f"{glob_escape(prefix)}.*.txt")
            if re.fullmatch(r"\d+", p.name[len(prefix) + 1 : -4])
        )
        self.name = str(folder / prefix)

    def urls(self) -> list[str]:
        out = []
        for path in self.ws_files:
            with path.open("rb") as f:
                first = f.readline()
            out.append(first.split(b" ", 1)[0].decode(errors="replace"))
        for path in self.http_files + self.info_files:
            with path.open("rb") as f:
                first = f.readline()
            out.append(first.split(b" ", 1)[0].decode(errors="replace"))
        return out

    @staticmethod
    def _ws(path: Path) -> Iterator[Event]:
        with path.open("rb") as f:
            for line in f:
                i = line.find(b": ")
                if i < 0:
                    continue  # "<url> <-> <ts>" connection line, blank lines
                head = line[:i]
                if b" " in head:
                    continue  # "<url> <- <ts>: <json>": a frame we sent
                payload = line[i + 2 :].rstrip()
                try:
                    ts = _sec_to_ns(head)
                except ValueError:
                    continue
                if payload.startswith(ENVELOPE):
                    yield ts, FRAME, payload[11 : payload.find(b'"', 11)], payload
                elif b'"result"' not in payload:
                    name = _bare_stream(payload)
                    if name is not None:
                        yield ts, FRAME, name, _wrap(name, payload)

    @staticmethod
    def _http(path: Path) -> Iterator[Event]:
        with path.open("rb") as f:
            for line in f:
                i = line.find(b" -> ")
                if i < 0:
                    continue  # "configuration: {...}" and blank lines
                rest = line[i + 4 :]
                j = rest.find(b": ")
                if j < 0:
                    continue
                try:
                    ts = _sec_to_ns(rest[:j])
                except ValueError:
                    continue
                yield _rest_event(ts, line[:i].decode(), rest[j + 2 :].rstrip())

    def events(self) -> Iterator[Event]:
        streams: list[Iterable[Event]] = [self._ws(p) for p in self.ws_files]
        streams += [self._http(p) for p in self.http_files + self.info_files]
        return heapq.merge(*streams, key=itemgetter(0))


def glob_escape(text: str) -> str:
    return re.sub(r"([\[\]*?])", r"[\1]", text)


def _sources_for(path: str | Path) -> list[_Source]:
    p = Path(path)
    if not p.exists():
        raise ExchangeError(f"recording not found: {p}")
    if p.is_dir():
        prefixes = sorted({m["prefix"] for q in p.iterdir() if (m := _CF_WS.match(q.name))})
        if len(prefixes) > 1:
            raise ExchangeError(
                f"{p} holds several cryptofeed captures ({', '.join(prefixes)}): "
                "pass one of their files instead"
            )
        if prefixes:
            return [_CryptofeedSource(p, prefixes[0])]
        files = sorted(q for q in p.iterdir() if q.is_file() and _is_lines_file(q))
        if not files:
            raise ExchangeError(
                f"no recording found in {p} (expected <ts> <frame> lines or cryptofeed files)"
            )
        return [_LinesSource(files)]
    m = _CF_ANY.match(p.name)
    if m and any(p.parent.glob(f"{glob_escape(m['prefix'])}.ws.*.txt")):
        return [_CryptofeedSource(p.parent, m["prefix"])]
    if _is_lines_file(p):
        return [_LinesSource([p])]
    raise ExchangeError(
        f"unknown recording format: {p} (expected <ts> <frame> lines or cryptofeed files)"
    )


def _is_lines_file(path: Path) -> bool:
    try:
        with _open_binary(path) as f:
            first = f.readline(4096)
    except (OSError, EOFError, gzip.BadGzipFile):
        return False
    return bool(_LINE.match(first))


class Recording:
    """A recording of one Binance market: its sources, read in order, and what a first pass over
    them found (streams, symbols, the first depth snapshot of each symbol, exchangeInfo)."""

    def __init__(self, sources: Sequence[_Source], market: str | None = None) -> None:
        self.sources = list(sources)
        self.name = "; ".join(s.name for s in self.sources)
        self.streams: dict[bytes, int] = {}  # stream name -> frames
        self.symbols: set[str] = set()
        self.first_snapshots: dict[str, bytes] = {}
        self.snapshots = 0
        self.exchange_info: bytes | None = None
        self.frames = 0
        self.first_ts = 0
        self.last_ts = 0
        self._votes = {"spot": 0, "usdm": 0, "coinm": 0}  # from frame contents
        self._url_votes = {"spot": 0, "usdm": 0, "coinm": 0}  # from venue urls: authoritative
        self._coinm_streams = 0
        for source in self.sources:
            self._scan(source)
        if market is None:
            market = self._infer_market()
        elif market not in MARKETS:
            raise ExchangeError(f"unknown market {market!r}: use one of {', '.join(MARKETS)}")
        self.market = market

    @classmethod
    def open(cls, path: str | Path | Sequence[str | Path], market: str | None = None) -> Recording:
        """Read a file, a folder, or a list of either (replayed one after the other)."""
        paths = [path] if isinstance(path, str | Path) else list(path)
        if not paths:
            raise ExchangeError("no recording given")
        sources = [s for p in paths for s in _sources_for(p)]
        return cls(sources, market)

    @classmethod
    def chain(cls, recordings: Sequence[Recording]) -> Recording:
        """One recording replaying several of the same market one after the other."""
        markets = {r.market for r in recordings}
        if len(markets) != 1:
            raise ExchangeError(f"cannot chain recordings of different markets: {sorted(markets)}")
        return cls([s for r in recordings for s in r.sources], markets.pop())

    @property
    def feed(self) -> str:
        return FEED_IDS[self.market]

    def events(self) -> Iterator[Event]:
        return chain.from_iterable(s.events() for s in self.sources)

    def _scan(self, source: _Source) -> None:
        streams = self.streams
        bare: bytes | None = None  # first symbol-less snapshot of this source
        depth_symbols: set[str] = set()
        for url in source.urls():
            self._vote_url(url)
        hinted = 0
        for ts, kind, key, payload in source.events():
            if not self.first_ts:
                self.first_ts = ts
            self.last_ts = ts
            if kind == FRAME:
                self.frames += 1
                n = streams.get(key)
                if n is None:
                    streams[key] = 1
                    sym = stream_symbol(key)
                    if sym is not None:
                        self.symbols.add(sym)
                        if b"@depth" in key:
                            depth_symbols.add(sym)
                    if _COINM_STREAM.match(key):
                        self._coinm_streams += 1
                else:
                    streams[key] = n + 1
                if hinted < _HINT_FRAMES:
                    hinted += 1
                    self._vote_frame(key, payload)
            elif kind == SNAPSHOT:
                self.snapshots += 1
                if key is None:
                    bare = bare or payload
                else:
                    self.symbols.add(key)
                    self.first_snapshots.setdefault(key, payload)
            elif kind == INFO:
                self._vote_url(key)
                if self.exchange_info is None:
                    self.exchange_info = payload
            else:
                self._vote_url(key[0])
        if bare is not None:
            source.default_symbol = self._owner_of_bare(source, depth_symbols)
            self.first_snapshots.setdefault(source.default_symbol, bare)

    @staticmethod
    def _owner_of_bare(source: _Source, depth_symbols: set[str]) -> str:
        if len(depth_symbols) == 1:
            return next(iter(depth_symbols))
        if isinstance(source, _LinesSource):
            guess = source.paths[0].name.split("_", 1)[0].split(".", 1)[0].upper()
            if guess in depth_symbols:
                return guess
        raise ExchangeError(
            f"{source.name}: a depth snapshot without a symbol, and the recording has "
            f"{len(depth_symbols)} depth streams: cannot tell whose it is"
        )

    def _vote_url(self, url: str) -> None:
        votes = self._url_votes
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

    def _vote_frame(self, key: bytes, payload: bytes) -> None:
        votes = self._votes
        if b"@depth" in key and b'"depthUpdate"' in payload:
            votes["usdm" if b'"pu":' in payload else "spot"] += 1
        elif key.endswith(b"@trade"):
            if b'"X":"' in payload:
                votes["usdm"] += 1
            elif b'"M":' in payload:
                votes["spot"] += 1
        elif key.endswith(b"@bookTicker"):
            votes["usdm" if b'"e":"bookTicker"' in payload else "spot"] += 1

    def _infer_market(self) -> str:
        # Venue urls decide; else COIN-M symbols (btcusd_perp, btcusd_211231); else the fields
        # only one market sends (futures "pu", "X", bookTicker "e"; spot trade "M").
        votes = self._url_votes
        if not any(votes.values()):
            if self._coinm_streams:
                return "coinm"
            votes = self._votes
        best = max(votes, key=votes.__getitem__)
        if votes[best] == 0:
            raise ExchangeError(
                f"cannot infer the market of {self.name}: pass market= (spot, usdm, coinm)"
            )
        return best
