"""Anomaly flags: own-history and cross-venue z-scores, suppression, live == batch."""

from __future__ import annotations

import math
import random

import polars as pl
import pytest

from analyzer.analytics.anomalies import AnomalyState, anomalies, series_from_basis

S = 10**9
T0 = 1_700_000_000 * S
VENUES = ["a", "b", "c", "d", "e"]
SCHEMA = {
    "ts": pl.Int64, "venue": pl.String, "base": pl.String, "tenor": pl.String,
    "metric": pl.String, "value": pl.Float64, "valid": pl.Boolean, "reason": pl.String,
}


def steady(n: int = 200) -> list[tuple]:
    """Five venues' annualised q1 basis, 1 s apart: 5 % plus a small smooth wiggle, a
    venue-specific phase and a persistent per-venue offset."""
    return [
        (T0 + i * S, v, "BTC", "q1", "basis_spot_ann",
         0.05 + 0.002 * j + 0.001 * math.sin(0.7 * i + j), True, None)
        for i in range(n) for j, v in enumerate(VENUES)
    ]


def series(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=SCHEMA, orient="row")


def with_value(rows: list[tuple], i: int, venue: str, value: float,
               valid: bool = True, reason: str | None = None) -> list[tuple]:
    out = []
    for r in rows:
        if r[0] == T0 + i * S and r[1] == venue:
            r = (*r[:5], value, valid, reason)
        out.append(r)
    return out


KW = {"window": "30s", "k": 4.0, "min_samples": 10}


def test_steady_series_not_flagged() -> None:
    flags, suppressed = anomalies(series(steady()), **KW)
    assert flags.is_empty() and suppressed.is_empty()


def test_spike_flagged_on_own_history_and_cross_venue() -> None:
    flags, _ = anomalies(series(with_value(steady(), 100, "c", 0.08)), **KW)
    assert flags.select("ts", "venue", "reason").rows() == [
        (T0 + 100 * S, "c", "cross_venue"), (T0 + 100 * S, "c", "own_history"),
    ]
    assert (flags["z"] > 4.0).all() and (flags["n"] == 30).all()


def test_spike_on_unsynced_book_is_suppressed_and_counted() -> None:
    rows = with_value(steady(), 100, "c", 0.08, valid=False, reason="book_unsynced")
    rows = with_value(rows, 120, "c", 0.09, valid=False, reason="book_unsynced")
    rows = with_value(rows, 130, "d", 0.07, valid=False, reason="spot_stale")
    flags, suppressed = anomalies(series(rows), **KW)
    assert flags.is_empty()
    assert suppressed.select("venue", "reason", "suppressed").rows() == [
        ("c", "book_unsynced", 2), ("d", "spot_stale", 1),
    ]


def test_current_sample_excluded_from_its_own_window() -> None:
    # ten samples +1, -1, ...: mean 0, sample std sqrt(10 / 9); then 10.
    # excluded: z = 10 / sqrt(10 / 9) = 9.487; had 10 been in its own window the mean would be
    # 10 / 11 and the std 3.015, z = 3.02 < 4, and nothing would be flagged.
    vals = [1.0, -1.0] * 5 + [10.0]
    rows = [(T0 + i * S, "a", "BTC", "perp", "premium", v, True, None)
            for i, v in enumerate(vals)]
    for window in ("10s", 10):
        flags, _ = anomalies(series(rows), window=window, k=4.0, min_samples=10)
        assert flags.height == 1, window
        r = flags.row(0, named=True)
        assert r["reason"] == "own_history" and r["ts"] == T0 + 10 * S
        assert r["expected"] == pytest.approx(0.0, abs=1e-15)
        assert r["spread"] == pytest.approx(math.sqrt(10 / 9), rel=1e-12)
        assert r["z"] == pytest.approx(10 / math.sqrt(10 / 9), rel=1e-12)
        assert r["n"] == 10
    # one sample short of min_samples: not scored
    assert anomalies(series(rows[1:]), window="10s", k=4.0, min_samples=10)[0].is_empty()


def test_live_incremental_calls_match_batch() -> None:
    rows = with_value(steady(), 60, "b", 0.02)
    rows = with_value(rows, 90, "e", 0.1, valid=False, reason="book_unsynced")
    rows = with_value(rows, 150, "a", 0.07)
    full = series(rows)
    for window in ("30s", 30):
        batch_flags, batch_sup = anomalies(full, **{**KW, "window": window})
        assert batch_flags.height >= 2
        live_flags, live_sup = [], []
        for i in range(200):
            t = T0 + i * S
            # the caller keeps a trailing history of two windows or more (here 70 s)
            hist = full.filter((pl.col("ts") > t - 70 * S) & (pl.col("ts") <= t))
            f, s = anomalies(hist, **{**KW, "window": window}, since=t)
            live_flags.append(f)
            live_sup.append(s)
        live = pl.concat(live_flags)
        assert live.select("ts", "venue", "reason").rows() == batch_flags.select(
            "ts", "venue", "reason").rows()
        assert live["z"].to_list() == pytest.approx(batch_flags["z"].to_list(), rel=1e-9)
        sup = pl.concat(live_sup).group_by("venue", "reason").agg(pl.col("suppressed").sum())
        assert sup.rows() == batch_sup.select("venue", "reason", "suppressed").rows()
        # the incremental state, one tick per update, no history frame
        state = AnomalyState(**{**KW, "window": window})
        ticks = [state.update(full.filter(pl.col("ts") == T0 + i * S)) for i in range(200)]
        assert_same(batch_flags, pl.concat([f for f, _ in ticks]))
        assert_same_suppressed(batch_sup, pl.concat([s for _, s in ticks]))


def assert_same(batch: pl.DataFrame, live: pl.DataFrame) -> None:
    """Same flags, row for row; numbers to 1e-9 relative."""
    assert live.schema == batch.schema
    exact = [c for c in batch.columns if c not in ("z", "expected", "spread")]
    assert live.select(exact).rows() == batch.select(exact).rows()
    for c in ("z", "expected", "spread"):
        assert live[c].to_list() == pytest.approx(batch[c].to_list(), rel=1e-9, abs=0), c


def assert_same_suppressed(batch: pl.DataFrame, live: pl.DataFrame) -> None:
    keys = [c for c in batch.columns if c != "suppressed"]
    total = live.group_by(keys).agg(pl.col("suppressed").sum()).sort(keys)
    assert total.rows() == batch.rows()


def random_series(seed: int, n_ticks: int = 600) -> pl.DataFrame:
    """Two bases x two tenors x two metrics on up to six venues (two symbols on one), random
    walks with per-venue offsets at very different scales, irregular ticks (and gaps longer than
    a window), spikes, market-wide jumps, invalid, null and NaN samples, venues missing for a
    while, and a series flat for long stretches (funding clamped)."""
    rng = random.Random(seed)
    venues = [("a", "A"), ("b", "B"), ("c", "C"), ("d", "D"), ("e", "E"), ("e", "E2")]
    scale = {"BTC": 1e-3, "ETH": 1e3}
    level = {"BTC": 0.05, "ETH": 1e6}
    walk: dict[tuple, float] = {}
    rows = []
    t = T0
    for i in range(n_ticks):
        t += S * rng.choice([1, 1, 1, 2, 3]) + (40 * S if i in (250, 251) else 0)
        jump = rng.random() < 0.02
        for base in ("BTC", "ETH"):
            for tenor in ("perp", "q1"):
                for metric in ("premium", "funding_ann"):
                    for j, (v, sym) in enumerate(venues):
                        if (v == "d" and 100 <= i < 180) or rng.random() < 0.05:
                            continue  # venue missing
                        key = (base, tenor, metric, v, sym)
                        sd = scale[base]
                        w = walk.get(key, level[base] * (1 + 0.1 * j))
                        w += rng.gauss(0, sd) + (20 * sd if jump else 0)
                        walk[key] = w
                        x = w
                        if metric == "funding_ann" and v == "a" and (i // 150) % 2 == 0:
                            x = 0.1095  # clamped: exactly flat
                        if rng.random() < 0.01:
                            x += rng.choice([-1, 1]) * 30 * sd  # spike
                        valid, reason = True, None
                        r = rng.random()
                        if r < 0.02:
                            valid, reason = False, rng.choice(["book_unsynced", "spot_stale"])
                        elif r < 0.025:
                            x = None
                        elif r < 0.03:
                            x, reason = float("nan"), "nan"
                        rows.append((t, v, base, tenor, metric, x, valid, reason, sym))
    return pl.DataFrame(rows, schema={**SCHEMA, "symbol": pl.String}, orient="row")


@pytest.mark.parametrize(("seed", "window", "min_std"), [
    (1, "20s", 0.0), (2, "45s", 0.0), (3, 15, 0.0), (4, "20s", 1e-4), (5, 40, 1e-4)])
def test_state_equals_batch_on_random_series(seed: int, window: str | int,
                                             min_std: float) -> None:
    full = random_series(seed)
    kw = {"window": window, "k": 3.0, "min_samples": 8, "min_venues": 3, "min_std": min_std}
    batch_flags, batch_sup = anomalies(full, **kw)
    assert batch_flags.filter(pl.col("reason") == "cross_venue").height >= 5
    assert batch_flags.filter(pl.col("reason") == "own_history").height >= 5
    state = AnomalyState(**kw)
    ts = full["ts"].unique().sort().to_list()
    rng = random.Random(seed)
    out = []
    i = 0
    while i < len(ts):  # updates of one to five ticks
        j = i + rng.choice([1, 1, 1, 2, 5])
        chunk = full.filter(pl.col("ts").is_between(ts[i], ts[min(j, len(ts)) - 1]))
        out.append(state.update(chunk.sample(fraction=1.0, shuffle=True, seed=i)))
        i = j
    assert_same(batch_flags, pl.concat([f for f, _ in out]))
    assert_same_suppressed(batch_sup, pl.concat([s for _, s in out]))
    # and one update with everything
    flags, sup = AnomalyState(**kw).update(full)
    assert_same(batch_flags, flags)
    assert_same_suppressed(batch_sup, sup)


def test_state_flat_history_has_no_scale_and_rejects_old_ticks() -> None:
    rows = [(T0 + i * S, "a", "BTC", "perp", "funding_ann", 0.1095, True, None)
            for i in range(40)]
    rows.append((T0 + 40 * S, "a", "BTC", "perp", "funding_ann", 0.1095 + 1e-12, True, None))
    state = AnomalyState(window="60s", min_samples=10)
    flags, _ = state.update(series(rows))
    assert flags.is_empty()
    assert anomalies(series(rows), window="60s", min_samples=10)[0].is_empty()
    flat = AnomalyState(window="60s")
    flat.update(series(rows[:-1]))
    assert flat.series[("a", "BTC", "perp", "funding_ann")].own.stats() == (40, 0.1095, 0.0)
    with pytest.raises(ValueError, match="not after"):
        state.update(series(rows[-1:]))
    assert state.update(series(rows[:0]))[0].is_empty()


def test_series_from_basis_keeps_book_validity_and_applicable_metrics() -> None:
    bdf = pl.DataFrame({
        "ts": [T0, T0], "venue": ["v", "v"], "base": ["BTC", "BTC"], "tenor": ["perp", "q1"],
        "symbol": ["P", "Q"],
        "market": ["perpetual", "future"], "basis_spot_ann": [None, 0.05],
        "premium": [0.001, None], "funding_ann": [0.1095, None],
        "valid": [False, True], "reason": ["spot_unsynced", None],
    })
    s = series_from_basis(bdf)
    assert s.select("tenor", "metric", "value", "valid", "reason").rows() == [
        ("q1", "basis_spot_ann", 0.05, True, None),
        ("perp", "premium", 0.001, False, "spot_unsynced"),
        ("perp", "funding_ann", 0.1095, True, None),  # funding needs no book
    ]
