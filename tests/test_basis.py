"""Basis, funding and open-interest definitions against hand-computed values."""

from __future__ import annotations

import math
from typing import Any

import polars as pl
import pytest

from analyzer.analytics.basis import (
    basis,
    constant_maturity,
    cross_venue,
    duration_ns,
    tenors,
    term_structure,
)
from analyzer.analytics.funding import (
    mean_realised,
    oi_change,
    predicted_vs_realised,
    realised_funding,
)

S = 10**9
H = 3_600 * S
DAY = 86_400 * S
T0 = 1_653_381_600 * S  # 2022-05-24 08:40 UTC (Binance's published basis example)
EXPIRY = 1_656_057_600 * S  # 2022-06-24 08:00 UTC

SCHEMA: dict[str, Any] = {
    "ts": pl.Int64, "exchange": pl.String, "venue": pl.String, "symbol": pl.String,
    "base": pl.String, "quote": pl.String, "market": pl.String, "inverse": pl.Boolean,
    "contract_size": pl.Float64, "expiry": pl.Int64, "bid": pl.Float64, "ask": pl.Float64,
    "mid": pl.Float64, "in_sync": pl.Boolean, "quote_age_s": pl.Float64, "mark": pl.Float64,
    "index": pl.Float64, "funding_rate": pl.Float64, "funding_interval_hours": pl.Float64,
    "next_funding_time": pl.Int64, "open_interest": pl.Float64,
}
VWAP_SCHEMA: dict[str, Any] = {
    "ts": pl.Int64, "venue": pl.String, "symbol": pl.String, "notional_usd": pl.Float64,
    "buy_vwap": pl.Float64, "sell_vwap": pl.Float64,
}


def inst(symbol: str, market: str, mid: float | None, *, ts: int = T0, venue: str | None = None,
         base: str = "BTC", quote: str = "USDT", in_sync: bool = True, **kw: Any) -> dict:
    """One market-state row; bid/ask 1 USD either side of ``mid``."""
    venue = venue or {"spot": "binance_spot"}.get(market, "binance_usdm")
    row = dict.fromkeys(SCHEMA)
    row.update(
        ts=ts, exchange="binance", venue=venue, symbol=symbol, base=base, quote=quote,
        market=market, inverse=False, contract_size=1.0, in_sync=in_sync, quote_age_s=0.1,
        bid=None if mid is None else mid - 1, ask=None if mid is None else mid + 1,
        mid=mid if in_sync else None,
    )
    row.update(kw)
    return row


def frame(*rows: dict) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=SCHEMA)


def one(df: pl.DataFrame, **eq: Any) -> dict:
    sel = df.filter(*[pl.col(k) == v for k, v in eq.items()])
    assert sel.height == 1, sel
    return sel.row(0, named=True)


def test_binance_published_example_golden_value() -> None:
    # Binance: basis rate 0.0024 at 2022-05-24 08:40 UTC for a contract expiring 2022-06-24 08:00
    # UTC (30.97 days), annualised 0.0283 = 0.0024 * 365 / 30.97.
    state = frame(
        inst("BTCUSDT", "spot", 30_000.0),
        inst("BTCUSDT_220624", "future", 30_072.0, expiry=EXPIRY, index=30_001.0,
             mark=30_070.0),
    )
    r = one(basis(state), symbol="BTCUSDT_220624")
    assert r["tenor"] == "q1"
    assert r["valid"] and r["reason"] is None
    assert r["spot_ref"] == 30_000.0 and r["spot_symbol"] == "BTCUSDT"
    assert r["dte_days"] == pytest.approx(30 + (23 * 60 + 20) / 1440, abs=1e-12)  # 30.972222
    assert round(r["dte_days"], 3) == 30.972
    assert r["basis_spot"] == pytest.approx(0.0024, abs=1e-15)
    assert round(r["basis_spot_ann"], 4) == 0.0283
    assert r["basis_spot_ann"] == pytest.approx(0.0024 * 365 / 30.972222222, rel=1e-9)
    # compounded by hand: 365 / 30.972222 = 11.784753; ln(1.0024) = 0.00239712;
    # exp(11.784753 * 0.00239712) - 1 = exp(0.0282495) - 1 = 0.0286523
    assert r["basis_spot_ann_comp"] == pytest.approx(0.0286523, abs=5e-7)
    assert r["basis_index"] == pytest.approx(71.0 / 30_001.0, rel=1e-12)
    assert r["premium"] is None and r["funding_ann"] is None  # futures pay no funding


def test_funding_annualised_from_the_published_interval_never_assumed() -> None:
    state = frame(
        inst("BTCUSDT", "spot", 30_000.0),
        *[
            inst(f"P{h}", "perpetual", 30_000.0, venue=f"v{h}", funding_rate=0.0001,
                 funding_interval_hours=h, index=30_000.0, mark=30_000.0)
            for h in (1.0, 4.0, 8.0, None)
        ],
    )
    out = basis(state)
    ann = {r["symbol"]: r["funding_ann"] for r in out.iter_rows(named=True)}
    per8 = {r["symbol"]: r["funding_8h"] for r in out.iter_rows(named=True)}
    assert ann["P8.0"] == pytest.approx(0.1095, abs=1e-15)  # 0.01 % per 8 h = 10.95 % a year
    assert ann["P4.0"] == pytest.approx(0.219, abs=1e-15)
    assert ann["P1.0"] == pytest.approx(0.876, abs=1e-15)
    assert ann["PNone"] is None  # unknown interval: no number, not an 8 h guess
    assert per8["P1.0"] == pytest.approx(0.0008) and per8["P4.0"] == pytest.approx(0.0002)


def test_perp_premium_mid_when_in_sync_else_mark_and_oi_usd() -> None:
    state = frame(
        inst("BTCUSDT", "spot", 30_000.0),
        inst("BTCUSDT", "perpetual", 30_030.0, index=30_000.0, mark=30_010.0,
             open_interest=100.0),
        inst("BTCUSD_PERP", "perpetual", 30_100.0, venue="binance_coinm", quote="USD",
             in_sync=False, inverse=True, contract_size=100.0, index=30_000.0, mark=30_015.0,
             open_interest=5_000.0),
    )
    out = basis(state)
    lin = one(out, venue="binance_usdm")
    assert lin["premium"] == pytest.approx(0.001, rel=1e-12) and lin["premium_ref"] == "mid"
    assert lin["basis_spot"] == pytest.approx(0.001, rel=1e-12)  # premium vs spot
    assert lin["basis_spot_ann"] is None and lin["dte_days"] is None
    assert lin["oi_usd"] == pytest.approx(100.0 * 30_010.0)  # linear: base units * mark
    inv = one(out, venue="binance_coinm")
    assert inv["premium"] == pytest.approx(0.0005, rel=1e-12) and inv["premium_ref"] == "mark"
    assert inv["mid"] is None and inv["basis_spot"] is None  # no book price off-sync
    assert not inv["valid"] and inv["reason"] == "book_unsynced"
    assert inv["oi_usd"] == 500_000.0  # inverse: contracts * 100 USD


def test_tenors_by_expiry_order_and_expired_contract_dropped() -> None:
    e1, e2, e3 = T0 + 10 * DAY, T0 + 40 * DAY, T0 + 100 * DAY
    t1 = T0 + 11 * DAY
    rows = []
    for ts in (T0, t1):
        rows += [
            inst("BTCUSDT", "spot", 30_000.0, ts=ts),
            inst("BTCUSDT", "perpetual", 30_000.0, ts=ts),
            inst("C_LATE", "future", 30_300.0, ts=ts, expiry=e3),
            inst("A_NEAR", "future", 30_100.0, ts=ts, expiry=e1),
            inst("B_MID", "future", 30_200.0, ts=ts, expiry=e2),
            inst("OLD", "future", 30_000.0, ts=ts, expiry=T0 - DAY),  # expired before both
        ]
    out = tenors(frame(*rows))
    assert out.height == 9  # 2 x (spot, perp, 3 futures) minus A_NEAR at t1; OLD never
    labels = out.filter(pl.col("market") != "spot").sort("ts", "symbol").select(
        "ts", "symbol", "tenor").rows()
    assert labels == [
        (T0, "A_NEAR", "q1"), (T0, "BTCUSDT", "perp"), (T0, "B_MID", "q2"),
        (T0, "C_LATE", "q3"), (t1, "BTCUSDT", "perp"), (t1, "B_MID", "q1"),
        (t1, "C_LATE", "q2"),
    ]


def test_valid_and_reason_per_failing_leg_and_spot_quote_preference() -> None:
    state = frame(
        inst("BTCUSDC", "spot", 29_000.0, quote="USDC"),
        inst("BTCUSDT", "spot", 30_000.0, in_sync=False),  # preferred quote, but unsynced
        inst("BTCUSDT", "perpetual", 30_030.0, index=30_000.0),
        inst("ETHUSDT", "perpetual", 2_000.0, base="ETH", index=2_000.0),  # no ETH spot
        inst("BTCUSDT_X", "future", 30_100.0, expiry=T0 + 30 * DAY, quote_age_s=9.0),
    )
    out = basis(state, max_age_s=5.0)
    btc = one(out, symbol="BTCUSDT")
    # USDT wins the spot leg even when out of sync: never silently swapped for USDC
    assert btc["spot_symbol"] == "BTCUSDT" and btc["spot_ref"] is None
    assert (btc["valid"], btc["reason"], btc["basis_spot"]) == (False, "spot_unsynced", None)
    assert one(out, symbol="ETHUSDT")["reason"] == "spot_missing"
    assert one(out, symbol="BTCUSDT_X")["reason"] == "book_stale"


def test_tradable_basis_per_notional_null_when_book_cannot_fill() -> None:
    exp = T0 + 73 * DAY
    state = frame(
        inst("BTCUSDT", "spot", 30_000.0),
        inst("BTCUSDT_Q", "future", 30_100.0, expiry=exp),
    )
    vw = pl.DataFrame(
        [
            (T0, "binance_spot", "BTCUSDT", 100_000.0, 30_010.0, 29_990.0),
            (T0, "binance_usdm", "BTCUSDT_Q", 100_000.0, 30_110.0, 30_060.0),
            (T0, "binance_spot", "BTCUSDT", 1_000_000.0, 30_050.0, 29_950.0),
            (T0, "binance_usdm", "BTCUSDT_Q", 1_000_000.0, None, None),  # cannot fill
        ],
        schema=VWAP_SCHEMA, orient="row",
    )
    r = one(basis(state, vw), symbol="BTCUSDT_Q")
    assert r["tradable_100000"] == pytest.approx(50.0 / 30_010.0, rel=1e-12)
    assert r["tradable_ann_100000"] == pytest.approx(50.0 / 30_010.0 * 365 / 73, rel=1e-12)
    assert r["tradable_1000000"] is None and r["tradable_ann_1000000"] is None
    # a fixed notional set keeps the live schema stable even when a tick lacks one
    cols = basis(state, vw.head(0), notionals=[100_000.0]).columns
    assert "tradable_100000" in cols and "tradable_1000000" not in cols


def _futures_state(anns: dict[str, tuple[int, float]], ts: int = T0, **kw: Any) -> pl.DataFrame:
    """Spot at 30 000 and futures priced so that the simple annualised basis is exact."""
    rows = [inst("BTCUSDT", "spot", 30_000.0, ts=ts)]
    for sym, (dte, ann) in anns.items():
        f = 30_000.0 * (1 + ann * dte / 365)
        rows.append(inst(sym, "future", f, ts=ts, expiry=ts + dte * DAY, **kw.get(sym, {})))
    return frame(*rows)


def test_constant_maturity_interpolates_between_bracketing_expiries_only() -> None:
    b = basis(_futures_state({"Q1": (20, 0.05), "Q2": (50, 0.08)}))
    cm = constant_maturity(b, days=(10, 20, 30, 90))
    got = {r["days"]: r["basis_ann"] for r in cm.iter_rows(named=True)}
    assert got[30] == pytest.approx(0.05 + (0.08 - 0.05) * (30 - 20) / (50 - 20), rel=1e-9)
    assert got[30] == pytest.approx(0.06, rel=1e-9)
    assert got[20] == pytest.approx(0.05, rel=1e-9)  # on an expiry: that contract
    assert got[10] is None and got[90] is None  # not extrapolated
    r30 = one(cm, days=30)
    assert (r30["symbol_lo"], r30["symbol_hi"]) == ("Q1", "Q2")
    # an invalid bracketing leg leaves no bracket
    bad = basis(_futures_state({"Q1": (20, 0.05), "Q2": (50, 0.08)},
                               Q1={"quote_age_s": 60.0}))
    assert one(constant_maturity(bad), days=30)["basis_ann"] is None


def test_term_structure_perp_at_zero_with_premium() -> None:
    state = _futures_state({"Q1": (20, 0.05), "Q2": (50, 0.08)}).vstack(frame(
        inst("BTCUSDT", "perpetual", 30_030.0, index=30_000.0)))
    ts = term_structure(basis(state))
    assert ts.select("tenor", "dte_days").rows() == [("perp", 0.0), ("q1", 20.0), ("q2", 50.0)]
    perp = one(ts, tenor="perp")
    assert perp["basis"] == pytest.approx(0.001) and perp["basis_ann"] is None
    assert one(ts, tenor="q2")["basis_ann"] == pytest.approx(0.08, rel=1e-9)


def test_cross_venue_dispersion_and_oi_weighted_funding_across_intervals() -> None:
    bdf = pl.DataFrame(
        {
            "ts": [T0] * 7, "base": ["BTC"] * 7,
            "venue": ["a", "b", "c", "d", "a", "b", "c"],
            "tenor": ["q1"] * 4 + ["perp"] * 3,
            "market": ["future"] * 4 + ["perpetual"] * 3,
            "basis_spot_ann": [0.05, 0.06, 0.10, 0.50, None, None, None],
            "premium": [None] * 4 + [0.001, 0.002, 0.0],
            "valid": [True, True, True, False, True, True, True],  # d: stale, left out
            "funding_ann": [None] * 4 + [0.0001 * 3 * 365, 0.0001 * 6 * 365, 0.00002 * 24 * 365],
            "oi_usd": [1e6, 2e6, 3e6, 4e6, 3e6, 1e6, 1e6],
        }
    )
    cv = cross_venue(bdf)
    q1 = one(cv, tenor="q1")
    assert q1["n_venues"] == 3
    assert q1["basis_ann_median"] == pytest.approx(0.06)
    assert q1["basis_ann_range"] == pytest.approx(0.05)
    # mean 0.07; deviations -0.02, -0.01, 0.03; sum sq 0.0014; / (3 - 1) -> sqrt(0.0007)
    assert q1["basis_ann_std"] == pytest.approx(math.sqrt(0.0007), rel=1e-9)
    assert q1["oi_usd"] == pytest.approx(10e6) and q1["funding_ann_oiw"] is None
    perp = one(cv, tenor="perp")
    # per 8 h: a 0.0001 (8 h), b 0.0002 (0.0001 per 4 h), c 0.00016 (0.00002 per 1 h)
    # OI-weighted: (0.0001 * 3 + 0.0002 * 1 + 0.00016 * 1) / 5 = 0.000132 per 8 h
    assert perp["funding_8h_oiw"] == pytest.approx(0.000132, rel=1e-9)
    assert perp["funding_ann_oiw"] == pytest.approx(0.000132 * 3 * 365, rel=1e-9)
    assert perp["premium_median"] == pytest.approx(0.001)
    assert perp["premium_range"] == pytest.approx(0.002)
    assert perp["oi_usd"] == pytest.approx(5e6) and perp["n_funding"] == 3


def test_cross_venue_funding_through_basis_with_mixed_intervals() -> None:
    state = frame(
        inst("BTCUSDT", "spot", 30_000.0),
        inst("BTCUSDT", "perpetual", 30_000.0, venue="v8", funding_rate=0.0001,
             funding_interval_hours=8.0, mark=30_000.0, index=30_000.0, open_interest=100.0),
        inst("BTCUSDT", "perpetual", 30_000.0, venue="v1", funding_rate=0.00002,
             funding_interval_hours=1.0, mark=30_000.0, index=30_000.0, open_interest=100.0),
    )
    perp = one(cross_venue(basis(state)), tenor="perp")
    assert perp["funding_8h_oiw"] == pytest.approx((0.0001 + 0.00016) / 2, rel=1e-9)
    assert perp["oi_usd"] == pytest.approx(6e6)


def test_batch_equals_per_tick_calls() -> None:
    ticks = [
        _futures_state({"Q1": (20, 0.05 + i / 100), "Q2": (50, 0.08)}, ts=T0 + i * S)
        for i in range(3)
    ]
    batch = basis(pl.concat(ticks)).sort("ts", "symbol")
    live = pl.concat([basis(t) for t in ticks]).sort("ts", "symbol")
    assert batch.equals(live)
    assert constant_maturity(batch).equals(
        pl.concat([constant_maturity(basis(t)) for t in ticks]))


# --- funding history and open interest ------------------------------------------------------

FUND_SCHEMA: dict[str, Any] = {
    "ts": pl.Int64, "venue": pl.String, "symbol": pl.String, "funding_rate": pl.Float64,
    "funding_interval_hours": pl.Float64, "next_funding_time": pl.Int64,
}


def _tickers() -> pl.DataFrame:
    v, s = "binance_usdm", "BTCUSDT"
    rows = [  # 4 h interval; settlements at 08:00 and 12:00, the 16:00 one still pending
        (int(4.5 * H), v, s, 0.00010, 4.0, 8 * H),
        (7 * H, v, s, 0.00012, 4.0, 8 * H),
        (8 * H - S, v, s, 0.00013, 4.0, 8 * H),
        (8 * H + S, v, s, 0.00005, 4.0, 12 * H),
        (11 * H, v, s, 0.00007, 4.0, 12 * H),
        (12 * H - 60 * S, v, s, 0.00008, 4.0, 12 * H),
        (12 * H + S, v, s, 0.00002, 4.0, 16 * H),
        # a venue that does not publish its interval: measured from the settlement gap
        (7 * H, "other", s, 0.0003, None, 8 * H),
        (9 * H, "other", s, 0.0001, None, 16 * H),
        (16 * H, "other", s, 0.0002, None, 16 * H),
        (16 * H + S, "other", s, 0.0, None, 24 * H),
    ]
    return pl.DataFrame(rows, schema=FUND_SCHEMA, orient="row")


def test_realised_funding_across_two_settlements() -> None:
    r = realised_funding(_tickers())
    usdm = r.filter(pl.col("venue") == "binance_usdm")
    assert usdm.select("settle_ts", "rate", "interval_hours", "published_ts").rows() == [
        (8 * H, 0.00013, 4.0, 8 * H - S),
        (12 * H, 0.00008, 4.0, 12 * H - 60 * S),
    ]
    assert usdm["rate_ann"].to_list() == pytest.approx([0.00013 * 6 * 365, 0.00008 * 6 * 365])
    other = r.filter(pl.col("venue") == "other")
    # ts == settle_ts still counts as published before the settlement
    assert other.select("settle_ts", "rate", "interval_hours").rows() == [
        (8 * H, 0.0003, None), (16 * H, 0.0002, 8.0),
    ]
    m = one(mean_realised(r, "1d"), venue="binance_usdm")
    assert m["n_settlements"] == 2 and m["hours"] == 8.0
    assert m["funding_ann_mean"] == pytest.approx(0.00021 / 8 * 24 * 365, rel=1e-9)


def test_predicted_vs_realised_as_of_before_settlement() -> None:
    p = predicted_vs_realised(_tickers(), horizons=("1h", "5h")).filter(
        pl.col("venue") == "binance_usdm")
    got = {(r["settle_ts"], r["horizon"]): (r["predicted"], r["error"])
           for r in p.iter_rows(named=True)}
    assert got[(8 * H, "1h")] == (0.00012, pytest.approx(0.00001))
    assert got[(12 * H, "1h")] == (0.00007, pytest.approx(0.00001))
    assert got[(8 * H, "5h")] == (None, None)  # before the interval began: no prediction
    assert got[(12 * H, "5h")] == (None, None)


def test_oi_change_over_one_hour_as_of_backward_with_tolerance() -> None:
    mins = [m for m in range(0, 130, 10) if m not in (30, 40)]  # hole at 30-40 min
    hist = pl.DataFrame(
        {
            "ts": [m * 60 * S for m in mins], "venue": "binance_usdm", "symbol": "BTCUSDT",
            "open_interest": [1_000.0 + m for m in mins],
            "oi_usd": [(1_000.0 + m) * 30_000.0 for m in mins],
        }
    )
    out = oi_change(hist, horizons=("1h",), tolerance="5m")
    at = {r["ts"] // (60 * S): r for r in out.iter_rows(named=True)}
    assert at[120]["oi_chg_1h"] == 60.0
    assert at[120]["oi_chg_pct_1h"] == pytest.approx(60.0 / 1_060.0 * 100.0)
    assert at[120]["oi_usd_chg_1h"] == pytest.approx(60.0 * 30_000.0)
    assert at[60]["oi_chg_1h"] == 60.0  # reference exactly at t = 0
    assert at[50]["oi_chg_1h"] is None  # no history an hour back
    assert at[100]["oi_chg_1h"] is None  # reference at 40 min fell in the hole (20 min old)
    assert at[110]["oi_chg_1h"] == 60.0


def test_duration_parsing() -> None:
    assert duration_ns("30m") == 1_800 * S and duration_ns("1h30m") == 5_400 * S
    assert duration_ns(7) == 7
    with pytest.raises(ValueError):
        duration_ns("3 days")


def test_tickers_sent_in_parts_are_merged_field_by_field_live_and_in_batch() -> None:
    """A venue that sends mark, index and funding in separate messages (OKX, BingX, WEEX): the
    latest of each field counts, not the latest message whole, live and in batch alike."""
    from analyzer.analytics.state import TICKER_COLUMNS, as_of, latest_ticker
    from analyzer.events import DerivativeTicker

    sent = [
        DerivativeTicker("v", "P", 1, 10, funding_rate=0.0001, funding_interval_hours=8.0,
                         next_funding_time=8 * H),
        DerivativeTicker("v", "P", 2, 20, mark_price=100.0),
        DerivativeTicker("v", "P", 3, 30, index_price=99.0),
        DerivativeTicker("v", "P", 4, 40, mark_price=101.0),
    ]
    live = None
    for ev in sent:
        live = latest_ticker(live, ev)
    assert live == DerivativeTicker("v", "P", 4, 40, 101.0, 99.0, 0.0001, 8 * H, 8.0)
    rows = pl.DataFrame([{"ts_local": t.ts_local, "venue": t.venue, "symbol": t.symbol,
                          **{c: getattr(t, c) for c in TICKER_COLUMNS}} for t in sent])
    grid = pl.DataFrame({"ts": [25, 45], "venue": "v", "symbol": "P"})
    got = as_of(rows, grid, TICKER_COLUMNS).sort("ts").to_dicts()
    assert got[0] | {"ts": 0} == {"ts": 0, "venue": "v", "symbol": "P", "mark_price": 100.0,
                                  "index_price": None, "funding_rate": 0.0001,
                                  "funding_interval_hours": 8.0, "next_funding_time": 8 * H}
    assert (got[1]["mark_price"], got[1]["index_price"], got[1]["funding_rate"]) == (
        101.0, 99.0, 0.0001)
