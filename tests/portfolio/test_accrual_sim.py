"""Against the simulated market: a short hedge's funding accrual over simulated days, read from
the store the way the portfolio reads it, equals the sum of the settled funding payments the
model produced."""

from __future__ import annotations

from pathlib import Path

import duckdb
import msgspec
import pytest
from simrun import world_of

from analyzer.events import DerivativeTicker, Instrument
from analyzer.portfolio.accrual import accrued
from analyzer.portfolio.market import Market
from analyzer.sim import MarketModel, Rates
from analyzer.sim.clock import DAY_NS, NS
from analyzer.store import Store

SPARSE = Rates(step_s=60.0, book_changes_per_s=0.005, updates_per_s=0.02, trades_per_s=0.005,
               ticker_interval_s=60.0, open_interest_interval_s=3600.0, levels=200)


def test_a_short_hedges_funding_equals_the_models_settlements(tmp_path: Path) -> None:
    world = world_of(rates=SPARSE)
    world = msgspec.structs.replace(world, assets=tuple(
        msgspec.structs.replace(a, levels_per_bp=1.0) for a in world.assets))
    model = MarketModel(world, seed=11)
    start = model.now_ns
    days = 3
    data = tmp_path / "data"
    with Store(data, data / "analyzer.duckdb") as store:
        for inst in model.instruments():
            store.add(inst)
        t = start
        while t < start + days * DAY_NS:
            t += 3600 * NS
            for e in model.advance(t):
                if isinstance(e, DerivativeTicker | Instrument):
                    store.add(e)
    insts = {(i.venue, i.symbol): i for i in model.instruments()}
    checked = 0
    with duckdb.connect(str(data / "analyzer.duckdb"), read_only=True) as con:
        market = Market.read(con, now=start + days * DAY_NS)
        for (venue, symbol), inst in insts.items():
            if inst.market != "perpetual":
                continue
            size = 2.0 if not inst.inverse else 1500.0  # 2 coins, or 1,500 contracts
            opened = start + 3600 * NS  # opened an hour in
            ours = accrued(market, venue, symbol, -1, size, inverse=inst.inverse,
                           contract_size=inst.contract_size, opened=opened)
            paid = [f for f in model.funding_history(venue, symbol) if f.ts > opened]
            assert len(paid) >= days * 3 - 1, (venue, symbol)
            # the same settlements, at the same rates
            assert ours["settle_ts"].to_list() == [f.ts for f in paid], (venue, symbol)
            assert ours["rate"].to_list() == pytest.approx([f.rate for f in paid], rel=1e-12)
            # what the short received: the model's rates on the position's value at each mark
            expected = sum(f.rate * v for f, v in zip(paid, ours["value_usd"], strict=True))
            assert ours["funding_usd"].sum() == pytest.approx(expected, rel=1e-12)
            if inst.inverse:
                assert ours["value_usd"].to_list() == [size * inst.contract_size] * len(paid)
            else:
                assert ours["value_usd"].min() > 0
            checked += 1
    assert checked >= 2
