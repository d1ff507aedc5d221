"""BingX captures replayed by the local exchange, swap and spot: the collector's raw capture of
gzip frames (``<ts> ~<base64>`` lines) is sent back byte for byte (no inflate and gzip again),
the market is told from the frames, and the real collector rebuilds the books and stores every
trade once.

The captures are written here with ``RawCapture`` as the collector writes them: a book snapshot
(``action: all``) and 60 updates a symbol, trades, bookTickers, the venue's ping and an ack,
in each market's own layout (swap: ``dataType`` first; spot: ``data`` first, ``success``),
gzipped at level 9 (the local exchange's own frames are level 1: a frame gzipped again would
differ), and the listing as a recorded REST body.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import random
import shutil
from pathlib import Path
from typing import Any

import pytest
import websockets
from harness import drained

from analyzer import config
from analyzer.collector import Collector
from analyzer.exchange import Faults, LocalExchange, Replay
from analyzer.exchange.recordings import FRAME, Recording
from analyzer.store.capture import RawCapture
from analyzer.store.research import query
from analyzer.venues.bingx.emulate import info

pytestmark = pytest.mark.slow

T0 = 1_767_571_200_000_000_000  # 2026-01-05 00:00 UTC, ns
SYMBOLS = {"BTC-USDT": (60_000.0, 0.1, 3), "ETH-USDT": (3_000.0, 0.01, 2)}  # mid, tick, decimals
LEVELS = 20
UPDATES = 60


def gz(text: bytes) -> bytes:
    return gzip.compress(text, compresslevel=9, mtime=0)


class Tape:
    """The frames of one market, in its layout, and what they make: the books and trades."""

    def __init__(self, feed: str, seed: int = 7) -> None:
        self.feed = feed
        self.spot = feed == "bingx_spot"
        self.rng = random.Random(seed)
        self.frames: list[tuple[bytes, bytes]] = []  # (stream, text) in order
        self.books: dict[str, tuple[dict[float, float], dict[float, float]]] = {}
        self.trades: dict[str, int] = {}  # symbol -> trades sent
        self.trade_id = 5_000_000
        self.ms = T0 // 1_000_000

    def _frame(self, symbol: str, channel: str, data: dict[str, Any]) -> None:
        stream = f"{symbol}@{channel}"
        body = json.dumps(data, separators=(",", ":"))
        if self.spot:
            text = f'{{"code":0,"data":{body},"dataType":"{stream}","success":true}}'
        else:
            text = f'{{"code":0,"dataType":"{stream}","data":{body}}}'
        self.frames.append((stream.encode(), text.encode()))

    def depth(self, symbol: str, last_id: int, bids: list[list[str]], asks: list[list[str]],
              snapshot: bool) -> None:
        book_bids, book_asks = self.books.setdefault(symbol, ({}, {}))
        for side, levels in ((book_bids, bids), (book_asks, asks)):
            if snapshot:
                side.clear()
            for p, q in levels:
                if float(q):
                    side[float(p)] = float(q)
                else:
                    side.pop(float(p), None)
        time_key = "timestamp" if self.spot else "time"
        self._frame(symbol, "incrDepth", {"action": "all" if snapshot else "update",
                                          "lastUpdateId": last_id, time_key: self.ms,
                                          "bids": bids, "asks": asks})

    def trade(self, symbol: str, price: str, size: str, sell: bool) -> None:
        self.trades[symbol] = self.trades.get(symbol, 0) + 1
        if self.spot:
            self.trade_id += 1
            self._frame(symbol, "trade", {"E": self.ms, "T": self.ms, "e": "trade", "m": sell,
                                          "p": price, "q": size, "s": symbol,
                                          "t": str(self.trade_id)})
        else:
            self._frame(symbol, "trade", [{"q": size, "p": price, "T": self.ms, "m": sell,
                                           "s": symbol}])

    def quote(self, symbol: str) -> None:
        bids, asks = self.books[symbol]
        b, a = max(bids), min(asks)
        self._frame(symbol, "bookTicker", {"e": "bookTicker", "u": 1, "E": self.ms,
                                           "T": self.ms, "s": symbol, "b": str(b),
                                           "B": str(bids[b]), "a": str(a), "A": str(asks[a])})

    def make(self) -> Tape:
        rng = self.rng
        ids = {s: 1_000_000 * (n + 1) for n, s in enumerate(SYMBOLS)}
        for symbol, (mid, tick, dec) in SYMBOLS.items():
            def px(k: int, mid: float = mid, tick: float = tick, dec: int = dec) -> str:
                return f"{mid + k * tick:.{dec}f}"
            bids = [[px(-k), f"{rng.uniform(0.1, 5):.4f}"] for k in range(1, LEVELS + 1)]
            asks = [[px(k), f"{rng.uniform(0.1, 5):.4f}"] for k in range(1, LEVELS + 1)]
            self.depth(symbol, ids[symbol], bids, asks, snapshot=True)
        for i in range(UPDATES):
            for symbol, (mid, tick, dec) in SYMBOLS.items():
                self.ms += 50
                ids[symbol] += 1
                side = rng.choice((-1, 1))
                k = rng.randint(1, LEVELS + 3)
                price = f"{mid + side * k * tick:.{dec}f}"
                size = "0.0000" if i % 7 == 3 else f"{rng.uniform(0.1, 5):.4f}"
                asks_first = [[price, size]] if side > 0 else []
                self.depth(symbol, ids[symbol], [] if side > 0 else [[price, size]],
                           asks_first, snapshot=False)
                self.quote(symbol)
                if i % 3 == 0:
                    self.trade(symbol, f"{mid:.{dec}f}", f"{rng.uniform(0.01, 1):.4f}",
                               i % 2 == 0)
        return self

    def capture(self, root: Path) -> Path:
        """The collector's raw capture of these frames (and a ping, an ack, the listing)."""
        cap = RawCapture(root, self.feed)
        ts = T0
        if self.spot:
            listing = info.spot_symbols([info.spot_symbol(s, tick, tick)
                                         for s, (_, tick, _) in SYMBOLS.items()])
            cap.write_rest(ts, "/openApi/spot/v1/common/symbols", listing)
            cap.write_binary(ts, gz(b'{"ping":"00ab","time":"2026-01-05T08:00:00.000+0800"}'))
        else:
            listing = info.body([info.contract(s, s.split("-")[0], "USDT", tick, tick, n)
                                 for n, (s, (_, tick, _)) in enumerate(SYMBOLS.items())])
            cap.write_rest(ts, "/openApi/swap/v2/quote/contracts", listing)
            cap.write_binary(ts, gz(b"Ping"))
        cap.write_binary(ts, gz(b'{"id":"BTC-USDT@trade","code":0,"msg":"","dataType":"",'
                                b'"data":null}'))
        for n, (_, text) in enumerate(self.frames):
            cap.write_binary(ts + n * 1_000_000, gz(text))
        cap.close()
        return root / self.feed

    def wire(self, streams: set[bytes]) -> list[bytes]:
        """The captured bytes of these streams' frames, in order."""
        return [gz(text) for stream, text in self.frames if stream in streams]


@pytest.mark.parametrize("feed", ["bingx_swap", "bingx_spot"])
def test_capture_read_as_sent_and_market_inferred(tmp_path: Path, feed: str) -> None:
    """A capture's frames are replay events holding the captured gzip bytes, routed by their
    stream; the ping and the ack are skipped; the market is told from the frames alone (the
    file renamed: no feed id in its path)."""
    tape = Tape(feed).make()
    folder = tape.capture(tmp_path / "raw")
    neutral = tmp_path / "elsewhere" / "recording.gz"
    neutral.parent.mkdir()
    shutil.copy(next(folder.iterdir()), neutral)
    rec = Recording.open(neutral)
    assert rec.feed == feed
    frames = [(key, payload) for _, kind, key, payload in rec.events() if kind == FRAME]
    assert frames == [(stream, gz(text)) for stream, text in tape.frames]
    assert rec.symbols == set(SYMBOLS)
    assert rec.listings  # the recorded listing answers the REST listing


async def _replay(ex: LocalExchange, tmp_path: Path, feed: str) -> Collector:
    channels = ["depth", "trades", "bookTicker"]
    cfg = config.parse({
        "feeds": [{"venue": feed, "symbols": list(SYMBOLS), "channels": channels,
                   "ws_url": ex.ws_url(feed), "rest_url": ex.base_url(feed)}],
        "store": {"data_dir": str(tmp_path / "data"),
                  "database": str(tmp_path / "data" / "analyzer.duckdb"), "flush_seconds": 0.3},
        "metrics": {"port": 0},
    })
    collector = Collector(cfg)
    await collector.start()
    try:
        await ex.wait_replays_done(timeout=30)
        await drained(collector)
    finally:
        await collector.stop()
    return collector


@pytest.mark.parametrize("feed", ["bingx_swap", "bingx_spot"])
def test_capture_replayed_through_the_collector(tmp_path: Path, feed: str) -> None:
    """The capture replayed through the local exchange and the real collector: every book in
    sync and equal, level for level, to what the frames make; no gap, no decode error; every
    trade stored once."""
    tape = Tape(feed).make()
    folder = tape.capture(tmp_path / "raw")

    async def main() -> Collector:
        ex = LocalExchange(port=0)
        # a second before the first frame: every subscription (one a request, paced) is in
        ex.add_replay(Replay.from_path(folder, feed, speed=0, faults=Faults(stall_at=[(0, 1.0)])))
        await ex.start()
        try:
            return await _replay(ex, tmp_path, feed)
        finally:
            await ex.stop()

    collector = asyncio.run(main())
    runner = collector.runners[0]
    assert runner.books.stats.gaps == 0
    assert set(runner.decode_errors) <= {"markPrice"}  # swap: premiumIndex not recorded
    for symbol, (bids, asks) in tape.books.items():
        sb = runner.books.books[symbol]
        assert sb.in_sync, symbol
        assert sb.book.bids(LEVELS) == sorted(bids.items(), reverse=True)[:LEVELS], symbol
        assert sb.book.asks(LEVELS) == sorted(asks.items())[:LEVELS], symbol
    rows = query(tmp_path / "data" / "analyzer.duckdb",
                 "SELECT symbol, count(*), count(DISTINCT trade_id) FROM trades GROUP BY ALL"
                 ).rows()
    assert {s: (n, d) for s, n, d in rows} == {s: (n, n) for s, n in tape.trades.items()}
    [(quotes,)] = query(tmp_path / "data" / "analyzer.duckdb",
                        "SELECT count(*) FROM quotes WHERE source = 'venue'").rows()
    assert quotes == 2 * UPDATES


@pytest.mark.parametrize(("feed", "path"), [("bingx_swap", "/swap-market"),
                                            ("bingx_spot", "/market")])
def test_replay_sends_the_captured_bytes(tmp_path: Path, feed: str, path: str) -> None:
    """A client of the replay receives each captured frame of its streams byte for byte."""
    tape = Tape(feed).make()
    folder = tape.capture(tmp_path / "raw")
    streams = {b"BTC-USDT@incrDepth", b"BTC-USDT@trade", b"ETH-USDT@bookTicker"}
    expected = tape.wire(streams)

    async def main() -> list[bytes]:
        ex = LocalExchange(port=0)
        ex.add_replay(Replay.from_path(folder, feed, speed=0, faults=Faults(stall_at=[(0, 0.5)])))
        await ex.start()
        got: list[bytes] = []
        try:
            async with websockets.connect(ex.ws_url(feed) + path, ping_interval=None) as ws:
                for s in sorted(streams):
                    await ws.send(json.dumps({"id": s.decode(), "reqType": "sub",
                                              "dataType": s.decode()}))
                while len(got) < len(expected):
                    raw = await asyncio.wait_for(ws.recv(), 10)
                    assert isinstance(raw, bytes)
                    if gzip.decompress(raw).startswith(b'{"code":0,"d'):  # data, not acks
                        got.append(raw)
        finally:
            await ex.stop()
        return got

    assert asyncio.run(main()) == expected
