"""The reliability checklist (issue 14): its 17 rows, run for every venue in the registry.

Each venue gets the same faults aimed at it, through the local exchange speaking its protocol
(the simulated market, every venue collected at once, so the untouched venues show a fault
stays where it was aimed), real websockets and HTTP on loopback, the real collector, real
Parquet and DuckDB files, and real processes where the row is about processes (kill -9, a
second process holding the database, a full disk on a small tmpfs). A venue added to
``analyzer.venues.VENUES`` runs all of it; the few frame mutations that depend on a venue's
wire format are in ``FRAME_KEYS`` and a venue without an entry there fails loudly.

Rows (see the README's table): 1 planned rotation, 2 close codes and backoff, 3 silent stall,
4 sequence gap, 5 duplicates and replays, 6 snapshot bridging, 7 crossed book, 8 malformed
frames, 9 absurd numbers, 10 unknown symbols and new or missing fields, 11 clock skew, 12 REST
429/418, 13 database held by another process, 14 disk full, 15 kill -9 mid-batch, 16 slow
consumer, 17 exporter while storage is down.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from simrun import Run, run_sim

from analyzer.metrics import CollectorMetrics
from analyzer.sim import Schedule
from analyzer.sim.scenarios import (
    CrossedBook,
    Disconnect,
    Malformed,
    SequenceGap,
    StaleFeed,
)
from analyzer.store.research import query
from analyzer.venues import VENUES

pytestmark = pytest.mark.slow

VENUE_IDS = sorted(VENUES)
ROOT = Path(__file__).resolve().parents[1]
S = 1_000_000_000

# Where a venue's frames carry the stream name, the event time and a trade's quantity, for the
# rows that mutate a real captured frame (10, 11). A venue added to the registry adds its line.
FRAME_KEYS = {
    venue: {"stream": ("stream",), "event_time": ("data", "E"), "quantity": ("data", "q"),
            "trade_stream": "@trade", "agg_stream": "@aggTrade"}
    for venue in VENUES if venue.startswith("binance_")
} | {
    # Bybit: the topic names the stream; a publicTrade frame's data is a list of trades
    venue: {"stream": ("topic",), "event_time": ("ts",), "quantity": ("data", 0, "v"),
            "trade_stream": "publicTrade.", "agg_stream": "publicTrade."}
    for venue in VENUES if venue.startswith("bybit_")
}
# OKX: {"arg":{"channel":"trades","instId":..},"data":[{"tradeId","px","sz","side","ts"}]}
FRAME_KEYS |= {
    venue: {"stream": ("arg", "instId"), "event_time": ("data", 0, "ts"),
            "quantity": ("data", 0, "sz"), "trade_stream": '"channel":"trades"',
            "agg_stream": '"channel":"trades"'}
    for venue in VENUES if venue.startswith("okx_")
}


def contract(venue: str) -> str:
    return "spot" if VENUES[venue][0].is_spot else "perpetual"


def metric(run: Run, name: str, **labels: str) -> float | None:
    registry = CollectorRegistry()
    registry.register(CollectorMetrics(run.collector))
    return registry.get_sample_value(name, labels)


def series(run: Run, name: str) -> list[dict[str, str]]:
    registry = CollectorRegistry()
    registry.register(CollectorMetrics(run.collector))
    return [dict(s.labels) for fam in registry.collect() for s in fam.samples if s.name == name]


# -- the gauntlet: one simulated run per venue with rows 2-9 aimed at it ---------------------

GAUNTLET = {  # market seconds; at 20x, 1 s of wall time is 20 market seconds
    "gap_at": 10.0, "crossed_at": 30.0, "malformed_at": 50.0, "stale_at": 90.0,
    "stale_s": 60.0, "disconnect_at": 170.0, "end": 290.0,
}


@pytest.fixture(scope="module", params=VENUE_IDS)
def gauntlet(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[str, Run]:
    venue = request.param
    g = GAUNTLET
    schedule = Schedule([
        *Schedule.parse("calm_contango"),
        SequenceGap(at_s=g["gap_at"], feed=venue, contract=contract(venue)),
        CrossedBook(at_s=g["crossed_at"], feed=venue, contract=contract(venue)),
        Malformed(at_s=g["malformed_at"], feed=venue, count=6, spacing_s=5.0),
        StaleFeed(at_s=g["stale_at"], feed=venue, duration_s=g["stale_s"]),
        Disconnect(at_s=g["disconnect_at"], feed=venue, spacing_s=20.0),
    ])
    # the stream watchdog (1 s) acts before the connection's (3 s): the book leaves sync as soon
    # as its own stream is found silent (tests/test_freshness.py covers the connection's)
    options = {venue: {"stall_seconds": 3.0, "stream_stall_min_seconds": 1.0,
                       "healthy_seconds": 0.5}}
    run = run_sim(tmp_path_factory.mktemp(venue), schedule, seconds=g["end"], speed=20,
                  options=options)
    return venue, run


def others(venue: str) -> list[str]:
    return [v for v in VENUE_IDS if v != venue]


def test_row2_close_codes_reconnect_through_backoff(gauntlet: tuple[str, Run]) -> None:
    venue, run = gauntlet
    got = run.reconnects(venue)
    assert {k: got.get(k) for k in ("1000", "1001", "1008", "1011", "abnormal")} == {
        "1000": 1, "1001": 1, "1008": 1, "1011": 1, "abnormal": 1}
    conns = run.runner(venue).connections
    assert all(c.delay > 0 for c in conns)  # every reconnect waited (jittered backoff)
    # 1008 (policy violation) slowed subscribing on the connection it closed
    base = 2.0 / VENUES[venue][0].max_messages_per_second
    assert any(c.subscribe_interval > base for c in conns)
    assert metric(run, "analyzer_reconnects_total", venue=venue, reason="1011") == 1
    for v in others(venue):
        assert run.reconnects(v) == {}


def test_row3_silent_stall_is_detected_and_recovered(gauntlet: tuple[str, Run]) -> None:
    venue, run = gauntlet
    runner = run.runner(venue)
    assert run.reconnects(venue).get("stall", 0) >= 1
    assert runner.freshness.stalls.get("depth", 0) >= 1  # its books left sync at once
    stale = run.sql(f"SELECT count(*) FROM gaps WHERE venue = '{venue}' AND reason = 'stale'")
    assert stale[0][0] >= 1
    assert all(sb.in_sync for sb in runner.books.books.values())  # and came back
    ages = series(run, "analyzer_last_message_age_seconds")
    assert {"venue": venue, "channel": "depth"} in ages


def test_row4_sequence_gap_resyncs_that_book_alone(gauntlet: tuple[str, Run]) -> None:
    venue, run = gauntlet
    expected = next(r.expected for r in run.sim.model.scenario_runs()
                    if r.name == "sequence_gap")
    gaps = run.sql(f"SELECT symbol, action FROM gaps WHERE venue = '{venue}' AND reason = 'gap'")
    assert (expected["symbol"], "resync") in gaps
    assert metric(run, "analyzer_book_gaps_total", venue=venue, reason="gap") >= 1
    assert run.runner(venue).books.stats.bbo_mismatched == 0
    for v in others(venue):
        assert run.runner(v).books.stats.gaps == 0


def test_row5_every_trade_stored_exactly_once_across_reconnects(
    gauntlet: tuple[str, Run],
) -> None:
    venue, run = gauntlet
    assert run.stored_trades() == run.produced_trades()  # (stored_trades checks uniqueness)
    assert run.runner(venue).trades_backfilled > 0  # the reconnects' holes were fetched


def test_row6_snapshots_bridge_the_buffered_changes(gauntlet: tuple[str, Run]) -> None:
    """Every resync after a fault (and the first sync) bridged its snapshot to the buffered
    changes by the venue's rule: the rebuilt book then agrees with every comparable venue
    best bid/ask."""
    venue, run = gauntlet
    stats = run.runner(venue).books.stats
    assert stats.resyncs >= 3 and stats.bbo_compared > 500 and stats.bbo_mismatched == 0


def test_row7_crossed_book_is_distrusted_and_resynced(gauntlet: tuple[str, Run]) -> None:
    venue, run = gauntlet
    expected = next(r.expected for r in run.sim.model.scenario_runs()
                    if r.name == "crossed_book")
    rows = run.sql(f"SELECT DISTINCT symbol, action FROM gaps WHERE venue = '{venue}' "
                   "AND reason = 'crossed'")
    assert rows == [(expected["symbol"], "resync")]
    assert run.runner(venue).books.stats.crossed >= 1
    # nothing was computed from it while crossed: its stored spreads are never negative
    [(negative,)] = run.sql(f"SELECT count(*) FROM liquidity WHERE venue = '{venue}' "
                            "AND spread_bps < 0")
    assert negative == 0


def test_row8_malformed_frames_are_counted_and_the_stream_goes_on(
    gauntlet: tuple[str, Run],
) -> None:
    venue, run = gauntlet
    runner = run.runner(venue)
    assert sum(runner.decode_errors.values()) == 6
    assert runner.handler_errors == 0
    assert run.exchange.stats["feeds"][venue]["injected"] == 6


def test_row9_absurd_numbers_are_rejected_and_counted(gauntlet: tuple[str, Run]) -> None:
    """The malformed scenario's ``badprice`` frames carry a price that is not a number: each
    is a counted depth decode error, and no book resynced for it."""
    venue, run = gauntlet
    depth_errors = run.runner(venue).decode_errors.get("depth", 0)
    assert depth_errors >= 2  # the two bad prices (a truncated depth frame counts there too)
    assert metric(run, "analyzer_decode_errors_total", venue=venue,
                  channel="depth") == depth_errors


def captured_frames(run: Run, venue: str) -> Iterator[bytes]:
    for path in sorted((run.db.parent / "raw" / venue).glob("*.gz")):
        for line in gzip.decompress(path.read_bytes()).split(b"\n"):
            if line:
                yield line.partition(b" ")[2]


def a_trade_frame(run: Run, venue: str) -> dict[str, Any]:
    keys = FRAME_KEYS.get(venue)
    if keys is None:
        pytest.fail(f"add {venue}'s frame keys to FRAME_KEYS in tests/test_reliability.py")
    for frame in captured_frames(run, venue):
        if keys["trade_stream"].encode() in frame or keys["agg_stream"].encode() in frame:
            return json.loads(frame)
    pytest.fail(f"no trade frame captured on {venue}")


@pytest.fixture
def live_runner(gauntlet: tuple[str, Run], tmp_path: Path) -> Iterator[Any]:
    """The gauntlet venue's runner after its run, with an open store again (the run's is
    closed), to feed it frames through its real decode path."""
    from analyzer.store import Store

    venue, run = gauntlet
    runner = run.runner(venue)
    saved = runner.store, runner.capture
    runner.store, runner.capture = Store(tmp_path / "data", tmp_path / "db.duckdb"), None
    runner.store.open()
    yield runner
    runner.store.close()
    runner.store, runner.capture = saved


def put(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for k in path[:-1]:
        doc = doc[k]
    doc[path[-1]] = value


def test_row10_unknown_symbols_new_fields_and_missing_fields(
    gauntlet: tuple[str, Run], live_runner: Any,
) -> None:
    venue, run = gauntlet
    runner, keys = live_runner, FRAME_KEYS[venue]
    frame = a_trade_frame(run, venue)
    before_unknown, before_errors = runner.unknown_frames, sum(runner.decode_errors.values())
    labels_before = series(run, "analyzer_book_in_sync")
    unknown = json.loads(json.dumps(frame))
    stream = unknown[keys["stream"][0]]
    put(unknown, keys["stream"], "zzzunlisted" + stream[stream.index("@"):])
    runner.on_frame(json.dumps(unknown).encode(), time.time_ns())
    assert runner.unknown_frames == before_unknown + 1
    assert series(run, "analyzer_book_in_sync") == labels_before  # never a new label
    extra = json.loads(json.dumps(frame))
    extra["data"]["brandNewField"] = {"nested": [1, 2]}
    extra["data"]["t"] = extra["data"].get("t", 0) + 10**9  # a new trade id: not a duplicate
    runner.on_frame(json.dumps(extra).encode(), time.time_ns())
    assert sum(runner.decode_errors.values()) == before_errors  # new fields are ignored
    missing = json.loads(json.dumps(frame))
    del missing["data"][keys["quantity"][-1]]
    runner.on_frame(json.dumps(missing).encode(), time.time_ns())
    assert sum(runner.decode_errors.values()) == before_errors + 1
    assert runner.handler_errors == 0


def test_row11_clock_skew_is_exported(gauntlet: tuple[str, Run], live_runner: Any) -> None:
    """A frame stamped by the venue 10 minutes after we received it (our clock behind):
    both times are kept, the negative lag is counted and exported signed."""
    venue, run = gauntlet
    runner, keys = live_runner, FRAME_KEYS[venue]
    frame = a_trade_frame(run, venue)
    now = time.time_ns()
    ahead_ms = now // 1_000_000 + 600_000
    put(frame, keys["event_time"], ahead_ms)
    if "T" in frame["data"]:
        frame["data"]["T"] = ahead_ms
    frame["data"]["t" if "t" in frame["data"] else "a"] += 2 * 10**9
    negative = runner.lag["trades"].negative
    runner.on_frame(json.dumps(frame).encode(), now)
    assert runner.lag["trades"].negative == negative + 1
    assert metric(run, "analyzer_exchange_lag_last_seconds", venue=venue,
                  channel="trades") == pytest.approx(-600, abs=1)
    assert metric(run, "analyzer_negative_lag_total", venue=venue, channel="trades") >= 1


def test_row17_series_are_bounded_and_those_of_removed_symbols_disappear(
    gauntlet: tuple[str, Run],
) -> None:
    """One series per configured symbol whatever the faults (unknown ones never add any); a
    symbol the venue stops listing (an expiry) leaves the exported series at once."""
    venue, run = gauntlet
    runner = run.runner(venue)
    configured = {(venue, s) for s in runner.books.books}
    by_venue = {(x["venue"], x["symbol"]) for x in series(run, "analyzer_book_in_sync")
                if x["venue"] == venue}
    assert by_venue == configured
    gone = sorted(runner.books.books)[0]
    runner.roll({s: i for s, i in runner.instruments.items() if s != gone})
    left = {x["symbol"] for x in series(run, "analyzer_book_in_sync") if x["venue"] == venue}
    assert gone not in left and left == {s for _, s in configured} - {gone}
    assert (venue, gone) not in {(x["venue"], x["symbol"])
                                 for x in series(run, "analyzer_book_levels")}


# -- rows 1, 12 and 16: their own runs -------------------------------------------------------


@pytest.mark.parametrize("venue", VENUE_IDS)
def test_row1_planned_rotation_loses_and_doubles_nothing(tmp_path: Path, venue: str) -> None:
    """Connections are replaced before the venue's age limit (here 1 s): the new one receives
    before the old one closes; the overlap is deduplicated."""
    run = run_sim(tmp_path, "calm_contango", seconds=100, speed=20,
                  options={venue: {"max_connection_age_seconds": 1.0}})
    assert run.reconnects(venue).get("rotation", 0) >= 2
    assert set(run.reconnects(venue)) == {"rotation"}
    assert run.stored_trades() == run.produced_trades()
    runner = run.runner(venue)
    assert runner.books.stats.gaps == 0 and runner.books.stats.bbo_mismatched == 0
    [(n, distinct)] = run.sql(f"SELECT count(*), count(DISTINCT (symbol, update_id)) FROM quotes "
                              f"WHERE venue = '{venue}' AND source = 'venue'")
    assert n == distinct


@pytest.mark.parametrize("status", ["429", "418"])
@pytest.mark.parametrize("venue", VENUE_IDS)
def test_row12_rest_429_and_418_are_honoured(tmp_path: Path, venue: str, status: str) -> None:
    """The venue's REST budget is tiny: snapshot requests get 429 with Retry-After (or, from a
    venue that bans at once, 418 for a while); the queue waits as told and every book still
    syncs. (A client that honours 429 is never banned, so each answer gets its own run.)"""
    ban = {"ban_after_429s": 0, "ban_s": 1.0} if status == "418" else {}
    run = run_sim(tmp_path, "calm_contango", seconds=20, speed=10,
                  exchange={"rest_weight_limit": 25, "rest_window_s": 1.0, **ban},
                  options={v: {"open_interest_seconds": 0.2} for v in VENUE_IDS})
    rest = run.runner(venue).rest.stats
    assert rest.by_status.get(status, 0) >= 1
    if status == "418":
        assert rest.bans == rest.by_status["418"]
        assert metric(run, "analyzer_rest_bans_total", venue=venue) == rest.bans
    else:
        assert rest.throttled == rest.by_status["429"]
        assert metric(run, "analyzer_rest_throttled_total", venue=venue) == rest.throttled
    assert all(sb.in_sync for sb in run.runner(venue).books.books.values())
    assert metric(run, "analyzer_rest_requests_total", venue=venue, status=status) >= 1


@pytest.mark.parametrize("venue", VENUE_IDS)
def test_row16_slow_consumer_keeps_answering_pings_and_counts_what_it_drops(
    tmp_path: Path, venue: str,
) -> None:
    """The disk is far slower than the market (every segment takes 0.15 s more) while the venue
    pings every 0.3 s and drops a client that has not answered within 1 s: the event loop never
    blocks on storage, so no connection is lost; what the writer could not keep is dropped,
    least valuable first, and counted; nothing is lost uncounted."""

    def slow_disk(collector: Any) -> None:
        collector.store._on_flush = lambda table, rows, secs: time.sleep(0.15)
        collector.store._max_held_rows = 1_500

    run = run_sim(tmp_path, "calm_contango", seconds=60, speed=20, setup=slow_disk,
                  exchange={"ping_interval": 0.3, "ping_timeout": 1.0},
                  store={"flush_seconds": 0.1, "flush_rows": 200})
    st = run.collector.store.stats
    assert st["backpressure_waits"] > 0
    for v in VENUE_IDS:
        assert run.reconnects(v) == {}, v  # pings answered all along
    dropped = st["rows_dropped_by_table"]
    produced = sum(run.produced_trades().values())
    stored = sum(n for (v, _), n in run.stored_trades().items())
    assert stored + dropped["trades"] == produced
    assert st["rows_dropped"] == sum(dropped.values()) > 0
    assert metric(run, "analyzer_store_rows_dropped_total", table="trades") == dropped["trades"]


# -- rows 13, 14, 15, 17: real processes and real files ---------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Exchange:
    """``analyzer exchange --simulate`` in its own process."""

    def __init__(self, speed: float = 5.0) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "analyzer.exchange", "--simulate", "--port", str(self.port),
             "--speed", str(speed), "--scenario", "calm_contango"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        self.stop()
        raise TimeoutError("the local exchange did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def exchange() -> Iterator[Exchange]:
    ex = Exchange()
    yield ex
    ex.stop()


def write_config(path: Path, venue: str, port: int, data_dir: Path, metrics_port: int,
                 **store: Any) -> Path:
    from analyzer.demo import listed_symbols

    symbols = [s for s in listed_symbols(port)[venue] if "_" not in s or s.endswith("_PERP")]
    base = f"127.0.0.1:{port}"
    store_lines = "".join(f"{k} = {json.dumps(v)}\n" for k, v in store.items())
    path.write_text(f"""
[store]
data_dir = "{data_dir}"
database = "{data_dir}/analyzer.duckdb"
flush_seconds = 0.2
raw_capture = false
{store_lines}
[metrics]
port = {metrics_port}

[analytics]
enabled = false

[[feeds]]
venue = "{venue}"
symbols = {json.dumps(symbols)}
channels = ["depth", "trades", "bookTicker"]
ws_url = "ws://{base}/{venue}"
rest_url = "http://{base}/{venue}"
""")
    return path


def collect(cfg: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "analyzer.cli", "collect", "-c", str(cfg), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def trades(db: Path) -> tuple[int, int]:
    [(n, distinct)] = query(db, "SELECT count(*), count(DISTINCT (venue, symbol, trade_id)) "
                                "FROM trades").rows()
    return n, distinct


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.1)


def segments(data_dir: Path, table: str) -> list[Path]:
    return sorted((data_dir / "segments" / table).glob("2*/*.parquet"))


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


@pytest.mark.parametrize("venue", VENUE_IDS)
def test_row13_a_database_held_by_another_process_is_one_clear_line(
    tmp_path: Path, venue: str, exchange: Exchange,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "print('held', flush=True); time.sleep(60)", str(data / "analyzer.duckdb")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        cfg = write_config(tmp_path / "cfg.toml", venue, exchange.port, data, free_port())
        proc = collect(cfg, "--duration", "5")
        _, err = proc.communicate(timeout=60)
    finally:
        holder.kill()
        holder.communicate()
    assert proc.returncode == 2, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("analyzer: ")
    assert str(data / "analyzer.duckdb") in line and f"PID {holder.pid}" in line


@pytest.mark.parametrize("venue", VENUE_IDS)
def test_row15_kill_9_mid_batch_keeps_every_committed_batch(
    tmp_path: Path, venue: str, exchange: Exchange,
) -> None:
    data = tmp_path / "data"
    db = data / "analyzer.duckdb"
    cfg = write_config(tmp_path / "cfg.toml", venue, exchange.port, data, free_port())
    proc = collect(cfg)
    try:
        wait_until(lambda: len(segments(data, "trades")) >= 3, 60, "trade segments")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
    committed = segments(data, "trades")
    n_committed = sum(query(db, f"SELECT count(*) FROM read_parquet('{p}')").rows()[0][0]
                      for p in committed)
    n, distinct = trades(db)  # the database opens; what the views show is whole
    assert n >= n_committed > 0 and n == distinct
    # a restart on the same files: everything committed is still there, nothing is doubled
    proc = collect(cfg, "--duration", "4")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    n2, distinct2 = trades(db)
    assert n2 == distinct2 and n2 > n
    assert not list((data / "segments").glob("**/.*.tmp"))


def tmpfs(path: Path, size: str) -> None:
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if r.returncode:
        pytest.fail(f"cannot mount a tmpfs for the disk-full row (run as root): {r.stderr}")


def fill(path: Path, leave_bytes: int) -> Path:
    st = os.statvfs(path)
    filler = path / "filler"
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - leave_bytes))
    return filler


@pytest.mark.parametrize("venue", VENUE_IDS)
def test_row14_17_disk_full_fails_loudly_retries_and_keeps_serving_metrics(
    tmp_path: Path, venue: str, exchange: Exchange,
) -> None:
    """On a small tmpfs: starting on a full disk is one clear line. Then the disk fills while
    collecting: writes fail loudly (counted, store_up 0) and are held for retry while the
    exporter keeps serving; once space is back, the held rows are written, every committed
    row survives and none is doubled."""
    disk = tmp_path / "disk"
    tmpfs(disk, "8m")
    try:
        data = disk / "data"
        filler = fill(disk, 0)
        port = free_port()
        cfg = write_config(tmp_path / "cfg.toml", venue, exchange.port, data, port)
        proc = collect(cfg, "--duration", "5")
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 2, err
        line = err.strip().splitlines()[-1]
        assert line.startswith("analyzer: ")
        assert "No space left on device" in line and str(data) in line
        filler.unlink()
        proc = collect(cfg)
        try:
            wait_until(lambda: len(segments(data, "trades")) >= 2, 60, "trade segments")
            filler = fill(disk, 0)  # the disk fills up while collecting
            wait_until(lambda: scrape(port).get("analyzer_store_up") == 0.0, 30, "store_up 0")
            m = scrape(port)
            assert m["analyzer_store_write_errors_total"] >= 1
            assert m["analyzer_store_rows_pending_retry"] > 0
            in_sync = [v for k, v in m.items()
                       if k.startswith("analyzer_book_in_sync{") and f'venue="{venue}"' in k]
            assert in_sync and set(in_sync) == {1.0}  # the books go on meanwhile
            filler.unlink()
            wait_until(lambda: scrape(port).get("analyzer_store_up") == 1.0, 30, "store_up 1")
            wait_until(lambda: scrape(port).get("analyzer_store_rows_pending_retry") == 0, 30,
                       "held rows written")
            m = scrape(port)
            assert sum(v for k, v in m.items()
                       if k.startswith("analyzer_store_rows_dropped_total")) == 0
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
        assert proc.returncode in (0, 128 + signal.SIGTERM), err  # flushed and stopped
        n, distinct = trades(data / "analyzer.duckdb")
        assert n == distinct > 0
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
