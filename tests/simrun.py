"""The simulated market collected end to end, for the tests: analyzer.sim -> the local exchange
in each venue's protocol -> real websockets and HTTP on loopback -> the collector ->
Parquet/DuckDB. A run simulates the markets of the exchanges it names (Binance's by default:
most tests are about one venue's rules, and every venue more costs time).
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from harness import drained
from prometheus_client import CollectorRegistry

from analyzer import config
from analyzer.collector import Collector
from analyzer.exchange import LocalExchange, Simulation
from analyzer.feed.books import SYNCING
from analyzer.metrics import CollectorMetrics, serve
from analyzer.sim import Rates, Schedule, World
from analyzer.sim.spec import BTC, ETH
from analyzer.store.research import query
from analyzer.venues import EXCHANGES, VENUES

FEEDS = ("binance_spot", "binance_usdm", "binance_coinm")
# the tests' feed settings: the densest depth stream, COIN-M's aggregate trades
FEED_SETTINGS: dict[str, dict[str, Any]] = {
    "binance_usdm": {"options": {"depth_speed": "0ms"}},
    "binance_coinm": {"options": {"trade_stream": "aggTrade"}},
}


def world_of(exchanges: Sequence[str] = ("binance",), rates: Rates | None = None) -> World:
    """BTC and ETH on every simulated market of these exchanges."""
    emulators = [importlib.import_module(EXCHANGES[name].emulator).EMULATOR for name in exchanges]
    venues = tuple(spec for e in emulators for spec in e.sim_venues)
    return World(assets=(BTC, ETH), venues=venues, rates=rates or Rates()).validate()


def feeds_in(world: World) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v.feed for v in world.venues))


@dataclass
class Run:
    collector: Collector
    exchange: LocalExchange
    sim: Simulation
    db: Path

    def sql(self, text: str) -> list[tuple]:
        return query(self.db, text).rows()

    def frame(self, text: str) -> pl.DataFrame:
        return query(self.db, text)

    def runner(self, venue: str) -> Any:
        return next(r for r in self.collector.runners if r.venue == venue)

    def reconnects(self, venue: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.runner(venue).connections:
            for k, v in c.stats.reconnects.items():
                out[k] = out.get(k, 0) + v
        return out

    def produced_trades(self) -> dict[tuple[str, str], int]:
        """Trades the simulation released, per (venue, symbol)."""
        return {
            (venue, sym): len(tape.rows)
            for venue in feeds_in(self.sim.world)
            for sym, tape in self.exchange.feed(venue).tapes.items()
            if tape.rows
        }

    def stored_trades(self) -> dict[tuple[str, str], int]:
        rows = self.sql("SELECT venue, symbol, count(*), count(DISTINCT trade_id) FROM trades "
                        "GROUP BY ALL")
        assert all(n == distinct for _, _, n, distinct in rows)  # each trade stored once
        return {(v, s): n for v, s, n, _ in rows}

    def metric(self, name: str, **labels: str) -> float | None:
        registry = CollectorRegistry()
        registry.register(CollectorMetrics(self.collector))
        return registry.get_sample_value(name, labels)


def feeds_of(sim: Simulation, *, follow_quarterlies: bool = False,
             options: dict[str, dict[str, Any]] | None = None,
             **usdm: Any) -> list[dict[str, Any]]:
    """Every instrument the simulated market lists, on every market, every channel;
    ``follow_quarterlies``: the dated futures by the glob ``*`` instead (new listings too);
    ``options``: feed settings per venue (``usdm``: Binance USDⓈ-M's)."""
    by: dict[str, list[str]] = {f: [] for f in feeds_in(sim.world)}
    for inst in sim.model.instruments():
        if not (follow_quarterlies and inst.expiry is not None):
            by[inst.venue].append(inst.symbol)
    futures = ["depth", "trades", "bookTicker", "markPrice", "openInterest", "liquidations"]
    feeds = []
    for venue, symbols in by.items():
        spot = VENUES[venue][0].is_spot
        if follow_quarterlies and not spot:
            symbols = [*symbols, "*"]
        f = {"venue": venue, "symbols": symbols,
             "channels": ["depth", "trades", "bookTicker"] if spot else futures,
             **FEED_SETTINGS.get(venue, {})}
        if venue == "binance_usdm":
            f |= usdm
        feeds.append(f | (options or {}).get(venue, {}))
    return feeds


async def until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.05)


def run_sim(tmp_path: Path, schedule: str | Schedule, *, seconds: float, speed: float = 20,
            seed: int = 3, follow_quarterlies: bool = False,
            analytics: dict[str, Any] | None = None, store: dict[str, Any] | None = None,
            carry: dict[str, Any] | None = None, alerts: dict[str, Any] | None = None,
            metrics_port: int | None = None, options: dict[str, dict[str, Any]] | None = None,
            exchange: dict[str, Any] | None = None, setup: Any = None,
            exchanges: Sequence[str] = ("binance",), **usdm: Any) -> Run:
    """The simulated market collected from its first event: the clock starts once the collector
    has subscribed everything and holds every book's first snapshot, runs at least ``seconds``
    of market time and until every book is in sync (a resync takes longer on a loaded
    machine), then stops; the collector drains and flushes. ``metrics_port``: also serve the
    Prometheus metrics there (on a thread that outlives the run). ``options``: feed settings
    per venue; ``exchange``: LocalExchange settings; ``setup(collector)``: called before it
    starts; ``exchanges``: the venues simulated."""
    world = world_of(exchanges)
    sim = Simulation(world=world, seed=seed, schedule=schedule, speed=speed,
                     wait_for=feeds_in(world), autostart=False)

    async def main() -> Run:
        # REST budgets out of the way: resyncs after faults must not wait for a minute
        ex = LocalExchange(port=0, **{"rest_weight_limit": 1_000_000, **(exchange or {})})
        ex.add_simulation(sim)
        await ex.start()
        feeds = feeds_of(sim, follow_quarterlies=follow_quarterlies, options=options, **usdm)
        for f in feeds:
            f |= {"ws_url": ex.ws_url(f["venue"]), "rest_url": ex.base_url(f["venue"]),
                  "rest_weight_per_minute": 1_000_000}
            f.setdefault("open_interest_seconds", 1.0)  # (a test's options may say otherwise)
        db = tmp_path / "data" / "analyzer.duckdb"
        cfg = config.parse({
            "feeds": feeds,
            "store": {"data_dir": str(tmp_path / "data"), "database": str(db),
                      "flush_seconds": 0.5, **(store or {})},
            "metrics": {"port": 0},
            "analytics": analytics or {},
            "carry": carry or {},
            "alerts": alerts or {},
        })
        collector = Collector(cfg)
        if setup is not None:
            setup(collector)
        if metrics_port is not None:
            serve(collector, "127.0.0.1", metrics_port)

        def books() -> list[Any]:
            return [sb for r in collector.runners for sb in r.books.books.values()]

        try:
            await collector.start()
            await until(lambda: all(sb.state != SYNCING for sb in books()), 60, "snapshots")
            sim.start()
            end = sim.start_ns + round(seconds * 1e9)
            await until(lambda: sim.model.now_ns >= end and all(sb.in_sync for sb in books()),
                        60, "every book in sync")
            sim.stop()
            await ex.wait_replays_done(timeout=60)
            await drained(collector)
        finally:
            await collector.stop()
            await ex.stop()
        return Run(collector, ex, sim, db)

    return asyncio.run(main())
