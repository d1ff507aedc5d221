"""End to end over the simulated market: analyzer.sim -> the local exchange in Binance's protocol
-> real websockets and HTTP on loopback -> the collector, unchanged -> Parquet/DuckDB.

Each scenario's stated conclusion is asserted at the level that exists now: feed health (gaps,
resyncs, reconnects, decode errors) and book state (in sync, agreeing with the venue's best
bid/ask). The market clock runs 10-40x faster than real time, so a test takes seconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from simrun import FEEDS, run_sim, world_of
from websockets.asyncio.client import connect

from analyzer.exchange import LocalExchange, Simulation
from analyzer.sim import Schedule, quarterly_expiry
from analyzer.sim.scenarios import Disconnect

pytestmark = pytest.mark.slow

MS = 1_000_000

BINANCE = world_of()  # the tests' world: Binance's markets


FIXTURES = Path(__file__).parent / "fixtures" / "binance"


def recorded_frames() -> dict[tuple[str, str], dict[str, Any]]:
    """The first recorded frame per (market, stream kind), read with json from the fixtures."""
    import gzip

    lines: dict[str, list[bytes]] = {
        "spot": gzip.decompress((FIXTURES / "spot_2024/btcusdt_20240808.gz").read_bytes())
        .split(b"\n")[:3000],
        "usdm": gzip.decompress((FIXTURES / "usdm_2024/btcusdt_20240808.gz").read_bytes())
        .split(b"\n")[:3000],
        "coinm": (FIXTURES / "coinm_2021/BINANCE_DELIVERY.ws.1.0.txt").read_bytes()
        .split(b"\n")[1:],
    }
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for market, rows in lines.items():
        for row in rows:
            _, _, frame = row.partition(b" ")
            if frame.startswith(b'{"stream"'):
                doc = json.loads(frame)
                kind = doc["stream"].split("@", 1)[1]
                out.setdefault((market, kind), doc)
    return out


def keys(doc: Any) -> Any:
    """The key order of a JSON document, recursively (values dropped)."""
    if isinstance(doc, dict):
        return [(k, keys(v)) for k, v in doc.items()]
    return None


def test_frames_have_binance_shapes() -> None:
    """Every frame kind of every market, against the recorded frames where the fixtures have
    that kind (key order, number formats, level order) and the venues' docs otherwise."""
    from analyzer.venues.binance.emulate.render import SymbolFormat

    model = Simulation(world=BINANCE, seed=5, speed=0).model
    events = model.advance(model.start_ns + 30 * 10**9)
    formats = {(i.venue, i.symbol): SymbolFormat(i.venue.removeprefix("binance_"), i, 1000)
               for i in model.instruments()}
    sim: dict[tuple[str, str], dict[str, Any]] = {}
    for ev in events:
        f = formats.get((getattr(ev, "venue", ""), getattr(ev, "symbol", "")))
        if f is not None and f.symbol.startswith("BTC") and "_2" not in f.symbol:
            for _, frame in f.frames(ev):
                doc = json.loads(frame)
                sim.setdefault((f.market, doc["stream"].split("@", 1)[1]), doc)
    recorded = recorded_frames()
    for key in (("spot", "depth@100ms"), ("spot", "bookTicker"), ("spot", "trade"),
                ("usdm", "depth@0ms"), ("usdm", "bookTicker"), ("usdm", "trade"),
                ("coinm", "depth@100ms"), ("coinm", "bookTicker"), ("coinm", "aggTrade")):
        assert keys(sim[key]) == keys(recorded[key]), key
    # decimals as Binance writes BTC: spot pads to 8, USDⓈ-M 2 on a 0.10 tick, COIN-M 1
    for market, price, size in (("spot", 8, 8), ("usdm", 2, 3), ("coinm", 1, 0)):
        data = sim[market, "bookTicker"]["data"]
        assert len(data["b"].partition(".")[2]) == price, market
        assert len(data["B"].partition(".")[2]) == size, market
    # levels sorted as recorded: futures both sides ascending, spot bids descending
    for market, depth in (("spot", "depth@100ms"), ("usdm", "depth@0ms"),
                          ("coinm", "depth@100ms")):
        for side in ("b", "a"):
            prices = [float(p) for p, _ in sim[market, depth]["data"][side]]
            descending = market == "spot" and side == "b"
            assert prices == sorted(prices, reverse=descending), (market, side)
    # the kinds no fixture has, in the docs' key order
    doc_keys = {
        ("spot", "aggTrade"): ["e", "E", "s", "a", "p", "q", "f", "l", "T", "m", "M"],
        ("usdm", "aggTrade"): ["e", "E", "a", "s", "p", "q", "f", "l", "T", "m"],
        ("usdm", "markPrice@1s"): ["e", "E", "s", "p", "i", "P", "r", "T"],
        ("coinm", "markPrice@1s"): ["e", "E", "s", "p", "P", "r", "T"],
        ("coinm", "indexPrice@1s"): ["e", "E", "i", "p"],
        ("coinm", "trade"): ["e", "E", "T", "s", "t", "p", "q", "X", "m"],
    }
    for (market, kind), names in doc_keys.items():
        assert list(sim[market, kind]["data"]) == names, (market, kind)
    mark = sim["usdm", "markPrice@1s"]["data"]
    assert mark["r"] and mark["T"] > mark["E"]  # the perpetual's funding rate and next time


def test_same_seed_gives_byte_identical_frames() -> None:
    """A client subscribed to every stream of a symbol per market hashes what it receives:
    identical for the same seed and schedule, different for another seed."""
    streams = {
        "binance_spot": ["btcusdt@depth@100ms", "btcusdt@trade", "btcusdt@bookTicker"],
        "binance_usdm": ["btcusdt@depth@0ms", "btcusdt@depth@100ms", "btcusdt@aggTrade",
                         "btcusdt@markPrice@1s", "btcusdt@bookTicker"],
        "binance_coinm": ["btcusd_perp@depth@100ms", "btcusd_perp@trade",
                          "btcusd_perp@markPrice@1s", "btcusd@indexPrice@1s"],
    }

    async def frames(seed: int) -> tuple[str, int]:
        ex = LocalExchange(port=0)
        ex.add_simulation(Simulation(world=BINANCE, seed=seed, schedule="fleeting_spike@5s",
                                     speed=0, duration_s=20, wait_for=FEEDS))
        await ex.start()
        digest = hashlib.sha256()
        n = 0

        async def read(feed: str) -> list[bytes]:
            url = f"{ex.ws_url(feed)}/stream?streams={'/'.join(streams[feed])}"
            async with connect(url, max_queue=None, compression=None) as ws:
                return [m async for m in ws]  # until the server closes

        try:
            readers = [asyncio.create_task(read(f)) for f in FEEDS]
            await ex.wait_replays_done(timeout=30)
            for f in FEEDS:
                ex.close_clients(f, 1000)
            for got in await asyncio.gather(*readers):
                for m in got:
                    digest.update(m if isinstance(m, bytes) else m.encode())
                    n += 1
        finally:
            await ex.stop()
        return digest.hexdigest(), n

    first, n = asyncio.run(frames(11))
    again, n_again = asyncio.run(frames(11))
    other, _ = asyncio.run(frames(12))
    print(f"{n} frames, sha256 {first[:16]}")
    assert n > 3000 and n_again == n
    assert again == first
    assert other != first


def test_calm_market_every_book_stays_in_sync(tmp_path: Path) -> None:
    run = run_sim(tmp_path, "calm_contango", seconds=60)
    for venue in FEEDS:
        r = run.runner(venue)
        stats = r.books.stats
        print(f"{venue}: {stats.bbo_compared} bookTickers compared, {stats.bbo_mismatched} "
              f"differed, {r.feed.routes and sum(x.frames for x in r.feed.routes.values())} frames")
        assert stats.gaps == stats.crossed == stats.resyncs == 0
        assert stats.bbo_mismatched == 0 and stats.bbo_compared > 1000
        assert all(sb.in_sync for sb in r.books.books.values())
        assert r.decode_errors == {} and r.unknown_frames == 0
        assert run.reconnects(venue) == {}
    assert run.sql("SELECT count(*) FROM gaps") == [(0,)]
    produced = run.produced_trades()
    assert len(produced) == 14 and min(produced.values()) > 100
    assert run.stored_trades() == produced
    # instruments as listed, with the quarterlies' real delivery times (last Friday, 08:00 UTC)
    march, june = quarterly_expiry(2026, 3), quarterly_expiry(2026, 6)
    rows = run.sql("SELECT venue, symbol, market, inverse, contract_size, expiry "
                   "FROM instruments ORDER BY venue, symbol")
    assert rows == [
        ("binance_coinm", "BTCUSD_260327", "future", True, 100.0, march),
        ("binance_coinm", "BTCUSD_260626", "future", True, 100.0, june),
        ("binance_coinm", "BTCUSD_PERP", "perpetual", True, 100.0, None),
        ("binance_coinm", "ETHUSD_260327", "future", True, 10.0, march),
        ("binance_coinm", "ETHUSD_260626", "future", True, 10.0, june),
        ("binance_coinm", "ETHUSD_PERP", "perpetual", True, 10.0, None),
        ("binance_spot", "BTCUSDT", "spot", False, 1.0, None),
        ("binance_spot", "ETHUSDT", "spot", False, 1.0, None),
        ("binance_usdm", "BTCUSDT", "perpetual", False, 1.0, None),
        ("binance_usdm", "BTCUSDT_260327", "future", False, 1.0, march),
        ("binance_usdm", "BTCUSDT_260626", "future", False, 1.0, june),
        ("binance_usdm", "ETHUSDT", "perpetual", False, 1.0, None),
        ("binance_usdm", "ETHUSDT_260327", "future", False, 1.0, march),
        ("binance_usdm", "ETHUSDT_260626", "future", False, 1.0, june),
    ]
    assert march == 1774598400 * 10**9  # 2026-03-27 08:00 UTC
    # mark, index and funding arrive for every derivative; COIN-M's index per pair
    tickers = dict(run.sql("SELECT symbol, count(*) FROM derivative_tickers "
                           "WHERE venue = 'binance_coinm' GROUP BY ALL"))
    assert tickers.keys() >= {"BTCUSD_PERP", "BTCUSD_260327", "BTCUSD", "ETHUSD"}


def test_stale_feed_is_detected_and_recovered(tmp_path: Path) -> None:
    """USDⓈ-M's open connection goes silent for 60 market seconds (3 s here) while it answers
    pings: the watchdog reconnects it, its books resync, no trade is lost; the other markets
    carry on untouched."""
    run = run_sim(tmp_path, "stale_feed@10s+60s", seconds=80, stall_seconds=1.0)
    expected = run.sim.model.scenario_runs()[0].expected
    assert expected["feed"] == "binance_usdm"
    assert run.reconnects("binance_usdm").get("stall", 0) >= 1
    usdm = run.runner("binance_usdm")
    assert all(sb.in_sync for sb in usdm.books.books.values())
    assert usdm.books.stats.bbo_mismatched == 0
    for venue in ("binance_spot", "binance_coinm"):
        assert run.reconnects(venue) == {} and run.runner(venue).books.stats.gaps == 0
    assert run.stored_trades() == run.produced_trades()


def test_sequence_gap_resyncs_that_symbol_alone(tmp_path: Path) -> None:
    run = run_sim(tmp_path, "sequence_gap@10s", seconds=30)
    expected = run.sim.model.scenario_runs()[0].expected
    assert (expected["feed"], expected["symbol"]) == ("binance_usdm", "BTCUSDT")
    assert run.sql("SELECT venue, symbol, reason, action FROM gaps") == [
        ("binance_usdm", "BTCUSDT", "gap", "resync")]
    assert run.exchange.stats["feeds"]["binance_usdm"]["dropped"] == 1
    usdm = run.runner("binance_usdm")
    assert usdm.books.stats.resyncs == 1 and usdm.books.stats.bbo_mismatched == 0
    for venue in FEEDS:
        assert all(sb.in_sync for sb in run.runner(venue).books.books.values())
    assert run.metric("analyzer_book_gaps_total", venue="binance_usdm", reason="gap") == 1


def test_disconnects_are_counted_by_close_code_and_lose_no_trade(tmp_path: Path) -> None:
    """Closes with 1000, 1001, 1008, 1011 and a TCP abort, 10 market seconds (1 s) apart: a
    reconnect per code and connection, every trade stored once (the missed ones backfilled over
    REST)."""
    schedule = Schedule([Disconnect(at_s=5.0, spacing_s=10.0)])
    # each 1 s connection counts as healthy here, so the backoff stays short between codes
    run = run_sim(tmp_path, schedule, seconds=70, speed=10, healthy_seconds=0.5)
    usdm = run.runner("binance_usdm")
    assert len(usdm.connections) == 2  # its /public and /market paths
    got = run.reconnects("binance_usdm")
    # each code closed both, or the one up then (the other still reconnecting from the last
    # close), and the collector counted every close the exchange made, by its code
    assert set(got) == {"1000", "1001", "1008", "1011", "abnormal"}
    assert all(1 <= n <= 2 for n in got.values()), got
    assert sum(got.values()) == run.exchange.stats["feeds"]["binance_usdm"]["closed_by_fault"]
    assert run.stored_trades() == run.produced_trades()
    assert usdm.trades_backfilled > 0
    assert all(sb.in_sync for sb in usdm.books.books.values())
    for venue in ("binance_spot", "binance_coinm"):
        assert run.reconnects(venue) == {}


def test_malformed_frames_are_counted_and_the_stream_goes_on(tmp_path: Path) -> None:
    run = run_sim(tmp_path, "malformed@5s", seconds=40)
    expected = run.sim.model.scenario_runs()[0].expected
    usdm = run.runner("binance_usdm")
    assert sum(usdm.decode_errors.values()) == expected["count"] == 6
    # the HTML pages are not Binance frames at all; the bad prices are depth frames
    assert usdm.decode_errors["other"] == 2 and usdm.decode_errors["depth"] >= 2
    assert run.exchange.stats["feeds"]["binance_usdm"]["injected"] == 6
    for venue in FEEDS:
        r = run.runner(venue)
        assert r.books.stats.gaps == 0 and r.books.stats.bbo_mismatched == 0
        assert all(sb.in_sync for sb in r.books.books.values())
    assert run.stored_trades() == run.produced_trades()


def test_crossed_book_is_flagged_and_resynced(tmp_path: Path) -> None:
    run = run_sim(tmp_path, "crossed_book@10s", seconds=30)
    expected = run.sim.model.scenario_runs()[0].expected
    assert (expected["feed"], expected["symbol"]) == ("binance_spot", "BTCUSDT")
    gaps = run.sql("SELECT venue, symbol, reason, action FROM gaps")
    assert gaps and set(gaps) == {("binance_spot", "BTCUSDT", "crossed", "resync")}
    for venue in FEEDS:
        r = run.runner(venue)
        assert all(sb.in_sync for sb in r.books.books.values())  # uncrossed: in sync again
        assert r.books.stats.bbo_mismatched == 0


def test_expiry_roll_ends_the_expired_stream_and_lists_the_next(tmp_path: Path) -> None:
    # the collector follows the dated futures by glob: it retires the expired ones and
    # subscribes to, syncs and polls the ones listed at the roll
    run = run_sim(tmp_path, "expiry_roll@5s", seconds=150, speed=30, follow_quarterlies=True)
    expected = run.sim.model.scenario_runs()[0].expected
    expiry = expected["expiry_ns"]
    assert len(expected["expiring"]) == len(expected["listed"]) == 4
    ends = {(v, s): t for v, s, t in run.sql(
        "SELECT venue, symbol, max(ts_exchange) FROM quotes WHERE source = 'venue' GROUP BY ALL")}
    for key in expected["expiring"]:
        assert expiry - 5_000 * MS < ends[tuple(key)] < expiry  # streamed until it expired
    assert ends["binance_usdm", "BTCUSDT"] > expiry + 20_000 * MS  # the others go on
    # the last mark of an expired contract is its settlement price
    for venue, symbol in expected["expiring"]:
        [(ts,)] = run.sql(f"SELECT max(ts_exchange) FROM derivative_tickers "
                          f"WHERE venue = '{venue}' AND symbol = '{symbol}'")
        assert ts == expiry
    for venue in ("binance_usdm", "binance_coinm"):
        info = json.loads(run.exchange.feed(venue).rest("exchangeInfo", {}))
        types = {s["symbol"]: (s["contractType"], s["deliveryDate"]) for s in info["symbols"]}
        gone = {s for v, s in expected["expiring"] if v == venue}
        new = {s for v, s in expected["listed"] if v == venue}
        assert gone.isdisjoint(types) and new <= types.keys()
        for symbol in new:
            assert types[symbol][0] == "NEXT_QUARTER" and types[symbol][1] * MS > expiry
        assert sum(t == "CURRENT_QUARTER" for t, _ in types.values()) == 2
        r = run.runner(venue)
        assert gone.isdisjoint(r.symbols) and gone.isdisjoint(r.books.books)
        assert new <= set(r.symbols) and all(r.books.books[s].in_sync for s in new)
    followed = run.sql("SELECT DISTINCT venue, symbol FROM open_interest "
                       "WHERE ts_local > (SELECT max(ts_local) FROM instruments)")
    assert {tuple(k) for k in expected["listed"]} <= set(followed)
    for venue, symbol in expected["listed"]:  # streamed and stored after the listing
        [(n,)] = run.sql(f"SELECT count(*) FROM quotes WHERE venue = '{venue}' "
                         f"AND symbol = '{symbol}' AND ts_exchange > {expiry}")
        assert n > 0


def test_cli_simulate_arguments_and_one_line_errors() -> None:
    import argparse
    import subprocess
    import sys

    from analyzer.exchange import ExchangeError, add_arguments, build_exchange

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    ex = build_exchange(parser.parse_args(
        ["--simulate", "--scenario", "calm_contango,sequence_gap@5m", "--seed", "9",
         "--speed", "0", "--port", "0", "--start", "2026-06-20T00:00:00Z"]))
    sim = ex.simulation
    assert sim is not None and (sim.seed, sim.speed, sim.scenarios) == (
        9, 0.0, ["calm_contango", "sequence_gap"])
    assert sim.start_ns == 1781913600 * 10**9
    # June's quarterlies expire on the 26th: the next two are listed from the 20th
    assert {i.symbol for i in sim.model.instruments() if i.venue == "binance_usdm"} == {
        "BTCUSDT", "ETHUSDT", "BTCUSDT_260626", "ETHUSDT_260626", "BTCUSDT_260925",
        "ETHUSDT_260925"}
    for argv, message in (
        (["--simulate", "--scenario", "nope"], "unknown scenario 'nope'"),
        (["--simulate", "--start", "tomorrow"], "bad time 'tomorrow'"),
        (["--simulate", "--replay", "x.gz"], "takes no --replay"),
        (["--simulate", "--drop-depth", "BTCUSDT:3"], "come from --scenario"),
        ([], "give --replay PATH"),
    ):
        with pytest.raises(ExchangeError, match=message):
            build_exchange(parser.parse_args(argv))
    r = subprocess.run([sys.executable, "-m", "analyzer.cli", "demo", "--scenario", "stale"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert r.stderr.startswith("analyzer: unknown scenario 'stale'")
