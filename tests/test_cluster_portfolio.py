"""The portfolio watch of a sharded collector: the analytics process values the ``[portfolio]``
file against the shards' latest states (``portfolio.live.state_market``).

In one process over the simulated market, each refresh also cuts the shards' states from the
collector's runners as ``cluster/shard.py`` does, sends them through the state's encoding into
``ClusterAnalytics`` and values the portfolio on its market: the figures must be the ones the
live books give. End to end, a collector sharded by exchange exports the portfolio gauges from
its analytics process, and with the simulated market stopped they equal a valuation of the
market read back from the store."""

from __future__ import annotations

import asyncio
import importlib
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from portfolio.test_watch import PORTFOLIO  # the one-process watch's portfolio
from simrun import run_sim
from test_cluster_e2e import FEEDS, collecting, config_text, free_port, scrape, stop, until, values

from analyzer.analytics.live import (
    FUNDING_SCHEMA,
    book_windows,
    instruments_frame,
    open_interest_frame,
    tickers_frame,
)
from analyzer.cluster import bus
from analyzer.cluster.analytics import ClusterAnalytics
from analyzer.cluster.state import ShardState, encode
from analyzer.exchange import LocalExchange, Simulation
from analyzer.portfolio.book import load
from analyzer.portfolio.errors import PortfolioError
from analyzer.portfolio.hedge import plan
from analyzer.portfolio.live import PortfolioWatch, live_market
from analyzer.portfolio.margin import rule_for
from analyzer.portfolio.market import Market
from analyzer.portfolio.valuation import Valuation, value
from analyzer.sim import World
from analyzer.sim.spec import BTC
from analyzer.store.research import connect
from analyzer.venues import EXCHANGES

pytestmark = pytest.mark.slow

SHARDS = {"a": ("binance_spot", "binance_usdm"), "b": ("binance_coinm",)}
MAX_AGE_S = 60.0


def shard_state(runners: list[Any], cluster: ClusterAnalytics, now: int) -> ShardState:
    """A shard's state of these runners, cut as ``ShardCollector.state`` does (every funding
    mark, not only the new ones: the analytics process keeps them by key)."""
    levels, extra, books = book_windows(runners, cluster.cfg, cluster.cover, now)
    marks = [(t.ts_exchange, r.venue, t.symbol, t.funding_rate, t.funding_interval_hours,
              t.next_funding_time) for r in runners for t in r.funding_marks.values()]
    return ShardState(books, levels, extra, tickers_frame(runners, now),
                      open_interest_frame(runners, now), instruments_frame(runners),
                      pl.DataFrame(marks, schema=FUNDING_SCHEMA, orient="row"))


def applied(cluster: ClusterAnalytics, shard: str, st: ShardState, seq: int, ts: int) -> None:
    """``st`` through the state's encoding (several parts) into ``cluster``, as the consumer
    hands it over."""
    parts = encode(st, 64 * 1024)
    cluster.on_state(bus.Received(shard, 1, seq, ts, st.books.height, len(parts),
                                  dict(enumerate(parts))))


def figures(v: Valuation) -> dict[str, Any]:
    legs = [(leg.pos.venue, leg.mark, leg.notional_usd, leg.liq_price, leg.liq_distance,
             leg.margin_ratio, leg.funding_day_usd, leg.funding_day_usd_7d) for leg in v.legs]
    return {"legs": legs, "prices": v.prices, "totals": v.totals(), "assets": v.by_asset()}


def valued(market: Market, pf: Any, max_age_s: float = MAX_AGE_S) -> dict[str, Any] | str:
    try:
        return figures(value(pf, market, max_age_s))
    except PortfolioError as exc:  # (before every book is in sync: the same refusal)
        return str(exc)


def by_key(df: pl.DataFrame) -> pl.DataFrame:
    return df.sort("venue", "symbol")


def test_the_states_market_values_the_portfolio_as_the_live_books_do(tmp_path: Path) -> None:
    f = tmp_path / "p.toml"
    f.write_text(PORTFOLIO)
    pf = load(f)
    watch = PortfolioWatch(f, max_age_s=MAX_AGE_S)
    compared: list[tuple[Any, Any]] = []
    hedges: list[tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]] = []
    stale: list[Market] = []
    strict: list[tuple[Any, Any]] = []
    markets: list[tuple[Market, Market]] = []

    def setup(collector: Any) -> None:
        a = collector.analytics
        a.portfolio = watch
        a.portfolio_ns = 200_000_000
        cluster = ClusterAnalytics(collector.cfg, a.store)
        seq = [0]

        def market(now: int) -> Market:
            live = live_market(a.runners, now)
            seq[0] += 1
            for name, feeds in SHARDS.items():
                runners = [r for r in a.runners if r.venue in feeds]
                applied(cluster, name, shard_state(runners, cluster, now), seq[0], now)
            cluster.windows(now)
            state = cluster._market(now)
            compared.append((valued(live, pf), valued(state, pf)))
            # the same ages: a mark or quote older than 20 ms refused by both
            strict.append((valued(live, pf, 0.02), valued(state, pf, 0.02)))
            if isinstance(compared[-1][0], dict) and not hedges:
                markets.append((live, state))
                # 1 BTC within every window (the largest analysed notional: 1M USD); 100 BTC
                # beyond them
                hedges.append((plan(live, {"BTC": 1.0}), plan(state, {"BTC": 1.0}),
                               plan(live, {"BTC": 100.0}), plan(state, {"BTC": 100.0})))
                # shard b's state older than max_quote_age_seconds: its book out of sync
                seq[0] += 1
                runners = [r for r in a.runners if r.venue in SHARDS["b"]]
                applied(cluster, "b", shard_state(runners, cluster, now), seq[0],
                        now - 10 * 10**9)
                cluster.windows(now)
                stale.append(cluster._market(now))
            return live

        a._market = market

    run = run_sim(tmp_path, "calm_contango", seconds=20, speed=10,
                  analytics={"interval_seconds": 0.25}, setup=setup)
    assert run.collector.analytics.errors == 0  # (the hook's own failures count there)
    assert watch.errors == {} and watch.latest is not None
    whole = [(lv, st) for lv, st in compared if isinstance(lv, dict)]
    assert len(whole) >= 5, compared
    for lv, st in compared + strict:
        assert st == lv  # the same figures, or the same refusal
    assert any(isinstance(lv, str) and lv.startswith("stale data") for lv, _ in strict)
    assert {leg[0] for leg in whole[-1][0]["legs"]} == {"binance_usdm", "binance_coinm"}

    ((live, state),) = markets
    for name in ("instruments", "tickers", "mids"):
        assert by_key(getattr(state, name)).equals(by_key(getattr(live, name))), name
    assert state.realised().equals(live.realised())

    small_live, small_state, big_live, big_state = hedges[0]
    assert small_state.height == small_live.height >= 3  # perpetuals and quarterlies, both
    assert small_state["slippage_bps"].null_count() == 0
    assert small_state.equals(small_live)
    # beyond a window: no slippage, said as for a thin book; everything else as live
    assert set(big_state["note"]) == {"beyond the stored levels"}
    assert big_state["slippage_bps"].null_count() == big_state.height
    assert big_state.drop("slippage_bps", "slippage_usd", "note", "all_in_usd").equals(
        big_live.drop("slippage_bps", "slippage_usd", "note", "all_in_usd"))

    (old,) = stale
    assert "binance_coinm" not in set(old.mids["venue"])
    assert old.book("binance_coinm", "BTCUSD_PERP") is None
    assert old.book("binance_usdm", "BTCUSDT") is not None


PORTFOLIO_E2E = """
profile = "balanced_protector"
[[spot]]
asset = "BTC"
amount = 1.5
[[futures]]
venue = "binance_usdm"
symbol = "BTCUSDT"
side = "short"
size = 1
entry = 60000
leverage = 3
[[futures]]
venue = "bybit_linear"
symbol = "BTCUSDT"
side = "long"
size = 0.5
entry = 60000
leverage = 5
"""


def test_a_sharded_collector_exports_the_portfolio_of_its_shards_states(tmp_path: Path
                                                                        ) -> None:
    emulators = [importlib.import_module(EXCHANGES[e].emulator).EMULATOR
                 for e in ("binance", "bybit")]
    world = World(assets=(BTC,), venues=tuple(v for e in emulators for v in e.sim_venues
                                              if v.feed in FEEDS)).validate()
    sim = Simulation(world=world, seed=5, speed=5, wait_for=FEEDS)
    data = tmp_path / "data"
    port = free_port()
    log = tmp_path / "collect.log"
    pf_file = tmp_path / "p.toml"
    pf_file.write_text(PORTFOLIO_E2E)

    async def main() -> tuple[int, dict, int]:
        ex = LocalExchange(port=0, rest_weight_limit=1_000_000)
        ex.add_simulation(sim)
        await ex.start()
        cfg = tmp_path / "cluster.toml"
        # (the market stops before the gauges are read: no stream may go stale meanwhile)
        cfg.write_text(config_text(ex, data, port, feed_extra="stream_stall_min_seconds = 60\n")
                       + f'[portfolio]\nfile = "{pf_file}"\nrefresh_seconds = 0.5\n'
                       f"max_age_seconds = {MAX_AGE_S}\n")
        async with collecting(cfg, log, ex) as proc:
            def valued() -> bool:
                m = scrape(port)
                return len(values(m, "analyzer_portfolio_liquidation_distance",
                                  shard="analytics")) == 2

            await until("the portfolio valued by the analytics process", 30, valued)
            sim.stop()
            await ex.wait_replays_done(timeout=10)
            quiet = time.time()

            def refreshed_after_the_market_stopped() -> bool:
                m = scrape(port)
                last = values(m, "analyzer_portfolio_last_refresh_timestamp_seconds",
                              shard="analytics")
                return bool(last) and last[0] > quiet + 2.0

            await until("a refresh on the stopped market", 15, refreshed_after_the_market_stopped)
            final = scrape(port)
            at = time.time_ns()
            status = await stop(proc)
        return status, final, at

    status, m, at = asyncio.run(main())
    text = log.read_text()
    assert status == 0, text[-3000:]
    assert "Traceback" not in text, text[-3000:]

    # (valued once both shards had sent a state: no position refused as not collected)
    assert not [k for k in m if k[0] == "analyzer_portfolio_refresh_errors_total"
                and any(v.startswith("unknown instrument") for _, v in k[1])], m
    assert "unknown instrument" not in text, text[-3000:]

    def gauge(name: str, **labels: str) -> float:
        (v,) = values(m, "analyzer_portfolio_" + name, shard="analytics", **labels)
        return v

    # the independent valuation: the market as the store has it once the simulation stopped
    market = Market.read(connect(data / "analyzer.duckdb"), now=at)
    try:
        v = value(load(pf_file), market, MAX_AGE_S)
    finally:
        market.close()
    for leg in v.legs:
        labels = {"venue": leg.pos.venue, "symbol": leg.pos.symbol, "side": leg.pos.side}
        assert gauge("liquidation_distance", **labels) == pytest.approx(leg.liq_distance,
                                                                        rel=1e-9)
        assert gauge("margin_ratio", **labels) == pytest.approx(leg.margin_ratio, rel=1e-9)
        assert gauge("funding_usd_per_day", rate="current", **labels) == pytest.approx(
            leg.funding_day_usd, rel=1e-9)
    t = v.totals()
    for kind in ("equity", "spot_value", "futures_notional", "net_exposure"):
        assert gauge("value_usd", kind=kind) == pytest.approx(t[f"{kind}_usd"], rel=1e-9), kind
    # and Binance's formula for the isolated short, on the mark stored last: margin 20,000 USDT
    mark = market.mark("binance_usdm", "BTCUSDT", MAX_AGE_S)
    rule = rule_for("binance_usdm", "BTC")
    liq = (20_000 + 60_000) / (rule.tiers[0].mmr + 1)
    i = rule.index(liq)
    liq = (20_000 + rule.deductions[i] + 60_000) / (rule.tiers[i].mmr + 1)
    assert gauge("liquidation_distance", venue="binance_usdm", symbol="BTCUSDT",
                 side="short") == pytest.approx(liq / mark - 1, rel=1e-9)
