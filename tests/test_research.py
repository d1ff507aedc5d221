"""docs/research.md, run: every question's SQL and Polars answers, taken from the page itself (so
that it cannot rot), against one simulated market collected end to end. The two answers of each
question must be equal, and their values what the simulated market was made to produce; and
tools/research_plots.py must draw the page's pictures from the same data."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from simrun import Run, run_sim

from analyzer.sim import Schedule
from analyzer.sim.scenarios import CalmContango, FundingNegative, SteepContango
from analyzer.sim.spec import FundingSpec

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "research.md"
DB_IN_DOC = '"data/analyzer.duckdb"'

# 15 market minutes at 40x (~25 s): BTC's contango steepens from minute 1 to 8.5 and its
# perpetuals' funding turns negative (premium -0.1 %: about -55 % a year) while ETH stays calm
MARKET_S = 900.0
STEEP = SteepContango(at_s=60, duration_s=450)
CALM = CalmContango()
FUNDING = FundingNegative(at_s=0, duration_s=MARKET_S, premium=-0.001)
# the demo's carry economics (5 % financing, so the calm 9.5 % basis is no opportunity), with
# a persistence window that fits the run (collector clock)
CARRY = {"candidates_seconds": 0.5, "close_grace_seconds": 5, "gates": {
    "financing_rate": 0.05, "min_net_ann": 0.05, "entry_ann": 0.05, "exit_ann": 0.03,
    "persistence_window_s": 3}}
NOTIONALS = {10_000.0, 100_000.0, 1_000_000.0}  # [analytics] notionals_usd, by default
CALM_FUNDING_ANN = FundingSpec().interest_8h * 3 * 365  # funding at the interest rate: 10.95 %


@dataclass
class Answer:
    question: int
    sql: str
    python: str


def page() -> tuple[str, list[Answer]]:
    """The setup block and every (SQL, Python) pair of docs/research.md, in page order."""
    setup, answers = None, []
    for section in re.split(r"^## ", DOC.read_text(), flags=re.MULTILINE)[1:]:
        title = section.splitlines()[0]
        blocks = re.findall(r"^```(\w+)\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL)
        if title == "Setup":
            setup = next(code for lang, code in blocks if lang == "python")
            continue
        m = re.match(r"(\d+)\. ", title)
        if not m:
            continue
        code = [(lang, text) for lang, text in blocks if lang in ("sql", "python")]
        assert [lang for lang, _ in code] == ["sql", "python"] * (len(code) // 2), title
        answers += [Answer(int(m[1]), sql, py) for (_, sql), (_, py) in zip(code[::2], code[1::2],
                                                                             strict=True)]
    assert setup is not None and setup.count(DB_IN_DOC) == 1
    return setup, answers


SETUP, ANSWERS = page()


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_sim(tmp_path_factory.mktemp("research"), Schedule([CALM, STEEP, FUNDING]),
                   seconds=MARKET_S, speed=40, analytics={"interval_seconds": 0.5},
                   carry=CARRY)


@pytest.fixture(scope="module")
def namespace(market: Run) -> Iterator[dict[str, Any]]:
    """The page's setup, run on the test's database."""
    ns: dict[str, Any] = {}
    exec(SETUP.replace(DB_IN_DOC, repr(str(market.db))), ns)
    yield ns
    ns["con"].close()


@pytest.fixture(scope="module")
def results(namespace: dict[str, Any]) -> list[tuple[pl.DataFrame, pl.DataFrame]]:
    """Each answer of the page, as (SQL result, Polars result)."""
    out = []
    for a in ANSWERS:
        ns = dict(namespace)
        exec(a.python, ns)
        out.append((namespace["con"].sql(a.sql).pl(), ns["answer"]))
    return out


def answers_to(question: int, results: list[tuple[pl.DataFrame, pl.DataFrame]]
               ) -> list[pl.DataFrame]:
    return [sql for a, (sql, _) in zip(ANSWERS, results, strict=True) if a.question == question]


def test_the_page_answers_every_question_in_sql_and_polars() -> None:
    assert sorted({a.question for a in ANSWERS}) == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("i", range(len(ANSWERS)),
                         ids=[f"q{a.question}-{n}" for n, a in enumerate(ANSWERS)])
def test_sql_and_polars_give_the_same_answer(
        i: int, results: list[tuple[pl.DataFrame, pl.DataFrame]]) -> None:
    sql, polars = results[i]
    assert sql.height > 0, "no rows: the question has no answer on the simulated market"
    # same columns in the same order, same rows in the same order, values to float rounding
    # (NaN equals NaN: a correlation of a flat series is NaN in both)
    assert_frame_equal(sql, polars, check_dtypes=False, rel_tol=1e-9, abs_tol=1e-12)


def test_basis_term_structure(results: list[tuple[pl.DataFrame, pl.DataFrame]]) -> None:
    tenors, curve = answers_to(1, results)
    assert {"q1", "q2"} <= set(tenors["tenor"]) and tenors["venue"].n_unique() >= 2
    assert (tenors["samples"] > 0).all() and (tenors["dte_days"] > 0).all()
    assert (tenors["basis_ann_min"] <= tenors["basis_ann"]).all()
    assert (tenors["basis_ann"] <= tenors["basis_ann_max"]).all()
    # units: fractions a year, not % and not per contract life
    assert tenors["basis_ann_min"].min() > -1 and tenors["basis_ann_max"].max() < 1
    eth, btc = (tenors.filter(pl.col("base") == b) for b in ("ETH", "BTC"))
    lo, hi = CALM.expected_range
    assert eth["basis_ann_min"].min() > lo and eth["basis_ann_max"].max() < hi
    assert btc["basis_ann_max"].max() > STEEP.level - 2 * STEEP.band  # the steep contango
    # the nearest quarterly is nearer than the next, every minute
    by_tenor = tenors.group_by("venue", "base", "minute").agg(
        pl.col("dte_days").filter(pl.col("tenor") == "q1").max().alias("q1"),
        pl.col("dte_days").filter(pl.col("tenor") == "q2").min().alias("q2"),
    ).drop_nulls()
    assert by_tenor.height and (by_tenor["q1"] < by_tenor["q2"]).all()

    # a constant-maturity point lies between the quarterlies it is interpolated from
    assert set(curve["days"]) <= {30, 90} and curve.height
    bounds = tenors.group_by("venue", "base", "minute").agg(
        pl.col("basis_ann_min").min().alias("lo"), pl.col("basis_ann_max").max().alias("hi"))
    inside = curve.join(bounds, on=["venue", "base", "minute"])
    assert inside.height == curve.height
    assert ((inside["lo"] <= inside["basis_ann"]) & (inside["basis_ann"] <= inside["hi"])).all()


def test_funding_against_basis(results: list[tuple[pl.DataFrame, pl.DataFrame]]) -> None:
    (pairs,) = answers_to(2, results)
    assert set(pairs["base"]) == {"BTC", "ETH"} and (pairs["samples"] > 0).all()
    assert set(pairs["quote"]) >= {"USD", "USDT"}  # coin-margined and stablecoin-margined alike
    assert pairs["funding_ann"].abs().max() < 1 and pairs["basis_ann"].abs().max() < 1
    eth, btc = (pairs.filter(pl.col("base") == b) for b in ("ETH", "BTC"))
    # ETH's funding never left the interest rate: annualised by each contract's interval, it is
    # the same 10.95 % everywhere, and flat (no correlation to speak of)
    assert eth["funding_ann"].to_list() == pytest.approx([CALM_FUNDING_ANN] * eth.height)
    assert (eth["funding_ann_sd"] < 1e-9).all()
    # BTC's turned negative while its basis moved: a correlation, within [-1, 1]
    assert (btc["funding_ann"] < 0).all() and (btc["funding_ann_sd"] > 0.01).all()
    assert btc["correlation"].is_not_nan().all() and (btc["correlation"].abs() <= 1).all()
    assert (btc["basis_over_funding"] > 0).all()  # a positive basis, a negative funding


def test_slippage_grows_with_notional(results: list[tuple[pl.DataFrame, pl.DataFrame]]) -> None:
    (slip,) = answers_to(3, results)
    assert set(slip["side"]) == {"buy", "sell"} and set(slip["notional_usd"]) == NOTIONALS
    assert slip["venue"].n_unique() >= 3 and (slip["samples"] > 0).all()
    assert (slip["unfilled"] >= 0).all()
    assert slip["bps_median"].min() > 0 and (slip["bps_p90"] >= slip["bps_median"]).all()
    # bps, not fractions or percent: a 10k order moves a simulated book by a fraction of a bp
    assert slip.filter(pl.col("notional_usd") == 10_000)["bps_median"].max() < 5
    growth = slip.sort("notional_usd").group_by("venue", "symbol", "side").agg(
        pl.col("bps_median").diff().drop_nulls().min().alias("median"),
        pl.col("bps_mean").diff().drop_nulls().min().alias("mean"),
    )
    assert (growth["median"] > 0).all() and (growth["mean"] > 0).all(), growth


def test_open_interest_around_liquidations(results: list[tuple[pl.DataFrame, pl.DataFrame]],
                                           market: Run) -> None:
    (events,) = answers_to(4, results)
    liquidations = market.sql("SELECT count(*) FROM liquidations")[0][0]
    assert 3 <= events.height <= liquidations
    assert set(events["side"]) <= {"buy", "sell"}
    for c in ("oi_before", "oi_at", "oi_after"):
        assert (events[c] > 0).all(), c
    # relative changes over minutes: the simulated open interest drifts by a fraction of a %
    for c in ("change_before", "change_after"):
        assert events[c].abs().max() < 0.05, c
    # every event has a window on both sides within the stored open interest (venue time)
    first, last = market.sql("SELECT min(time_exchange), max(time_exchange) "
                             "FROM open_interest")[0]
    assert events["time"].min() > first and events["time"].max() < last


def test_how_long_opportunities_last(results: list[tuple[pl.DataFrame, pl.DataFrame]],
                                     market: Run) -> None:
    (durations,) = answers_to(5, results)
    assert set(durations["base"]) == {"BTC"}  # the steep contango's asset alone
    assert set(durations["tenor"]) <= {"q1", "q2"}
    assert (durations["closed"] >= 1).all()
    assert (durations["cut_short"] <= durations["closed"]).all()
    (run_s,) = market.sql("SELECT (max(ts) - min(ts)) / 1e9 FROM basis")[0]
    assert (durations["min_s"] > 0).all() and (durations["max_s"] < run_s).all()
    assert (durations["min_s"] <= durations["median_s"]).all()
    assert (durations["median_s"] <= durations["p90_s"]).all()
    assert (durations["p90_s"] <= durations["max_s"]).all()
    assert durations["avg_net_ann"].min() > 0 and durations["avg_net_ann"].max() < 1


def load_plots() -> Any:
    spec = importlib.util.spec_from_file_location("research_plots",
                                                  ROOT / "tools" / "research_plots.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_script_draws_every_picture(market: Run, tmp_path: Path) -> None:
    import matplotlib.image

    drawn = load_plots().render(market.db.parent, tmp_path)
    assert len(drawn) == 5
    for path, had_data in drawn.items():
        assert had_data, f"{path.name}: no data"
        assert 8_000 < path.stat().st_size < 200_000, path.name
        pixels = matplotlib.image.imread(path)
        assert pixels.std() > 0.05, f"{path.name} is blank"


def test_the_page_shows_the_pictures_the_script_draws() -> None:
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", DOC.read_text())
    assert sorted(linked) == sorted(load_plots().PLOTS)
    for name in linked:
        assert (DOC.parent / name).stat().st_size < 200_000, name  # and it is there
