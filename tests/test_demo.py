"""`analyzer demo` as a user runs it: research queries from other processes while it collects,
and its metrics over HTTP."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

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
            r = cli("sql", "SELECT count(*) AS n FROM trades", "--db", str(db))
            if r.returncode == 0:
                n = int(r.stdout.strip().splitlines()[-2].strip("│ "))
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
