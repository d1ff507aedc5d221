"""A sharded collector end to end, as a user runs it: ``analyzer collect -c cfg`` with two
shards (one per exchange: Binance's USDⓈ-M and spot markets, and a second venue's linear and
spot markets) against the local exchange's simulated market, a real nats-server started by the
supervisor, the analytics process evaluating both shards' states together. Mid-stream a shard
and then the analytics process are killed with SIGKILL; the supervisor restarts them; the run
ends with SIGTERM. Checked: every book in sync in each shard, every trade released by the
market stored exactly once (the killed shard backfills what it missed from the newest trade it
had stored), each shard state applied exactly once and none lost (the restarted analytics
process resumes from its durable consumer), cross-venue carry rows pairing a spot leg of one
shard with a derivative of the other, both shards' metrics on the one endpoint, and a clean
stop (exit 0, no child and no nats-server left)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import signal
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from harness import children_of, running
from prometheus_client.parser import text_string_to_metric_families

from analyzer.exchange import LocalExchange, Simulation
from analyzer.sim import World
from analyzer.sim.spec import BTC
from analyzer.store.research import query
from analyzer.venues import EXCHANGES, VENUES

pytestmark = pytest.mark.slow

EXCHANGES_RUN = ("binance", "bybit")
FEEDS = ("binance_usdm", "binance_spot", "bybit_linear", "bybit_spot")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    except OSError:
        return {}
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text.decode()) for s in fam.samples}


def values(m: dict, name: str, **labels: str) -> list[float]:
    return [v for (n, ls), v in m.items()
            if n == name and all((k, x) in ls for k, x in labels.items())]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def child(sup: int, role: str) -> int:
    return next(p for p in children_of(sup) if role in cmdline(p))


def config_text(ex: LocalExchange, data: Path, port: int, feed_extra: str = "") -> str:
    out = [f'log_level = "WARNING"\n[store]\ndata_dir = "{data}"\n'
           f'database = "{data}/analyzer.duckdb"\nflush_seconds = 0.5\nraw_capture = false\n'
           f'[metrics]\nport = {port}\n[analytics]\nanomaly_min_samples = 1000\n'
           '[cluster]\nshards = "exchange"\n']
    for venue in FEEDS:
        spot = VENUES[venue][0].is_spot
        channels = '["depth", "trades", "bookTicker"]' if spot else \
            '["depth", "trades", "bookTicker", "markPrice", "openInterest"]'
        out.append(f'[[feeds]]\nvenue = "{venue}"\nsymbols = ["BTC*"]\nchannels = {channels}\n'
                   f'ws_url = "{ex.ws_url(venue)}"\nrest_url = "{ex.base_url(venue)}"\n'
                   'rest_weight_per_minute = 1000000\nopen_interest_seconds = 1.0\n'
                   + feed_extra)
    return "\n".join(out)


@contextlib.asynccontextmanager
async def collecting(cfg: Path, log: Path, ex: LocalExchange
                     ) -> AsyncIterator[asyncio.subprocess.Process]:
    """``analyzer collect -c cfg`` (its output to ``log``) while the block runs; on the way out
    killed if the block did not stop it (``stop``), and the exchange stopped."""
    with log.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "analyzer.cli", "collect", "-c", str(cfg),
            stdout=err, stderr=err)
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await ex.stop()


async def stop(proc: asyncio.subprocess.Process) -> int:
    """SIGTERM, as a user's Ctrl-C or a service manager: the exit status."""
    proc.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(proc.wait(), 40)


async def until(what: str, timeout: float, check) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.25)


def test_two_shards_over_nats_survive_kill_9_and_stop_cleanly(tmp_path: Path) -> None:
    emulators = [importlib.import_module(EXCHANGES[e].emulator).EMULATOR for e in EXCHANGES_RUN]
    world = World(assets=(BTC,), venues=tuple(v for e in emulators for v in e.sim_venues
                                              if v.feed in FEEDS)).validate()
    sim = Simulation(world=world, seed=11, speed=5, wait_for=FEEDS)
    data = tmp_path / "data"
    db = data / "analyzer.duckdb"
    port = free_port()
    log = tmp_path / "collect.log"

    async def main() -> tuple[int, list[int], dict[tuple[str, str], int], dict]:
        ex = LocalExchange(port=0, rest_weight_limit=1_000_000)
        ex.add_simulation(sim)
        await ex.start()
        cfg = tmp_path / "cluster.toml"
        cfg.write_text(config_text(ex, data, port))
        books = len(sim.model.instruments())
        async with collecting(cfg, log, ex) as proc:
            def synced_and_flowing(min_states: int = 2) -> bool:
                m = scrape(port)
                in_sync = values(m, "analyzer_book_in_sync")
                return (len(in_sync) == books and all(in_sync) and all(
                    sum(values(m, "analyzer_cluster_states_applied_total", origin=s))
                    >= min_states for s in ("binance", "bybit")))

            await until("both shards synced, their states applied", 40, synced_and_flowing)
            m = scrape(port)
            for shard in ("binance", "bybit"):  # both shards' metrics on the one endpoint
                assert sum(values(m, "analyzer_frames_total", shard=shard)) > 0, shard
                assert values(m, "analyzer_cluster_process_up", shard=shard) == [1.0]
            assert values(m, "analyzer_basis_annualized", shard="analytics")

            os.kill(child(proc.pid, "shard:binance"), signal.SIGKILL)
            await asyncio.sleep(1.5)
            os.kill(child(proc.pid, " analytics"), signal.SIGKILL)

            def restarted() -> bool:
                m = scrape(port)
                return (values(m, "analyzer_cluster_process_restarts_total") == [1.0] * 3
                        or sorted(values(m, "analyzer_cluster_process_restarts_total"))
                        == [0.0, 1.0, 1.0]) and synced_and_flowing()

            await until("the killed processes back, states flowing", 40, restarted)
            await asyncio.sleep(1.0)
            sim.stop()
            await ex.wait_replays_done(timeout=30)
            produced = {(venue, sym): len(tape.rows) for venue in FEEDS
                        for sym, tape in ex.feed(venue).tapes.items() if tape.rows}

            def stored() -> dict[tuple[str, str], int]:
                try:
                    rows = query(db, "SELECT venue, symbol, count(*) FROM trades GROUP BY ALL"
                                 ).rows()
                except Exception:
                    return {}
                return {(v, s): n for v, s, n in rows}

            await until("every trade stored", 30, lambda: stored() == produced)
            final = scrape(port)
            kids = children_of(proc.pid)
            status = await stop(proc)
        return status, kids, produced, final

    status, kids, produced, final = asyncio.run(main())
    text = log.read_text()
    assert status == 0, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    assert len(kids) == 4  # two shards, the analytics process, the nats-server
    assert not [k for k in kids if running(k)], "a child outlived the supervisor"

    # every trade the market released, stored once
    dup = query(db, "SELECT venue, symbol, trade_id FROM trades GROUP BY ALL "
                    "HAVING count(*) > 1").rows()
    assert not dup
    assert len(produced) == len(sim.model.instruments()) and sum(produced.values()) > 100
    # (the restarted shard fetched what it missed while it was down)
    assert sum(values(final, "analyzer_trades_backfilled_total", shard="binance")) > 0

    # each shard's states applied once, none lost across the kills
    for shard, n, distinct, lo, hi, streams in query(
            db, "SELECT shard, count(*), count(DISTINCT (epoch, seq)), min(seq), max(seq), "
                "count(DISTINCT stream_seq) FROM shard_states GROUP BY ALL").rows():
        assert n == distinct == streams == hi - lo + 1, (shard, n, distinct, lo, hi)
        assert lo == 1 and shard in ("binance", "bybit")

    # cross-venue carry: a spot leg from one shard, a derivative from the other, live
    pairs = set(query(db, "SELECT DISTINCT spot_venue, venue FROM carry_candidates "
                          "WHERE source = 'live'").rows())
    assert {("binance_spot", "bybit_linear"), ("bybit_spot", "binance_usdm")} <= pairs, pairs
    venues = {v for (v,) in query(db, "SELECT DISTINCT venue FROM basis WHERE valid").rows()}
    assert {"binance_usdm", "bybit_linear"} <= venues
