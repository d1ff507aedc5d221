"""MEXC contract REST: paths, weights, and the bodies (listing, book snapshots, depth commits,
recent deals, funding).

Docs: https://mexcdevelop.github.io/apidocs/contract_v1_en/ ("Market endpoints")

Every answer is ``{"success": true, "code": 0, "data": ...}`` (an error: ``success`` false, a
``code`` and a ``message``). Asked for: the listing (``contract/detail``: contract size,
tick, state), each book's snapshot (``contract/depth/<sym>?limit=``, with its ``version``), the
latest depth commits to mend a gap (``contract/depth_commits/<sym>/<limit>``), recent deals after
a reconnect (``contract/deals/<sym>``, at most 100, no ids: see ``deal_ids``), and funding
(``contract/funding_rate``: every contract's rate, ``collectCycle`` in hours and
``nextSettleTime``; per symbol for the ``premium`` poll).
"""

from __future__ import annotations

import msgspec

from analyzer.events import BookChange, DerivativeTicker, Instrument, Trade
from analyzer.venues.base import DecodeError, VenueError
from analyzer.venues.bounds import MS
from analyzer.venues.mexc.schemas import (
    COMMITS_DECODER,
    CONTRACTS_DECODER,
    DEALS_DECODER,
    DEPTH_BODY_DECODER,
    FUNDING_DECODER_REST,
    FUNDING_LIST_DECODER,
    Deal,
    FundingInfo,
    Level,
)

PREFIX = "/api/v1/contract"
INSTRUMENTS_PATH = f"{PREFIX}/detail"
FUNDING_PATH = f"{PREFIX}/funding_rate"
DEALS_LIMIT = 100  # "maximum is 100, default 100" (docs "Get contract transaction data")
COMMITS_LIMIT = 1000  # the docs' own recipe asks for the latest 1000
# Every market endpoint is "20 times / 2 seconds"; the listing "1 times / 5 seconds" (ten times
# dearer against our budget, as a weight).
REST_WEIGHTS = {"instruments": 10, "depth": 1, "trades": 1, "funding_info": 1, "premium": 1,
                "gap_fill": 1, "open_interest": 1}
HOUR_MS = 3_600_000


def _check(body: object, what: str, channel: str) -> None:
    if not body.success:  # type: ignore[attr-defined]
        raise VenueError(f"{what}: {body.code} {body.message}", channel)  # type: ignore[attr-defined]


def decode_instruments(bodies: list[bytes], venue: str, ts_local: int) -> dict[str, Instrument]:
    """The enabled linear perpetuals (settled in their quote coin, ``BTC_USDT``, ``BTC_USDC``):
    sizes in base units (``contract_value`` = ``contractSize``), ``lot_size`` one ``volUnit``
    of contracts in base units. Coin-margined contracts (``BTC_USD``, settled in BTC) and any
    not enabled (``state`` != 0: delivering, delivered, offline, paused) are left out."""
    out: dict[str, Instrument] = {}
    for body in bodies:
        try:
            page = CONTRACTS_DECODER.decode(body)
        except (msgspec.DecodeError, ValueError) as exc:
            raise DecodeError(f"contract/detail: {exc}") from None
        _check(page, "contract/detail", "other")
        for c in page.data:
            if c.state != 0 or c.futureType != 1 or c.settleCoin != c.quoteCoin:
                continue
            out[c.symbol] = Instrument(
                venue, c.symbol, "mexc", "perpetual", c.baseCoin, c.quoteCoin, False, 1.0,
                c.priceUnit, c.volUnit * c.contractSize, None, ts_local,
                contract_value=c.contractSize,
            )
    return out


def levels(raw: list[Level], factor: tuple[float, float]) -> list[tuple[float, float]]:
    """``[price, contracts, count]`` as ``(price, base units)`` (``factor``: ``decode.scale``)."""
    m, k = factor
    return [(lv.p, lv.v * m / k) for lv in raw]


def decode_snapshot(body: bytes, venue: str, symbol: str, ts_local: int, factor: tuple[float, float]
                    ) -> BookChange:
    try:
        page = DEPTH_BODY_DECODER.decode(body)
    except (msgspec.DecodeError, ValueError) as exc:
        raise DecodeError(f"depth snapshot {symbol}: {exc}", "depth") from None
    _check(page, f"depth snapshot {symbol}", "depth")
    d = page.data
    if d is None:
        raise DecodeError(f"depth snapshot {symbol}: no data", "depth")
    v = d.version
    return BookChange(venue, symbol, d.timestamp * MS, ts_local, True, levels(d.bids, factor),
                      levels(d.asks, factor), v, v)


def decode_commits(body: bytes, venue: str, symbol: str, ts_local: int, factor: tuple[float, float]
                   ) -> list[BookChange]:
    """The depth commits, oldest first (the body's order is not documented: sorted by version),
    each one version: first and last id the version, prev id the version before. Commits carry
    no time: ``ts_exchange`` is the local receipt time."""
    try:
        page = COMMITS_DECODER.decode(body)
    except (msgspec.DecodeError, ValueError) as exc:
        raise DecodeError(f"depth commits {symbol}: {exc}", "depth") from None
    _check(page, f"depth commits {symbol}", "depth")
    return [BookChange(venue, symbol, ts_local, ts_local, False, levels(c.bids, factor),
                       levels(c.asks, factor), c.version, c.version, c.version - 1)
            for c in sorted(page.data, key=lambda c: c.version)]


def deal_ids(deals: list[Deal]) -> list[str]:
    """Ids for deals, which MEXC sends none of: time, side, price and contracts
    (``<t>-<T>-<p>-<v>``), and ``#k`` for the k-th repeat of the same in one frame or body. The
    stream's copy and the REST copy of a deal get the same id, so storage (idempotent on the
    id) keeps each once; two deals alike in all four within one millisecond but sent in two
    frames are taken for one (no field tells them apart)."""
    seen: dict[str, int] = {}
    out = []
    for d in deals:
        key = f"{d.t}-{d.T}-{d.p!r}-{d.v!r}"
        n = seen.get(key, 0)
        seen[key] = n + 1
        out.append(key if n == 0 else f"{key}#{n}")
    return out


def decode_trades(body: bytes, venue: str, symbol: str, ts_local: int, factor: tuple[float, float]
                  ) -> list[Trade]:
    """Recent deals (newest first in the body) as the Trades the stream makes, oldest first."""
    try:
        page = DEALS_DECODER.decode(body)
    except (msgspec.DecodeError, ValueError) as exc:
        raise DecodeError(f"deals {symbol}: {exc}", "trades") from None
    _check(page, f"deals {symbol}", "trades")
    deals = sorted(page.data, key=lambda d: d.t)  # stable: ties keep the body's order
    m, k = factor
    return [Trade(venue, symbol, d.t * MS, ts_local, tid, d.p, d.v * m / k,
                  "buy" if d.T == 1 else "sell")
            for d, tid in zip(deals, deal_ids(deals), strict=True)]


def decode_funding_list(body: bytes) -> list[FundingInfo]:
    try:
        page = FUNDING_LIST_DECODER.decode(body)
    except (msgspec.DecodeError, ValueError) as exc:
        raise DecodeError(f"funding_rate: {exc}", "markPrice") from None
    _check(page, "funding_rate", "markPrice")
    return page.data


def decode_funding(body: bytes, symbol: str) -> FundingInfo:
    try:
        page = FUNDING_DECODER_REST.decode(body)
    except (msgspec.DecodeError, ValueError) as exc:
        raise DecodeError(f"funding_rate {symbol}: {exc}", "markPrice") from None
    _check(page, f"funding_rate {symbol}", "markPrice")
    if page.data is None or page.data.symbol != symbol:
        raise DecodeError(f"funding_rate {symbol}: not this symbol's", "markPrice")
    return page.data


def funding_ticker(f: FundingInfo, venue: str, ts_local: int, mark: float | None,
                   index: float | None) -> DerivativeTicker:
    return DerivativeTicker(venue, f.symbol, (f.timestamp or ts_local // MS) * MS, ts_local,
                            mark, index, f.fundingRate, f.nextSettleTime * MS,
                            float(f.collectCycle))
