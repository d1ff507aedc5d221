"""The pre-deployment check: one verdict with every reason, from a store written by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analyzer.cli import main
from analyzer.events import DerivativeTicker
from analyzer.store import Store
from portfolio.stored import H, S, build


def run(capsys: pytest.CaptureFixture[str], data: Path, *args: str) -> tuple[int, dict]:
    code = main(["check", *args, "--data-dir", str(data), "--json"])
    out = capsys.readouterr().out
    return code, (json.loads(out) if out else {})


def levels(rep: dict) -> dict[str, str]:
    return {c["check"]: c["level"] for c in rep["checks"]}


def test_a_thin_or_stale_market_is_no_go_with_every_reason(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    build(data, 50_000.0, funding={"BTCUSDT": (0.002, 8)}, books=[("binance_usdm", "BTCUSDT")])
    # 2 BTC sold into ten 1-BTC bids 1 USD apart: VWAP 49,999 (0.2 bps); the book analysed by
    # no live tick, so no liquidity row: book sync and depth fail
    code, rep = run(capsys, data, "binance_usdm", "BTCUSDT", "100000")
    assert code == 0 and rep["verdict"] == "no-go"
    lv = levels(rep)
    assert lv["freshness"] == "ok"
    assert lv["book sync"] == "fail" and lv["depth"] == "fail"
    assert lv["slippage"] == "ok"
    slip = next(c for c in rep["checks"] if c["check"] == "slippage")["detail"]
    assert slip.startswith("0.20 bps from the mid at VWAP 49999")
    # 0.2 % every 8 h is 219 % a year: a crowded short side
    assert lv["funding"] == "caution"
    # 50 M USD of open interest, less than a day stored
    oi = next(c for c in rep["checks"] if c["check"] == "open interest")
    assert oi["level"] == "ok" and "24 h change unknown" in oi["detail"]
    # beyond the stored levels: fail
    code, rep = run(capsys, data, "binance_usdm", "BTCUSDT", "5000000")
    assert levels(rep)["slippage"] == "fail"


def test_stale_quotes_fail_the_check_and_bad_arguments_are_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    build(data, 50_000.0, age_s=120)
    code, rep = run(capsys, data, "binance_usdm", "BTCUSDT", "1000")
    assert code == 0 and rep["verdict"] == "no-go"
    fresh = next(c for c in rep["checks"] if c["check"] == "freshness")
    assert fresh["level"] == "fail" and "limit 30 s" in fresh["detail"]
    assert main(["check", "binance_usdm", "NOPE", "1000", "--data-dir", str(data)]) == 2
    assert "unknown instrument binance_usdm:NOPE" in capsys.readouterr().err
    assert main(["check", "binance_usdm", "BTCUSDT", "-5", "--data-dir", str(data)]) == 2
    assert "bad notional" in capsys.readouterr().err


def test_funding_since_a_position_opened(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    now = build(data, 50_000.0)
    settle = now - H
    with Store(data, data / "analyzer.duckdb") as store:
        # the period's last prediction before its settlement, then the next period's
        for ts, rate, nxt in ((settle - 60 * S, 0.0003, settle), (settle + 60 * S, 0.0001,
                                                                 settle + 8 * H)):
            store.add(DerivativeTicker("binance_usdm", "BTCUSDT", ts, ts, mark_price=40_000.0,
                                       funding_rate=rate, next_funding_time=nxt,
                                       funding_interval_hours=8))
    f = tmp_path / "p.toml"
    opened = "2020-01-01T00:00:00Z"
    f.write_text(f'[[futures]]\nvenue="binance_usdm"\nsymbol="BTCUSDT"\nside="short"\n'
                 f'size=2\nentry=50000\nleverage=5\nopened={opened}\n')
    assert main(["portfolio", str(f), "--data-dir", str(data), "--json"]) == 0
    [pos] = json.loads(capsys.readouterr().out)["positions"]
    # one settlement at 0.03 %: the short received 0.0003 * 2 BTC * 40,000 (the mark then)
    assert pos["funding_since_open_usd"] == pytest.approx(0.0003 * 2 * 40_000)
