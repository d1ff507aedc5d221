"""Book liquidity: ``analytics.liquidity`` on hand-computed books, many books in one call against
one call each, and on a real USDⓈ-M BTCUSDT book rebuilt from the recording, whose window
(``analytics.levels.window``) is checked against a plain-Python reading of the full book."""

from __future__ import annotations

import random

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from recordings import FIXTURES, read_recording

from analyzer.analytics.levels import frame, window
from analyzer.analytics.liquidity import liquidity
from analyzer.events import BookChange, Quote
from analyzer.feed.book import OrderBook
from analyzer.feed.books import BookKeeper
from analyzer.venues.binance import MARKETS, BinanceFeed

Levels = list[tuple[float, float]]

# bids 99.9@3 99@2 98@3 97@1, asks 100.1@1 101@2 102@3 103@1: mid 100
BIDS = [(99.9, 3.0), (99.0, 2.0), (98.0, 3.0), (97.0, 1.0)]
ASKS = [(100.1, 1.0), (101.0, 2.0), (102.0, 3.0), (103.0, 1.0)]


def levels_of(books: dict[int, tuple[Levels, Levels]]) -> pl.DataFrame:
    rows = [
        (book, side, i, p, s)
        for book, (bids, asks) in books.items()
        for side, lv in (("bid", bids), ("ask", asks))
        for i, (p, s) in enumerate(lv)
    ]
    return pl.DataFrame(rows, schema=["book", "side", "level", "price", "size"], orient="row")


def books_of(ids: list[int], inverse: bool = False, contract_size: float = 1.0,
             quote_usd: float = 1.0, in_sync: bool = True) -> pl.DataFrame:
    return pl.DataFrame({
        "book": ids,
        "ts": [1_000 + i for i in ids],
        "venue": ["binance_usdm"] * len(ids),
        "symbol": [f"S{i}" for i in ids],
        "inverse": [inverse] * len(ids),
        "contract_size": [contract_size] * len(ids),
        "quote_usd": [quote_usd] * len(ids),
        "in_sync": [in_sync] * len(ids),
    })


def one(frame: pl.DataFrame, **where: float) -> dict:
    rows = frame.filter(*(pl.col(k) == v for k, v in where.items())).to_dicts()
    assert len(rows) == 1
    return rows[0]


def close(a: float | None, b: float, rel: float = 1e-12) -> bool:
    return a is not None and abs(a - b) <= rel * abs(b)


# -- hand-computed books ------------------------------------------------------------------------


def test_summary_of_a_small_book() -> None:
    summary, _, _ = liquidity(levels_of({7: (BIDS, ASKS)}), books_of([7]), top_n=2)
    s = summary.row(0, named=True)
    assert s["status"] == "ok" and (s["book"], s["ts"], s["symbol"]) == (7, 1007, "S7")
    assert (s["best_bid"], s["best_ask"], s["mid"]) == (99.9, 100.1, 100.0)
    assert close(s["spread_bps"], 20.0, 1e-9)  # 0.2 / 100 * 1e4
    assert close(s["microprice"], (99.9 * 1 + 100.1 * 3) / 4)  # leans to the bigger bid
    assert close(s["imbalance"], (5 - 3) / 8)  # top 2: bids 3+2, asks 1+2
    assert (s["bid_levels"], s["ask_levels"]) == (4, 4)


def test_depth_per_band_counts_the_level_on_the_edge() -> None:
    _, depth, _ = liquidity(levels_of({1: (BIDS, ASKS)}), books_of([1], quote_usd=0.5),
                            bands_bps=(5, 100, 200, 300, 500))
    d = {r["band_bps"]: r for r in depth.to_dicts()}
    assert list(d) == [5.0, 100.0, 200.0, 300.0, 500.0]
    # 5 bps: 99.95 .. 100.05 holds no level; the deeper levels show the band is complete
    assert (d[5.0]["bid_quote"], d[5.0]["ask_quote"]) == (0.0, 0.0)
    # 100 bps: the edges 99.0 and 101.0 are levels and count
    assert close(d[100.0]["bid_quote"], 99.9 * 3 + 99.0 * 2)
    assert close(d[100.0]["ask_quote"], 100.1 * 1 + 101.0 * 2)
    assert close(d[200.0]["bid_quote"], 99.9 * 3 + 99.0 * 2 + 98.0 * 3)
    assert close(d[300.0]["ask_quote"], 100.1 + 202.0 + 306.0 + 103.0)  # edge 103 = last level
    # USD at 0.5 USD per quote unit
    assert close(d[100.0]["bid_usd"], (99.9 * 3 + 99.0 * 2) * 0.5)
    # 500 bps reaches past the deepest level given: the levels cannot show it complete
    assert d[500.0]["bid_quote"] is None and d[500.0]["ask_usd"] is None


def test_slippage_walks_into_a_partial_last_level() -> None:
    _, _, slip = liquidity(levels_of({1: (BIDS, ASKS)}), books_of([1]),
                           notionals_usd=(50, 300, 10_000))
    s = one(slip, notional_usd=300.0)
    # buy 300: 100.1 of the first ask, then 199.9 of 101.0
    buy = 300 / (1 + 199.9 / 101.0)
    assert close(s["buy_vwap"], buy) and close(s["buy_bps"], (buy - 100) / 100 * 1e4)
    # sell 300: 299.7 of the first bid, then 0.3 of 99.0
    sell = 300 / (3 + 0.3 / 99.0)
    assert close(s["sell_vwap"], sell) and close(s["sell_bps"], (100 - sell) / 100 * 1e4)
    assert s["buy_reason"] is None and s["sell_reason"] is None
    small = one(slip, notional_usd=50.0)
    assert close(small["buy_vwap"], 100.1) and close(small["sell_vwap"], 99.9)  # best level
    big = one(slip, notional_usd=10_000.0)  # the book holds ~1,000 per side
    assert big["buy_vwap"] is None and big["buy_bps"] is None and big["sell_vwap"] is None
    assert big["buy_reason"] == big["sell_reason"] == "insufficient_depth"


def test_slippage_in_a_non_usd_quote() -> None:
    """quote_usd 0.5: 100 USD is 200 quote units; the VWAP is in the quote currency."""
    _, _, slip = liquidity(levels_of({1: (BIDS, ASKS)}), books_of([1], quote_usd=0.5),
                           notionals_usd=(100,))
    s = slip.row(0, named=True)
    assert close(s["buy_vwap"], 200 / (1 + 99.9 / 101.0))


def test_inverse_book() -> None:
    """COIN-M, 100 USD contracts: a level's notional is size * 100 USD, its base size * 100 /
    price coins."""
    bids = [(49_990.0, 10.0), (49_900.0, 20.0), (49_000.0, 1.0)]
    asks = [(50_010.0, 5.0), (50_100.0, 30.0), (51_000.0, 1.0)]
    summary, depth, slip = liquidity(
        levels_of({3: (bids, asks)}),
        books_of([3], inverse=True, contract_size=100.0, quote_usd=7.0),  # quote_usd ignored
        bands_bps=(10, 100), notionals_usd=(2_000, 3_000, 10_000),
    )
    assert summary["mid"][0] == 50_000.0
    d10 = one(depth, band_bps=10.0)
    assert (d10["bid_quote"], d10["ask_quote"]) == (1_000.0, 500.0)
    assert (d10["bid_usd"], d10["ask_usd"]) == (1_000.0, 500.0)
    d100 = one(depth, band_bps=100.0)
    assert (d100["bid_usd"], d100["ask_usd"]) == (3_000.0, 3_500.0)
    s = one(slip, notional_usd=2_000.0)
    buy = 2_000 / (500 / 50_010 + 1_500 / 50_100)
    assert close(s["buy_vwap"], buy) and close(s["buy_bps"], (buy - 50_000) / 50_000 * 1e4)
    assert close(s["sell_vwap"], 2_000 / (1_000 / 49_990 + 1_000 / 49_900))
    s = one(slip, notional_usd=3_000.0)  # the sell fills the second bid exactly
    assert close(s["sell_vwap"], 3_000 / (1_000 / 49_990 + 2_000 / 49_900))
    assert close(s["buy_vwap"], 3_000 / (500 / 50_010 + 2_500 / 50_100))
    s = one(slip, notional_usd=10_000.0)  # asks hold 3,600 USD, bids 3,100
    assert s["buy_vwap"] is None and s["sell_vwap"] is None
    assert s["buy_reason"] == s["sell_reason"] == "insufficient_depth"


def test_invalid_books_give_nulls_with_their_status() -> None:
    books = {
        1: (BIDS, ASKS),  # out of sync
        2: ([(100.2, 1.0)], [(100.1, 1.0)]),  # crossed
        3: ([(100.1, 1.0)], [(100.1, 1.0)]),  # locked counts as crossed
        4: (BIDS, []),  # one-sided
    }
    meta = pl.concat([books_of([1], in_sync=False), books_of([2, 3, 4, 5])])  # 5: no levels
    summary, depth, slip = liquidity(levels_of(books), meta)
    assert summary["status"].cast(pl.String).to_list() == [
        "out_of_sync", "crossed", "crossed", "one_sided", "empty"]
    values = ["mid", "best_bid", "best_ask", "spread_bps", "microprice", "imbalance"]
    assert summary.select(values).null_count().row(0) == (5,) * len(values)
    assert summary["bid_levels"].to_list() == [4, 1, 1, 4, 0]  # counts of the rows given
    assert depth.height == 5 * 5
    assert depth.select("bid_quote", "ask_quote", "bid_usd", "ask_usd").null_count().row(0) == (
        25, 25, 25, 25)
    assert slip.height == 5 * 3
    assert slip.select("buy_vwap", "buy_bps", "sell_vwap", "sell_bps").null_count().row(0) == (
        15, 15, 15, 15)
    assert slip.filter(pl.col("book") == 2)["buy_reason"].cast(pl.String).to_list() == [
        "crossed"] * 3
    assert slip["sell_reason"].cast(pl.String).to_list()[::3] == [
        "out_of_sync", "crossed", "crossed", "one_sided", "empty"]


def test_many_books_in_one_call_equal_one_call_each() -> None:
    rng = random.Random(5)
    books: dict[int, tuple[Levels, Levels]] = {}
    for b in range(30):
        mid = rng.uniform(0.01, 70_000)
        tick = mid * 1e-5
        bids = [(mid - tick * (0.5 + i + rng.random() / 2), rng.expovariate(1 / (2e4 / mid)))
                for i in range(rng.randint(1, 400))]
        asks = [(mid + tick * (0.5 + i + rng.random() / 2), rng.expovariate(1 / (2e4 / mid)))
                for i in range(rng.randint(1, 400))]
        books[b * 7 + 1] = (bids, asks)
    books[300] = ([(10.0, 1.0)], [(9.0, 1.0)])  # crossed, among valid ones
    ids = list(books)
    meta = books_of(ids, quote_usd=0.9)
    levels = levels_of(books)
    together = liquidity(levels, meta)
    apart = [liquidity(levels.filter(pl.col("book") == b), meta.filter(pl.col("book") == b))
             for b in ids]
    for i, got in enumerate(together):
        assert_frame_equal(got, pl.concat([a[i] for a in apart]))
    assert together[2]["buy_vwap"].null_count() < together[2].height  # not all nulls
    # row order, side spelling and the books' order do not matter
    shuffled = levels.sample(fraction=1.0, shuffle=True, seed=1).with_columns(
        pl.col("side").cast(pl.Categorical))
    again = liquidity(shuffled, meta)
    for got, want in zip(again, together, strict=True):
        assert_frame_equal(got, want)


def test_repeated_level_is_an_error() -> None:
    levels = levels_of({1: (BIDS, ASKS)})
    with pytest.raises(ValueError, match="more than once"):
        liquidity(pl.concat([levels, levels.head(1)]), books_of([1]))


# -- a real book ----------------------------------------------------------------------------------


def recording_keeper() -> tuple[BookKeeper, BinanceFeed]:
    """The real USDⓈ-M feed and BookKeeper for BTCUSDT, the feed's diffs going to the keeper."""

    class Sink:
        def on_book(self, ev: BookChange) -> None:
            keeper.on_change(ev)

        def on_quote(self, ev: Quote) -> None: ...
        on_trade = on_ticker = on_liquidation = on_quote

        def on_trade_gap(self, *a: object) -> None: ...
        def on_duplicate(self) -> None: ...

    venue = "binance_usdm"
    feed = BinanceFeed(MARKETS[venue], ["BTCUSDT"], ["depth"], Sink(),
                       options={"depth_speed": "0ms"})
    keeper = BookKeeper(venue, ["BTCUSDT"], feed.rules, lambda s: None, lambda g: None,
                        lambda q: None)
    keeper.start()
    return keeper, feed


@pytest.fixture(scope="module")
def real_book() -> OrderBook:
    """The USDⓈ-M BTCUSDT book at the end of the recording, rebuilt by the real feed and
    BookKeeper (snapshot + every depth diff)."""
    keeper, feed = recording_keeper()
    for _, f in read_recording(FIXTURES / "usdm_2024/btcusdt_20240808.gz"):
        if f.startswith(b'{"lastUpdateId"'):
            keeper.on_snapshot(feed.decode_snapshot(f, "BTCUSDT", 0))
        elif b"@depth" in f[:40]:
            feed.decode(f, 0)
    sb = keeper.books["BTCUSDT"]
    assert sb.in_sync and sb.book.bid_count > 3_000 and sb.book.ask_count > 3_000
    return sb.book


def plain_depth(bids: Levels, asks: Levels, mid: float, x: float) -> tuple[float, float]:
    lo, hi = mid * (1 - x / 1e4), mid * (1 + x / 1e4)
    return (sum(p * s for p, s in bids if p >= lo), sum(p * s for p, s in asks if p <= hi))


def plain_vwap(levels: Levels, notional: float) -> float | None:
    left, qty = notional, 0.0
    for p, s in levels:
        if p * s >= left:
            return notional / (qty + left / p)
        left -= p * s
        qty += s
    return None


BANDS = (10, 25, 50, 100, 200)
NOTIONALS = (10_000, 100_000, 1_000_000, 10_000_000)


def run(book: OrderBook, cover: float, max_levels: int = 100_000, bands: tuple = BANDS,
        inverse: bool = False, contract_size: float = 1.0, **kw: object
        ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    w = window(book, bands, cover, inverse, contract_size, max_levels)
    levels, extra = frame([0], [w], bands)
    return liquidity(levels, books_of([0], inverse=inverse, contract_size=contract_size),
                     bands_bps=bands, extra=extra, **kw)  # type: ignore[arg-type]


def test_real_book_against_the_full_book(real_book: OrderBook) -> None:
    """Window + remainders give every band's depth of the full book (OrderBook.depth and a
    plain sum) and the full book's slippage, from ~1 % of its levels."""
    book = real_book
    bids, asks = book.bids(10**9), book.asks(10**9)
    mid = book.mid()
    assert mid is not None
    bp, _, ap, *_ = window(book, BANDS, max(NOTIONALS), False, 1.0, 100_000)
    in_widest = sum(p >= mid * 0.98 for p, _ in bids) + sum(p <= mid * 1.02 for p, _ in asks)
    assert len(bp) + len(ap) < in_widest / 5  # far fewer levels than the bands hold
    summary, depth, slip = run(book, max(NOTIONALS), notionals_usd=NOTIONALS)
    s = summary.row(0, named=True)
    assert s["status"] == "ok" and s["mid"] == mid
    assert s["microprice"] == pytest.approx(book.microprice(), rel=1e-15)
    assert s["imbalance"] == pytest.approx(book.imbalance(10), rel=1e-12)
    for x in BANDS:
        d = one(depth, band_bps=float(x))
        want = plain_depth(bids, asks, mid, x)
        assert close(d["bid_quote"], want[0], 1e-9) and close(d["ask_usd"], want[1], 1e-9)
        got = book.depth(x)
        assert close(d["bid_usd"], got[0], 1e-9) and close(d["ask_quote"], got[1], 1e-9)
    for n in NOTIONALS:
        r = one(slip, notional_usd=float(n))
        buy, sell = plain_vwap(asks, n), plain_vwap(bids, n)
        assert buy is not None and sell is not None
        assert close(r["buy_vwap"], buy, 1e-9) and close(r["sell_vwap"], sell, 1e-9)
        assert r["buy_bps"] == pytest.approx(book.slippage_bps("buy", n), rel=1e-6)
        assert r["sell_bps"] == pytest.approx(book.slippage_bps("sell", n), rel=1e-6)
        assert close(r["sell_bps"], (mid - sell) / mid * 1e4, 1e-6)


def test_real_book_as_an_inverse_book(real_book: OrderBook) -> None:
    """The same levels read as COIN-M contracts of 100 USD: depth = 100 USD per contract inside
    the band, summed per level from the full book."""
    bids, asks = real_book.bids(10**9), real_book.asks(10**9)
    mid = real_book.mid()
    assert mid is not None
    _, depth, slip = run(real_book, 2e5, inverse=True, contract_size=100.0,
                         notionals_usd=(1e4, 2e5))
    for x in BANDS:
        d = one(depth, band_bps=float(x))
        lo, hi = mid * (1 - x / 1e4), mid * (1 + x / 1e4)
        assert close(d["bid_usd"], sum(s * 100 for p, s in bids if p >= lo), 1e-9)
        assert close(d["ask_usd"], sum(s * 100 for p, s in asks if p <= hi), 1e-9)
    r = one(slip, notional_usd=2e5)
    left, qty = 2e5, 0.0  # sell 200k USD: 100 USD contracts, base = contracts * 100 / price
    for p, s in bids:
        if s * 100 >= left:
            qty += left / p
            break
        left -= s * 100
        qty += s * 100 / p
    else:
        raise AssertionError("the book cannot fill 200k USD")
    assert close(r["sell_vwap"], 2e5 / qty, 1e-9)


def test_window_is_the_top_of_the_full_book(real_book: OrderBook) -> None:
    bids, asks = real_book.bids(10**9), real_book.asks(10**9)
    mid = real_book.mid()
    assert mid is not None
    for cover in (0.0, 1.0, 1e5, 1e6, 5e7, 1e12):
        bp, bs, ap, asz, brem, *_ = window(real_book, BANDS, cover, False, 1.0, 100_000)
        assert list(zip(bp, bs, strict=True)) == bids[: len(bp)]
        assert list(zip(ap, asz, strict=True)) == asks[: len(ap)]
        for side, got in ((bids, len(bp)), (asks, len(ap))):
            # up to cover, then one more level; at least 10 (the imbalance's top_n)
            cum, n = 0.0, 0
            while n < len(side) and cum < cover:
                cum += side[n][0] * side[n][1]
                n += 1
            assert got == min(max(n + (cum >= cover), 10), len(side))
        # remainder = what lies in the band beyond the last exact level, None out of reach
        for i, x in enumerate(BANDS):
            lo = mid * (1 - x / 1e4)
            rest = [p * s for p, s in bids[len(bp):] if p >= lo]
            if bids[-1][0] > lo:
                assert brem[i] is None
            else:
                assert brem[i] is not None and abs(brem[i] - sum(rest)) <= 1e-9 * max(
                    sum(rest), 1.0)
                assert (brem[i] == 0.0) == (not rest)
    bp, _, ap, *_ = window(real_book, BANDS, 1e9, False, 1.0, 300)
    assert len(bp) == len(ap) == 300


def test_window_cut_by_max_levels_reports_what_it_cannot_show(real_book: OrderBook) -> None:
    """max_levels cuts the walk (null, insufficient depth), not the depth: the remainders
    still carry every band."""
    bids, asks = real_book.bids(10**9), real_book.asks(10**9)
    mid = real_book.mid()
    assert mid is not None
    _, depth, slip = run(real_book, 1e7, max_levels=20, notionals_usd=(1e4, 1e7))
    for x in BANDS:
        d = one(depth, band_bps=float(x))
        want = plain_depth(bids, asks, mid, x)
        assert close(d["bid_quote"], want[0], 1e-9) and close(d["ask_quote"], want[1], 1e-9)
    r = one(slip, notional_usd=1e7)
    assert r["buy_vwap"] is None and r["buy_reason"] == "insufficient_depth"
    assert close(one(slip, notional_usd=1e4)["buy_vwap"], plain_vwap(asks, 1e4) or 0.0, 1e-9)


def window_depths(book: OrderBook, cover: float, inverse: bool = False) -> list[tuple]:
    """Every band's (bid, ask) depth read from the window alone: its exact levels inside the
    band plus the remainder; None where the book does not reach the edge."""
    bp, bs, ap, asz, br, ar, *_ = window(book, BANDS, cover, inverse, 1.0, 100_000)
    mid = book.mid()
    assert mid is not None
    out = []
    for i, x in enumerate(BANDS):
        lo, hi = mid * (1 - x / 1e4), mid * (1 + x / 1e4)
        b = sum(s if inverse else p * s for p, s in zip(bp, bs, strict=True) if p >= lo)
        a = sum(s if inverse else p * s for p, s in zip(ap, asz, strict=True) if p <= hi)
        out.append((None if br[i] is None else b + br[i], None if ar[i] is None else a + ar[i]))
    return out


def full_depths(book: OrderBook, inverse: bool = False) -> list[tuple]:
    bids, asks = book.bids(10**9), book.asks(10**9)
    mid = book.mid()
    assert mid is not None
    out = []
    for x in BANDS:
        lo, hi = mid * (1 - x / 1e4), mid * (1 + x / 1e4)
        out.append((
            None if bids[-1][0] > lo else sum(s if inverse else p * s for p, s in bids if p >= lo),
            None if asks[-1][0] < hi else sum(s if inverse else p * s for p, s in asks if p <= hi),
        ))
    return out


def same_depths(got: list[tuple], want: list[tuple]) -> bool:
    return all((g is None) == (w is None) and (g is None or abs(g - w) <= 1e-9 * max(w, 1.0))
               for gs, ws in zip(got, want, strict=True) for g, w in zip(gs, ws, strict=True))


def test_windows_cut_while_the_real_book_changes() -> None:
    """A window every 10 diffs of the recording, as the live tick cuts them from a book that
    keeps changing: every band's depth from the window equals the full book's, linear and read
    as inverse, at every cut."""
    keeper, feed = recording_keeper()
    sb = keeper.books["BTCUSDT"]
    cuts = 0
    for _, f in read_recording(FIXTURES / "usdm_2024/btcusdt_20240808.gz"):
        if f.startswith(b'{"lastUpdateId"'):
            keeper.on_snapshot(feed.decode_snapshot(f, "BTCUSDT", 0))
        elif b"@depth" in f[:40]:
            feed.decode(f, 0)
            if sb.in_sync:
                cuts += 1
                if cuts % 10 == 0:
                    inverse = cuts % 30 == 0
                    assert same_depths(window_depths(sb.book, 1e6, inverse),
                                       full_depths(sb.book, inverse))
                if cuts % 500 == 0:
                    sb.book._check()
    assert cuts > 6_000


def test_windows_cut_while_a_random_book_changes() -> None:
    """Few prices and many changes: blocks split, merge and change between two cuts."""
    rng = random.Random(11)
    book = OrderBook()
    book.apply_snapshot([(round(rng.uniform(900, 999), 1), 1.0) for _ in range(600)],
                        [(round(rng.uniform(1001, 1100), 1), 1.0) for _ in range(600)])
    for step in range(600):
        book.apply([(round(rng.uniform(900, 999), 1), rng.choice([0.0, 0.5, 2.0]))
                    for _ in range(rng.randint(1, 30))],
                   [(round(rng.uniform(1001, 1100), 1), rng.choice([0.0, 0.5, 2.0]))
                    for _ in range(rng.randint(1, 30))])
        cover = rng.choice([1e2, 1e4, 1e6])
        assert same_depths(window_depths(book, cover), full_depths(book)), step
        if step % 50 == 0:
            book._check()


def test_window_remainders_by_hand() -> None:
    """BIDS / ASKS, mid 100, cover 250: bids 99.9 (299.7) covers, plus one more: exact 99.9,
    99.0; asks 100.1 (100.1) + 101 (202) cover, plus one more: exact 100.1, 101, 102."""
    book = OrderBook()
    book.apply_snapshot(BIDS, ASKS)
    bands = (5, 100, 200, 300, 500)
    w = window(book, bands, 250.0, False, 1.0, 1_000, top_n=1)
    assert list(w[0]) == [99.9, 99.0] and list(w[2]) == [100.1, 101.0, 102.0]
    # 5 bps: edge inside the exact levels; 100 bps: the last exact bid is the edge -> 0.0;
    # 200 bps (98.0): 98 x 3 beyond; 300 bps (97.0): + 97 x 1; 500 bps: the book ends inside
    assert w[4] == [0.0, 0.0, 294.0, 391.0, None]
    # asks: 200 bps edge 102 = last exact level -> 0.0; 300 bps (103.0): 103 x 1
    assert w[5] == [0.0, 0.0, 0.0, 103.0, None]
    levels, extra = frame([5], [w], bands)
    assert extra.rows() == [(5, float(x), b, a, True, True)
                            for x, b, a in zip(bands, w[4], w[5], strict=True)]
    assert extra.schema == pl.Schema({"book": pl.UInt32, "band_bps": pl.Float64,
                                      "bid_extra": pl.Float64, "ask_extra": pl.Float64,
                                      "bid_exact": pl.Boolean, "ask_exact": pl.Boolean})
    _, depth, _ = liquidity(levels, books_of([5], quote_usd=0.5), bands_bps=bands, extra=extra)
    _, full, _ = liquidity(levels_of({5: (BIDS, ASKS)}), books_of([5], quote_usd=0.5),
                           bands_bps=bands)
    flags = ["bid_exact", "ask_exact"]
    # the full book, levels given (500 bps: null both ways); exactness known only from a window
    assert_frame_equal(depth.drop(flags), full.drop(flags))
    assert depth.select(flags).to_series().all() and full["bid_exact"].null_count() == 5
    assert one(depth, band_bps=500.0)["bid_quote"] is None


def test_bands_past_the_books_horizon_are_flagged() -> None:
    """A book known complete only down to bid 98.5 and up to ask 101.5 (a REST snapshot cut at
    the venue's limit): bands whose edge lies past that are still summed from what the book
    holds, flagged inexact (a lower bound); the others exact. Mid 100."""
    book = OrderBook()
    book.apply_snapshot(BIDS, ASKS)
    bands = (50, 100, 150, 200)  # edges 99.5 / 99 / 98.5 / 98 and 100.5 / 101 / 101.5 / 102
    w = window(book, bands, 250.0, False, 1.0, 1_000, top_n=1, horizon=(98.5, 101.5))
    assert w[6] == [True, True, True, False] and w[7] == [True, True, True, False]
    w = window(book, bands, 250.0, False, 1.0, 1_000, top_n=1, horizon=(99.0, 102.5))
    assert w[6] == [True, True, False, False] and w[7] == [True, True, True, True]
    levels, extra = frame([1], [w], bands)
    _, depth, _ = liquidity(levels, books_of([1]), bands_bps=bands, extra=extra)
    d = one(depth, band_bps=200.0)
    assert d["bid_exact"] is False and d["ask_exact"] is True
    assert close(d["bid_quote"], 99.9 * 3 + 99.0 * 2 + 98.0 * 3)  # still the levels it holds
    # in any row order (joined, not aligned), and absent from an old extra: unknown
    again = liquidity(levels, books_of([1]), bands_bps=bands, extra=extra.reverse())[1]
    assert_frame_equal(again, depth)
    old = liquidity(levels, books_of([1]), bands_bps=bands,
                    extra=extra.drop("bid_exact", "ask_exact"))[1]
    assert old["bid_exact"].null_count() == 4
    assert_frame_equal(old.drop("bid_exact", "ask_exact"), depth.drop("bid_exact", "ask_exact"))


def test_window_remainders_of_an_inverse_book() -> None:
    """100 USD contracts: remainders count contracts * 100 USD, whatever the price."""
    book = OrderBook()
    book.apply_snapshot([(49_990.0, 10.0), (49_900.0, 20.0), (49_000.0, 1.0)],
                        [(50_010.0, 5.0), (50_100.0, 30.0), (51_000.0, 1.0)])
    w = window(book, (10, 100, 200, 250), 500.0, True, 100.0, 1_000, top_n=1)
    assert list(w[0]) == [49_990.0, 49_900.0] and list(w[2]) == [50_010.0, 50_100.0]
    assert w[4] == [0.0, 0.0, 100.0, None]  # 200 bps: edge 49,000 = the deepest bid
    assert w[5] == [0.0, 0.0, 100.0, None]  # 200 bps: edge 51,000 = the deepest ask


def test_extra_rules() -> None:
    """A null remainder nulls the band; a book absent from extra keeps the old rule; extra in
    any row order gives the same answer (joined, not aligned)."""
    levels = levels_of({1: (BIDS, ASKS), 2: (BIDS, ASKS)})
    meta = books_of([1, 2])
    extra = pl.DataFrame({"book": [1, 1], "band_bps": [100.0, 500.0],
                          "bid_extra": [10.0, None], "ask_extra": [0.0, 5.0]})
    _, depth, _ = liquidity(levels, meta, bands_bps=(100, 500), extra=extra)
    d = {(r["book"], r["band_bps"]): r for r in depth.to_dicts()}
    assert close(d[1, 100.0]["bid_quote"], 99.9 * 3 + 99.0 * 2 + 10.0)
    assert close(d[1, 100.0]["ask_quote"], 100.1 + 202.0)
    assert d[1, 500.0]["bid_quote"] is None  # null remainder
    assert close(d[1, 500.0]["ask_quote"], 100.1 + 202.0 + 306.0 + 103.0 + 5.0)
    assert d[2, 500.0]["bid_quote"] is None and d[2, 500.0]["ask_quote"] is None  # old rule
    assert close(d[2, 100.0]["bid_quote"], 99.9 * 3 + 99.0 * 2)
    again = liquidity(levels, meta, bands_bps=(100, 500), extra=extra.reverse())[1]
    assert_frame_equal(again, depth)


def test_window_of_a_one_sided_book() -> None:
    book = OrderBook()
    book.apply_snapshot(BIDS, [])
    w = window(book, BANDS, 1e6, False, 1.0, 1_000)
    assert [list(x) for x in w] == [[99.9], [3.0], [], [], *[[None] * 5] * 4]
    none: list[float | None] = [None] * 5
    levels, extra = frame([9, 4], [w, ([], [], [], [], none, none, none, none)],
                          BANDS)  # 4: out of sync
    assert levels.height == 1 and extra.height == 10
    summary, depth, slip = liquidity(
        levels, pl.concat([books_of([9]), books_of([4], in_sync=False)]), extra=extra)
    assert summary["status"].cast(pl.String).to_list() == ["one_sided", "out_of_sync"]
    assert summary["bid_levels"].to_list() == [1, 0]
    assert slip["buy_reason"].cast(pl.String).to_list()[:3] == ["one_sided"] * 3
    assert depth["bid_quote"].null_count() == 10


def test_frame_layout() -> None:
    book = OrderBook()
    book.apply_snapshot(BIDS, ASKS)
    w = window(book, (100,), 1e9, False, 1.0, 1_000)
    levels, extra = frame([3, 8], [w, w], (100,))
    assert levels.schema == pl.Schema({"book": pl.UInt32, "side": pl.Enum(["bid", "ask"]),
                                       "level": pl.Int16, "price": pl.Float64,
                                       "size": pl.Float64})
    assert levels.height == 16 and levels["book"].to_list() == [3] * 8 + [8] * 8
    assert levels["level"].to_list()[:8] == [0, 1, 2, 3] * 2
    assert levels["side"].cast(pl.String).to_list()[:8] == ["bid"] * 4 + ["ask"] * 4
    assert extra["book"].to_list() == [3, 8]
    assert levels["price"].to_list() == [*list(w[0]), *list(w[2])] * 2
    assert levels["size"].to_list() == [*list(w[1]), *list(w[3])] * 2


def test_frame_of_a_side_deeper_than_its_rank_table() -> None:
    """Ranks past the table sliced for the usual window (1,024) are built on demand."""
    bids = [(1000.0 - i * 0.01, 1.0) for i in range(1500)]
    book = OrderBook()
    book.apply_snapshot(bids, [(1000.5, 1.0)])
    w = window(book, (100,), 1e9, False, 1.0, 2_000)
    levels, _ = frame([0], [w], (100,))
    assert levels.filter(pl.col("side") == "bid")["level"].to_list() == list(range(1500))


def test_frame_rejects_mismatched_windows() -> None:
    book = OrderBook()
    book.apply_snapshot(BIDS, ASKS)
    w = window(book, (100,), 1e9, False, 1.0, 1_000)
    with pytest.raises(ValueError, match="2 ids for 1 windows"):
        frame([1, 2], [w], (100,))
    with pytest.raises(ValueError, match="do not hold 2 remainders"):
        frame([1], [w], (100, 200))
