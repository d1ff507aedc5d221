"""`analyzer demo` as a user runs it: research queries from other processes while it collects,
its metrics over HTTP, its banner and status lines, and a clean stop on SIGTERM."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from harness import children_of, running
from prometheus_client.parser import text_string_to_metric_families

from analyzer.sim import MarketModel, default_world

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "analyzer.cli", *args], capture_output=True,
                          text=True, timeout=timeout)


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_demo_is_queryable_while_it_runs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    db = data / "analyzer.duckdb"
    metrics_port = free_port()
    demo = subprocess.Popen(
        [sys.executable, "-m", "analyzer.cli", "demo", "--speed", "10", "--duration", "40",
         "--data-dir", str(data), "--metrics-port", str(metrics_port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        # analyzer sql, from another process, while the demo writes
        deadline = time.monotonic() + 30
        counts: list[int] = []
        while time.monotonic() < deadline:
            r = cli("sql", "SELECT count(*) AS n FROM trades", "--db", str(db), "--format", "json")
            if r.returncode == 0:
                n = json.loads(r.stdout)[0]["n"]
                if n:
                    counts.append(n)
                if len(counts) >= 2 and counts[-1] > counts[0] > 0:
                    break
            time.sleep(1)
        assert demo.poll() is None, demo.stderr.read() if demo.stderr else ""
        assert len(counts) >= 2 and counts[-1] > counts[0] > 0, counts  # growing while we read

        # a plain DuckDB connection in yet another process, read-only, no lock error
        code = (
            "import duckdb,sys; con=duckdb.connect(sys.argv[1], read_only=True); "
            "print(con.execute(\"SELECT count(DISTINCT venue) FROM quotes\").fetchone()[0])"
        )
        r = subprocess.run([sys.executable, "-c", code, str(db)], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert int(r.stdout) >= 2
        assert demo.poll() is None

        m = scrape(metrics_port)
        assert m[("analyzer_frames_total", (("channel", "depth"), ("venue", "binance_usdm")))] > 0
        assert m[("analyzer_book_in_sync", (("symbol", "BTCUSDT"), ("venue", "binance_spot")))] == 1
        assert m[("analyzer_bbo_checks_total",
                  (("result", "mismatch"), ("venue", "binance_usdm")))] == 0
        spread = m[("analyzer_spread_bps", (("symbol", "BTCUSDT"), ("venue", "binance_usdm")))]
        assert 0 < spread < 5  # BTCUSDT perpetual: a tick or two
        assert m[("analyzer_rows_written_total", (("table", "trades"),))] > 0
        lag = [k for k in m if k[0] == "analyzer_exchange_lag_seconds_count"]
        assert lag
    finally:
        out, err = demo.communicate(timeout=90)
    assert demo.returncode == 0, err[-2000:]
    assert "metrics   http://127.0.0.1:" in out and "stopped" in out


def trades(db: Path) -> int:
    """Stored trades, 0 before the database exists."""
    from analyzer.store import StoreError
    from analyzer.store.research import query

    try:
        return int(query(db, "SELECT count(*) AS n FROM trades")["n"][0])
    except StoreError:
        return 0


STATUS = re.compile(r"^\d\d:\d\d:\d\d status: [\d,]+ frames/s, books (\d+)/(\d+) in sync, "
                    r"([\d,]+) rows stored, [\d,]+ gaps$", re.MULTILINE)


def test_demo_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """``docker stop``: SIGTERM flushes the store, stops the exchange child and exits 0. Also:
    the banner's commands name this demo's data, and a status line comes every interval."""
    data = tmp_path / "data"
    db = data / "analyzer.duckdb"
    metrics_port = free_port()
    demo = subprocess.Popen(
        [sys.executable, "-m", "analyzer.cli", "demo", "--speed", "10", "--duration", "60",
         "--data-dir", str(data), "--metrics-port", str(metrics_port), "--status-seconds", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        children: list[int] = []
        seen = 0
        while time.monotonic() < deadline and not seen:
            assert demo.poll() is None, demo.communicate()[1][-2000:]
            children = children or children_of(demo.pid)
            seen = trades(db)
            time.sleep(0.5)
        assert seen, "no trades stored"
        assert scrape(metrics_port)[("analyzer_rows_written_total", (("table", "trades"),))] > 0
        assert len(children) == 1, children  # the exchange
        time.sleep(1.5)  # a status line at least
        demo.send_signal(signal.SIGTERM)
        out, err = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.communicate()
    assert demo.returncode == 0, err[-2000:]
    assert "SIGTERM: stopping" in err and "Traceback" not in err, err[-2000:]
    assert not running(children[0]), "the exchange child outlived the demo"
    assert trades(db) >= seen  # queryable after the exit, nothing lost
    assert out.rstrip().endswith(f'(analyzer sql "..." --db {db} to query it)'), out[-500:]

    # the banner: every command carries this demo's database or data directory
    commands = [line.strip() for line in out.splitlines() if line.startswith("  analyzer ")]
    assert len(commands) >= 5, out
    for c in commands:
        assert c.endswith(f"--db {db}") if c.startswith("analyzer sql ") else \
            c.endswith(f"--data-dir {data}"), c
    assert "duckdb -" not in out  # the DuckDB CLI is not installed by pip
    assert f"metrics   http://127.0.0.1:{metrics_port}/metrics" in out

    # status lines, every second here (every minute by default)
    status = STATUS.findall(out)
    assert status, out[-1000:]
    listed = len(MarketModel(default_world()).instruments())  # every venue's markets
    assert listed >= 38 and all(int(books) == listed for _, books, _ in status)
    assert any(in_sync == books for in_sync, books, _ in status), status  # all synced
    assert int(status[-1][2].replace(",", "")) > 0
