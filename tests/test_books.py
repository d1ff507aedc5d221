"""Book sequencing: Binance's sync rules, gaps, crossed books and the best bid/ask cross-check.

The recordings are the oracle: a book rebuilt from their diffs must agree with Binance's own
bookTicker wherever the update ids make the comparison exact.
"""

from __future__ import annotations

import time

import pytest
from recordings import FIXTURES, expected_bbo_comparisons, read_recording
from simrun import world_of

from analyzer.events import BookChange, Gap, Quote
from analyzer.feed.books import SNAPSHOT_TIMEOUT_NS, BookKeeper
from analyzer.sim import MarketModel, Schedule
from analyzer.sim.clock import NS
from analyzer.sim.scenarios import CalmContango, SteepContango
from analyzer.venues.binance import MARKETS, BinanceFeed, FuturesRules, SpotRules

BINANCE = world_of()  # the tests' world: Binance's markets


class Harness:
    """A BookKeeper whose snapshot requests are answered by the test."""

    def __init__(self, rules: object, symbols: tuple[str, ...] = ("S",), **kw: object) -> None:
        self.requests: list[str] = []
        self.gaps: list[Gap] = []
        self.tops: list[Quote] = []
        self.keeper = BookKeeper("v", list(symbols), rules, self.requests.append,
                                 self.gaps.append, self.tops.append, **kw)


def change(
    first: int, last: int, prev: int = -1, bids=(), asks=(), symbol: str = "S"
) -> BookChange:
    return BookChange("v", symbol, 0, 0, False, list(bids), list(asks), first, last, prev)


def snapshot(last_id: int, bids, asks, symbol: str = "S") -> BookChange:
    return BookChange("v", symbol, 0, 0, True, list(bids), list(asks), last_id, last_id)


def test_buffer_bridge_and_follow_futures() -> None:
    h = Harness(FuturesRules())
    k = h.keeper
    k.start()
    assert h.requests == ["S"]
    k.on_change(change(90, 95, 89, bids=[(9.0, 1.0)]))  # older than the snapshot: dropped
    k.on_change(change(96, 105, 95, bids=[(10.0, 2.0)]))  # bridges L=100
    k.on_change(change(106, 110, 105, asks=[(11.0, 3.0)]))
    assert not k.books["S"].in_sync
    k.on_snapshot(snapshot(100, [(10.0, 1.0), (9.5, 1.0)], [(11.0, 1.0), (12.0, 1.0)]))
    sb = k.books["S"]
    assert sb.in_sync and sb.last_id == 110
    assert sb.book.top() == (10.0, 2.0, 11.0, 3.0)
    assert k.stats.stale_dropped == 1 and not h.gaps
    # a later change that does not follow: invalid at once, one resync request, a Gap
    k.on_change(change(120, 125, 115))
    assert not sb.in_sync
    assert h.requests == ["S", "S"] and k.stats.resyncs == 1
    assert h.gaps == [Gap("v", "S", 0, "gap", 110, 115)]


def test_spot_rule_and_stale_after_reconnect() -> None:
    h = Harness(SpotRules())
    k = h.keeper
    k.start()
    k.on_change(change(95, 100))  # u <= L: stale for spot
    k.on_change(change(101, 104, bids=[(10.0, 1.0)]))
    k.on_snapshot(snapshot(100, [(9.0, 1.0)], [(11.0, 1.0)]))
    assert k.books["S"].in_sync and k.books["S"].last_id == 104
    k.on_change(change(101, 104))  # the same change again (overlapping connections)
    assert k.books["S"].in_sync and k.stats.stale_dropped == 2
    k.on_change(change(106, 110))  # U != prev u + 1
    assert h.gaps[0].expected_id == 104 and h.gaps[0].received_id == 105


def test_snapshot_older_than_the_stream_is_refetched() -> None:
    h = Harness(FuturesRules())
    k = h.keeper
    k.start()
    k.on_change(change(200, 210, 199))
    k.on_snapshot(snapshot(100, [(9.0, 1.0)], [(11.0, 1.0)]))  # nothing bridges 100
    assert not k.books["S"].in_sync and h.requests == ["S", "S"]
    k.on_snapshot(snapshot(205, [(9.0, 1.0)], [(11.0, 1.0)]))
    assert k.books["S"].in_sync and k.books["S"].last_id == 210


def test_empty_buffer_waits_for_the_bridging_change() -> None:
    h = Harness(FuturesRules())
    k = h.keeper
    k.start()
    k.on_snapshot(snapshot(100, [(9.0, 1.0)], [(11.0, 1.0)]))
    assert not k.books["S"].in_sync
    k.on_change(change(98, 103, 97, bids=[(9.5, 1.0)]))
    assert k.books["S"].in_sync and k.books["S"].book.top()[0] == 9.5


def test_crossed_book_is_invalid_and_resynced() -> None:
    h = Harness(FuturesRules())
    k = h.keeper
    k.start()
    k.on_snapshot(snapshot(100, [(9.0, 1.0)], [(11.0, 1.0)]))
    k.on_change(change(100, 101, 99))
    k.on_change(change(102, 103, 101, bids=[(11.5, 1.0)]))
    assert not k.books["S"].in_sync
    assert h.gaps[-1].reason == "crossed" and k.stats.crossed == 1
    assert h.requests == ["S", "S"]


def test_a_gap_resyncs_only_that_symbol() -> None:
    h = Harness(FuturesRules(), ("A", "B"))
    k = h.keeper
    k.start()
    for s in ("A", "B"):
        k.on_snapshot(snapshot(100, [(9.0, 1.0)], [(11.0, 1.0)], symbol=s))
        k.on_change(change(100, 101, 99, symbol=s))
    k.on_change(change(110, 111, 105, symbol="A"))
    k.on_change(change(102, 103, 101, symbol="B"))
    assert not k.books["A"].in_sync and k.books["B"].in_sync
    assert h.requests == ["A", "B", "A"]


def test_bbo_check_compares_only_observable_states() -> None:
    h = Harness(FuturesRules())
    k = h.keeper
    k.start()
    k.on_snapshot(snapshot(100, [(9.0, 1.0)], [(11.0, 1.0)]))
    k.on_change(change(100, 110, 99, bids=[(9.5, 2.0)]))

    def venue_quote(uid: int, bid: float, bid_size: float) -> Quote:
        return Quote("v", "S", 0, 0, bid, bid_size, 11.0, 1.0, uid)

    k.on_venue_quote(venue_quote(112, 9.5, 2.0))  # pending: next change starts at 120
    k.on_venue_quote(venue_quote(125, 9.0, 9.0))  # inside the next change: not comparable
    k.on_change(change(120, 130, 110, bids=[(9.6, 1.0)]))
    assert (k.stats.bbo_compared, k.stats.bbo_mismatched) == (1, 0)
    k.on_venue_quote(venue_quote(115, 9.5, 2.0))  # late, but S(115) = S(110): comparable
    assert (k.stats.bbo_compared, k.stats.bbo_mismatched) == (2, 0)
    k.on_venue_quote(venue_quote(131, 9.6, 5.0))  # disagrees with S(130)
    k.on_change(change(140, 150, 130))
    assert k.stats.bbo_mismatched == 1
    assert not k.books["S"].in_sync and h.gaps[-1].reason == "bbo_mismatch"


def test_a_top_beyond_the_snapshot_depth_is_told_apart_from_a_bbo_mismatch() -> None:
    """Snapshots of at most 2 levels a side: the book is exact only down to the last level of a
    full side. A deeper level no diff mentions (12.5) is never seen; once 11 and 12 go, the book's
    top (13) is beyond that depth and the venue's 12.5 is a ``beyond_snapshot`` gap; within it,
    a disagreement stays a ``bbo_mismatch``; a side shorter than the limit is the whole side."""
    h = Harness(SpotRules(), snapshot_levels=2)
    k = h.keeper
    k.start()
    k.on_snapshot(snapshot(100, [(10.0, 1.0), (9.0, 1.0)], [(11.0, 1.0), (12.0, 1.0)]))
    k.on_change(change(101, 101, asks=[(11.0, 0.0), (13.0, 2.0)]))
    k.on_venue_quote(Quote("v", "S", 0, 0, 10.0, 1.0, 12.0, 1.0, 101))  # within: exact
    k.on_change(change(102, 102, asks=[(12.0, 0.0)]))
    assert k.books["S"].in_sync and k.stats.bbo_compared == 1
    k.on_venue_quote(Quote("v", "S", 0, 0, 10.0, 1.0, 12.5, 4.0, 102))
    assert not k.books["S"].in_sync
    assert h.gaps == [Gap("v", "S", 0, "beyond_snapshot", 102, 102)]
    assert (k.stats.bbo_mismatched, k.stats.beyond_snapshot) == (1, 1)
    # within the depth the snapshot showed, a disagreement is a sequencing error
    k.on_snapshot(snapshot(102, [(10.0, 1.0), (9.0, 1.0)], [(12.5, 4.0), (13.0, 2.0)]))
    k.on_change(change(103, 103, asks=[(12.5, 3.0)]))
    k.on_venue_quote(Quote("v", "S", 0, 0, 10.0, 1.0, 12.5, 1.0, 103))
    assert h.gaps[-1] == Gap("v", "S", 0, "bbo_mismatch", 103, 103)
    assert (k.stats.bbo_mismatched, k.stats.beyond_snapshot) == (2, 1)
    # a side shorter than the limit is the whole side: nothing lies beyond it
    k.on_snapshot(snapshot(103, [(10.0, 1.0), (9.0, 1.0)], [(12.5, 1.0)]))
    k.on_change(change(104, 104, asks=[(12.5, 0.0), (14.0, 1.0)]))
    k.on_venue_quote(Quote("v", "S", 0, 0, 10.0, 1.0, 13.5, 1.0, 104))
    assert h.gaps[-1].reason == "bbo_mismatch" and k.stats.beyond_snapshot == 1


def refreshing() -> tuple[Harness, BookKeeper]:
    """Snapshots of 3 levels a side; the venue's asks are 11, 12, 12.5, 13: the first snapshot
    shows the book exact down to 8 and up to 12.5 (mid 10.5), so a best ask above 11.5 (half
    way to 12.5) asks for a refresh."""
    h = Harness(SpotRules(), snapshot_levels=3, refresh_seconds=0)
    k = h.keeper
    k.start()
    k.on_snapshot(snapshot(100, [(10.0, 1.0), (9.0, 1.0), (8.0, 1.0)],
                           [(11.0, 1.0), (12.0, 1.0), (12.5, 1.0)]))
    assert k.books["S"].horizon == (8.0, 12.5)
    k.on_change(change(101, 101, asks=[(11.0, 0.0)]))  # best ask 12: a refresh is asked for
    assert h.requests == ["S", "S"] and k.books["S"].refresh is not None
    return h, k


def test_a_live_book_is_refreshed_from_a_fresh_snapshot_without_leaving_sync() -> None:
    h, k = refreshing()
    sb = k.books["S"]
    k.on_change(change(102, 102, bids=[(10.0, 2.0)]))  # logged for the second book
    assert sb.book.asks(10) == [(12.0, 1.0), (12.5, 1.0)]  # 13: never shown, never changed
    k.on_snapshot(snapshot(101, [(10.0, 1.0), (9.0, 1.0), (8.0, 1.0)],
                           [(12.0, 1.0), (12.5, 1.0), (13.0, 1.0)]))
    # 101 is in the snapshot, 102 bridges it: the second book is current and replaces the first
    assert sb.in_sync and sb.refresh is None and k.stats.refreshes == 1
    assert sb.book.asks(10) == [(12.0, 1.0), (12.5, 1.0), (13.0, 1.0)]
    assert sb.book.top() == (10.0, 2.0, 12.0, 1.0) and sb.horizon == (8.0, 13.0)
    assert h.gaps == [] and k.stats.resyncs == 0 and k.stats.snapshots_applied == 1
    k.on_change(change(103, 103, asks=[(13.0, 2.0)]))
    assert sb.book.asks(10)[-1] == (13.0, 2.0) and sb.last_id == 103


def test_a_refresh_keeps_what_the_live_book_knew_beyond_the_new_snapshot() -> None:
    """The price rose: the new snapshot's bids end at 9, the live book was exact down to 8 and
    held it; the refreshed book keeps 8 and is exact down to it."""
    _, k = refreshing()
    sb = k.books["S"]
    k.on_change(change(102, 102, bids=[(9.5, 1.0)]))
    k.on_snapshot(snapshot(102, [(10.0, 1.0), (9.5, 1.0), (9.0, 1.0)],
                           [(12.0, 1.0), (12.5, 1.0), (13.0, 1.0)]))
    assert k.stats.refreshes == 1 and sb.horizon == (8.0, 13.0)
    assert sb.book.bids(10) == [(10.0, 1.0), (9.5, 1.0), (9.0, 1.0), (8.0, 1.0)]
    assert sb.book.asks(10) == [(12.0, 1.0), (12.5, 1.0), (13.0, 1.0)]
    sb.book._check()


def test_a_refresh_does_not_bring_back_a_level_deleted_since_its_snapshot() -> None:
    _, k = refreshing()
    sb = k.books["S"]
    k.on_change(change(102, 102, bids=[(9.0, 0.0)], asks=[(13.0, 0.0)]))
    k.on_snapshot(snapshot(101, [(10.0, 1.0), (9.0, 1.0), (8.0, 1.0)],
                           [(12.0, 1.0), (12.5, 1.0), (13.0, 1.0)]))
    assert k.stats.refreshes == 1
    assert sb.book.bids(10) == [(10.0, 1.0), (8.0, 1.0)] and sb.book.asks(10)[-1] == (12.5, 1.0)


def test_a_refresh_snapshot_ahead_of_the_stream_waits_for_it() -> None:
    h, k = refreshing()
    sb = k.books["S"]
    k.on_snapshot(snapshot(103, [(10.0, 2.0), (9.0, 1.0), (8.0, 1.0)],
                           [(12.0, 1.0), (12.5, 3.0), (13.0, 1.0)]))
    assert sb.refresh is not None and k.stats.refreshes == 0  # the live book is at 101
    k.on_change(change(102, 102, bids=[(10.0, 2.0)]))
    assert sb.refresh is not None and sb.book.asks(10)[-1] == (12.5, 1.0)
    k.on_change(change(103, 103, asks=[(12.5, 3.0)]))
    assert k.stats.refreshes == 1 and sb.book.asks(10)[-1] == (13.0, 1.0)
    assert sb.in_sync and h.gaps == []


def test_a_refresh_snapshot_the_log_cannot_bridge_is_abandoned() -> None:
    h, k = refreshing()
    sb = k.books["S"]
    k.on_change(change(102, 102, bids=[(10.0, 2.0)]))
    k.on_snapshot(snapshot(99, [(10.0, 1.0)], [(11.0, 1.0)]))  # older than the log
    assert sb.refresh is None and k.stats.refreshes_abandoned == 1 and k.stats.refreshes == 0
    assert sb.in_sync and sb.book.top() == (10.0, 2.0, 12.0, 1.0) and h.gaps == []
    k.on_change(change(103, 103, asks=[(12.0, 2.0)]))  # still past the trigger: asked again
    assert h.requests == ["S", "S", "S"] and sb.refresh is not None


def test_a_refresh_whose_snapshot_fails_or_never_comes_is_abandoned() -> None:
    """A bad snapshot leaves the live book live; a refresh still waiting after 30 s (its
    request failed) is abandoned, and a later resync may ask again."""
    h, k = refreshing()
    sb = k.books["S"]
    k.snapshot_failed("S")
    assert sb.in_sync and sb.refresh is None and not sb.snapshot_requested
    assert k.stats.refreshes_abandoned == 1 and h.gaps == []
    k.on_change(change(102, 102, asks=[(12.0, 2.0)]))  # still past the trigger: asked again
    assert h.requests == ["S", "S", "S"] and sb.refresh is not None
    k.on_change(BookChange("v", "S", 0, 31 * 10**9, False, [], [], 103, 103))
    assert sb.refresh is None and not sb.snapshot_requested
    assert k.stats.refreshes_abandoned == 2 and sb.in_sync


def test_a_resync_snapshot_that_never_comes_is_asked_for_again() -> None:
    """A request the REST client gave up on never answers: after 30 s of changes the book asks
    again instead of waiting for ever."""
    h = Harness(SpotRules())
    k = h.keeper
    k.start()
    now = time.time_ns()
    k.on_change(BookChange("v", "S", 0, now + 10**9, False, [], [], 101, 101))
    assert h.requests == ["S"]
    k.on_change(BookChange("v", "S", 0, now + 31 * 10**9, False, [], [], 102, 102))
    assert h.requests == ["S", "S"]
    k.on_snapshot(snapshot(101, [(10.0, 1.0)], [(11.0, 1.0)]))
    assert k.books["S"].in_sync and k.books["S"].last_id == 102


def test_a_gap_during_a_refresh_resyncs_from_its_snapshot() -> None:
    h, k = refreshing()
    sb = k.books["S"]
    k.on_change(change(105, 105))  # a gap
    assert not sb.in_sync and sb.refresh is None and k.stats.refreshes_abandoned == 1
    assert h.requests == ["S", "S"]  # the refresh's snapshot is already on its way
    k.on_snapshot(snapshot(105, [(10.0, 1.0), (9.0, 1.0), (8.0, 1.0)],
                           [(12.0, 1.0), (12.5, 1.0), (13.0, 1.0)]))
    k.on_change(change(106, 106))
    assert sb.in_sync and sb.last_id == 106 and k.stats.snapshots_applied == 2


@pytest.mark.parametrize(("levels", "refresh"), [(None, 0.5), (1000, 0.0), (1000, 0.5)])
def test_steep_contango_runs_the_quarterlies_beyond_a_1000_level_snapshot(
        levels: int | None, refresh: float) -> None:
    """The simulated steep contango moves the BTC quarterlies ~1 % in 20 s, through every level
    a 1000-level snapshot shows, onto levels no diff has mentioned: without refreshes their top
    then differs from the venue's. With whole-book snapshots it never does (the venue's quotes
    and diffs agree); with refreshes, each book is rebuilt from a fresh snapshot while it stays
    live, before its top gets there, and the venue's every quote agrees with it."""
    m = MarketModel(BINANCE, seed=3, schedule=Schedule([CalmContango(),
                                               SteepContango(at_s=5, duration_s=300)]))
    feed = "binance_usdm"
    requests: list[str] = []
    gaps: list[Gap] = []
    k = BookKeeper(feed, [i.symbol for i in m.instruments() if i.venue == feed], FuturesRules(),
                   requests.append, gaps.append, lambda q: None, snapshot_levels=levels,
                   refresh_fraction=refresh, refresh_seconds=5)

    def answer() -> None:
        while requests:
            snap = m.snapshot(feed, requests.pop(0))
            snap.bids, snap.asks = snap.bids[:levels], snap.asks[:levels]
            k.on_snapshot(snap)

    k.start()
    answer()
    end = m.now_ns + 40 * NS
    while m.now_ns < end:
        for e in m.advance(m.now_ns + NS // 2):
            if isinstance(e, BookChange) and e.venue == feed:
                k.on_change(e)
            elif isinstance(e, Quote) and e.venue == feed:
                k.on_venue_quote(e)
        answer()
    s = k.stats
    assert s.bbo_compared > 3000 and s.gaps == s.crossed == 0
    if levels is None:
        assert s.bbo_mismatched == 0 and gaps == [] and s.refreshes == 0
    elif not refresh:
        assert s.bbo_mismatched == s.beyond_snapshot > 0
        assert {(g.symbol, g.reason) for g in gaps} == {
            ("BTCUSDT_260327", "beyond_snapshot"), ("BTCUSDT_260626", "beyond_snapshot")}
    else:
        assert s.bbo_mismatched == 0 and gaps == []
        assert s.refreshes >= 2 and s.refreshes_abandoned == 0
        for symbol in ("BTCUSDT_260327", "BTCUSDT_260626"):
            sb = k.books[symbol]
            top = sb.book.top()
            assert sb.in_sync and top is not None
            assert sb.horizon[0] < top[0] and top[2] < sb.horizon[1]  # exact at the top again
            want = m.snapshot(feed, symbol)  # the book equals the venue's, to its horizon
            lo, hi = sb.horizon
            assert sb.book.bids(10**6)[:len([p for p, _ in want.bids if p >= lo])] == [
                lv for lv in want.bids if lv[0] >= lo]
            assert sb.book.asks(10**6)[:len([p for p, _ in want.asks if p <= hi])] == [
                lv for lv in want.asks if lv[0] <= hi]


@pytest.mark.parametrize(
    ("files", "venue", "speed", "min_compared"),
    [
        (["usdm_2024/btcusdt_20240808.gz"], "binance_usdm", "0ms", 600),
        (["spot_2024/btcusdt_20240808.gz"], "binance_spot", "100ms", 500),
        (["usdm_2023/btcusdt_20230404.dat.gz", "usdm_2023/btcusdt_20230405.dat.gz"],
         "binance_usdm", "0ms", 100),
    ],
)
def test_rebuilt_book_agrees_with_venue_best_bid_ask(
    files: list[str], venue: str, speed: str, min_compared: int
) -> None:
    """Decode the recording with the real feed, answer the snapshot request with the recorded
    REST snapshot when it arrives in the recording, and count bookTicker agreement."""
    frames = [fr for f in files for _, fr in read_recording(FIXTURES / f)]
    requests: list[str] = []
    gaps: list[Gap] = []

    class Sink:
        def on_book(self, ev: BookChange) -> None:
            keeper.on_change(ev)

        def on_quote(self, ev: Quote) -> None:
            keeper.on_venue_quote(ev)

        def on_trade(self, ev: object) -> None: ...
        on_ticker = on_liquidation = on_trade

        def on_trade_gap(self, *a: object) -> None: ...
        def on_duplicate(self) -> None: ...

    feed = BinanceFeed(MARKETS[venue], ["BTCUSDT"], ["depth", "bookTicker", "trades",
                                                     "markPrice"], Sink(),
                       options={"depth_speed": speed})
    keeper = BookKeeper(venue, ["BTCUSDT"], feed.rules, requests.append, gaps.append,
                        lambda q: None, snapshot_levels=feed.snapshot_levels)
    keeper.start()
    for frame in frames:
        if frame.startswith(b'{"lastUpdateId"'):
            keeper.on_snapshot(feed.decode_snapshot(frame, "BTCUSDT", 0))
        else:
            feed.decode(frame, 0)
    s = keeper.stats
    expected = expected_bbo_comparisons(frames, venue == "binance_spot")
    print(f"{files[0]}: {s.bbo_compared} bookTickers compared, {s.bbo_mismatched} differed")
    assert gaps == []
    assert keeper.books["BTCUSDT"].in_sync
    assert s.bbo_mismatched == 0
    assert s.bbo_compared == expected >= min_compared


# -- snapshots on the socket, checksums (venue-neutral: a toy rule set) -----------------------


class SocketRules:
    """Ids rise by one per change; the checksum is the sum of the top two levels' prices."""

    @staticmethod
    def checksum(symbol: str, book) -> int:
        return int(sum(p for p, _ in book.bids(2) + book.asks(2)))

    def is_stale(self, snapshot_id: int, ev: BookChange) -> bool:
        return ev.last_id <= snapshot_id

    def bridges(self, snapshot_id: int, ev: BookChange) -> bool:
        return ev.first_id == snapshot_id + 1

    def follows(self, last_id: int, ev: BookChange) -> bool:
        return ev.first_id == last_id + 1


def socket_change(u: int, bids=(), asks=(), checksum: int = 0, symbol: str = "S",
                  is_snapshot: bool = False) -> BookChange:
    return BookChange("v", symbol, 0, 0, is_snapshot, list(bids), list(asks), u, u,
                      checksum=checksum)


def test_socket_snapshots_resync_one_symbol_by_resubscribing() -> None:
    h = Harness(SocketRules(), ("S", "T"), ws_snapshots=True)
    k = h.keeper
    k.start()
    assert h.requests == []  # the subscription brings the snapshots
    for sym in ("S", "T"):
        k.on_change(socket_change(10, [(10.0, 1.0), (9.0, 1.0)], [(11.0, 1.0), (12.0, 1.0)],
                                  symbol=sym, is_snapshot=True))
    assert k.books["S"].in_sync and k.books["T"].in_sync
    assert h.tops[-1].bid_price == 10.0 and h.tops[-1].symbol == "T"
    k.on_change(socket_change(11, bids=[(10.0, 0.0)]))
    assert k.books["S"].book.top() == (9.0, 1.0, 11.0, 1.0)
    k.on_change(socket_change(13, asks=[(11.5, 2.0)]))  # 12 was lost
    assert not k.books["S"].in_sync and k.books["T"].in_sync
    assert h.requests == ["S"]  # that book's stream alone is resubscribed
    assert [(g.reason, g.expected_id, g.received_id) for g in h.gaps] == [("gap", 11, 12)]
    k.on_change(socket_change(14, asks=[(11.5, 3.0)]))  # before the new snapshot: dropped
    k.on_change(socket_change(20, [(9.5, 1.0)], [(10.5, 1.0)], is_snapshot=True))
    sb = k.books["S"]
    assert sb.in_sync and sb.last_id == 20 and sb.book.top() == (9.5, 1.0, 10.5, 1.0)
    assert sb.book.bids(10) == [(9.5, 1.0)] and sb.book.asks(10) == [(10.5, 1.0)]
    k.on_change(socket_change(21, bids=[(9.6, 1.0)]))
    assert sb.in_sync and sb.book.top() == (9.6, 1.0, 10.5, 1.0)


def test_a_snapshot_mid_stream_replaces_the_live_book() -> None:
    h = Harness(SocketRules(), ws_snapshots=True)
    k = h.keeper
    k.start()
    k.on_change(socket_change(1, [(10.0, 1.0), (9.0, 5.0)], [(11.0, 1.0)], is_snapshot=True))
    k.on_change(socket_change(2, bids=[(8.0, 1.0)]))
    k.on_change(socket_change(1, [(10.0, 2.0)], [(11.0, 2.0)], is_snapshot=True))  # a reset
    sb = k.books["S"]
    assert sb.in_sync and sb.last_id == 1 and not h.gaps
    assert sb.book.bids(10) == [(10.0, 2.0)] and sb.book.asks(10) == [(11.0, 2.0)]
    assert k.stats.snapshots_applied == 2


def test_checksums_are_verified_when_sent_and_a_mismatch_resyncs() -> None:
    h = Harness(SocketRules(), ws_snapshots=True)
    k = h.keeper
    k.start()
    levels = ([(10.0, 1.0), (9.0, 1.0)], [(11.0, 1.0), (12.0, 1.0)])
    k.on_change(socket_change(1, *levels, checksum=42, is_snapshot=True))  # 10+9+11+12
    k.on_change(socket_change(2, bids=[(9.5, 1.0)], checksum=43))  # 10+9.5+11+12 = 42.5
    k.on_change(socket_change(3, bids=[(9.7, 1.0)]))  # no checksum sent: not checked
    assert k.stats.checksums_verified == 1 and k.stats.checksums_failed == 1
    assert [(g.reason, g.expected_id, g.received_id) for g in h.gaps] == [("checksum", 43, 42)]
    assert not k.books["S"].in_sync and h.requests == ["S"]
    k.on_change(socket_change(5, *levels, checksum=42, is_snapshot=True))
    assert k.books["S"].in_sync and k.stats.checksums_verified == 2


# -- gap fills: a venue that serves its latest changes (depth commits) -------------------------


class FillHarness(Harness):
    def __init__(self) -> None:
        self.fills: list[tuple[str, int]] = []
        super().__init__(SpotRules(), request_gap_fill=lambda s, i: self.fills.append((s, i)))
        self.keeper.start()
        self.keeper.on_snapshot(snapshot(100, [(9.0, 1.0)], [(11.0, 1.0)]))
        self.keeper.on_change(change(101, 101, bids=[(9.5, 1.0)]))


def version(n: int, ts: int = 0, **levels: list) -> BookChange:
    ev = change(n, n, n - 1, **levels)
    ev.ts_local = ts
    return ev


def test_a_gap_is_mended_from_the_venues_latest_changes_without_a_snapshot() -> None:
    h = FillHarness()
    k, sb = h.keeper, h.keeper.books["S"]
    k.on_change(version(104, asks=[(10.5, 2.0)]))  # 102 and 103 missing
    assert not sb.in_sync and h.fills == [("S", 101)] and h.requests == ["S"]
    assert h.gaps == [Gap("v", "S", 0, "gap", 101, 103, "fill")]
    k.on_change(version(105, bids=[(9.6, 1.0)]))  # buffered meanwhile
    assert not sb.in_sync
    # the venue's window: older changes, the missing ones, one the stream also brought
    k.on_gap_fill("S", [version(n, bids=[(9.0 + n / 1000, 1.0)]) for n in range(99, 105)])
    assert sb.in_sync and sb.last_id == 105
    # 102 and 103 from the fill (99-101 are in the book already); 104 as the stream sent it
    assert sb.book.bids(10) == [(9.6, 1.0), (9.5, 1.0), (9.103, 1.0), (9.102, 1.0), (9.0, 1.0)]
    assert sb.book.asks(10) == [(10.5, 2.0), (11.0, 1.0)]
    assert h.requests == ["S"] and k.stats.gap_fills == 1 and k.stats.gap_fills_failed == 0
    assert h.tops[-1].bid_price == 9.6


def test_a_fill_that_does_not_reach_the_book_falls_back_to_a_snapshot() -> None:
    h = FillHarness()
    k, sb = h.keeper, h.keeper.books["S"]
    k.on_change(version(104))
    k.on_change(version(105, bids=[(9.7, 1.0)]))
    k.on_gap_fill("S", [version(103), version(104)])  # 102 is out of the venue's window
    assert not sb.in_sync and h.requests == ["S", "S"] and k.stats.gap_fills_failed == 1
    assert [(g.reason, g.action) for g in h.gaps] == [("gap", "fill"), ("fill_failed", "resync")]
    k.on_snapshot(snapshot(104, [(9.0, 1.0)], [(11.0, 1.0)]))  # the buffered 105 bridges it
    assert sb.in_sync and sb.last_id == 105 and sb.book.top() == (9.7, 1.0, 11.0, 1.0)
    k.on_gap_fill("S", [version(102)])  # a late answer changes nothing
    assert sb.last_id == 105


def test_a_fill_that_never_comes_or_does_not_read_falls_back_to_a_snapshot() -> None:
    h = FillHarness()
    k, sb = h.keeper, h.keeper.books["S"]
    k.on_change(version(104, ts=1))
    k.on_change(version(105, ts=2))
    assert not k.stats.gap_fills_failed
    k.on_change(version(106, ts=SNAPSHOT_TIMEOUT_NS + 2))
    assert k.stats.gap_fills_failed == 1 and h.requests == ["S", "S"]
    h2 = FillHarness()
    h2.keeper.on_change(version(104))
    h2.keeper.gap_fill_failed("S")
    assert h2.keeper.stats.gap_fills_failed == 1 and h2.requests == ["S", "S"]
    assert not sb.in_sync and not h2.keeper.books["S"].in_sync


def test_a_gap_inside_a_fill_takes_a_snapshot_not_another_fill() -> None:
    h = FillHarness()
    k = h.keeper
    k.on_change(version(104))
    k.on_gap_fill("S", [version(102), version(103), version(105)])  # 104 from the buffer; 105 ok
    assert k.books["S"].in_sync and k.books["S"].last_id == 105
    k.on_change(version(108))  # a new gap: a new fill
    k.on_gap_fill("S", [version(106), version(108)])  # 107 missing inside the fill
    assert h.fills == [("S", 101), ("S", 105)] and h.requests == ["S", "S"]
    assert not k.books["S"].in_sync
