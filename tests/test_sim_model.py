"""The simulated market (``analyzer.sim``): calendar, pricing, funding, books, scenarios and
determinism, checked on the events the model emits (not on counters)."""

from __future__ import annotations

import bisect
import hashlib
import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from simrun import world_of

from analyzer.events import BookChange, DerivativeTicker, Instrument, OpenInterest, Quote, Trade
from analyzer.sim import (
    SCENARIOS,
    MarketModel,
    Rates,
    Schedule,
    SimError,
    World,
    default_world,
    funding_rate,
    funding_times,
    next_funding,
    quarterly_expiries,
    quarterly_expiry,
)
from analyzer.sim.clock import DAY_NS, HOUR_NS, NS, YEAR_NS, utc_ns
from analyzer.sim.spec import BTC, FundingSpec
from analyzer.venues import EXCHANGES
from analyzer.venues.binance.emulate.specs import BINANCE_COINM, BINANCE_SPOT, BINANCE_USDM

# A day of market in a couple of seconds: 30-second steps, few events, coarse books (the cost
# of a book is the path its top travels, times its levels per bp).
SPARSE = Rates(step_s=30.0, book_changes_per_s=0.01, updates_per_s=0.05, trades_per_s=0.01,
               ticker_interval_s=60.0, open_interest_interval_s=600.0, levels=500)
MARCH_EXPIRY = utc_ns(2026, 3, 27, 8)

BINANCE = world_of()  # the tests' world: Binance's markets


def sparse_world(*, btc_only: bool = False) -> World:
    w = world_of(rates=SPARSE)
    assets = (BTC,) if btc_only else w.assets
    return msgspec.structs.replace(w, assets=tuple(
        msgspec.structs.replace(a, levels_per_bp=2.0) for a in assets))


def run(model: MarketModel, seconds: float, chunk_s: float = 1.0) -> list:
    """All events of the next ``seconds``, asked for in chunks (as an exchange would)."""
    out: list = []
    end = model.now_ns + round(seconds * NS)
    t = model.now_ns
    while t < end:
        t = min(end, t + round(chunk_s * NS))
        out += model.advance(t)
    return out


def digest(events: list) -> str:
    return hashlib.sha256(msgspec.msgpack.encode(events)).hexdigest()


# -- calendar ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("year", "month", "day"),
    [(2026, 3, 27), (2026, 6, 26), (2026, 9, 25), (2026, 12, 25), (2025, 12, 26)],
)
def test_quarterly_expiry_is_the_last_friday_at_8_utc(year: int, month: int, day: int) -> None:
    t = quarterly_expiry(year, month)
    dt = datetime.fromtimestamp(t // NS, UTC)
    assert (dt.year, dt.month, dt.day, dt.hour, dt.minute) == (year, month, day, 8, 0)
    assert dt.weekday() == 4  # Friday
    assert (dt + timedelta(days=7)).month != month  # the last one


def test_quarterly_expiries_after_a_time() -> None:
    assert quarterly_expiries(utc_ns(2026, 1, 5), 2) == [
        utc_ns(2026, 3, 27, 8), utc_ns(2026, 6, 26, 8)]
    # a contract expiring exactly now is gone; the next three follow
    assert quarterly_expiries(MARCH_EXPIRY, 3) == [
        utc_ns(2026, 6, 26, 8), utc_ns(2026, 9, 25, 8), utc_ns(2026, 12, 25, 8)]
    assert quarterly_expiries(MARCH_EXPIRY - 1, 1) == [MARCH_EXPIRY]
    assert quarterly_expiries(utc_ns(2026, 12, 26), 1) == [utc_ns(2027, 3, 26, 8)]


def test_funding_grid_is_aligned_to_midnight() -> None:
    t = utc_ns(2026, 1, 5, 3, 17)
    assert next_funding(t, 8) == utc_ns(2026, 1, 5, 8)
    assert next_funding(t, 4) == utc_ns(2026, 1, 5, 4)
    assert next_funding(t, 1) == utc_ns(2026, 1, 5, 4)
    assert next_funding(utc_ns(2026, 1, 5, 16), 8) == utc_ns(2026, 1, 6)
    assert funding_times(utc_ns(2026, 1, 5), utc_ns(2026, 1, 6), 8) == [
        utc_ns(2026, 1, 5, 8), utc_ns(2026, 1, 5, 16), utc_ns(2026, 1, 6)]
    with pytest.raises(SimError, match="does not divide 24"):
        next_funding(t, 5)


def test_funding_formula() -> None:
    spec = FundingSpec()
    assert funding_rate(0.0, 8, spec) == pytest.approx(0.0001)  # interest alone
    assert funding_rate(0.0002, 8, spec) == pytest.approx(0.0001)  # premium within the clamp
    assert funding_rate(0.0, 1, spec) == pytest.approx(0.0001 / 8)
    assert funding_rate(-0.002, 8, spec) == pytest.approx(-0.0015)  # P + clamp(I - P) = P + 5bp
    assert funding_rate(0.003, 8, spec) == pytest.approx(0.0025)
    assert funding_rate(0.05, 8, spec) == 0.0075  # capped
    assert funding_rate(-0.05, 8, spec) == -0.0075


# -- the world --------------------------------------------------------------------------------


def test_default_world_instruments() -> None:
    m = MarketModel(BINANCE)
    got = {(i.venue, i.symbol, i.market, i.inverse, i.contract_size, i.tick_size, i.expiry)
           for i in m.instruments()}
    mar, jun = utc_ns(2026, 3, 27, 8), utc_ns(2026, 6, 26, 8)
    assert got == {
        ("binance_spot", "BTCUSDT", "spot", False, 1.0, 0.01, None),
        ("binance_spot", "ETHUSDT", "spot", False, 1.0, 0.01, None),
        ("binance_usdm", "BTCUSDT", "perpetual", False, 1.0, 0.1, None),
        ("binance_usdm", "BTCUSDT_260327", "future", False, 1.0, 0.1, mar),
        ("binance_usdm", "BTCUSDT_260626", "future", False, 1.0, 0.1, jun),
        ("binance_usdm", "ETHUSDT", "perpetual", False, 1.0, 0.01, None),
        ("binance_usdm", "ETHUSDT_260327", "future", False, 1.0, 0.01, mar),
        ("binance_usdm", "ETHUSDT_260626", "future", False, 1.0, 0.01, jun),
        ("binance_coinm", "BTCUSD_PERP", "perpetual", True, 100.0, 0.1, None),
        ("binance_coinm", "BTCUSD_260327", "future", True, 100.0, 0.1, mar),
        ("binance_coinm", "BTCUSD_260626", "future", True, 100.0, 0.1, jun),
        ("binance_coinm", "ETHUSD_PERP", "perpetual", True, 10.0, 0.01, None),
        ("binance_coinm", "ETHUSD_260327", "future", True, 10.0, 0.01, mar),
        ("binance_coinm", "ETHUSD_260626", "future", True, 10.0, 0.01, jun),
    }
    first = m.advance(m.now_ns + NS)
    assert [e.symbol for e in first[:14]] == [i.symbol for i in m.instruments()]
    assert all(isinstance(e, Instrument) for e in first[:14])


def test_bad_world_and_queries_are_one_line_errors() -> None:
    w = world_of()
    with pytest.raises(SimError, match=r"funding interval 5\.0 h"):
        msgspec.structs.replace(w, venues=(msgspec.structs.replace(
            BINANCE_USDM, default_funding_interval_hours=5.0),)).validate()
    m = MarketModel(w)
    with pytest.raises(SimError, match="no instrument binance_usdm BTCUSDT_990101"):
        m.snapshot("binance_usdm", "BTCUSDT_990101")
    with pytest.raises(SimError, match="unknown feed 'bybit_linear': known: binance_spot"):
        m.symbol_at("bybit_linear", "BTC", "perpetual", m.now_ns)
    with pytest.raises(SimError, match="binance_spot has no 'near' contract"):
        m.symbol_at("binance_spot", "BTC", "near", m.now_ns)
    with pytest.raises(SimError, match="is spot: no open interest"):
        m.open_interest("binance_spot", "BTCUSDT")


# -- books ------------------------------------------------------------------------------------


def replay_books(model: MarketModel, seconds: float, chunk_s: float = 0.7) -> dict:
    """Apply every change to the snapshots taken at the start, checking the id rules, the top
    after each change, quotes against the book and trades against the quoted top."""
    books = {}
    for i in model.instruments():
        s = model.snapshot(i.venue, i.symbol)
        assert s.is_snapshot and s.first_id == s.last_id
        books[(i.venue, i.symbol)] = (dict(s.bids), dict(s.asks), [s.last_id], [])
    quotes: dict[tuple[str, str], list[Quote]] = defaultdict(list)
    last_quote: dict[tuple[str, str], Quote] = {}
    prev: dict[tuple[str, str], object] = {}
    events = run(model, seconds, chunk_s)
    assert [e.ts_exchange for e in events if not isinstance(e, Instrument)] == sorted(
        e.ts_exchange for e in events if not isinstance(e, Instrument))
    for e in events:
        if isinstance(e, Instrument):
            continue
        key = (e.venue, e.symbol)
        if isinstance(e, BookChange):
            bids, asks, last, hist = books[key]
            assert not e.is_snapshot and e.first_id <= e.last_id
            if e.venue == "binance_spot":
                assert e.prev_id == -1 and e.first_id == last[0] + 1
            else:
                assert e.prev_id == last[0] and e.first_id > last[0]
            last[0] = e.last_id
            for side, levels in ((bids, e.bids), (asks, e.asks)):
                for p, q in levels:
                    if q:
                        side[p] = q
                    else:
                        side.pop(p, None)
            bb, ba = max(bids), min(asks)
            hist.append((e.first_id, e.last_id, (bb, bids[bb], ba, asks[ba])))
        elif isinstance(e, Quote):
            quotes[key].append(e)
            last_quote[key] = e
        elif isinstance(e, Trade):
            before = prev[key]
            if isinstance(before, Trade) and before.ts_exchange == e.ts_exchange:
                # the same taker order goes on to the next, worse level
                assert (e.price > before.price) if e.side == "buy" else (e.price < before.price)
            else:  # the first fill is at the best price quoted just before, within its size
                q = last_quote[key]
                assert e.price == (q.ask_price if e.side == "buy" else q.bid_price)
                assert e.size <= (q.ask_size if e.side == "buy" else q.bid_size)
        prev[key] = e
    compared = 0
    for key, qs in quotes.items():
        hist = books[key][3]
        lasts = [h[1] for h in hist]
        for q in qs:
            j = bisect.bisect_right(lasts, q.update_id) - 1
            # the quote shows the book after every update <= its id: comparable when it falls
            # between two changes (Binance futures ids skip), or on a change's last id
            if 0 <= j < len(hist) - 1 and q.update_id < hist[j + 1][0]:
                compared += 1
                assert hist[j][2] == (q.bid_price, q.bid_size, q.ask_price, q.ask_size)
    return {"books": books, "events": events, "quotes_compared": compared}


@pytest.mark.parametrize("fast", [False, True])
def test_books_replay_to_the_snapshot_and_quotes_trades_agree(fast: bool) -> None:
    m = MarketModel(BINANCE, seed=11, fast=fast)
    r = replay_books(m, 20.0)
    assert r["quotes_compared"] > 1000
    for (feed, symbol), (bids, asks, last, hist) in r["books"].items():
        snap = m.snapshot(feed, symbol)
        assert snap.last_id == last[0]
        assert dict(snap.bids) == bids and dict(snap.asks) == asks
        assert [p for p, _ in snap.bids] == sorted(bids, reverse=True)
        assert [p for p, _ in snap.asks] == sorted(asks)
        assert all(top[0] < top[2] for _, _, top in hist)  # never crossed
        assert 2000 <= len(snap.bids) <= 3000 and 2000 <= len(snap.asks) <= 3000
        for side in (snap.bids, snap.asks):  # sizes grow away from the mid
            sizes = [q for _, q in side]
            assert sum(sizes[-500:]) / 500 > 2 * sum(sizes[:100]) / 100
    kinds = defaultdict(int)
    for e in r["events"]:
        kinds[type(e).__name__] += 1
    n, secs = len(m.instruments()), 20
    assert 15 * n * secs < kinds["BookChange"] < 21 * n * secs
    assert 20 * n * secs < kinds["Quote"] < 45 * n * secs
    assert 3 * n * secs < kinds["Trade"] < 12 * n * secs
    assert kinds["DerivativeTicker"] == 12 * secs  # 12 derivatives, one a second
    assert kinds["OpenInterest"] == 12 * 2  # every 10 s


def test_tick_and_lot_grids() -> None:
    m = MarketModel(BINANCE, seed=2)
    run(m, 5.0)
    for i in m.instruments():
        s = m.snapshot(i.venue, i.symbol)
        for p, q in s.bids[:200] + s.asks[:200]:
            assert abs(p / i.tick_size - round(p / i.tick_size)) < 1e-6
            assert abs(q / i.lot_size - round(q / i.lot_size)) < 1e-6


# -- a day at high speed: expiry roll, convergence, funding --------------------------------


@pytest.fixture(scope="module")
def day() -> dict:
    """20 h before the March 2026 quarterly expiry to 4 h after, sparse rates."""
    m = MarketModel(sparse_world(), seed=5, start_ns=MARCH_EXPIRY - 20 * HOUR_NS)
    events = run(m, 24 * 3600, chunk_s=3600)
    return {"model": m, "events": events}


def test_expiry_roll(day: dict) -> None:
    m, events = day["model"], day["events"]
    expired = {(x.venue, x.symbol): x for x in m.expired()}
    assert set(expired) == {
        ("binance_usdm", "BTCUSDT_260327"), ("binance_usdm", "ETHUSDT_260327"),
        ("binance_coinm", "BTCUSD_260327"), ("binance_coinm", "ETHUSD_260327")}
    spot_mid = {}
    for e in events:
        if isinstance(e, Quote) and e.venue == "binance_spot" and e.ts_exchange <= MARCH_EXPIRY:
            spot_mid[e.symbol[:3]] = (e.bid_price + e.ask_price) / 2
    for (feed, sym), x in expired.items():
        assert x.ts == MARCH_EXPIRY
        assert abs(x.last_mid / x.index - 1) < 3e-4  # (F - S) / S at expiry, own index
        assert abs(x.last_mid / spot_mid[sym[:3]] - 1) < 5e-4  # against binance_spot
        assert abs(x.settlement_price / x.index - 1) < 0.03  # the 30-minute average
        after = [e for e in events if getattr(e, "symbol", None) == sym
                 and getattr(e, "venue", None) == feed]
        assert max(e.ts_exchange for e in after if not isinstance(e, Instrument)) == x.ts
        final = [e for e in after if isinstance(e, DerivativeTicker) and e.ts_exchange == x.ts]
        assert [t.mark_price for t in final] == [x.settlement_price]
        with pytest.raises(SimError):
            m.snapshot(feed, sym)
    listed = [e for e in events if isinstance(e, Instrument) and e.ts_local == MARCH_EXPIRY]
    sep = utc_ns(2026, 9, 25, 8)
    assert {(e.venue, e.symbol, e.expiry) for e in listed} == {
        ("binance_usdm", "BTCUSDT_260925", sep), ("binance_usdm", "ETHUSDT_260925", sep),
        ("binance_coinm", "BTCUSD_260925", sep), ("binance_coinm", "ETHUSD_260925", sep)}
    now = {(i.venue, i.symbol) for i in m.instruments()}
    assert ("binance_usdm", "BTCUSDT_260626") in now and ("binance_usdm", "BTCUSDT_260925") in now
    assert not now & set(expired)
    assert any(isinstance(e, BookChange) and e.symbol == "BTCUSDT_260925" for e in events)


def test_basis_converges_to_zero_toward_expiry(day: dict) -> None:
    last_basis = {}
    for e in day["events"]:
        if (isinstance(e, DerivativeTicker) and e.symbol.endswith("_260327") and e.index_price
                and e.ts_exchange < MARCH_EXPIRY):
            dte = (MARCH_EXPIRY - e.ts_exchange) / DAY_NS
            last_basis.setdefault(e.symbol, []).append((dte, e.mark_price / e.index_price - 1))
    for series in last_basis.values():
        early = [b for d, b in series if d > 0.7]
        late = [b for d, b in series if d < 0.01]
        assert min(early) > 0  # contango, ~8 % a year with ~0.8 days left
        assert max(abs(b) for b in late) < 2e-5


def test_funding_settles_on_each_interval_with_the_formula(day: dict) -> None:
    m, events = day["model"], day["events"]
    start, end = MARCH_EXPIRY - 20 * HOUR_NS, MARCH_EXPIRY + 4 * HOUR_NS
    hours = {("binance_usdm", "BTCUSDT"): 8, ("binance_usdm", "ETHUSDT"): 4,
             ("binance_coinm", "BTCUSD_PERP"): 8, ("binance_coinm", "ETHUSD_PERP"): 1}
    tickers = defaultdict(dict)
    for e in events:
        if isinstance(e, DerivativeTicker):
            tickers[(e.venue, e.symbol)][e.ts_exchange] = e
    for (feed, sym), h in hours.items():
        history = m.funding_history(feed, sym)
        assert [f.ts for f in history] == funding_times(start, end, h)
        for f in history:
            assert f.interval_hours == h
            assert f.rate == funding_rate(f.avg_premium, h, BINANCE_USDM.funding)
            t = tickers[(feed, sym)][f.ts]  # the settlement ticker: the period's last word
            assert t.funding_rate == f.rate and t.next_funding_time == f.ts
            # the average premium is the one the tickers showed over the interval, the later
            # samples weighing more (weight k for the k-th)
            marks = [x.mark_price / x.index_price - 1 for ts, x in tickers[(feed, sym)].items()
                     if f.ts - h * HOUR_NS < ts <= f.ts]
            weighted = sum(k * p for k, p in enumerate(marks, 1)) / sum(range(1, len(marks) + 1))
            assert f.avg_premium == pytest.approx(weighted, abs=1e-5)
        full = history[1:]  # the first interval started before the model
        assert all(f.samples == h * 3600 // 5 for f in full)
        # calm premium: funding is the interest component, 0.01 % per 8 h
        assert all(f.rate == pytest.approx(0.0001 * h / 8, abs=1e-9) for f in history)
        predicted = [x for x in tickers[(feed, sym)].values() if x.ts_exchange not in
                     {f.ts for f in history}]
        assert all(x.funding_interval_hours == h for x in predicted)
        assert all(x.next_funding_time == next_funding(x.ts_exchange, h) for x in predicted)


def test_open_interest_drifts(day: dict) -> None:
    m, events = day["model"], day["events"]
    series = [e.open_interest for e in events if isinstance(e, OpenInterest)
              and e.symbol == "BTCUSDT" and e.venue == "binance_usdm"]
    assert len(series) == 24 * 6 and len(set(series)) > 100
    oi = m.open_interest("binance_usdm", "BTCUSDT")
    assert oi.open_interest == series[-1] and oi.value_usd == pytest.approx(
        oi.open_interest * m.ticker("binance_usdm", "BTCUSDT").mark_price)
    inv = m.open_interest("binance_coinm", "BTCUSD_PERP")
    assert inv.open_interest == round(inv.open_interest)  # contracts
    assert inv.value_usd == inv.open_interest * 100


# -- scenarios --------------------------------------------------------------------------------


def annualised(t: DerivativeTicker, expiry: int) -> float:
    return (t.mark_price / t.index_price - 1) * YEAR_NS / (expiry - t.ts_exchange)


def test_calm_contango_stays_between_5_and_15_percent() -> None:
    m = MarketModel(sparse_world(), seed=8, schedule="calm_contango")
    (run_,) = m.scenario_runs()
    assert run_.expected["annualised_basis_range"] == (0.05, 0.15)
    expiry = {i.symbol: i.expiry for i in m.instruments() if i.expiry}
    seen = 0
    for e in run(m, 12 * 3600, chunk_s=3600):
        if isinstance(e, DerivativeTicker) and e.symbol in expiry:
            assert 0.05 < annualised(e, expiry[e.symbol]) < 0.15
            seen += 1
    assert seen == 8 * 12 * 60


def test_steep_contango_is_a_persistent_carry() -> None:
    m = MarketModel(sparse_world(btc_only=True), seed=8, schedule="steep_contango@10m+2h")
    (r,) = m.scenario_runs()
    assert r.expected["carry_opportunity"] is True
    lo, hi = r.expected["annualised_basis_range"]
    expiry = {i.symbol: i.expiry for i in m.instruments() if i.expiry}
    inside = [annualised(e, expiry[e.symbol]) for e in run(m, 3 * 3600, chunk_s=600)
              if isinstance(e, DerivativeTicker) and e.symbol in expiry
              and r.expected["persist_from_ns"] <= e.ts_exchange < r.end_ns]
    assert len(inside) > 400 and all(lo < b < hi for b in inside)


def test_funding_flips_negative() -> None:
    # 15:00 start, 17:00 to 03:00 negative: the 16:00 settlement is before, 00:00 inside
    m = MarketModel(sparse_world(), seed=4, start_ns=utc_ns(2026, 1, 4, 15),
                    schedule="funding_negative@2h")
    (r,) = m.scenario_runs()
    settlements = r.expected["settlements"]
    assert settlements == [("binance_usdm", "BTCUSDT", utc_ns(2026, 1, 5)),
                           ("binance_coinm", "BTCUSD_PERP", utc_ns(2026, 1, 5))]
    events = run(m, 12 * 3600, chunk_s=3600)
    realised = {(f.venue, f.symbol, f.ts): f.rate for f in m.funding_history()}
    assert all(realised[s] < 0 for s in settlements)
    before = [v for (_, s, t), v in realised.items() if s.startswith("BTC") and t < r.start_ns]
    assert before and all(v > 0 for v in before)
    for feed, sym, t in r.expected["predicted_negative"]:
        predicted = [e.funding_rate for e in events if isinstance(e, DerivativeTicker)
                     and (e.venue, e.symbol) == (feed, sym) and t <= e.ts_exchange <= r.end_ns]
        assert len(predicted) > 400 and all(x < 0 for x in predicted)
        just_before = [e.funding_rate for e in events if isinstance(e, DerivativeTicker)
                       and (e.venue, e.symbol) == (feed, sym) and e.ts_exchange < r.start_ns]
        assert just_before[-1] > 0
    eth = [v for (_, s, t), v in realised.items() if s.startswith("ETH")]
    assert all(v > 0 for v in eth)  # ETH untouched


def test_fleeting_spike_lasts_seconds() -> None:
    m = MarketModel(BINANCE, seed=6, schedule="fleeting_spike@5s")
    (r,) = m.scenario_runs()
    assert r.expected == {"feed": "binance_usdm", "symbol": "BTCUSDT_260327", "spike_bps": 80.0,
                          "spike_seconds": 3.0, "carry_opportunity": False, "anomaly": True}
    marks = {e.ts_exchange: e.mark_price / e.index_price - 1 for e in run(m, 12.0)
             if isinstance(e, DerivativeTicker) and e.symbol == "BTCUSDT_260327"}
    base = marks[m.start_ns + 4 * NS]
    for s in (6, 7, 8):
        assert (marks[m.start_ns + s * NS] - base) * 1e4 == pytest.approx(80, abs=3)
    for s in (9, 10):
        assert abs(marks[m.start_ns + s * NS] - base) * 1e4 < 3


def test_crossed_book_window() -> None:
    m = MarketModel(BINANCE, seed=6, schedule="crossed_book@3s")
    (r,) = m.scenario_runs()
    assert (r.expected["feed"], r.expected["symbol"], r.expected["expect"]) == (
        "binance_spot", "BTCUSDT", "resync")
    snap = m.snapshot("binance_spot", "BTCUSDT")
    bids, asks = dict(snap.bids), dict(snap.asks)
    crossed_at = []
    t = m.now_ns
    for _ in range(80):
        t += NS // 10
        for e in m.advance(t):
            if isinstance(e, BookChange) and e.symbol == "BTCUSDT" and e.venue == "binance_spot":
                for side, levels in ((bids, e.bids), (asks, e.asks)):
                    for p, q in levels:
                        if q:
                            side[p] = q
                        else:
                            side.pop(p, None)
                if max(bids) >= min(asks):
                    crossed_at.append(e.ts_exchange)
        if r.start_ns < m.now_ns <= r.end_ns:  # acting on the steps after its start
            s = m.snapshot("binance_spot", "BTCUSDT")
            assert s.bids[0][0] > s.asks[0][0]  # the venue's own snapshot is crossed too
    assert crossed_at
    assert r.start_ns < min(crossed_at) and max(crossed_at) <= r.end_ns
    assert max(bids) < min(asks)


def test_thin_and_one_sided_books() -> None:
    m = MarketModel(BINANCE, seed=6, schedule="thin_book@2s+5s,one_sided_book@2s+5s")
    thin, one = m.scenario_runs()
    assert thin.expected["symbol"] == one.expected["symbol"] == "BTCUSDT_260327"

    def depth(side: list) -> float:
        return sum(q for _, q in side[:400])

    run(m, 1.0)
    normal = depth(m.snapshot("binance_usdm", "BTCUSDT_260327").bids)
    run(m, 3.0)
    s = m.snapshot("binance_usdm", "BTCUSDT_260327")
    assert depth(s.bids) < 0.05 * normal
    assert len(s.asks) == 10 and (s.asks[0][0] / s.bids[0][0] - 1) > 0.005  # far asks only
    run(m, 5.0)
    s = m.snapshot("binance_usdm", "BTCUSDT_260327")
    assert depth(s.bids) > 0.5 * normal and len(s.asks) > 2000
    assert s.asks[0][0] - s.bids[0][0] < 1.0


def test_expiry_roll_pins_the_clock() -> None:
    m = MarketModel(sparse_world(btc_only=True), seed=1, start_ns=utc_ns(2026, 2, 1),
                    schedule="expiry_roll@5m")
    (r,) = m.scenario_runs()
    assert r.expected["expiry_ns"] == MARCH_EXPIRY == m.start_ns + 6 * 60 * NS
    assert r.expected["expiring"] == [("binance_usdm", "BTCUSDT_260327"),
                                      ("binance_coinm", "BTCUSD_260327")]
    assert r.expected["listed"] == [("binance_usdm", "BTCUSDT_260925"),
                                    ("binance_coinm", "BTCUSD_260925")]
    events = run(m, 600, chunk_s=60)
    listed = [(e.venue, e.symbol) for e in events
              if isinstance(e, Instrument) and e.ts_local == MARCH_EXPIRY]
    assert listed == r.expected["listed"]


def test_transport_faults_are_declared() -> None:
    m = MarketModel(BINANCE, seed=1, schedule="stale_feed@10m+90s,sequence_gap@30s,disconnect@1m,"
                    "malformed@2m")
    t0 = m.start_ns
    assert [(f.at_ns - t0, f.feed, f.kind, f.params) for f in m.faults()] == [
        (30 * NS, "binance_usdm", "drop_depth", {"symbol": "BTCUSDT", "count": 1}),
        (60 * NS, "binance_usdm", "close", {"code": 1000}),
        (80 * NS, "binance_usdm", "close", {"code": 1001}),
        (100 * NS, "binance_usdm", "close", {"code": 1008}),
        (120 * NS, "binance_usdm", "close", {"code": 1011}),
        (120 * NS, "binance_usdm", "malformed", {"kind": "truncated"}),
        (125 * NS, "binance_usdm", "malformed", {"kind": "nonjson"}),
        (130 * NS, "binance_usdm", "malformed", {"kind": "badprice"}),
        (135 * NS, "binance_usdm", "malformed", {"kind": "truncated"}),
        (140 * NS, "binance_usdm", "close", {"code": None}),
        (140 * NS, "binance_usdm", "malformed", {"kind": "nonjson"}),
        (145 * NS, "binance_usdm", "malformed", {"kind": "badprice"}),
        (600 * NS, "binance_usdm", "stall", {"seconds": 90.0}),
    ]
    runs = {r.name: r.expected for r in m.scenario_runs()}
    assert runs["disconnect"]["close_codes"] == [1000, 1001, 1008, 1011, "abrupt"]
    assert runs["malformed"]["count"] == 6
    assert runs["stale_feed"] == {"feed": "binance_usdm", "stale_s": 90.0, "expect": "stale",
                                  "carry_opportunity": False}


def test_schedule_parsing() -> None:
    s = Schedule.parse("calm_contango, fleeting_spike@300s ,stale_feed@10m+90s,thin_book@1.5h")
    assert [(x.name, x.at_s, x.duration_s) for x in s] == [
        ("calm_contango", 0.0, None), ("fleeting_spike", 300.0, 3.0),
        ("stale_feed", 600.0, 90.0), ("thin_book", 5400.0, 600.0)]
    with pytest.raises(SimError) as err:
        Schedule.parse("calm_contango,flash_crash@10s")
    msg = str(err.value)
    assert "\n" not in msg and "unknown scenario 'flash_crash'" in msg
    assert all(name in msg for name in SCENARIOS)
    with pytest.raises(SimError, match="bad scenario 'stale_feed@soon'"):
        Schedule.parse("stale_feed@soon")
    with pytest.raises(SimError, match="one expiry_roll"):
        Schedule.parse("expiry_roll,expiry_roll@1h")


def test_every_scenario_states_its_expectation() -> None:
    m = MarketModel(BINANCE, seed=1, schedule=",".join(SCENARIOS))
    runs = m.scenario_runs()
    assert [r.name for r in runs] == list(SCENARIOS)
    for r in runs:
        assert r.expected and not any(k.startswith("_") for k in r.expected)
        assert msgspec.json.encode(r)  # machine-readable
    events = run(m, 30.0, chunk_s=5.0)  # all of them at once, from the start
    assert len(events) > 10_000


# -- determinism ------------------------------------------------------------------------------


def test_same_seed_same_bytes_whatever_the_chunking() -> None:
    sched = "fleeting_spike@2s,crossed_book@4s,thin_book@6s+2s"
    a = MarketModel(BINANCE, seed=42, schedule=sched)
    b = MarketModel(BINANCE, seed=42, schedule=sched)
    end = a.now_ns + 10 * NS
    one = a.advance(end)
    many = run(b, 10.0, chunk_s=0.33)
    assert digest(one) == digest(many)
    assert digest([a.snapshot("binance_usdm", "BTCUSDT")]) == digest(
        [b.snapshot("binance_usdm", "BTCUSDT")])
    c = MarketModel(BINANCE, seed=43, schedule=sched)
    assert digest(c.advance(end)) != digest(one)


def test_time_is_a_parameter() -> None:
    m = MarketModel(BINANCE, seed=1, start_ns=utc_ns(2030, 5, 1, 12))
    assert m.advance(m.now_ns) != []  # the listings, nothing else
    assert m.advance(m.now_ns + NS // 20) == []  # less than a step: nothing yet
    events = m.advance(m.now_ns + 5 * NS)
    assert min(e.ts_exchange for e in events if hasattr(e, "ts_exchange")) > utc_ns(2030, 5, 1, 12)
    assert m.now_ns == utc_ns(2030, 5, 1, 12, 0, 5)
    assert {i.symbol for i in m.instruments()} >= {"BTCUSDT_300628", "BTCUSDT_300927"}
    assert math.isfinite(m.ticker("binance_usdm", "BTCUSDT").mark_price)
    # the step grid starts at the model's start: start + k steps is always reachable
    odd = MarketModel(BINANCE, seed=1, start_ns=utc_ns(2030, 5, 1) + 123_456_789)
    odd.advance(odd.start_ns + 5 * NS)
    assert odd.now_ns == odd.start_ns + 5 * NS
    assert BINANCE_SPOT.markets() == ("spot",)
    assert BINANCE_COINM.markets() == ("perpetual", "future")


def test_the_default_world_simulates_every_emulated_venue() -> None:
    """The demo's world: every market of every registered venue that has an emulator."""
    feeds = {v.feed for v in default_world().venues}
    assert feeds == {feed for v in EXCHANGES.values() if v.emulator for feed in v.markets}
    assert {"binance_usdm", "bybit_linear", "okx_swap"} <= feeds
