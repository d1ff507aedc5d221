"""The opportunity lifecycle on hand-made candidate series: persistence, hysteresis, grace on
failing gates, and the notifier over a real local HTTP server."""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import polars as pl

from analyzer.analytics.opportunities import Lifecycle, Notifier

S = 1_000_000_000


def cand(net: float | None, gate: str | None = None, symbol: str = "BTCUSDT_261225"
         ) -> dict[str, Any]:
    return {"base": "BTC", "spot_venue": "binance_spot", "spot_symbol": "BTCUSDT",
            "venue": "binance_usdm", "symbol": symbol, "notional_usd": 100_000.0,
            "tenor": "q1", "same_venue": True, "net_ann": net, "net_usd": None,
            "gross": None, "dte_days": 30.0, "passes_all": gate is None,
            "reject_gate": gate}


def run(lc: Lifecycle, rows: list[list[dict[str, Any]]], step_s: float = 1.0
        ) -> list[tuple[int, str, str | None]]:
    out = []
    for i, tick in enumerate(rows):
        out += [(i, e["event"], e["reason"])
                for e in lc.update(pl.DataFrame(tick), round(i * step_s * S))]
    return out


def lifecycle(**kw: Any) -> Lifecycle:
    return Lifecycle(**{"persistence_window_s": 10, "persistence_fraction": 0.8,
                        "exit_ann": 0.015, "close_grace_s": 3, "update_every_s": 5, **kw})


def test_opens_after_the_persistence_window_and_closes_below_the_exit_level() -> None:
    lc = lifecycle()
    series = [[cand(0.10)]] * 15 + [[cand(0.02, "economics")]] * 5 + [[cand(0.01, "economics")]]
    events = run(lc, series)
    # qualifies from t=0; the window (10 s) is covered at t=10: opens then, not before
    assert events[0] == (10, "open", None)
    assert (15, "update", None) in events  # every 5 s while open
    # 0.02 is below the entry level (economics fails) but above the exit: stays open
    assert [e for e in events if e[1] == "close"] == [(20, "close", "below_exit")]
    assert lc.opened_total == {"BTC": 1} and lc.closed_total == {"below_exit": 1}


def test_a_fleeting_spike_never_opens() -> None:
    lc = lifecycle()
    series = ([[cand(0.01, "economics")]] * 12 + [[cand(0.20)]] * 3
              + [[cand(0.01, "economics")]] * 10)
    assert run(lc, series) == []


def test_mostly_qualifying_opens_and_a_short_gate_failure_does_not_close() -> None:
    lc = lifecycle()
    # 1 tick in 10 fails the liquidity gate: 90 % qualify, above the 80 % required
    series = [[cand(0.10, "liquidity" if i % 10 == 5 else None)] for i in range(12)]
    series += [[cand(0.10, "freshness")]] * 2 + [[cand(0.10)]] * 3  # shorter than the grace
    series += [[cand(0.10, "freshness")]] * 5  # longer: closes after 3 s
    events = run(lc, series)
    assert events[0] == (10, "open", None)
    closes = [e for e in events if e[1] == "close"]
    assert closes == [(20, "close", "gate:freshness")]


def test_a_candidate_that_disappears_is_closed_as_gone_and_reopening_needs_a_new_window() -> None:
    lc = lifecycle()
    series = [[cand(0.10)]] * 12 + [[]] * 4 + [[cand(0.10)]] * 12
    events = run(lc, series)
    # last seen at 11, gone for the grace (3 s) at 14; back at 16, a full window later: 24
    assert [e[:2] for e in events if e[1] != "update"] == [(10, "open"), (14, "close"),
                                                          (24, "open")]
    assert next(e for e in events if e[1] == "close")[2] == "gone"


def test_notifier_posts_open_and_close_to_a_webhook_and_runs_a_command(tmp_path: Path) -> None:
    got: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    out = tmp_path / "hook.jsonl"
    command = [sys.executable, "-c",
               f"import sys; open({str(out)!r}, 'a').write(sys.stdin.read() + '\\n')"]
    notifier = Notifier(f"http://127.0.0.1:{server.server_port}/hook", command,
                        "http://grafana:3000/d/analyzer-carry/carry")
    lc = lifecycle()
    events = []
    for i, tick in enumerate([[cand(0.12)]] * 12 + [[cand(0.005, "economics")]]):
        events += lc.update(pl.DataFrame(tick), i * S)
    notifier.notify(events)
    deadline = time.monotonic() + 10
    while (len(got) < 2 or notifier.sent < 2) and time.monotonic() < deadline:
        time.sleep(0.05)
    server.shutdown()
    server.server_close()
    assert [g["event"]["event"] for g in got] == ["open", "close"]
    assert got[0]["text"].startswith(
        "BTC carry binance_spot:BTCUSDT/binance_usdm:BTCUSDT_261225 OPEN: net 12.00% a year "
        "for 100,000 USD (gates passed:")
    assert "below_exit" in got[1]["text"]
    assert got[0]["dashboard"].endswith("?var-base=BTC")
    lines = out.read_text().splitlines()
    assert [json.loads(x)["event"]["event"] for x in lines] == ["open", "close"]
    assert notifier.failed == 0
