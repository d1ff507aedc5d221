"""Sharded collectors, the parts that need no market: the ``[cluster]`` configuration and how
it splits feeds and symbols into shards, the shared store (segments tagged per shard, locks,
compaction and crash clean-up that never touch another shard's files), the state message
(parts under the server's limit) and the supervisor's merge of its children's metrics."""

from __future__ import annotations

import os
import re
from pathlib import Path

import msgspec
import polars as pl
import pyarrow.parquet as pq
import pytest

from analyzer import config
from analyzer.analytics.levels import frame
from analyzer.analytics.live import (
    BOOK_SCHEMA,
    FUNDING_SCHEMA,
    INSTRUMENT_SCHEMA,
    OI_SCHEMA,
    TICKER_SCHEMA,
)
from analyzer.cluster import state
from analyzer.cluster.metrics import merge
from analyzer.cluster.supervisor import plan
from analyzer.events import Trade
from analyzer.store import DataDirLockedError, Store, prepare
from analyzer.store import segments as seg
from analyzer.store.research import query

FEEDS = [
    {"venue": "binance_usdm", "symbols": ["BTCUSDT", "ETHUSDT", "BTCUSDT_*"]},
    {"venue": "binance_spot", "symbols": ["BTCUSDT"]},
    {"venue": "bybit_linear", "symbols": ["BTCUSDT"]},
]


def split(cluster: dict) -> dict[str, dict[str, list[str]]]:
    cfg = config.parse({"feeds": FEEDS, "cluster": cluster})
    return {name: {f.venue: f.symbols for f in feeds}
            for name, feeds in config.shards(cfg).items()}


def test_one_process_configs_have_no_shards() -> None:
    cfg = config.parse({"feeds": FEEDS})
    assert config.shards(cfg) == {}
    assert cfg.cluster.nats_url is None


def test_shards_by_venue_by_exchange_and_explicit() -> None:
    assert split({"shards": "venue"}) == {
        "binance_usdm": {"binance_usdm": ["BTCUSDT", "ETHUSDT", "BTCUSDT_*"]},
        "binance_spot": {"binance_spot": ["BTCUSDT"]},
        "bybit_linear": {"bybit_linear": ["BTCUSDT"]}}
    assert split({"shards": "exchange"}) == {
        "binance": {"binance_usdm": ["BTCUSDT", "ETHUSDT", "BTCUSDT_*"],
                    "binance_spot": ["BTCUSDT"]},
        "bybit": {"bybit_linear": ["BTCUSDT"]}}
    # a shard of symbols: BTC* takes the BTC perpetual and the quarterlies' glob
    assert split({"shard": [
        {"name": "btc", "feeds": ["binance_usdm", "binance_spot"], "symbols": ["BTC*"]},
        {"name": "eth", "feeds": ["binance_usdm"], "symbols": ["ETH*"]},
        {"name": "bybit", "feeds": ["bybit_linear"]},
    ]}) == {"btc": {"binance_usdm": ["BTCUSDT", "BTCUSDT_*"], "binance_spot": ["BTCUSDT"]},
            "eth": {"binance_usdm": ["ETHUSDT"]}, "bybit": {"bybit_linear": ["BTCUSDT"]}}


@pytest.mark.parametrize(("cluster", "message"), [
    ({"shard": [{"name": "a", "feeds": ["binance_usdm", "binance_spot"]},
                {"name": "b", "feeds": ["binance_usdm", "bybit_linear"]}]},
     "feeds[0].symbols: 'BTCUSDT' is in shards a and b"),
    ({"shard": [{"name": "a", "feeds": ["binance_usdm", "binance_spot"], "symbols": ["BTC*"]},
                {"name": "b", "feeds": ["bybit_linear"]}]},
     "feeds[0].symbols: 'ETHUSDT' is in no shard"),
    ({"shard": [{"name": "a", "feeds": ["binance_coinm"]}]},
     "cluster.shard[0].feeds: 'binance_coinm' is not the venue of any [[feeds]]"),
    ({"shards": "venue", "shard": [{"name": "a", "feeds": ["binance_usdm"]}]},
     "cluster: set either shards or [[cluster.shard]]"),
    ({"shard": [{"name": "analytics", "feeds": ["binance_usdm", "binance_spot",
                                                "bybit_linear"]}]},
     "cluster.shard[0].name: 'analytics' is the analytics process's name"),
    ({"shard": [{"name": "A-1", "feeds": ["binance_usdm"]}]}, "cluster.shard[0].name"),
    ({"shards": "venue", "nats_url": "http://x:4222"}, "cluster.nats_url"),
])
def test_bad_cluster_configs_name_their_key(cluster: dict, message: str) -> None:
    with pytest.raises(config.ConfigError, match="config error at " + re.escape(message)):
        config.parse({"feeds": FEEDS, "cluster": cluster})


def test_plan_and_only() -> None:
    cfg = config.parse({"feeds": FEEDS, "cluster": {"shards": "exchange"}})
    assert [(c.name, c.role, [f.venue for f in c.cfg.feeds]) for c in plan(cfg)] == [
        ("binance", "shard:binance", ["binance_usdm", "binance_spot"]),
        ("bybit", "shard:bybit", ["bybit_linear"]),
        ("analytics", "analytics", ["binance_usdm", "binance_spot", "bybit_linear"])]
    assert [c.name for c in plan(cfg, ["bybit"])] == ["bybit"]
    # each child's config, as it gets it (JSON on its standard input), is a valid config
    explicit = config.parse({"feeds": FEEDS, "cluster": {"shard": [
        {"name": "btc", "feeds": ["binance_usdm", "binance_spot"], "symbols": ["BTC*"]},
        {"name": "eth", "feeds": ["binance_usdm"], "symbols": ["ETH*"]},
        {"name": "bybit", "feeds": ["bybit_linear"]}]}})
    for c in plan(explicit):
        sent = msgspec.json.encode(msgspec.to_builtins(c.cfg))
        assert config.parse(msgspec.json.decode(sent)) == c.cfg, c.name
    with pytest.raises(config.ConfigError, match="--only: no process okx in this config"):
        plan(cfg, ["okx"])


def trade(venue: str, i: int, ts: int) -> Trade:
    return Trade(venue, "BTCUSDT", ts, ts, str(i), 100.0, 1.0, "buy", "trade")


def test_shards_share_a_store_without_touching_each_others_files(tmp_path: Path) -> None:
    data, db = tmp_path / "data", tmp_path / "data" / "analyzer.duckdb"
    prepare(data, db)
    a = Store(data, db, shard="a", venues=["binance_usdm"], compact_every_s=None, fsync=False)
    b = Store(data, db, shard="b", venues=["bybit_linear"], compact_every_s=None, fsync=False)
    a.open()
    b.open()
    try:
        # a one-process store, or a second process of a running shard, is refused
        with pytest.raises(DataDirLockedError, match="in use by the shards of a sharded"):
            Store(data, db).open()
        with pytest.raises(DataDirLockedError, match=f"another Store \\(PID {os.getpid()}\\)"):
            Store(data, db, shard="a").open()
        t0 = 1_700_000_000_000_000_000
        for i in range(3):  # three segments each
            a.add(trade("binance_usdm", i, t0 + i))
            b.add(trade("bybit_linear", i, t0 + i))
            a.flush()
            b.flush()
        day = next(iter(seg.days(a.segments_root, "trades")))
        owners = sorted(seg.segment_shard(p) for p in seg.segments(day))
        assert owners == ["a"] * 3 + ["b"] * 3
        # b's crash leftovers: a's clean-up and compaction leave them and b's segments alone
        leftover = day / f".{seg.segment_name('trades', t0, 99, 'b')}.tmp"
        leftover.write_bytes(b"half")
        assert seg.remove_temp_files(a.segments_root, "a") == 0 and leftover.exists()
        res = a.compact(older_than_s=0)
        assert res.files_merged == 3 and res.files_written == 1
        after = sorted(seg.segment_shard(p) for p in seg.segments(day))
        assert after == ["a", "b", "b", "b"]
        # the views read every shard's rows
        assert query(db, "SELECT venue, count(*) FROM trades GROUP BY ALL ORDER BY 1").rows() \
            == [("binance_usdm", 3), ("bybit_linear", 3)]
    finally:
        a.close()
        b.close()
    # b restarts: its leftovers go, the newest trade it stored is where it resumes from, and
    # only its own venue's trades seed its dedup
    b2 = Store(data, db, shard="b", venues=["bybit_linear"], compact_every_s=None, fsync=False)
    b2.open()
    try:
        assert not leftover.exists()
        assert b2.last_trades == {("bybit_linear", "BTCUSDT"): ("2", t0 + 2)}
    finally:
        b2.close()
    # the shards gone, a one-process store owns the directory again
    one = Store(data, db, compact_every_s=None, fsync=False)
    one.open()
    one.close()


def book_state(n: int, levels_a_side: int = 100) -> state.ShardState:
    wins = [([100 - 0.1 * k for k in range(levels_a_side)], [1.0 + k for k in range(levels_a_side)],
             [100.1 + 0.1 * k for k in range(levels_a_side)], [2.0] * levels_a_side,
             [1.0, None], [2.0, None], [True, None], [True, False]) for _ in range(n)]
    levels, extra = frame(list(range(n)), wins, [10, 25])
    books = pl.DataFrame({
        "book": list(range(n)), "ts": [1] * n, "venue": ["v"] * n,
        "symbol": [f"S{i}" for i in range(n)], "inverse": [False] * n,
        "contract_size": [1.0] * n, "quote_usd": [1.0] * n, "in_sync": [True] * n,
        "update_id": list(range(n)), "ts_book": [1] * n, "ts_exchange": [1] * n},
        schema=BOOK_SCHEMA)
    funding = pl.DataFrame([(1, "v", "S0", 1e-4, 8.0, 2)], schema=FUNDING_SCHEMA, orient="row")
    return state.ShardState(books, levels, extra, pl.DataFrame(schema=TICKER_SCHEMA),
                            pl.DataFrame(schema=OI_SCHEMA), pl.DataFrame(schema=INSTRUMENT_SCHEMA),
                            funding)


def test_a_state_round_trips_and_splits_under_the_message_limit() -> None:
    st = book_state(30)
    one = state.encode(st, 1 << 20)
    assert len(one) == 1
    small = state.encode(st, 12_000)
    assert len(small) > 1 and all(len(p) <= 12_000 - state.HEADROOM for p in small)
    for payloads in (one, small):
        back = state.decode(payloads)
        for name in (*state.BOOK_FRAMES, *state.OTHER_FRAMES):
            assert getattr(back, name).equals(getattr(st, name)), name
    assert state.decode_funding(small[0]).equals(st.funding)
    assert state.decode_funding(small[1]) is None  # (in the first part only)
    with pytest.raises(ValueError, match="lower \\[analytics\\] max_levels"):
        state.encode(book_state(2, 2000), 12_000)


def test_the_supervisor_labels_each_childs_samples_with_its_shard() -> None:
    text = ("# HELP analyzer_frames_total Frames\n# TYPE analyzer_frames_total counter\n"
            'analyzer_frames_total{venue="v",channel="depth"} 5\n'
            "# HELP analyzer_store_up Up\n# TYPE analyzer_store_up gauge\nanalyzer_store_up 1\n")
    fams = {f.name: f for f in merge({"a": text, "b": text.replace(" 5", " 7")})}
    assert [(s.labels, s.value) for s in fams["analyzer_frames"].samples] == [
        ({"venue": "v", "channel": "depth", "shard": "a"}, 5.0),
        ({"venue": "v", "channel": "depth", "shard": "b"}, 7.0)]
    assert fams["analyzer_frames"].type == "counter"
    assert [s.labels["shard"] for s in fams["analyzer_store_up"].samples] == ["a", "b"]


def test_segment_names_carry_their_shard() -> None:
    name = seg.segment_name("book_snapshot_bands", 12, 3, "binance_usdm")
    assert name == "book_snapshot_bands-0000000000000000012-000003.binance_usdm.parquet"
    assert seg.segment_ts(Path(name)) == 12
    assert seg.segment_shard(name) == "binance_usdm"
    assert seg.segment_shard(f".{name}.tmp") == "binance_usdm"
    assert seg.segment_shard(f".compact-{name}.json") == "binance_usdm"
    assert seg.segment_shard(seg.segment_name("trades", 12, 3)) is None
    assert pq  # (pyarrow is what the store writes with)


def test_a_sharded_collector_will_not_start_on_a_one_process_store(tmp_path: Path) -> None:
    data, db = tmp_path / "data", tmp_path / "data" / "analyzer.duckdb"
    one = Store(data, db, compact_every_s=None, fsync=False)
    one.open()
    try:
        with pytest.raises(DataDirLockedError, match=f"another Store \\(PID {os.getpid()}\\)"):
            prepare(data, db)
    finally:
        one.close()
    prepare(data, db)


def test_the_supervisor_restarts_a_crashed_child_but_not_a_failed_first_start() -> None:
    import subprocess
    import sys
    import time

    from analyzer.cluster.errors import ClusterError
    from analyzer.cluster.supervisor import Supervisor

    cfg = config.parse({"feeds": FEEDS, "cluster": {"shards": "exchange"}})
    sup = Supervisor(cfg)
    crashed, failed = sup.children[0], sup.children[1]
    for c in sup.children:
        c.next_start = time.monotonic() + 3600  # (nothing is started for real here)

    def exiting(status: int) -> subprocess.Popen[bytes]:
        p = subprocess.Popen([sys.executable, "-c", f"import sys; sys.exit({status})"],
                             stdin=subprocess.PIPE)
        p.wait()
        return p

    crashed.proc, crashed.started = exiting(-9 % 256), time.monotonic()
    sup.poll()  # a crash: started again after a backoff
    assert crashed.proc is None and crashed.wait == 1.0 and crashed.ran_before
    failed.proc, failed.started = exiting(2), time.monotonic()
    with pytest.raises(ClusterError, match="bybit failed to start"):
        sup.poll()
    # a child that had run before is restarted whatever its status, its wait doubling
    failed.ran_before = True
    failed.proc, failed.started = exiting(2), time.monotonic()
    sup.poll()
    assert failed.proc is None and failed.wait == 1.0
    failed.proc, failed.started = exiting(1), time.monotonic()
    sup.poll()
    assert failed.wait == 2.0


def test_a_store_reopens_after_a_compaction_within_the_dedup_window(tmp_path: Path) -> None:
    """Regression: a compacted segment (written by DuckDB, its columns NOT NULL) and newer ones
    (the writer's, nullable) made the dedup seeding at open fail, so a collector or shard
    restarted within the hour after a compaction could not start."""
    data, db = tmp_path / "data", tmp_path / "data" / "analyzer.duckdb"
    t0 = 1_700_000_000_000_000_000
    s = Store(data, db, compact_every_s=None, fsync=False)
    s.open()
    for i in range(3):
        s.add(trade("binance_usdm", i, t0 + i))
        s.flush()
    assert s.compact(older_than_s=0).files_merged == 3
    s.add(trade("binance_usdm", 3, t0 + 3))
    s.close()
    again = Store(data, db, compact_every_s=None, fsync=False)
    again.open()
    try:
        assert again.last_trades == {("binance_usdm", "BTCUSDT"): ("3", t0 + 3)}
        again.add(trade("binance_usdm", 2, t0 + 2))  # a replayed trade: dropped
        again.flush()
        assert again.stats["duplicates_dropped"] == 1
    finally:
        again.close()
