"""OrderBook: hand-computed values on small books, a randomized run against a plain-dict model,
and a replay of a real Binance USDⓈ-M recording checked against the venue's own bookTicker."""

from __future__ import annotations

import gc
import gzip
import json
import random
import weakref
from bisect import bisect_right
from itertools import pairwise
from pathlib import Path

import pytest

import analyzer.feed.book as book_module
from analyzer.feed.book import OrderBook

RECORDING = Path(__file__).parent / "fixtures/binance/usdm_2024/btcusdt_20240808.gz"


def small_book() -> OrderBook:
    """bids 99@3 98@2 97@1, asks 101@1 102@2 103@5: mid 100."""
    book = OrderBook()
    book.apply_snapshot(
        [(99.0, 3.0), (98.0, 2.0), (97.0, 1.0)], [(101.0, 1.0), (102.0, 2.0), (103.0, 5.0)]
    )
    return book


# -- hand-computed values -------------------------------------------------------------------------


def test_empty_book() -> None:
    book = OrderBook()
    assert len(book) == 0
    assert book.top() is None
    assert book.best_bid() is None
    assert book.best_ask() is None
    assert book.mid() is None
    assert book.microprice() is None
    assert not book.is_crossed()
    assert book.depth(100) == (0.0, 0.0)
    assert book.walk("buy", 1.0) is None
    assert book.slippage_bps("sell", 1.0) is None
    assert book.imbalance(5) is None
    assert book.bids(5) == []
    assert book.asks(5) == []


def test_one_sided_book() -> None:
    book = OrderBook()
    book.apply([(99.0, 2.0)], [])
    assert book.best_bid() == (99.0, 2.0)
    assert book.top() is None
    assert book.mid() is None
    assert book.depth(100) == (0.0, 0.0)  # no mid, no band
    assert book.walk("sell", 99.0) == 99.0  # walking needs no mid
    assert book.slippage_bps("sell", 99.0) is None
    assert book.imbalance(1) == 1.0


def test_top_and_levels() -> None:
    book = small_book()
    assert book.top() == (99.0, 3.0, 101.0, 1.0)
    assert book.best_bid() == (99.0, 3.0)
    assert book.best_ask() == (101.0, 1.0)
    assert book.mid() == 100.0
    assert book.bids(2) == [(99.0, 3.0), (98.0, 2.0)]
    assert book.asks(10) == [(101.0, 1.0), (102.0, 2.0), (103.0, 5.0)]
    assert book.bids(0) == []
    assert (len(book), book.bid_count, book.ask_count) == (6, 3, 3)


def test_snapshot_replaces_state_and_skips_zero_sizes() -> None:
    book = small_book()
    book.apply_snapshot([(50.0, 1.0), (49.0, 0.0)], [(51.0, 0.0), (52.0, 4.0), (53.0, 0.0)])
    assert book.bids(10) == [(50.0, 1.0)]
    assert book.asks(10) == [(52.0, 4.0)]
    assert len(book) == 2
    book._check()
    book.clear()
    assert len(book) == 0
    assert book.top() is None


def test_apply_sets_updates_and_deletes() -> None:
    book = small_book()
    book.apply(
        [(99.0, 0.0), (98.0, 7.0), (99.5, 1.0)],  # delete the best bid, resize one, new best
        [(103.0, 0.0), (100.5, 2.5)],  # delete the worst ask, new best
    )
    assert book.bids(10) == [(99.5, 1.0), (98.0, 7.0), (97.0, 1.0)]
    assert book.asks(10) == [(100.5, 2.5), (101.0, 1.0), (102.0, 2.0)]
    book._check()


def test_delete_of_absent_level_is_a_no_op() -> None:
    book = small_book()
    book.apply([(98.5, 0.0), (10.0, 0.0)], [(101.5, 0.0)])
    assert book.bids(10) == [(99.0, 3.0), (98.0, 2.0), (97.0, 1.0)]
    assert book.asks(10) == [(101.0, 1.0), (102.0, 2.0), (103.0, 5.0)]
    assert len(book) == 6
    book._check()


def test_crossed_and_locked() -> None:
    book = small_book()
    assert not book.is_crossed()
    book.apply([(101.0, 1.0)], [])  # locked: bid == ask
    assert book.is_crossed()
    book.apply([(101.0, 0.0), (101.5, 1.0)], [])  # crossed
    assert book.is_crossed()
    book.apply([(101.5, 0.0)], [])
    assert not book.is_crossed()


def test_depth_band_includes_the_edge_level() -> None:
    # mid = (99.5 + 100.5) / 2 = 100; ±100 bps: 99.0 and 101.0, both exact in binary
    book = OrderBook()
    book.apply_snapshot(
        [(99.5, 2.0), (99.0, 1.0), (98.99, 5.0)],
        [(100.5, 2.0), (101.0, 1.0), (101.01, 5.0)],
    )
    assert book.depth(100) == pytest.approx((2 * 99.5 + 99.0, 2 * 100.5 + 101.0))  # 298, 302
    assert book.depth(60) == pytest.approx((199.0, 201.0))  # 99.4 .. 100.6
    # the band edge is computed as the spec says, mid * (1 ± bps/1e4), in floats: at 50 bps the
    # ask edge is 100 * 1.005 = 100.49999999999999, so the ask at 100.5 is (rightly) outside
    bid, ask = book.depth(50)
    assert (bid, ask) == (pytest.approx(199.0), 0.0)
    assert book.depth(0) == (0.0, 0.0)  # nothing exactly at the mid
    assert book.depth(10_000) == pytest.approx((298.0 + 5 * 98.99, 302.0 + 5 * 101.01))


def test_walk_and_slippage_with_a_partially_consumed_level() -> None:
    book = small_book()
    # buy 300: all of 101@1 (101), then 199 of the 204 at 102 -> 199/102 units
    vwap = 300 / (1 + 199 / 102)
    assert vwap == pytest.approx(30600 / 301)
    assert book.walk("buy", 300.0) == pytest.approx(vwap)
    assert book.slippage_bps("buy", 300.0) == pytest.approx(50000 / 301)  # (vwap-100)/100*1e4
    # sell 400: all of 99@3 (297), then 103 of the 196 at 98
    assert book.walk("sell", 400.0) == pytest.approx(39200 / 397)
    assert book.slippage_bps("sell", 400.0) == pytest.approx((100 - 39200 / 397) * 100)
    # exactly the first level, exactly the whole side
    assert book.walk("sell", 297.0) == 99.0
    assert book.walk("buy", 820.0) == pytest.approx(820 / 8)


def test_walk_beyond_the_visible_book_is_none() -> None:
    book = small_book()  # asks hold 101 + 204 + 515 = 820, bids 297 + 196 + 97 = 590
    assert book.walk("buy", 820.01) is None
    assert book.slippage_bps("buy", 820.01) is None
    assert book.walk("sell", 591.0) is None
    with pytest.raises(ValueError):
        book.walk("buy", 0.0)
    with pytest.raises(ValueError):
        book.walk("hold", 1.0)  # type: ignore[arg-type]


def test_imbalance_and_microprice() -> None:
    book = small_book()
    assert book.imbalance(1) == pytest.approx((3 - 1) / (3 + 1))
    assert book.imbalance(2) == pytest.approx((5 - 3) / (5 + 3))
    assert book.imbalance(3) == pytest.approx((6 - 8) / (6 + 8))
    assert book.imbalance(100) == book.imbalance(3)
    assert book.imbalance(0) is None
    assert book.microprice() == pytest.approx((99 * 1 + 101 * 3) / (3 + 1))  # 100.5


# -- randomized, against a plain-dict model -------------------------------------------------------


def naive_depth(
    bids: dict[float, float], asks: dict[float, float], bps: float
) -> tuple[float, float]:
    mid = (max(bids) + min(asks)) / 2
    lo, hi = mid * (1 - bps / 1e4), mid * (1 + bps / 1e4)
    return (
        sum(p * s for p, s in bids.items() if p >= lo),
        sum(p * s for p, s in asks.items() if p <= hi),
    )


def naive_walk(levels: list[tuple[float, float]], notional: float) -> float | None:
    """VWAP over ``levels`` (best first), the last one partly used; None if they run out."""
    filled = qty = 0.0
    for p, s in levels:
        if filled + p * s >= notional:
            return notional / (qty + (notional - filled) / p)
        filled += p * s
        qty += s
    return None


@pytest.mark.parametrize("load", [book_module._LOAD, 4])
def test_random_updates_match_a_plain_dict_model(load: int, monkeypatch: pytest.MonkeyPatch
                                                 ) -> None:
    # Few distinct prices and many ops: blocks split, merge and empty out many times (all the
    # more with blocks of 1-8 keys).
    for name, value in (("_LOAD", load), ("_MAX", 2 * load), ("_MIN", load // 4)):
        monkeypatch.setattr(book_module, name, value)
    rng = random.Random(7)

    def price(lo: float, hi: float) -> float:
        return round(rng.uniform(lo, hi), 1)

    book = OrderBook()
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    for step in range(4000):
        if step % 1500 == 0:  # a fresh snapshot now and then
            bids = {price(500, 999): rng.choice([0.0, 1.5, 3.0]) for _ in range(400)}
            asks = {price(1000, 1500): rng.choice([0.0, 2.0]) for _ in range(400)}
            book.apply_snapshot(list(bids.items()), list(asks.items()))
            bids = {p: s for p, s in bids.items() if s}
            asks = {p: s for p, s in asks.items() if s}
        diff_b = [(price(500, 999), rng.choice([0.0, 0.0, 1.0, 2.5])) for _ in range(30)]
        diff_a = [(price(1000, 1500), rng.choice([0.0, 0.0, 1.0, 4.0])) for _ in range(30)]
        book.apply(diff_b, diff_a)
        for side, diff in ((bids, diff_b), (asks, diff_a)):
            for p, s in diff:
                if s:
                    side[p] = s
                else:
                    side.pop(p, None)
        assert book.top() == (max(bids), bids[max(bids)], min(asks), asks[min(asks)])
        if step % 100 == 0:
            book._check()
            assert book.bids(10**6) == sorted(bids.items(), reverse=True)
            assert book.asks(10**6) == sorted(asks.items())
            for bps in (0.5, 10, 100, 1000, 5000):
                assert book.depth(bps) == pytest.approx(naive_depth(bids, asks, bps), rel=1e-12)
            for n in (1e3, 1e5, 1e6):
                assert book.walk("buy", n) == pytest.approx(naive_walk(sorted(asks.items()), n))
    assert len(book) == len(bids) + len(asks)


def test_dropped_blocks_are_freed_without_the_garbage_collector() -> None:
    """A book holds no reference cycles, so reference counting alone frees what it drops:
    blocks merged away, a side replaced by a snapshot, a book let go (a cycle would leave them
    to the cyclic collector, whose full passes stall the event loop)."""
    rng = random.Random(3)
    gc.disable()
    try:
        book = OrderBook()
        book.apply_snapshot([(float(p), 1.0) for p in range(1, 2001)],
                            [(float(p), 1.0) for p in range(3001, 5001)])
        first = [weakref.ref(b) for b in book._bid_blocks + book._ask_blocks]
        for _ in range(300):  # deletes and inserts: blocks merge and split
            book.apply([(float(rng.randint(1, 2000)), rng.choice([0.0, 2.0])) for _ in range(40)],
                       [(float(rng.randint(3001, 5000)), rng.choice([0.0, 2.0]))
                        for _ in range(40)])
        book._check()
        live = {id(b) for b in book._bid_blocks + book._ask_blocks}
        merged = [r for r in first if r() is None or id(r()) not in live]
        assert merged and all(r() is None for r in merged)
        before = [weakref.ref(b) for b in book._bid_blocks + book._ask_blocks]
        book.apply_snapshot([(1.0, 1.0)], [(2.0, 1.0)])
        assert all(r() is None for r in before)
        last = [weakref.ref(b) for b in book._bid_blocks + book._ask_blocks]
        del book
        assert all(r() is None for r in last)
    finally:
        gc.enable()


# -- a real recording -----------------------------------------------------------------------------


def load_recording() -> tuple[dict, list[dict], list[dict]]:
    """The REST snapshot, the depth diffs and the bookTickers, in file order."""
    snapshot = None
    diffs = []
    tickers = []
    with gzip.open(RECORDING, "rt") as f:
        for line in f:
            if "@trade" in line:
                continue
            msg = json.loads(line.partition(" ")[2])
            if "lastUpdateId" in msg:
                snapshot = msg
            elif msg["stream"] == "btcusdt@depth@0ms":
                diffs.append(msg["data"])
            elif msg["stream"] == "btcusdt@bookTicker":
                tickers.append(msg["data"])
    assert snapshot is not None
    return snapshot, diffs, tickers


def levels(raw: list[list[str]]) -> list[tuple[float, float]]:
    return [(float(p), float(s)) for p, s in raw]


def test_replay_matches_book_ticker_and_a_naive_book() -> None:
    snapshot, diffs, tickers = load_recording()
    last_id = snapshot["lastUpdateId"]
    applied = [d for d in diffs if d["u"] >= last_id]
    assert applied[0]["U"] <= last_id <= applied[0]["u"]
    for prev, d in pairwise(applied):
        assert d["pu"] == prev["u"], "gap in the recording"

    # A ticker with id b shows the book right after diff k when u_k <= b < U_(k+1).
    last_ids = [d["u"] for d in applied]
    checks: dict[int, list[dict]] = {}
    for t in tickers:
        k = bisect_right(last_ids, t["u"]) - 1
        if 0 <= k < len(applied) - 1 and t["u"] < applied[k + 1]["U"]:
            checks.setdefault(k, []).append(t)
    assert sum(map(len, checks.values())) == 629

    book = OrderBook()
    book.apply_snapshot(levels(snapshot["bids"]), levels(snapshot["asks"]))
    bids = dict(levels(snapshot["bids"]))  # the naive model: plain dicts
    asks = dict(levels(snapshot["asks"]))
    mismatches = []
    for k, d in enumerate(applied):
        diff_b, diff_a = levels(d["b"]), levels(d["a"])
        book.apply(diff_b, diff_a)
        for side, diff in ((bids, diff_b), (asks, diff_a)):
            for p, s in diff:
                if s:
                    side[p] = s
                else:
                    side.pop(p, None)
        for t in checks.get(k, ()):
            expected = (float(t["b"]), float(t["B"]), float(t["a"]), float(t["A"]))
            if book.top() != expected:
                mismatches.append((t["u"], book.top(), expected))
    assert mismatches == []

    book._check()
    assert book.bids(10**6) == sorted(bids.items(), reverse=True)
    assert book.asks(10**6) == sorted(asks.items())
    assert not book.is_crossed()
    for bps in (1, 10, 25, 50, 100, 200, 1000):
        assert book.depth(bps) == pytest.approx(naive_depth(bids, asks, bps), rel=1e-12)
    ask_levels = sorted(asks.items())
    bid_levels = sorted(bids.items(), reverse=True)
    for notional in (1e3, 1e4, 1e5, 1e6, 1e7, 1e9):
        assert book.walk("buy", notional) == pytest.approx(naive_walk(ask_levels, notional))
        assert book.walk("sell", notional) == pytest.approx(naive_walk(bid_levels, notional))
    assert book.walk("buy", 1e12) is None  # more than the whole visible book
