"""The portfolio file: what the investor holds, validated with msgspec.

Its tables (a full example: ``examples/portfolio.toml``)::

    profile = "balanced_protector"   # an allocation profile (profiles.py)
    [[spot]]        asset, amount, venue (a spot feed id; optional: a wallet)
    [[futures]]     venue (a derivatives feed id), symbol, side (long | short), size (coins for
                    linear contracts, contracts for inverse ones), entry, leverage,
                    margin_mode (isolated | cross), margin (isolated: quote units for linear,
                    coins for inverse; default the entry notional / leverage), opened
                    (ISO 8601, optional: the funding received or paid since is shown)
    [[collateral]]  venue, asset, amount: what the cross-margin positions of a venue share
    [profiles.<name>]         spot_share, net_futures ([low, high]), hedge_up, hedge_down
    [margin.<feed>.<BASE>]    basis (mark | entry), tiers = [[cap USD, mmr, max leverage], ...]:
                              an account's own tiers instead of the venue's defaults

A wrong value is one line naming its key (``portfolio error at futures[0].side: ...``).
"""

from __future__ import annotations

import tomllib
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from analyzer.portfolio.errors import PortfolioError

Positive = Annotated[float, msgspec.Meta(gt=0)]
Asset = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9]{1,20}$")]
Range = Annotated[list[float], msgspec.Meta(min_length=2, max_length=2)]


class Holding(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    asset: Asset
    amount: Annotated[float, msgspec.Meta(ge=0)]
    venue: str | None = None  # where it is held (a spot feed id), or a wallet


class Position(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    venue: str  # a derivatives feed id
    symbol: str
    side: Literal["long", "short"]
    size: Positive  # coins (linear) or contracts (inverse)
    entry: Positive
    leverage: Positive = 1.0
    margin_mode: Literal["isolated", "cross"] = "isolated"
    margin: Positive | None = None  # isolated: quote units (linear) or coins (inverse)
    opened: datetime | None = None  # when: the funding accrued since is shown (ISO 8601)

    @property
    def sign(self) -> int:
        return 1 if self.side == "long" else -1


class Collateral(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    venue: str
    asset: Asset
    amount: Annotated[float, msgspec.Meta(ge=0)]


class ProfileRanges(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    spot_share: Range | None = None
    net_futures: Range | None = None
    hedge_up: Annotated[float, msgspec.Meta(ge=-3, le=1)] | None = None
    hedge_down: Annotated[float, msgspec.Meta(ge=-3, le=1)] | None = None


class TierTable(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    tiers: Annotated[list[Annotated[list[float], msgspec.Meta(min_length=3, max_length=3)]],
                     msgspec.Meta(min_length=1)]
    basis: Literal["mark", "entry"] = "mark"


class Portfolio(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    profile: str = "balanced_protector"
    spot: list[Holding] = msgspec.field(default_factory=list)
    futures: list[Position] = msgspec.field(default_factory=list)
    collateral: list[Collateral] = msgspec.field(default_factory=list)
    profiles: dict[str, ProfileRanges] = msgspec.field(default_factory=dict)
    margin: dict[str, dict[str, TierTable]] = msgspec.field(default_factory=dict)


STABLES = frozenset({"USD", "USDT", "USDC", "FDUSD", "BUSD", "DAI", "TUSD", "USDE"})


def parse(data: dict) -> Portfolio:
    try:
        pf = msgspec.convert(data, Portfolio)
    except msgspec.ValidationError as exc:
        msg = str(exc)
        text, _, where = msg.partition(" - at ")
        key = where.strip("`").removeprefix("$").lstrip(".") or "top level"
        raise PortfolioError(f"portfolio error at {key}: {text}") from None
    for i, p in enumerate(pf.futures):
        # (isolated without a margin: the entry notional / leverage, valuation.py)
        if p.margin_mode == "cross" and p.margin is not None:
            raise PortfolioError(f"portfolio error at futures[{i}].margin: a cross-margin "
                                 "position draws on its venue's [[collateral]], not a margin")
    return pf


def load(path: str | Path) -> Portfolio:
    p = Path(path)
    try:
        text = p.read_bytes()
    except OSError as exc:
        raise PortfolioError(f"cannot read portfolio {p}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PortfolioError(f"portfolio {p} is not valid TOML: {exc}") from None
    return parse(data)


__all__ = ["STABLES", "Collateral", "Holding", "Portfolio", "Position", "ProfileRanges",
           "TierTable", "load", "parse"]
