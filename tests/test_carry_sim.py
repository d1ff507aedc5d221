"""Carry opportunities end to end: the simulated steep contango collected by the real collector,
gated and persisted by its lifecycle, scraped by a real Prometheus evaluating the project's
alert rules, routed by a real Alertmanager to a webhook, and announced by the analyzer's own
webhook. Prometheus and Alertmanager come from the Debian packages (CI installs them)."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from harness import tool
from simrun import Run, run_sim

from analyzer.analytics.opportunities import STOPPED
from analyzer.sim import Schedule
from analyzer.sim.scenarios import CalmContango, SteepContango

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
PAIRS = {("binance_usdm", "q1"), ("binance_usdm", "q2"), ("binance_coinm", "q1"),
         ("binance_coinm", "q2")}
WINDOW_S = 3.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """A webhook receiver: every POSTed JSON body, by path."""

    def __init__(self) -> None:
        self.bodies: dict[str, list[Any]] = {}
        received = self.bodies

        class Hook(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.setdefault(self.path, []).append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Hook)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def fast_rules(tmp: Path) -> Path:
    """The project's rules with test-sized durations (the real ones are checked by promtool)."""
    text = (ROOT / "prometheus" / "rules.yml").read_text()
    text = text.replace("for: 2m", "for: 2s").replace("keep_firing_for: 10m",
                                                       "keep_firing_for: 3s")
    path = tmp / "rules.yml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("stack")
    hook = Receiver()
    metrics, prom, am = free_port(), free_port(), free_port()
    (tmp / "alertmanager.yml").write_text(f"""
route:
  receiver: hook
  group_by: [alertname, pair]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: {hook.url}/alertmanager
        send_resolved: true
""")
    (tmp / "prometheus.yml").write_text(f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: [{fast_rules(tmp)}]
alerting:
  alertmanagers: [{{static_configs: [{{targets: ["127.0.0.1:{am}"]}}]}}]
scrape_configs:
  - job_name: analyzer
    static_configs: [{{targets: ["127.0.0.1:{metrics}"]}}]
""")
    procs = [
        subprocess.Popen([tool("prometheus-alertmanager"),
                          f"--config.file={tmp / 'alertmanager.yml'}",
                          f"--storage.path={tmp / 'am'}", f"--web.listen-address=127.0.0.1:{am}",
                          "--cluster.listen-address="],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([tool("prometheus"), f"--config.file={tmp / 'prometheus.yml'}",
                          f"--storage.tsdb.path={tmp / 'prom'}",
                          f"--web.listen-address=127.0.0.1:{prom}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]
    try:
        yield {"tmp": tmp, "hook": hook, "metrics": metrics, "prometheus": prom}
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
        hook.close()


CARRY = {"candidates_seconds": 0.25, "close_grace_seconds": 10, "gates": {
    "min_net_ann": 0.15, "entry_ann": 0.15, "exit_ann": 0.10, "persistence_window_s": WINDOW_S}}


@pytest.fixture(scope="module")
def steep(stack: dict[str, Any]) -> Run:
    schedule = Schedule([CalmContango(), SteepContango(at_s=5, duration_s=300)])
    return run_sim(
        stack["tmp"], schedule, seconds=620, speed=20, metrics_port=stack["metrics"],
        analytics={"interval_seconds": 0.25}, carry=CARRY,
        alerts={"webhook_url": stack["hook"].url + "/analyzer"})


def test_steep_contango_opens_one_opportunity_per_pair_and_closes_it_after(steep: Run) -> None:
    events = steep.frame("SELECT * FROM opportunities WHERE source = 'live' ORDER BY ts")
    opens = events.filter(pl.col("event") == "open")
    # exactly one per qualifying pair: BTC spot against each BTC quarterly (ETH stays calm;
    # perpetual funding carry stays below the bar)
    assert sorted(zip(opens["venue"], opens["tenor"], strict=True)) == sorted(PAIRS)
    assert set(opens["spot_symbol"]) == {"BTCUSDT"} and set(opens["base"]) == {"BTC"}
    closes = events.filter(pl.col("event") == "close")
    assert sorted(closes["pair"]) == sorted(opens["pair"])
    assert set(closes["reason"]) == {"below_exit"}  # when the steep contango has gone
    cand = steep.frame("SELECT * FROM carry_candidates WHERE source = 'live'")
    first = cand["ts"].min()
    for o in opens.iter_rows(named=True):
        mine = cand.filter((pl.col("venue") == o["venue"]) & (pl.col("symbol") == o["symbol"])
                           & (pl.col("notional_usd") == o["notional_usd"]))
        # opened only after a whole persistence window of evaluations
        assert o["ts"] - first >= WINDOW_S * 1e9
        # it passed every gate when it opened, at the net carry it reports
        at = mine.filter(pl.col("ts") == o["ts"]).row(0, named=True)
        assert at["passes_all"] and at["net_ann"] == o["net_ann"] >= 0.15
        close = closes.filter(pl.col("pair") == o["pair"]).row(0, named=True)
        assert close["net_ann"] < 0.10 and close["peak_net_ann"] >= o["net_ann"]
        assert close["duration_s"] == pytest.approx((close["ts"] - o["ts"]) / 1e9)
    # before the contango steepened, the same pairs were rejected by economics
    early = cand.filter(pl.col("ts") < first + 1e9)
    assert set(early["reject_gate"]) == {"economics"}


def test_stopping_the_collector_closes_the_open_opportunities(tmp_path: Path) -> None:
    # the contango is still steep when the run ends: the collector stops with all four open
    schedule = Schedule([CalmContango(), SteepContango(at_s=5, duration_s=3600)])
    run = run_sim(tmp_path, schedule, seconds=240, speed=20,
                  analytics={"interval_seconds": 0.25}, carry=CARRY)
    events = run.frame("SELECT * FROM opportunities WHERE source = 'live' ORDER BY ts")
    opens = events.filter(pl.col("event") == "open")
    assert sorted(zip(opens["venue"], opens["tenor"], strict=True)) == sorted(PAIRS)
    closes = events.filter(pl.col("event") == "close")
    assert sorted(closes["pair"]) == sorted(opens["pair"])
    assert set(closes["reason"]) == {STOPPED}
    assert closes["ts"].min() > events.filter(pl.col("event") != "close")["ts"].max()
    # what a reader sees of them afterwards
    status = run.frame("SELECT pair, state, reason FROM opportunity_status")
    assert set(status["state"]) == {"closed"} and set(status["reason"]) == {STOPPED}
    assert run.collector.analytics.lifecycle.open_rows() == []


def prom_query(port: int, expr: str, at: float) -> list[dict[str, Any]]:
    q = urllib.parse.urlencode({"query": expr, "time": at})
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/query?{q}", timeout=10) as r:
        return json.load(r)["data"]["result"]


def test_prometheus_alert_goes_pending_then_firing_and_reaches_the_webhooks(
        steep: Run, stack: dict[str, Any]) -> None:
    port = stack["prometheus"]
    now = time.time()
    states = set()
    # the alert's history over the run, evaluated second by second
    for t in range(int(now) - 120, int(now) + 1):
        for s in prom_query(port, 'ALERTS{alertname="CarryOpportunity"}', t):
            states.add(s["metric"]["alertstate"])
    assert states == {"pending", "firing"}
    deadline = time.monotonic() + 20
    hook = stack["hook"].bodies
    while time.monotonic() < deadline and not hook.get("/alertmanager"):
        time.sleep(0.5)
    alerts = [a for body in hook.get("/alertmanager", []) for a in body["alerts"]]
    # (a loaded machine may let a book fall out of sync for a moment: BookOutOfSync may come
    # too, and is right to)
    carry = [a for a in alerts if a["labels"]["alertname"] == "CarryOpportunity"]
    assert carry, f"Alertmanager sent no CarryOpportunity: {alerts}"
    a = carry[0]
    assert a["labels"]["base"] == "BTC"
    assert "cash-and-carry binance_spot:BTCUSDT/" in a["annotations"]["summary"]
    assert "Gates passed: economics, persistence" in a["annotations"]["description"]
    assert a["annotations"]["dashboard"].endswith("var-base=BTC")
    # the analyzer's own webhook: every open and every close, once each
    own = hook.get("/analyzer", [])
    kinds = sorted(b["event"]["event"] for b in own)
    assert kinds == ["close"] * 4 + ["open"] * 4
    assert all(b["text"].startswith("BTC carry binance_spot:BTCUSDT/") for b in own)


def test_cli_opportunities_lists_the_closed_ones_and_the_rejected(steep: Run) -> None:
    import sys

    r = subprocess.run([sys.executable, "-m", "analyzer.cli", "opportunities", "--asset", "btc",
                        "--data-dir", str(steep.db.parent), "--since", "1h"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    closed = r.stdout.split("Closed since 1h")[1].split("Best rejected")[0]
    assert closed.count("below_exit") == 4 and "binance_spot:BTCUSDT/binance_usdm:" in closed
    assert "economics" in r.stdout.split("Best rejected")[1]
