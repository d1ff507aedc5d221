"""Benchmark of OKX book frames: decode alone vs decode + the legacy checksum.

Run: ``python benchmarks/bench_okx_checksum.py``. Replays the 290 recorded ``books`` frames of
``tests/fixtures/okx/OKX.ws.1.0.txt`` (BTC-USDT spot, UNI-USD-SWAP, BTC-USD-220527; snapshots of
400 levels and 100 ms updates, ~900 bytes a frame on average) through ``OkxFeed.decode`` into a
sink, in recorded order. Figures are µs per book frame, the median of several runs (each run
replays every frame), timed with ``time.perf_counter_ns``:

* decode, checksum 0: the frames with their checksum set to 0, as OKX sends them since 2026:
  one parse a frame (floats range-checked in C), no level texts kept;
* decode + texts: the frames as recorded (non-zero checksums): a second, string-only parse of
  each frame and the level texts the checksum needs, kept sorted by price as ``"px:sz"``
  (``decode.TextBook``);
* + apply: the same, each change also applied to an ``OrderBook`` (what the book keeper does);
* + apply + checksum: and the checksum computed and compared after every change (two slices of
  the sorted texts, one join, CRC32; the book is only compared in O(1)).

The checksum's share of a book frame's cost is (last - "decode, checksum 0 + apply") / last.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from analyzer.events import BookChange, Instrument
from analyzer.feed.book import OrderBook
from analyzer.venues.okx import MARKETS, OkxFeed

ROOT = Path(__file__).resolve().parent.parent
RECORDING = ROOT / "tests/fixtures/okx/OKX.ws.1.0.txt"
RUNS = 25
SYMBOLS = {"okx_spot": "BTC-USDT", "okx_swap": "UNI-USD-SWAP", "okx_futures": "BTC-USD-220527"}
INVERSE = {  # the two inverse contracts of the recording (sizes stay contracts)
    "UNI-USD-SWAP": Instrument("okx_swap", "UNI-USD-SWAP", "okx", "perpetual", "UNI", "USD",
                               True, 10.0, 0.001, 1.0),
    "BTC-USD-220527": Instrument("okx_futures", "BTC-USD-220527", "okx", "future", "BTC", "USD",
                                 True, 100.0, 0.1, 1.0, 1653638400000 * 1_000_000),
}


class Sink:
    """Applies each change to its book (``apply``) and checks the checksum (``check``)."""

    def __init__(self, apply: bool, check: bool) -> None:
        self.apply, self.check = apply, check
        self.books: dict[str, OrderBook] = {}
        self.checksum: Callable[[str, OrderBook], int] | None = None
        self.mismatches = 0

    def on_book(self, ev: BookChange) -> None:
        if not self.apply:
            return
        book = self.books.get(ev.symbol)
        if book is None:
            book = self.books[ev.symbol] = OrderBook()
        if ev.is_snapshot:
            book.apply_snapshot(ev.bids, ev.asks)
        else:
            book.apply(ev.bids, ev.asks)
        if self.check and ev.checksum and self.checksum is not None:
            self.mismatches += self.checksum(ev.symbol, book) != ev.checksum


def book_frames(zero_checksum: bool) -> list[bytes]:
    out = []
    for line in RECORDING.read_text().splitlines()[1:]:
        frame = line.split(": ", 1)[1]
        if frame.startswith('{"arg":{"channel":"books"'):
            if zero_checksum:
                d = json.loads(frame)
                d["data"][0]["checksum"] = 0
                frame = json.dumps(d, separators=(",", ":"))
            out.append(frame.encode())
    return out


def bench(frames: list[bytes], apply: bool, check: bool) -> tuple[float, int]:
    """Median µs per frame over RUNS replays, and the checksum mismatches of the last."""
    sink = Sink(apply, check)
    feeds = []
    for venue, symbol in SYMBOLS.items():
        feed = OkxFeed(MARKETS[venue], [symbol], ["depth"], sink)  # type: ignore[arg-type]
        feed.set_instruments(INVERSE)
        feeds.append(feed)
    sink.checksum = _checksum(feeds)
    by_symbol = {f.symbols[0].encode(): f for f in feeds}
    # each frame goes to its market's feed (as its own connection would)
    work = [(by_symbol[f[36 : f.index(b'"}')]].decode, f) for f in frames]
    times = []
    for _ in range(RUNS):
        sink.mismatches = 0
        t0 = time.perf_counter_ns()
        for decode, frame in work:
            decode(frame, 0)
        times.append((time.perf_counter_ns() - t0) / len(work) / 1e3)
    return statistics.median(times), sink.mismatches


def _checksum(feeds: list[OkxFeed]) -> Callable[[str, OrderBook], int]:
    rules = {f.symbols[0]: f.rules for f in feeds}
    return lambda symbol, book: rules[symbol].checksum(symbol, book)


def main() -> None:
    plain, recorded = book_frames(zero_checksum=True), book_frames(zero_checksum=False)
    assert len(recorded) == 290, len(recorded)
    decode0, _ = bench(plain, apply=False, check=False)
    texts, _ = bench(recorded, apply=False, check=False)
    apply0, _ = bench(plain, apply=True, check=False)
    apply_texts, _ = bench(recorded, apply=True, check=False)
    full, mismatches = bench(recorded, apply=True, check=True)
    assert mismatches == 0, mismatches
    print(f"OKX books, {len(recorded)} recorded frames, median of {RUNS} replays "
          f"(python {sys.version.split()[0]}):")
    print(f"  decode, checksum 0 (one parse)        {decode0:7.2f} µs/frame")
    print(f"  decode + level texts (two parses)     {texts:7.2f} µs/frame")
    print(f"  decode, checksum 0, + apply           {apply0:7.2f} µs/frame")
    print(f"  decode + texts + apply                {apply_texts:7.2f} µs/frame")
    print(f"  decode + texts + apply + checksum     {full:7.2f} µs/frame")
    share = (full - apply0) / full
    print(f"  checksum's share of a checked frame   {share:7.0%} "
          f"(texts {texts - decode0:.2f} µs + CRC {full - apply_texts:.2f} µs of {full:.2f})")


if __name__ == "__main__":
    main()
