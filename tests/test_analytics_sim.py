"""Analytics end to end on the simulated market: the collector's live tick over real websockets,
the tables it writes, the gauges it exports, ``analyzer backfill`` recomputing the same numbers
from the store, and each scenario's stated conclusion at the analytics level."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest
from simrun import Run, run_sim

from analyzer import config
from analyzer.analytics.batch import backfill
from analyzer.sim import Schedule
from analyzer.sim.scenarios import CalmContango, CrossedBook, FleetingSpike, StaleFeed, ThinBook

pytestmark = pytest.mark.slow

FAST_TICKS = {"interval_seconds": 0.25}


def live(run: Run, table: str, where: str = "TRUE") -> pl.DataFrame:
    return run.frame(f"SELECT * FROM {table} WHERE source = 'live' AND {where}")


@pytest.fixture(scope="module")
def calm(tmp_path_factory: pytest.TempPathFactory) -> Run:
    tmp = tmp_path_factory.mktemp("calm")
    return run_sim(tmp, "calm_contango", seconds=60, speed=10, analytics=FAST_TICKS,
                   store={"book_snapshot_seconds": 0.5})


def test_calm_contango_basis_in_range_with_a_curve_between_quarterlies(calm: Run) -> None:
    expected = calm.sim.model.scenario_runs()[0].expected
    lo, hi = expected["annualised_basis_range"]
    fut = live(calm, "basis", "market = 'future'")
    assert fut.height > 100 and fut["valid"].all()
    assert set(fut["tenor"]) == {"q1", "q2"}
    assert fut["basis_spot_ann"].is_between(lo, hi).all(), fut["basis_spot_ann"].describe()
    # compounded > simple for a positive basis; both from the exact time to expiry
    assert (fut["basis_spot_ann_comp"] > fut["basis_spot_ann"]).all()
    # time to expiry counts from the venue's clock (the simulated one runs 10x faster)
    as_of = fut["expiry"] - fut["dte_days"] * 86_400e9
    assert as_of.is_between(calm.sim.start_ns - 1e9, calm.sim.model.now_ns).all()
    # a constant-maturity point bracketed by the quarterlies lies between their values; one
    # outside them (30 days when the nearest expires in 80) is null, never extrapolated
    curve = live(calm, "basis_curve")
    q = fut.pivot(on="tenor", index=["ts", "venue", "base"], values="basis_spot_ann")
    joined = curve.join(q, on=["ts", "venue", "base"])
    assert joined.height == curve.height > 50
    bracketed = joined.filter(pl.col("dte_lo").is_not_null() & pl.col("dte_hi").is_not_null())
    between = pl.col("basis_ann").is_between(pl.min_horizontal("q1", "q2") - 1e-12,
                                             pl.max_horizontal("q1", "q2") + 1e-12)
    assert bracketed.height > 0 and bracketed.select(between.all()).item()
    outside = joined.filter(pl.col("dte_lo").is_null() | pl.col("dte_hi").is_null())
    assert outside["basis_ann"].is_null().all()
    # funding of every perpetual, annualised by its own interval
    perps = live(calm, "basis", "market = 'perpetual' AND funding_rate IS NOT NULL")
    assert perps.height > 0
    assert ((perps["funding_ann"] - perps["funding_rate"] * 24 / perps["funding_interval_hours"]
             * 365).abs().max() < 1e-15)
    # ... read from the venue for every perpetual, never assumed: the simulated COIN-M ETH
    # perpetual settles hourly, USDⓈ-M's every 4 h, the others every 8 h (the sim's specs)
    hours = {(v, sym): h for v, sym, h in perps.select("venue", "symbol",
                                                        "funding_interval_hours").unique().rows()}
    want = {(v.feed, i.symbol): v.funding_hours(i.base)
            for v in calm.sim.world.venues for i in calm.sim.model.instruments()
            if i.venue == v.feed and i.market == "perpetual"}
    assert hours == want
    assert hours[("binance_coinm", "ETHUSD_PERP")] == 1.0


def test_liquidity_rows_and_gauges(calm: Run) -> None:
    summary = live(calm, "liquidity")
    books = {(r.venue, s) for r in calm.collector.runners for s in r.books.books}
    assert set(zip(summary["venue"], summary["symbol"], strict=True)) == books
    ok = summary.filter(pl.col("status") == "ok")
    assert ok.height > 0.9 * summary.height
    assert ((ok["best_bid"] < ok["microprice"]) & (ok["microprice"] < ok["best_ask"])).all()
    depth = live(calm, "depth")
    assert sorted(depth["band_bps"].unique()) == [10, 25, 50, 100, 200]
    # depth grows with the band
    wide = depth.pivot(on="band_bps", index=["ts", "venue", "symbol"], values="bid_usd")
    assert (wide["10.0"] <= wide["50.0"]).all() and (wide["50.0"] <= wide["200.0"]).all()
    # the venue's 1,000-level snapshots reach ~120-145 bps of these ~2,500-level books: past
    # that, a band is a lower bound
    exact = depth.group_by("band_bps").agg(pl.col("bid_exact").mean(), pl.col("ask_exact").mean())
    exact = {r["band_bps"]: (r["bid_exact"], r["ask_exact"]) for r in exact.to_dicts()}
    assert exact[10.0] == exact[50.0] == (1.0, 1.0)
    assert exact[200.0][0] < 0.5 and exact[200.0][1] < 0.5
    slip = live(calm, "slippage")
    grows = slip.pivot(on="notional_usd", index=["ts", "venue", "symbol"], values="buy_bps")
    assert (grows["10000.0"] <= grows["1000000.0"]).all()
    # the exporter serves the latest tick
    btc = calm.metric("analyzer_basis_annualized", venue="binance_usdm", base="BTC",
                      tenor="q1", reference="spot")
    last = calm.collector.analytics.latest
    assert last is not None
    row = last.basis.filter((pl.col("venue") == "binance_usdm") & (pl.col("base") == "BTC")
                            & (pl.col("tenor") == "q1"))
    assert btc == row["basis_spot_ann"][0]
    assert calm.metric("analyzer_book_depth_usd", venue="binance_spot", symbol="BTCUSDT",
                       band_bps="50", side="bid") > 0
    assert calm.metric("analyzer_book_depth_exact", venue="binance_spot", symbol="BTCUSDT",
                       band_bps="10", side="ask") == 1
    assert calm.metric("analyzer_slippage_bps", venue="binance_usdm", symbol="BTCUSDT",
                       notional_usd="100000", side="buy") >= 0
    assert calm.metric("analyzer_analytics_errors_total") == 0


def test_backfill_gives_the_live_numbers_at_each_snapshot(calm: Run) -> None:
    """The batch path over the stored windows, tickers and open interest reproduces the live
    tick at every instant both have (to rounding: the frames hold different books)."""
    cfg = config.Analytics(**FAST_TICKS)
    results = list(backfill(calm.db, cfg, config.Carry(), 0, 2**62, chunk_snapshots=4))
    assert len(results) > 1  # several chunks
    tables = {name: pl.concat([r.tables()[name] for _, _, r in results], how="vertical_relaxed")
              for name in ("liquidity", "depth", "slippage", "basis")}
    keys = {"liquidity": ["ts", "venue", "symbol"], "depth": ["ts", "venue", "symbol", "band_bps"],
            "slippage": ["ts", "venue", "symbol", "notional_usd"],
            "basis": ["ts", "venue", "symbol"]}
    for name, batch in tables.items():
        stored = live(calm, name).drop("source", "time")
        both = stored.join(batch, on=keys[name], suffix="_batch")
        assert both.height == batch.height > 0, name  # every batch instant was a live tick
        for col in batch.columns:
            if col in keys[name] or batch.schema[col] not in (pl.Float64, pl.Boolean, pl.String):
                continue
            a, b = both[col], both[f"{col}_batch"]
            assert (a.is_null() == b.is_null()).all(), (name, col)
            if batch.schema[col] == pl.Float64:
                # the same sums in another order (the batch frame holds more books)
                assert ((a - b).abs() <= 1e-9 * a.abs().clip(lower_bound=1)).all(), (name, col)
            else:
                assert (a.drop_nulls() == b.drop_nulls()).all(), (name, col)


def test_cli_metrics_and_backfill(calm: Run, tmp_path: Path) -> None:
    data = calm.db.parent
    r = subprocess.run([sys.executable, "-m", "analyzer.cli", "metrics", "--asset", "btc",
                        "--data-dir", str(data)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    for text in ("Liquidity", "BTCUSDT_", "q2", "Constant-maturity", "binance_coinm"):
        assert text in r.stdout
    r = subprocess.run([sys.executable, "-m", "analyzer.cli", "backfill", "--data-dir",
                        str(data), "--from", "2000-01-01", "--to", "now"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "100%" in r.stderr and "snapshot instants" in r.stdout
    with duckdb.connect(str(calm.db), read_only=True) as con:
        n = con.execute("SELECT count(*) FROM basis WHERE source = 'backfill'").fetchone()
    assert n is not None and n[0] > 0
    for argv, message in ((["metrics", "--asset", "BTC", "--data-dir", str(tmp_path)],
                           "no database at"),
                          (["backfill", "--from", "yesterday", "--data-dir", str(data)],
                           "bad time 'yesterday'"),
                          (["metrics", "--asset", "DOGE", "--data-dir", str(data)],
                           "no analytics for DOGE")):
        r = subprocess.run([sys.executable, "-m", "analyzer.cli", *argv], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
        assert message in r.stderr


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """A calm market with, one after the other: a fleeting 400 bps spike of the BTC near
    quarterly on USDⓈ-M, a thin book on that leg, a crossed spot BTCUSDT book and a stale
    USDⓈ-M feed. Carry thresholds sit above the calm basis (15 % net) so that only what a
    scenario does could open an opportunity."""
    schedule = Schedule([
        CalmContango(), FleetingSpike(at_s=30, duration_s=6, spike_bps=400),
        ThinBook(at_s=50, duration_s=25),
        CrossedBook(at_s=85, duration_s=6), StaleFeed(at_s=105, duration_s=30),
    ])
    return run_sim(tmp_path_factory.mktemp("faults"), schedule, seconds=150, speed=4,
                   analytics={"interval_seconds": 0.2, "anomaly_window_seconds": 30,
                              "anomaly_min_samples": 20, "max_quote_age_seconds": 2},
                   carry={"candidates_seconds": 0.1, "gates": {
                       "min_net_ann": 0.15, "entry_ann": 0.15, "exit_ann": 0.10,
                       "persistence_window_s": 3, "max_quote_age_s": 2,
                       # a desk's bar for 100k USD: 1M within 50 bps, 5 bps of slippage
                       "min_depth_multiple": 10, "max_slippage_bps": 5}})


def scenario(run: Run, name: str) -> dict:
    return next(s for s in run.sim.model.scenario_runs() if s.name == name).expected


def test_fleeting_spike_is_flagged_as_an_anomaly_and_rejected_as_carry(faults: Run) -> None:
    spike = scenario(faults, "fleeting_spike")
    feed, symbol = spike["feed"], spike["symbol"]
    leg = live(faults, "basis", f"symbol = '{symbol}' AND venue = '{feed}'")
    tenor, dte = leg["tenor"][0], leg["dte_days"][0]
    flags = live(faults, "anomalies", f"venue = '{feed}' AND metric = 'basis_spot_ann' "
                 f"AND reason = 'own_history' AND tenor = '{tenor}' AND base = 'BTC'")
    assert flags.height >= 1
    row = flags.row(0, named=True)
    jump = spike["spike_bps"] / 1e4 * 365 / dte  # the flagged value sits about the spike up
    assert row["value"] - row["expected"] > 0.5 * jump and row["z"] > 4
    # the spike's carry passes economics but is rejected: its book strays from the venue's
    # mark (freshness: integrity) and it is an anomaly (outlier); it never opens
    at = live(faults, "carry_candidates", f"symbol = '{symbol}'").join(
        flags.select("ts"), on="ts")
    assert at.height >= 1 and not at["passes_all"].any() and not at["g_outlier"].any()
    tempting = at.filter("g_economics")  # the spike made the carry look worth it
    assert tempting.height >= 1
    assert set(tempting["reject_gate"]) <= {"freshness", "outlier"}
    details = " ".join(tempting["reject_detail"])
    assert f"own_history anomaly on {feed} {tenor}" in details or "mark" in details


def test_thin_crossed_and_stale_legs_are_rejected_by_their_gates(faults: Run) -> None:
    cand = live(faults, "carry_candidates", "notional_usd = 100000")
    thin = scenario(faults, "thin_book")
    leg = cand.filter(pl.col("symbol") == thin["symbol"])
    assert "liquidity" in leg["reject_gate"].to_list()
    thin_rows = leg.filter(pl.col("reject_gate") == "liquidity")
    assert thin_rows["reject_detail"].str.contains("slippage .* on derivative leg|depth").all()
    crossed = scenario(faults, "crossed_book")
    spot = cand.filter((pl.col("spot_symbol") == crossed["symbol"])
                       & (pl.col("reject_gate") == "freshness"))
    assert spot.height > 0
    usdm = cand.filter(pl.col("venue") == "binance_usdm")
    stale = usdm.filter((pl.col("reject_gate") == "freshness")
                        & pl.col("reject_detail").str.contains("stale|age"))
    assert stale.height > 0, usdm["reject_detail"].unique()
    # not one opportunity opened
    assert live(faults, "opportunities").height == 0
    assert faults.collector.analytics.lifecycle.opened_total == {}


def test_crossed_and_stale_legs_are_suppressed_not_reported(faults: Run) -> None:
    run = faults
    summary = live(run, "liquidity", "venue = 'binance_spot' AND symbol = 'BTCUSDT'")
    assert (summary["status"] == "out_of_sync").any()  # while crossed and resyncing
    rows = live(run, "basis")
    unsynced = rows.filter(pl.col("reason") == "spot_unsynced")
    assert unsynced.height > 0 and set(unsynced["base"]) == {"BTC"}
    stale = rows.filter(pl.col("reason") == "book_stale")
    assert stale.height > 0 and set(stale["venue"]) == {"binance_usdm"}
    # an invalid row carries no basis into the constant-maturity curve
    curve = live(run, "basis_curve", "venue = 'binance_usdm' AND basis_ann IS NOT NULL")
    assert curve.join(stale.select("ts"), on="ts").height == 0
    suppressed = run.collector.analytics.suppressed_total
    assert suppressed["book_stale"] > 0 and suppressed["spot_unsynced"] > 0
    # nothing is scored from an invalid sample (a flag after recovery compares fresh data)
    flags = live(run, "anomalies").filter(pl.col("metric") != "funding_ann")
    invalid = pl.concat([stale, unsynced]).select("ts", "venue", "base", "tenor")
    assert flags.join(invalid, on=["ts", "venue", "base", "tenor"]).height == 0
    assert run.metric("analyzer_anomalies_suppressed_total", reason="book_stale") > 0
