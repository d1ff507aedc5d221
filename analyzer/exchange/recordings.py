"""Readers of recorded venue traffic, replayed by the local exchange.

Three layouts are read; each yields the same events in recorded order. What a payload means
(a frame and its stream, a depth snapshot, an ack to skip) is the venue's ``RecordingFormat``
(``analyzer.exchange.emulator``).

hftbacktest lines
    gzip (or plain) text, one ``<local ts> <payload>`` per line; the timestamp is nanoseconds
    (19 digits) or microseconds (16 digits), normalised by digit count. REST depth snapshots
    are interleaved where they were fetched; a snapshot without a symbol belongs to the file's
    only depth stream (else to the symbol in the file name, ``btcusdt_20240808.gz``). A
    recording may span several files, read in order.
analyzer captures
    the same line format; REST bodies are recorded as
    ``<ts> {"rest":"<path>?symbol=BTCUSDT&limit=1000","body":{...}}``.
plain frames
    one frame per line with no local time (nautilus_trader's data files, tardis-node's
    samples): each is timed by the venue's ``RecordingFormat.frame_time`` (its exchange time).
cryptofeed captures
    a folder with ``X.ws.<n>.<m>.txt`` (first line ``<url> <-> <ts>``, sent frames
    ``<url> <- <ts>: <json>``, received frames ``<ts>: <json>``; ts in seconds with a fraction),
    ``X.http.<n>.<m>.txt`` (``<url> -> <ts>: <body>`` depth snapshots, the symbol in the url) and
    ``X.0.txt`` (the instrument listing in the same layout, plus a ``configuration:`` line,
    ignored).

Events are plain tuples ``(ts_ns, kind, key, payload)``, cheap to make and unpack per frame:

    FRAME     key: stream (bytes, as in the frame); payload: the frame as the venue sends it
    SNAPSHOT  key: symbol (str, upper case); payload: the REST depth body
    REST      key: (path, symbol or ""); payload: another recorded REST body (analyzer captures)
    INFO      key: the REST path; payload: an instrument listing body
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
from typing import TYPE_CHECKING, Any

import msgspec

from analyzer.exchange.emulator import emulators
from analyzer.exchange.errors import ExchangeError

if TYPE_CHECKING:
    from analyzer.exchange.emulator import MarketEmulator, RecordingFormat, VenueEmulator

log = logging.getLogger(__name__)

FRAME, SNAPSHOT, REST, INFO = 0, 1, 2, 3
Event = tuple[int, int, Any, bytes]

_GZIP_MAGIC = b"\x1f\x8b"
# Local timestamps by digit count: ns, µs, ms, s.
_TS_SCALE = {19: 1, 16: 1_000, 13: 1_000_000, 10: 1_000_000_000}
_LINE = re.compile(rb"^\d{10,19} [{\[]")
# Cryptofeed file names: X.ws.1.0.txt, X.http.0.0.txt, X.0.txt.
_CF_WS = re.compile(r"^(?P<prefix>.+)\.ws\.\d+\.\d+\.txt$")
_CF_ANY = re.compile(r"^(?P<prefix>.+?)\.(?:ws\.\d+\.\d+|http\.\d+\.\d+|\d+)\.txt$")
# Frames with no market-specific sign are not looked at beyond this many (market inference).
_HINT_FRAMES = 5000


class _RestLine(msgspec.Struct):
    rest: str  # "/fapi/v1/depth?symbol=BTCUSDT&limit=1000"
    body: msgspec.Raw  # the body, kept as recorded


_rest_decoder = msgspec.json.Decoder(_RestLine)


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


class _Source:
    """One part of a recording (a set of files read in order)."""

    name: str
    default_symbol: str | None = None  # owner of symbol-less bare snapshots
    format: RecordingFormat  # the venue's, set by the Recording

    def events(self) -> Iterator[Event]:  # pragma: no cover - abstract
        raise NotImplementedError

    def urls(self) -> list[str]:
        return []

    def head(self) -> bytes:
        """The first bytes of the recording (which venue it is)."""
        return b""


class _LinesSource(_Source):
    """hftbacktest files and analyzer captures: ``<ts> <frame>`` lines."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = list(paths)
        self.name = ", ".join(str(p) for p in self.paths)

    def urls(self) -> list[str]:
        # The analyzer's captures live in <dir>/<feed id>/: the folder names the market.
        return [str(p) for p in self.paths]

    def head(self) -> bytes:
        with _open_binary(self.paths[0]) as f:
            return f.read(1 << 16)

    def events(self) -> Iterator[Event]:
        scale = _TS_SCALE
        default_symbol = self.default_symbol
        fmt = self.format
        envelope = fmt.envelope or b"\0"  # no venue frame starts with a NUL
        start = len(envelope)
        parse = fmt.payload
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
                if payload.startswith(envelope):
                    yield ts, FRAME, payload[start : payload.find(b'"', start)], payload
                    continue
                try:
                    if payload.startswith(b'{"rest"'):
                        rec = _rest_decoder.decode(payload)
                        yield fmt.rest_event(ts, rec.rest, bytes(rec.body))
                    elif (event := parse(ts, payload, default_symbol)) is not None:
                        yield event
                except msgspec.DecodeError:
                    log.warning("%s: skipped an unreadable line: %.80r", path, payload)


class _FramesSource(_LinesSource):
    """Plain frames, one per line, timed by the venue (``RecordingFormat.frame_time``)."""

    def events(self) -> Iterator[Event]:
        fmt = self.format
        frame_time = getattr(fmt, "frame_time", None)
        if frame_time is None:
            raise ExchangeError(f"{self.name}: frames without a local time, and this venue's "
                                "frames carry no time the replay can use")
        envelope = fmt.envelope or b"\0"
        start = len(envelope)
        for path in self.paths:
            for line in _lines(path):
                payload = line.strip()
                if not payload:
                    continue
                ts = frame_time(payload)
                if ts is None:
                    continue
                if payload.startswith(envelope):
                    yield ts, FRAME, payload[start : payload.find(b'"', start)], payload
                    continue
                try:
                    if (event := fmt.payload(ts, payload, self.default_symbol)) is not None:
                        yield event
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

    def head(self) -> bytes:
        if not self.ws_files:
            return b""
        with self.ws_files[0].open("rb") as f:
            return f.read(1 << 16)

    def _ws(self, path: Path) -> Iterator[Event]:
        fmt = self.format
        envelope = fmt.envelope or b"\0"
        start = len(envelope)
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
                if payload.startswith(envelope):
                    yield ts, FRAME, payload[start : payload.find(b'"', start)], payload
                    continue
                try:
                    event = fmt.payload(ts, payload, None)
                except msgspec.DecodeError:
                    continue
                if event is not None and event[1] == FRAME:
                    yield event

    def _http(self, path: Path) -> Iterator[Event]:
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
                yield self.format.rest_event(ts, line[:i].decode(), rest[j + 2 :].rstrip())

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
    if _is_frames_file(p):
        return [_FramesSource([p])]
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


def _is_frames_file(path: Path) -> bool:
    """One JSON frame per line, no local time."""
    try:
        with _open_binary(path) as f:
            first = f.readline(1 << 20)
    except (OSError, EOFError, gzip.BadGzipFile):
        return False
    return first.lstrip().startswith(b"{") and first.rstrip().endswith(b"}")


class Recording:
    """A recording of one market of a venue: its sources, read in order, and what a first pass
    over them found (streams, symbols, the first depth snapshot of each symbol, the listing).

    ``market``: the feed id or the venue's name of the market (None: inferred)."""

    def __init__(self, sources: Sequence[_Source], market: str | None = None) -> None:
        self.sources = list(sources)
        self.name = "; ".join(s.name for s in self.sources)
        self.streams: dict[bytes, int] = {}  # stream name -> frames
        self.symbols: set[str] = set()
        self.first_snapshots: dict[str, bytes] = {}
        self.snapshots = 0
        self.exchange_info: bytes | None = None  # the recorded instrument listing
        # every recorded listing by its INFO key (a venue whose listing takes several
        # requests, one per instrument type): the first body of each
        self.listings: dict[str, bytes] = {}
        self.frames = 0
        self.first_ts = 0
        self.last_ts = 0
        venue = self._venue(market)
        self.format = venue.recordings
        for source in self.sources:
            source.format = self.format
        inference = self.format.inference()
        for source in self.sources:
            self._scan(source, inference)
        names = [m.market for m in venue.markets.values()]
        if market is None:
            market = inference.market()
            if market is None:
                raise ExchangeError(
                    f"cannot infer the market of {self.name}: pass market= ({', '.join(names)})"
                )
        emulator = venue.markets.get(market) or next(
            (m for m in venue.markets.values() if m.market == market), None
        )
        if emulator is None:
            raise ExchangeError(f"unknown market {market!r}: use one of {', '.join(names)}")
        self.emulator: MarketEmulator = emulator
        self.market = emulator.market

    def _venue(self, market: str | None) -> VenueEmulator:
        every = emulators()
        if market is not None:
            for venue in every.values():
                if market in venue.markets:
                    return venue
        if len(every) == 1:
            return next(iter(every.values()))
        urls = [u for s in self.sources for u in s.urls()]
        head = self.sources[0].head() if self.sources else b""
        claimed = [v for v in every.values() if v.recordings.claims(urls, head)]
        if market is not None:
            claimed = [
                v for v in claimed if any(m.market == market for m in v.markets.values())
            ]
        if len(claimed) != 1:
            raise ExchangeError(
                f"cannot tell the venue of {self.name}: pass market= (a feed id: "
                f"{', '.join(f for v in every.values() for f in v.markets)})"
            )
        return claimed[0]

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
        feeds = {r.feed for r in recordings}
        if len(feeds) != 1:
            raise ExchangeError(
                f"cannot chain recordings of different markets: "
                f"{sorted(r.market for r in recordings)}"
            )
        return cls([s for r in recordings for s in r.sources], feeds.pop())

    @property
    def feed(self) -> str:
        return self.emulator.feed

    def events(self) -> Iterator[Event]:
        return chain.from_iterable(s.events() for s in self.sources)

    def _scan(self, source: _Source, inference: Any) -> None:
        streams = self.streams
        fmt = self.format
        bare: bytes | None = None  # first symbol-less snapshot of this source
        depth_symbols: set[str] = set()
        for url in source.urls():
            inference.url(url)
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
                    sym = fmt.symbol_of(key)
                    if sym is not None:
                        self.symbols.add(sym)
                        if fmt.is_depth(key):
                            depth_symbols.add(sym)
                    inference.stream(key)
                else:
                    streams[key] = n + 1
                if hinted < _HINT_FRAMES:
                    hinted += 1
                    inference.frame(key, payload)
            elif kind == SNAPSHOT:
                self.snapshots += 1
                if key is None:
                    bare = bare or payload
                else:
                    self.symbols.add(key)
                    self.first_snapshots.setdefault(key, payload)
            elif kind == INFO:
                inference.url(key)
                if self.exchange_info is None:
                    self.exchange_info = payload
                self.listings.setdefault(key, payload)
            else:
                inference.url(key[0])
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
