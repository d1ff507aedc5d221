"""The hedge plan: contracts under each venue's contract size and lot, funding over a horizon
by interval, slippage from the stored book, ranking; and its one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from analyzer.cli import main
from analyzer.portfolio.hedge import funding_usd, plan, size_hedge
from analyzer.portfolio.market import Market
from portfolio.stored import INSTRUMENTS, build


def inst(venue: str, symbol: str) -> dict:
    i = next(i for i in INSTRUMENTS if (i.venue, i.symbol) == (venue, symbol))
    return {f: getattr(i, f) for f in i.__struct_fields__}


@pytest.mark.parametrize(("venue", "symbol", "coins", "spot", "contracts", "hedged"), [
    # linear, lot 0.001 BTC: 2.5037 -> 2.503
    ("binance_usdm", "BTCUSDT", 2.5037, 60_000, 2.503, 2.503),
    # linear in contracts of 0.01 BTC (lot 0.001 BTC): 250.3 contracts
    ("okx_swap", "BTC-USDT-SWAP", 2.5037, 60_000, 250.3, 2.503),
    # linear in contracts of 0.0001 BTC: 25,037 contracts
    ("mexc_futures", "BTC_USDT", 2.5037, 60_000, 25_037, 2.5037),
    # BingX: coins, lot 0.0001 BTC
    ("bingx_swap", "BTC-USDT", 2.50377, 60_000, 2.5037, 2.5037),
    # WEEX: contracts of 0.001 BTC (lot 0.001 BTC): 2,503 contracts
    ("weex_futures", "BTCUSDT", 2.5037, 60_000, 2_503, 2.503),
    # inverse, 100 USD a contract: 2.5 BTC at 60,050 = 150,125 USD -> 1,501 contracts
    ("binance_coinm", "BTCUSD_PERP", 2.5, 60_050, 1_501, 150_100 / 60_050),
    ("okx_swap", "BTC-USD-SWAP", 2.5, 60_050, 1_501, 150_100 / 60_050),
    # inverse, 1 USD a contract: 150,125 contracts, nothing left over
    ("bybit_inverse", "BTCUSD", 2.5, 60_050, 150_125, 2.5),
])
def test_contracts_under_each_venues_contract_size_and_lot(
        venue: str, symbol: str, coins: float, spot: float, contracts: float,
        hedged: float) -> None:
    n, h, residual = size_hedge(inst(venue, symbol), coins, spot)
    assert n == pytest.approx(contracts, rel=1e-9)
    assert h == pytest.approx(hedged, rel=1e-9)
    assert residual == pytest.approx(coins - hedged, abs=1e-9)
    assert residual >= -1e-12


@pytest.mark.parametrize(("rate", "hours"), [(0.0001, 8), (0.00005, 4), (0.0000125, 1)])
def test_funding_over_a_horizon_by_interval(rate: float, hours: float) -> None:
    # the same 10.95 % a year paid every 8, 4 or 1 h: 30 days of a 100,000 USD short earn
    # 100,000 * 0.1095 * 30 / 365 = 900 USD, i.e. 90, 180 or 720 settlements
    assert rate * 8760 / hours == pytest.approx(0.1095)
    assert funding_usd(100_000, rate, hours, 30 * 24) == pytest.approx(900.0)
    assert funding_usd(100_000, rate, hours, hours) == pytest.approx(100_000 * rate)
    assert funding_usd(100_000, -rate, hours, 30 * 24) == pytest.approx(-900.0)


def test_the_plan_sizes_costs_and_ranks_every_hedge(tmp_path: Path) -> None:
    data = tmp_path / "data"
    build(data, 50_000.0, future_price=51_000.0, expiry_days=73.0,
          funding={"BTCUSDT": (0.0001, 8), "BTC-USDT-SWAP": (0.0003, 8),
                   "BTCUSD_PERP": (-0.0001, 8), "BTC_USDT": (0.0001, 4)},
          books=[("binance_usdm", "BTCUSDT"), ("binance_coinm", "BTCUSD_PERP")])
    with duckdb.connect(str(data / "analyzer.duckdb"), read_only=True) as con:
        df = plan(Market.read(con), {"BTC": 2.5}, horizon=30, leverage=2)
    rows = {(r["venue"], r["symbol"]): r for r in df.to_dicts()}
    b = rows[("binance_usdm", "BTCUSDT")]
    # 2.5 BTC sold into ten 1-BTC bids 49,999.5, 49,998.5, 49,997.5: VWAP 49,998.7 against the
    # mid 50,000 (the book's own): 2.6 bps
    assert b["slippage_bps"] == pytest.approx((50_000 - (49_999.5 + 49_998.5 + 0.5 * 49_997.5)
                                               / 2.5) / 50_000 * 1e4)
    notional = 2.5 * 50_000
    assert b["notional_usd"] == pytest.approx(notional)
    assert b["funding_usd_current"] == pytest.approx(notional * 0.0001 * 90)
    assert b["fees_usd"] == pytest.approx(notional * 0.0005 * 2)  # taker in and out
    assert b["margin"] == pytest.approx(notional / 2)
    assert b["earns"] is True
    coin = next(r for r in df.to_dicts() if r["symbol"] == "BTCUSD_PERP")
    assert coin["contracts"] == 1250 and coin["margin_asset"] == "BTC"
    assert coin["funding_usd_current"] == pytest.approx(-125_000 * 0.0001 * 90)
    assert coin["earns"] is False  # negative funding: the short pays
    fut = rows[("bybit_linear", "BTCUSDT-25DEC26")]
    assert fut["basis_usd"] == pytest.approx((51_000 - 50_000) / 50_000 * 2.5 * 51_000)
    assert fut["basis_ann"] == pytest.approx(0.02 * 365 / 73, rel=1e-3)
    # ranked by all-in cost: the 0.03 %-a-period OKX swap pays most, the paying short is last
    assert df["all_in_usd"].is_sorted()
    assert df["symbol"][0] == "BTC-USDT-SWAP" and df["symbol"][-1] == "BTCUSD_PERP"


def test_hedge_cli_json_and_its_one_line_errors(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    build(data, 50_000.0)
    base = ["hedge", "--data-dir", str(data)]
    assert main([*base, "--spot", "BTC=1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {r["venue"] for r in out["hedges"]} >= {"binance_usdm", "okx_swap", "mexc_futures"}
    cases = [
        (["--spot", "DOGE=1"], "unknown asset DOGE"),
        (["--spot", "BTC=-1"], "bad holding 'BTC=-1'"),
        (["--spot", "BTC=1", "--horizon", "soon"], "bad horizon 'soon'"),
        (["--spot", "BTC=1", "--venue", "binance_spot"],
         "binance_spot has no perpetual or future of BTC"),
        (["--spot", "ETH=1"], "no perpetual or future of ETH in the store"),
        (["--spot", "BTC=1", "--leverage", "500"], "bad --leverage 500"),
    ]
    for args, message in cases:
        assert main([*base, *args]) == 2, args
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err, (args, err)


def test_stale_data_is_refused_with_its_age(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    build(data, 50_000.0, age_s=900)
    assert main(["hedge", "--data-dir", str(data), "--spot", "BTC=1"]) == 2
    err = capsys.readouterr().err
    assert "stale data: BTC last priced 15 min ago (limit 300 s" in err
    assert main(["hedge", "--data-dir", str(data), "--spot", "BTC=1", "--max-age", "3600"]) == 0
