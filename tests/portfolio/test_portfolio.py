"""A portfolio valued at the market, its profile, its scenarios and its one-line errors, all
checked by hand."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import duckdb
import polars as pl
import pytest

from analyzer.cli import main
from analyzer.portfolio.book import parse
from analyzer.portfolio.market import Market
from analyzer.portfolio.profiles import DEFAULTS, overlay, place, profiles
from analyzer.portfolio.scenarios import scenarios
from analyzer.portfolio.valuation import Valuation, value
from analyzer.store import Store
from portfolio.stored import build

# 2 BTC held, 10,000 USDT; a linear short of 1 BTC at 50,000 with 10,000 USDT isolated (5x);
# a coin-margined short of 500 contracts (50,000 USD) on 1 BTC of cross collateral: the
# collateral is the coin it hedges
PORTFOLIO = """
profile = "balanced_protector"
[[spot]]
asset = "BTC"
amount = 2
[[spot]]
asset = "USDT"
amount = 10000
[[futures]]
venue = "binance_usdm"
symbol = "BTCUSDT"
side = "short"
size = 1
entry = 50000
leverage = 5
margin = 10000
[[futures]]
venue = "binance_coinm"
symbol = "BTCUSD_PERP"
side = "short"
size = 500
entry = 50000
margin_mode = "cross"
[[collateral]]
venue = "binance_coinm"
asset = "BTC"
amount = 1
"""


def valued(tmp_path: Path, text: str = PORTFOLIO, **kw: object) -> tuple[Valuation, Path]:
    data = tmp_path / "data"
    build(data, 50_000.0, funding={"BTCUSDT": (0.0001, 8), "BTCUSD_PERP": (0.0001, 8)}, **kw)
    con = duckdb.connect(str(data / "analyzer.duckdb"), read_only=True)
    return value(parse(tomllib.loads(text)), Market.read(con)), data


def test_the_portfolio_at_the_market(tmp_path: Path) -> None:
    v, _ = valued(tmp_path)
    lin, inv = v.legs
    assert lin.notional_usd == pytest.approx(-50_000) and inv.notional_usd == -50_000
    assert lin.upnl_usd == pytest.approx(0) and inv.upnl_usd == pytest.approx(0)
    # maintenance: 50,000 * 0.4 % = 200 USDT; the inverse 50,000 * 0.4 % / 50,000 = 0.004 BTC
    assert lin.maintenance == pytest.approx(200) and inv.maintenance == pytest.approx(0.004)
    assert lin.margin_ratio == pytest.approx(200 / 10_000)
    assert inv.margin_ratio == pytest.approx(0.004 / 1)
    # Binance's formula, bracket 2 at the solution: (10,000 + 50 + 50,000) / (1.005)
    assert lin.liq_price == pytest.approx(60_050 / 1.005)
    assert lin.liq_distance == pytest.approx(60_050 / 1.005 / 50_000 - 1)
    assert inv.liq_price is None  # fully collateralised by its own coin
    # funding: shorts receive 0.01 % every 8 h on 50,000 USD: 15 USD a day each
    assert lin.funding_day_usd == pytest.approx(15.0) and inv.funding_day_usd == pytest.approx(15)
    t = v.totals()
    assert t["spot_value_usd"] == pytest.approx(3 * 50_000)  # 2 held + 1 collateral
    assert t["equity_usd"] == pytest.approx(150_000 + 10_000 + 10_000)
    assert t["net_exposure_usd"] == pytest.approx(150_000 - 50_000 - 50_000)
    assert t["net_futures"] == pytest.approx(-100_000 / 150_000)
    assert t["spot_share"] == pytest.approx(150_000 / 170_000)
    assert t["funding_day_usd"] == pytest.approx(30.0)


def test_the_scenario_table_at_ten_percent_matches_a_hand_computation(tmp_path: Path) -> None:
    v, _ = valued(tmp_path)
    up, flat, down = scenarios(v, (0.10, 0.0, -0.10))
    # +10 %: spot 3 BTC * 5,000 = +15,000; linear short -5,000; inverse short
    # -50,000 * (1/50,000 - 1/55,000) BTC = -0.0909 BTC, at 55,000: -5,000
    assert up["spot_pnl_usd"] == pytest.approx(15_000)
    assert up["futures_pnl_usd"] == pytest.approx(-10_000)
    assert up["net_pnl_usd"] == pytest.approx(5_000)
    assert up["net_pct_equity"] == pytest.approx(5_000 / 170_000)
    # the linear short's margin ratio: 55,000 in bracket 2: 55,000 * 0.5 % - 50 = 225 USDT on
    # 10,000 - 5,000 of equity
    assert up["worst_margin_ratio"] == pytest.approx(225 / 5_000)
    assert up["liquidated"] == ""
    assert flat["net_pnl_usd"] == pytest.approx(0)
    # -10 %: -15,000 spot, +5,000 linear, +0.1111 BTC at 45,000 = +5,000 inverse
    assert down["spot_pnl_usd"] == pytest.approx(-15_000)
    assert down["futures_pnl_usd"] == pytest.approx(10_000)
    assert down["net_pnl_usd"] == pytest.approx(-5_000)
    assert down["worst_margin_ratio"] == pytest.approx(180 / 15_000)
    # +30 % crosses the linear short's liquidation at 59,751
    [far] = scenarios(v, (0.30,))
    assert far["liquidated"] == "binance_usdm:BTCUSDT"
    assert far["worst_margin_ratio"] == float("inf")


@pytest.mark.parametrize("name", list(DEFAULTS))
def test_a_portfolio_in_each_profile(name: str) -> None:
    p = DEFAULTS[name]
    share = sum(p.spot_share) / 2
    net = sum(p.net_futures) / 2
    totals = {"spot_share": share, "net_futures": net, "spot_value_usd": 100_000.0,
              "equity_usd": 100_000.0 / share}
    placed = place(totals, DEFAULTS, name)
    assert placed["inside"] and name in placed["matches"]
    assert placed["futures_usd"] == 0 and placed["spot_usd"] == 0
    # unhedged and all spot: outside every profile that wants a hedge; the move in says how much
    bare = {"spot_share": 1.0, "net_futures": 0.0, "spot_value_usd": 100_000.0,
            "equity_usd": 100_000.0}
    moved = place(bare, DEFAULTS, name)
    assert moved["futures_usd"] == pytest.approx(min(0.0, p.net_futures[1]) * 100_000)
    assert moved["inside"] == (p.net_futures[1] >= 0 and p.spot_share[1] >= 1)
    # the trend overlay: down -> hedge_down, up -> hedge_up
    down = overlay(totals, p, "down")
    assert down is not None and down["target_net_futures"] == p.hedge_down
    assert down["futures_usd"] == pytest.approx((p.hedge_down - net) * 100_000)
    assert overlay(totals, p, None) is None


def test_profile_ranges_move_with_the_file_and_errors_name_the_key() -> None:
    pf = parse({"profile": "active_symbiosis",
                "profiles": {"active_symbiosis": {"spot_share": [0.4, 0.9]}}})
    assert profiles(pf)["active_symbiosis"].spot_share == (0.4, 0.9)
    with pytest.raises(Exception, match=r"profiles.active_symbiosis.spot_share: \[0.9, 0.4\]"):
        profiles(parse({"profiles": {"active_symbiosis": {"spot_share": [0.9, 0.4]}}}))
    with pytest.raises(Exception, match=r"at profile: unknown profile 'yolo'"):
        profiles(parse({"profile": "yolo"}))


@pytest.mark.parametrize(("text", "message"), [
    ('[[futures]]\nvenue="binance_usdm"\nsymbol="BTCUSDT"\nside="up"\nsize=1\nentry=1',
     "portfolio error at futures[0].side"),
    ('[[spot]]\nasset="BTC"\namount=-1', "portfolio error at spot[0].amount"),
    ('[[futures]]\nvenue="binance_usdm"\nsymbol="BTCUSDT"\nside="short"\nsize=1\n'
     'entry=50000\nleverage=150', "leverage 150x is impossible"),
    ('[[futures]]\nvenue="binance_usdm"\nsymbol="BTCUSDT"\nside="short"\nsize=1000000\n'
     'entry=50000', "beyond the last margin tier"),
    ('[[futures]]\nvenue="binance_usdm"\nsymbol="XYZUSDT"\nside="short"\nsize=1\nentry=1',
     "unknown instrument binance_usdm:XYZUSDT"),
    ('[[futures]]\nvenue="binance_coinm"\nsymbol="BTCUSD_PERP"\nside="short"\nsize=1\n'
     'entry=50000\nmargin_mode="cross"', "needs [[collateral]] in BTC"),
    ('[[spot]]\nasset="DOGE"\namount=1', "unknown asset DOGE"),
    ("profile = [", "is not valid TOML"),
])
def test_portfolio_errors_are_one_line_and_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str) -> None:
    build(tmp_path / "data", 50_000.0)
    f = tmp_path / "p.toml"
    f.write_text(text)
    assert main(["portfolio", str(f), "--data-dir", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err, err


def test_portfolio_and_scenarios_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    build(data, 50_000.0, funding={"BTCUSDT": (0.0001, 8), "BTCUSD_PERP": (0.0001, 8)})
    f = tmp_path / "p.toml"
    f.write_text(PORTFOLIO)
    assert main(["portfolio", str(f), "--data-dir", str(data), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["total"]["equity_usd"] == pytest.approx(170_000)
    assert rep["profile"]["profile"] == "balanced_protector"
    # net futures -0.667 is beyond the balanced protector's -0.6: short 10,000 USD less
    assert not rep["profile"]["inside"]
    assert rep["profile"]["futures_usd"] == pytest.approx((-0.6 + 100 / 150) * 150_000)
    assert main(["portfolio", str(f), "--data-dir", str(data)]) == 0
    text = capsys.readouterr().out
    assert "profile balanced_protector: outside" in text and "Positions" in text
    assert main(["scenarios", str(f), "--data-dir", str(data), "--moves=-10,10",
                 "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["scenarios"]
    assert [r["net_pnl_usd"] for r in rows] == pytest.approx([-5_000, 5_000])
    assert main(["scenarios", str(f), "--data-dir", str(data), "--moves", "x"]) == 2
    assert "bad --moves 'x'" in capsys.readouterr().err


def test_the_trend_overlay_prescribes_the_profiles_hedge(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    now = build(data, 50_000.0)
    rows = pl.DataFrame({
        "ts": [now] * 2, "venue": ["binance_usdm", "binance_spot"],
        "symbol": ["BTCUSDT", "BTCUSDT"], "base": ["BTC", "BTC"], "interval_s": [14400] * 2,
        "fast": [10] * 2, "slow": [30] * 2, "bar_ts": [now - 14400 * 10**9] * 2,
        "last_close": [50_000.0] * 2, "fast_ma": [49_000.0] * 2, "slow_ma": [50_000.0] * 2,
        "regime": ["down"] * 2, "last_cross_ts": [now - 5 * 14400 * 10**9] * 2,
        "bars": [200] * 2, "newest_trade_ts": [now] * 2, "source": ["live"] * 2})
    with Store(data, data / "analyzer.duckdb") as store:
        store.add_rows("trend", rows.to_arrow())
    f = tmp_path / "p.toml"
    # the linear short alone: 1 BTC against 2 held, net futures -1/2
    f.write_text(PORTFOLIO.split('[[futures]]\nvenue = "binance_coinm"')[0])
    assert main(["portfolio", str(f), "--data-dir", str(data), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["trend"]["regimes"] == {"BTC": "down"}
    ov = rep["trend"]["overlay"]
    # down: the balanced protector hedges 60 % of its 100,000 USD of spot: short 10,000 more
    assert ov["target_net_futures"] == -0.6 and ov["action"] == "open more hedge"
    assert ov["futures_usd"] == pytest.approx((-0.6 + 0.5) * 100_000)
