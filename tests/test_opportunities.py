"""The opportunity lifecycle on hand-made candidate series: persistence, hysteresis, grace on
failing gates, the notifier over a real local HTTP server, and what a reader of the store sees
after the collector stops cleanly or crashes (the live analytics writing to a real store, read
back through the views and ``analyzer opportunities``)."""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from analyzer import config
from analyzer.analytics.commands import cmd_opportunities
from analyzer.analytics.live import LiveAnalytics
from analyzer.analytics.opportunities import STOPPED, Lifecycle, Notifier, stale_after_s
from analyzer.store import Store
from analyzer.store.research import query

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


# -- what a reader of the store sees after the collector stops --

OTHER = "BTCUSDT_270326"  # a second derivative leg: a second opportunity


def live_analytics(data: Path, store: Store, **alerts: Any) -> LiveAnalytics:
    """The collector's live analytics on ``store``, with the lifecycle of ``lifecycle()``."""
    cfg = config.parse({
        "feeds": [{"venue": "binance_spot", "symbols": ["BTCUSDT"]}],
        "store": {"data_dir": str(data), "database": str(data / "analyzer.duckdb")},
        "carry": {"close_grace_seconds": 3, "update_seconds": 5,
                  "gates": {"persistence_window_s": 10, "exit_ann": 0.015}},
        "alerts": alerts})
    la = LiveAnalytics(cfg, [], store)
    la.next_candidates_ns = 2**62  # hand-made candidates lack the stored columns: not sampled
    return la


def opened(la: LiveAnalytics, t0: int, symbol: str = "BTCUSDT_261225") -> int:
    """Ticks of one qualifying candidate from ``t0``, a second apart, until it opens: the time."""
    for i in range(12):
        la._carry(pl.DataFrame([cand(0.10, symbol=symbol)]), t0 + i * S)
        if la.lifecycle.open_rows():
            return t0 + i * S
    raise AssertionError("never opened")


def opportunities_cli(data: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    """``analyzer opportunities --data-dir data``: its output by section title."""
    args = argparse.Namespace(config=None, data_dir=str(data), asset=None, since="24h")
    assert cmd_opportunities(args) == 0
    out = capsys.readouterr().out
    parts = [p.strip() for p in out.split("\n\n")]
    return {p.split("\n", 1)[0]: p for p in parts if p}


def section(out: dict[str, str], prefix: str) -> str:
    [text] = [v for k, v in out.items() if k.startswith(prefix)]
    return text


def test_a_clean_stop_closes_open_opportunities_and_a_restart_does_not_reopen_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    sent = tmp_path / "notified.jsonl"
    command = [sys.executable, "-c",
               f"import sys; open({str(sent)!r}, 'a').write(sys.stdin.read() + '\\n')"]
    with Store(data, data / "analyzer.duckdb") as store:
        la = live_analytics(data, store, command=command)
        t_open = opened(la, time.time_ns() - 20 * S)
        t_stop = time.time_ns()
        la.close(t_stop)  # what Collector.stop() does before closing the store
        la.close(t_stop + S)  # twice: nothing more
    assert la.lifecycle.open_rows() == [] and la.lifecycle.closed_total == {STOPPED: 1}
    # the stopped collector's close notification went out before close() returned
    notes = [json.loads(x) for x in sent.read_text().splitlines()]
    [close_note] = [n for n in notes if n["event"]["event"] == "close"]
    assert "(collector stopped, after" in close_note["text"]

    # a restarted collector: the same candidate qualifies again at once, but reopening needs
    # a whole new persistence window (its lifecycle starts afresh, it reads no old state)
    with Store(data, data / "analyzer.duckdb") as store:
        la = live_analytics(data, store)
        now = time.time_ns()
        for i in range(3):
            la._carry(pl.DataFrame([cand(0.10)]), now + i * S)
        la.close(now + 3 * S)
    assert la.lifecycle.opened_total == {}

    db = data / "analyzer.duckdb"
    events = query(db, "SELECT * FROM opportunities ORDER BY ts")
    assert events.select("ts", "event", "reason").rows() == [
        (t_open, "open", None), (t_stop, "close", STOPPED)]
    assert events["duration_s"][1] == pytest.approx((t_stop - t_open) / S)
    status = query(db, "SELECT state, last_event, reason FROM opportunity_status")
    assert status.rows() == [("closed", "close", STOPPED)]
    out = opportunities_cli(data, capsys)
    assert section(out, "Open opportunities").endswith("(none)")
    assert not [k for k in out if k.startswith("Stale")]
    closed = section(out, "Closed since 24h")
    assert "binance_spot:BTCUSDT/binance_usdm:BTCUSDT_261225" in closed and STOPPED in closed


def test_an_opportunity_left_open_by_a_crash_is_shown_stale_with_its_age(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    now = time.time_ns()
    with Store(data, data / "analyzer.duckdb") as store:
        # a collector that opened one an hour ago, then was killed (no close written) ...
        crashed = live_analytics(data, store)
        t_orphan = opened(crashed, now - 3610 * S)
        # ... and the one collecting now, which has one open too
        running = live_analytics(data, store)
        opened(running, now - 12 * S, symbol=OTHER)
    orphan = "binance_spot:BTCUSDT/binance_usdm:BTCUSDT_261225"
    tracked = f"binance_spot:BTCUSDT/binance_usdm:{OTHER}"

    status = query(data / "analyzer.duckdb",
                   "SELECT pair, state, age_s, stale_after_s FROM opportunity_status")
    by_pair = {r["pair"]: r for r in status.iter_rows(named=True)}
    assert by_pair[orphan]["state"] == "stale" and by_pair[tracked]["state"] == "open"
    age_s = (time.time_ns() - t_orphan) / S
    assert by_pair[orphan]["age_s"] == pytest.approx(age_s, abs=2)
    # the view's bound is the default config's
    default = stale_after_s(config.Carry().update_seconds, config.Carry().close_grace_seconds,
                            config.Analytics().interval_seconds)
    assert set(status["stale_after_s"]) == {default}

    out = opportunities_cli(data, capsys)
    open_ = section(out, "Open opportunities")
    assert tracked in open_ and orphan not in open_
    stale = section(out, "Stale: open at their last event but none for over 182 s")
    [line] = [x for x in stale.splitlines() if orphan in x]
    assert "stale" in line and tracked not in stale
    assert re.search(r"\b01:00:[01]\d\b", line), line  # its age, an hour


def test_an_open_opportunity_closes_as_gone_when_a_tick_has_no_candidates_at_all(
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Store(data, data / "analyzer.duckdb") as store:
        la = live_analytics(data, store)
        t = opened(la, time.time_ns() - 20 * S)
        for i in range(1, 5):  # e.g. every book out of sync: evaluate() returns no candidates
            la._carry(pl.DataFrame(), t + i * S)
    assert la.lifecycle.open_rows() == [] and la.lifecycle.closed_total == {"gone": 1}
