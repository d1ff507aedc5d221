"""Binance decoding: real frames in, whole normalized events out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analyzer.events import (
    BookChange,
    DerivativeTicker,
    Liquidation,
    OpenInterest,
    Quote,
    Trade,
)
from analyzer.venues.base import DecodeError, UnknownStream
from analyzer.venues.binance import MARKETS, BinanceFeed, FuturesRules, SpotRules

SAMPLES = Path(__file__).parent / "fixtures" / "binance" / "samples"
ALL = ["depth", "trades", "bookTicker", "markPrice", "liquidations"]
LOCAL = 1_700_000_000_000_000_000


class Recorder:
    """A Sink that keeps everything it is given."""

    def __init__(self) -> None:
        self.events: list[object] = []
        self.trade_gaps: list[tuple[str, int, int]] = []
        self.duplicates = 0

    def on_trade(self, ev: Trade) -> None:
        self.events.append(ev)

    on_book = on_quote = on_ticker = on_liquidation = on_trade

    def on_trade_gap(self, symbol: str, first: int, last: int) -> None:
        self.trade_gaps.append((symbol, first, last))

    def on_duplicate(self) -> None:
        self.duplicates += 1


def sample(file: str, stream: str) -> bytes:
    for line in (SAMPLES / file).read_text().splitlines():
        msg = json.loads(line)
        if msg.get("stream") == stream and not msg.get("generated"):
            return json.dumps(msg, separators=(",", ":")).encode()
    raise KeyError(stream)


def decode_one(venue: str, symbols: list[str], frame: bytes, **kw: str) -> list[object]:
    rec = Recorder()
    feed = BinanceFeed(MARKETS[venue], symbols, ALL, rec, **kw)
    feed.decode(frame, LOCAL)
    return rec.events


def test_usdm_trade_side_and_kind() -> None:
    frame = sample("binance_futures.ndjson", "btcusdt@trade")
    [ev] = decode_one("binance_usdm", ["BTCUSDT"], frame)
    raw = json.loads(frame)["data"]
    assert ev == Trade(
        "binance_usdm", "BTCUSDT", raw["T"] * 1_000_000, LOCAL, str(raw["t"]), float(raw["p"]),
        float(raw["q"]), "sell" if raw["m"] else "buy", "trade",
    )


def test_insurance_fund_trade_is_marked() -> None:
    lines = (SAMPLES / "binance_futures.ndjson").read_text().splitlines()
    frames = [line for line in lines if '"X":"INSURANCE_FUND"' in line.replace(" ", "")]
    assert frames, "fixture has an insurance-fund trade"
    msg = json.loads(frames[0])
    symbol = msg["data"]["s"]
    [ev] = decode_one("binance_usdm", [symbol], json.dumps(msg).encode())
    assert ev.kind == "insurance_fund"


def test_aggtrade() -> None:
    raw = next(
        json.loads(line)["raw"]
        for line in (SAMPLES / "binance_raw_msgs.ndjson").read_text().splitlines()
        if '"source_module": "trade", "source_fn": "linear_swap"' in line
    )
    [ev] = decode_one("binance_usdm", ["BTCUSDT"], raw.encode(),
                      options={"trade_stream": "aggTrade"})
    d = json.loads(raw)["data"]
    assert ev == Trade("binance_usdm", "BTCUSDT", d["T"] * 1_000_000, LOCAL, str(d["a"]),
                       float(d["p"]), float(d["q"]), "sell" if d["m"] else "buy", "aggTrade")


def test_aggtrade_without_its_id_is_a_decode_error() -> None:
    # a 2019 frame without "a": no id means no idempotent storage, so it is not guessed
    frame = sample("binance_futures.ndjson", "btcusdt@aggTrade")
    feed = BinanceFeed(MARKETS["binance_usdm"], ["BTCUSDT"], ALL, Recorder(),
                       options={"trade_stream": "aggTrade"})
    with pytest.raises(DecodeError, match="`a`"):
        feed.decode(frame, LOCAL)


def test_usdm_depth_update_keeps_sequence_ids() -> None:
    frame = sample("binance_futures.ndjson", "btcusdt@depth@100ms")
    [ev] = decode_one("binance_usdm", ["BTCUSDT"], frame)
    raw = json.loads(frame)["data"]
    assert isinstance(ev, BookChange) and not ev.is_snapshot
    assert (ev.first_id, ev.last_id, ev.prev_id) == (raw["U"], raw["u"], raw["pu"])
    assert ev.bids == [(float(p), float(q)) for p, q in raw["b"]]
    assert ev.asks == [(float(p), float(q)) for p, q in raw["a"]]
    assert ev.ts_exchange == raw["E"] * 1_000_000


def test_spot_depth_has_no_prev_id() -> None:
    raw = next(
        json.loads(json.loads(line)["raw"])
        for line in (SAMPLES / "binance_raw_msgs.ndjson").read_text().splitlines()
        if '"source_module": "l2_event", "source_fn": "spot"' in line
    )
    [ev] = decode_one("binance_spot", ["BTCUSDT"], json.dumps(raw).encode())
    assert ev.prev_id == -1 and ev.first_id == raw["data"]["U"]


def test_book_ticker_spot_has_no_event_time() -> None:
    frame = (b'{"stream":"btcusdt@bookTicker","data":{"u":400900217,"s":"BTCUSDT",'
             b'"b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}}')
    [ev] = decode_one("binance_spot", ["BTCUSDT"], frame)
    assert ev == Quote("binance_spot", "BTCUSDT", 0, LOCAL, 25.3519, 31.21, 25.3652, 40.66,
                       400900217)


def test_mark_price_usdm_perpetual_and_quarterly() -> None:
    frame = sample("binance_futures.ndjson", "btcusdt@markPrice@1s")
    [ev] = decode_one("binance_usdm", ["BTCUSDT"], frame)
    assert ev == DerivativeTicker(
        "binance_usdm", "BTCUSDT", 1597536008000 * 1_000_000, LOCAL, mark_price=11857.56,
        index_price=11851.86949091, funding_rate=0.0001564,
        next_funding_time=1597564800000 * 1_000_000, funding_interval_hours=8.0,
    )
    frame = sample("binance_futures.ndjson", "btcbusd_210129@markPrice@1s")
    [ev] = decode_one("binance_usdm", ["BTCBUSD_210129"], frame)
    assert ev.next_funding_time is None and ev.funding_interval_hours is None


def test_coinm_mark_has_no_index_and_index_stream_is_per_pair() -> None:
    frame = sample("binance_delivery.ndjson", "btcusd_200925@markPrice@1s")
    [ev] = decode_one("binance_coinm", ["BTCUSD_200925"], frame)
    assert ev.index_price is None and ev.mark_price == 9501.15723333
    assert ev.funding_rate is None  # a quarterly has no funding
    frame = sample("binance_delivery.ndjson", "btcusd@indexPrice@1s")
    [ev] = decode_one("binance_coinm", ["BTCUSD_200925"], frame)
    assert ev == DerivativeTicker("binance_coinm", "BTCUSD", 1592265601001 * 1_000_000, LOCAL,
                                  index_price=9429.39675)


def test_force_order_is_a_liquidation() -> None:
    frame = sample("binance_futures.ndjson", "btcusdt@forceOrder")
    [ev] = decode_one("binance_usdm", ["BTCUSDT"], frame)
    assert ev == Liquidation("binance_usdm", "BTCUSDT", 1584059031421 * 1_000_000, LOCAL,
                             "buy", 4706.04, 0.014)


def test_funding_interval_from_funding_info() -> None:
    rec = Recorder()
    feed = BinanceFeed(MARKETS["binance_usdm"], ["BTCUSDT"], ALL, rec)
    hours = feed.decode_funding_info(b'[{"symbol":"BTCUSDT","adjustedFundingRateCap":"0.02",'
                                     b'"adjustedFundingRateFloor":"-0.02","fundingIntervalHours":4,'
                                     b'"disclaimer":false}]')
    feed.funding_hours.update(hours)
    feed.decode(sample("binance_futures.ndjson", "btcusdt@markPrice@1s"), LOCAL)
    assert rec.events[0].funding_interval_hours == 4.0


def test_rest_bodies() -> None:
    bodies = {
        json.loads(line)["source_fn"]: json.loads(line)["raw"].encode()
        for line in (SAMPLES / "binance_raw_msgs.ndjson").read_text().splitlines()
        if '"open_interest"' in line
    }
    feed = BinanceFeed(MARKETS["binance_coinm"], ["BTCUSD_PERP"], ALL, Recorder())
    oi = feed.decode_open_interest(bodies["inverse_swap"], LOCAL, None, None)
    assert oi == OpenInterest("binance_coinm", "BTCUSD_PERP", 1654336819740 * 1_000_000, LOCAL,
                              5827897.0, None)
    usdm = BinanceFeed(MARKETS["binance_usdm"], ["BTCUSDT"], ALL, Recorder())
    oi = usdm.decode_open_interest(bodies["linear_swap"], LOCAL, None, 30000.0)
    assert oi.open_interest == 84617.188 and oi.value_usd == pytest.approx(84617.188 * 30000)


def test_instruments_from_coinm_exchange_info() -> None:
    path = Path(__file__).parent / "fixtures" / "binance" / "coinm_2021" / "BINANCE_DELIVERY.0.txt"
    body = next(line for line in path.read_text().splitlines() if "exchangeInfo" in line)
    body = body.split(": ", 1)[1].encode()
    feed = BinanceFeed(MARKETS["binance_coinm"], ["BTCUSD_PERP"], ALL, Recorder())
    inst = feed.decode_instruments([body], LOCAL)
    perp, quarterly, eth = inst["BTCUSD_PERP"], inst["BTCUSD_211231"], inst["ETHUSD_210924"]
    assert (perp.market, perp.expiry, perp.inverse, perp.contract_size) == (
        "perpetual", None, True, 100.0)
    assert quarterly.market == "future" and eth.contract_size == 10.0
    # 2021-12-31 08:00 UTC
    assert quarterly.expiry == 1640937600000 * 1_000_000
    assert (quarterly.base, quarterly.quote, quarterly.tick_size) == ("BTC", "USD", 0.1)
    # a contract that is settling or delivered is not listed any more (the expiry roll)
    info = json.loads(body)
    settling = next(s for s in info["symbols"] if s["symbol"] == "BTCUSD_211231")
    settling["contractStatus"] = "SETTLING"
    left = feed.decode_instruments([json.dumps(info).encode()], LOCAL)
    assert left.keys() == inst.keys() - {"BTCUSD_211231"}


@pytest.mark.parametrize(
    "frame",
    [
        b'{"stream":"btcusdt@depth@0ms","data":{"E":1,"U":1,"u":2,"pu":0,"b":[["nan","1"]],"a":[]}}',
        b'{"stream":"btcusdt@depth@0ms","data":{"E":1,"U":1,"u":2,"pu":0,"b":[["1","-1"]],"a":[]}}',
        b'{"stream":"btcusdt@depth@0ms","data":{"E":1,"U":1,"u":2,"pu":0,"b":[["inf","1"]],"a":[]}}',
        b'{"stream":"btcusdt@depth@0ms","data":{"E":1,"U":1,"u":2,"pu":0,"b":[["x","1"]],"a":[]}}',
        b'{"stream":"btcusdt@depth@0ms","data":{"E":1,"U":1,"b":[],"a":[]}}',  # no u
        b'{"stream":"btcusdt@depth@0ms","data":{"E":1,"U":1,"u":2,"b":[["1"',  # truncated
        b"\x1f\x8b\x08garbage",
    ],
)
def test_bad_frames_are_decode_errors(frame: bytes) -> None:
    feed = BinanceFeed(MARKETS["binance_usdm"], ["BTCUSDT"], ALL, Recorder(),
                       options={"depth_speed": "0ms"})
    with pytest.raises(DecodeError):
        feed.decode(frame, LOCAL)


def test_zero_size_is_a_removal_not_an_error() -> None:
    frame = b'{"stream":"btcusdt@depth@0ms","data":{"E":1,"U":1,"u":2,"pu":0,' \
            b'"b":[["100.5","0.000"]],"a":[]}}'
    [ev] = decode_one("binance_usdm", ["BTCUSDT"], frame, options={"depth_speed": "0ms"})
    assert ev.bids == [(100.5, 0.0)]


def test_unknown_symbol_and_new_fields() -> None:
    feed = BinanceFeed(MARKETS["binance_usdm"], ["BTCUSDT"], ALL, Recorder())
    with pytest.raises(UnknownStream):
        feed.decode(sample("binance_futures.ndjson", "ethusdt@trade"), LOCAL)
    frame = b'{"stream":"btcusdt@aggTrade","data":{"a":5,"p":"1","q":"2","T":3,"m":true,' \
            b'"brandNew":{"x":[1,2]}}}'
    rec = Recorder()
    BinanceFeed(MARKETS["binance_usdm"], ["BTCUSDT"], ALL, rec,
                options={"trade_stream": "aggTrade"}).decode(frame, LOCAL)
    assert rec.events[0].trade_id == "5"


def test_control_replies_are_not_errors() -> None:
    feed = BinanceFeed(MARKETS["binance_coinm"], ["BTCUSD_PERP"], ALL, Recorder())
    assert feed.decode(b'{"result":null,"id":1000}', LOCAL) is None
    with pytest.raises(DecodeError):
        feed.decode(b'{"code":-1121,"msg":"Invalid symbol."}', LOCAL)


def test_trade_id_jump_is_reported_and_duplicates_dropped() -> None:
    rec = Recorder()
    feed = BinanceFeed(MARKETS["binance_usdm"], ["BTCUSDT"], ALL, rec)

    def trade(i: int) -> bytes:
        return (b'{"stream":"btcusdt@trade","data":{"t":%d,"p":"1","q":"1","T":1,"m":false}}' % i)

    for i in (10, 11, 15, 15, 12, 16):
        feed.decode(trade(i), LOCAL)
    assert [e.trade_id for e in rec.events] == ["10", "11", "15", "16"]
    assert rec.trade_gaps == [("BTCUSDT", 12, 14)]
    assert rec.duplicates == 2


def _change(first: int, last: int, prev: int = -1) -> BookChange:
    return BookChange("v", "S", 0, 0, False, [], [], first, last, prev)


def test_sequence_rules() -> None:
    fut, spot = FuturesRules(), SpotRules()
    assert fut.is_stale(100, _change(90, 99)) and not fut.is_stale(100, _change(90, 100))
    assert fut.bridges(100, _change(95, 105)) and fut.bridges(100, _change(100, 100))
    assert not fut.bridges(100, _change(101, 105))
    assert fut.follows(105, _change(110, 120, 105)) and not fut.follows(105, _change(106, 120, 104))
    assert spot.is_stale(100, _change(90, 100)) and not spot.is_stale(100, _change(90, 101))
    assert spot.bridges(100, _change(101, 110)) and spot.bridges(100, _change(95, 101))
    assert not spot.bridges(100, _change(102, 110))
    assert spot.follows(110, _change(111, 120)) and not spot.follows(110, _change(112, 120))


def test_usdm_streams_take_the_public_and_market_paths_the_others_one() -> None:
    """USDⓈ-M since 2026-04-23 (its root paths connect and send nothing): books and best
    bid/ask on /public, trades, marks and liquidations on /market. Spot and COIN-M keep the
    root /stream."""
    usdm = BinanceFeed(MARKETS["binance_usdm"], ["BTCUSDT", "ETHUSDT"], ALL, Recorder())
    assert usdm.ws_routes("wss://fstream.binance.com/", usdm.streams) == {
        "wss://fstream.binance.com/public/stream": [
            "btcusdt@depth@100ms", "btcusdt@bookTicker", "ethusdt@depth@100ms",
            "ethusdt@bookTicker"],
        "wss://fstream.binance.com/market/stream": [
            "btcusdt@trade", "btcusdt@markPrice@1s", "btcusdt@forceOrder", "ethusdt@trade",
            "ethusdt@markPrice@1s", "ethusdt@forceOrder"],
    }
    for feed_id, url in (("binance_spot", "wss://stream.binance.com:9443"),
                         ("binance_coinm", "wss://dstream.binance.com")):
        feed = BinanceFeed(MARKETS[feed_id], ["BTCUSDT" if "spot" in feed_id else "BTCUSD_PERP"],
                           ALL if "coinm" in feed_id else ALL[:3], Recorder())
        assert feed.ws_routes(url, feed.streams) == {f"{url}/stream": feed.streams}
