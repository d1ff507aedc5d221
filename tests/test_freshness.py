"""Silent stalls (issue 14, defect 1): pongs and pings are not data; a stream that goes silent
while its connection lives is found by its own learned rate, its book leaves sync at once, and
its connection reconnects and resyncs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from recordings import FIXTURES, frames_of, trade_ids
from test_pipeline import USDM_2024, reconnect_reasons, run_pipeline, sql, usdm_feed

from analyzer.exchange import Faults, Replay
from analyzer.feed.freshness import MIN_FRAMES, Freshness

S = 1_000_000_000


@dataclass
class FakeRoute:  # the fields of a venue Route that freshness reads
    stream: str
    channel: str
    symbol: str = "BTCUSDT"
    frames: int = 0
    last_ns: int = 0


def feed_frames(f: Freshness, r: FakeRoute, start: int, gap: int, n: int) -> int:
    """``n`` frames ``gap`` ns apart, looked at every second; returns the time of the last."""
    t = start
    for _ in range(n):
        t += gap
        r.frames += 1
        r.last_ns = t
        if t % S < gap:
            assert f.check([r], t) == []
    return t


def test_a_stream_is_stale_after_factor_times_its_own_gap() -> None:
    f = Freshness(factor=20, min_seconds=1)
    fast, slow = FakeRoute("a@depth", "depth"), FakeRoute("b@markPrice@1s", "markPrice")
    f.check([fast, slow], 0)
    t = feed_frames(f, fast, 0, S // 10, 100)  # 10 a second for 10 s
    feed_frames(f, slow, 0, S, 10)  # 1 a second
    assert f.threshold_ns(fast.stream) == pytest.approx(2 * S, rel=0.01)
    assert f.threshold_ns(slow.stream) is None  # too few frames to trust a rate yet
    assert f.check([fast], t + int(1.9 * S)) == []
    assert f.check([fast], t + int(2.1 * S)) == [(fast, pytest.approx(S / 10, rel=0.01))]
    assert f.check([fast], t + 3 * S) == []  # reported once per silence
    assert f.stalls == {"depth": 1}
    # the stall doubled the learned gap: the same silence no longer trips it
    fast.frames += 1
    fast.last_ns = t + 3 * S
    f.check([fast], fast.last_ns)
    assert f.threshold_ns(fast.stream) > 4 * S


def test_quiet_periods_lengthen_the_expected_gap_and_trades_are_not_watched() -> None:
    f = Freshness(factor=20, min_seconds=1)
    r, trades = FakeRoute("a@depth", "depth"), FakeRoute("a@trade", "trades")
    f.check([r, trades], 0)
    t = feed_frames(f, r, 0, S // 10, MIN_FRAMES * 2)
    before = f.threshold_ns(r.stream)
    t = feed_frames(f, r, t, 3 * S, 30)  # the market calms down: a frame every 3 s
    assert f.threshold_ns(r.stream) > 10 * before
    assert f.check([r, trades], t + 10 * S) == []  # 10 s is no stall at this pace
    assert f.check([trades], t + 3600 * S) == []


def test_pings_and_pongs_do_not_hide_a_silent_connection(tmp_path: Path) -> None:
    """The open connection gets no data for 4 s while the venue pings it every 0.2 s (and
    answers its pings): it is stalled, reconnected, and nothing is lost."""
    frames = frames_of(USDM_2024)
    faults = Faults(freeze_at=[(40_000, 4.0)])
    collector = run_pipeline(
        tmp_path, [Replay.from_path(FIXTURES / "usdm_2024", speed=0, faults=faults)],
        [usdm_feed(stall_seconds=2.0, stream_stall_min_seconds=60.0)],
        exchange={"ping_interval": 0.2},
    )
    assert reconnect_reasons(collector).get("stall", 0) >= 1
    ids = trade_ids(frames)
    assert sql(tmp_path, "SELECT count(*), count(DISTINCT trade_id) FROM trades") == [
        (len(ids), len(ids))]
    assert collector.runners[0].books.books["BTCUSDT"].in_sync


def test_one_silent_stream_takes_its_book_out_of_sync_and_is_recovered(tmp_path: Path) -> None:
    """Only the depth stream goes silent (trades and bookTicker flow on the same connection):
    after its own expected silence the book is out of sync with a 'stale' gap row, the
    connection reconnects, the book resyncs and agrees with the venue again."""
    faults = Faults(mute_at=[(40_000, "btcusdt@depth@0ms", 4.0)])
    seen: list[bool] = []

    async def during(ex, collector) -> None:
        import asyncio

        runner = collector.runners[0]
        while not ex.feed("binance_usdm").done.is_set():
            if runner.freshness.stalls:
                seen.append(runner.books.books["BTCUSDT"].in_sync)
                return
            await asyncio.sleep(0.01)

    collector = run_pipeline(
        tmp_path, [Replay.from_path(FIXTURES / "usdm_2024", speed=50, faults=faults)],
        [usdm_feed(stream_stall_min_seconds=1.0)], during=during,
    )
    runner = collector.runners[0]
    assert runner.freshness.stalls == {"depth": 1}
    assert seen == [False]  # out of sync as soon as it was found stale
    assert ("BTCUSDT", "stale") in sql(tmp_path, "SELECT symbol, reason FROM gaps")
    assert reconnect_reasons(collector).get("stall", 0) == 1
    assert runner.books.books["BTCUSDT"].in_sync
    assert runner.books.stats.bbo_mismatched == 0
