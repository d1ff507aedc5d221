"""The local exchange, over real loopback sockets: websocket streams, REST, replay, faults.

Every test runs a LocalExchange in-process and talks to it as a collector would: websockets
clients, raw HTTP/1.1 requests, and a raw TCP websocket client where the test needs to see
frames a library hides (pings) or to misbehave (never pong).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import os
import struct
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from analyzer.exchange import (
    ExchangeError,
    Faults,
    LocalExchange,
    Recording,
    Replay,
    add_arguments,
    build_exchange,
)
from analyzer.exchange.recordings import FRAME
from analyzer.venues.binance.emulate.info import contract_type, delivery_ms

FIX = Path(__file__).parent / "fixtures" / "binance"
USDM24 = FIX / "usdm_2024"
SPOT24 = FIX / "spot_2024"
USDM23 = FIX / "usdm_2023"
COINM21 = FIX / "coinm_2021"

DEPTH = "btcusdt@depth@0ms"
TRADE = "btcusdt@trade"
BOOK = "btcusdt@bookTicker"


def connect(url: str) -> ws_connect:
    # An unbounded client queue: a test that stops reading must still see the close frame
    # (a full queue stops the client reading the socket, so its close() would time out).
    return ws_connect(url, max_queue=None)


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


@asynccontextmanager
async def exchange(*replays: Replay, **kwargs: Any) -> AsyncIterator[LocalExchange]:
    ex = LocalExchange(**kwargs)
    for replay in replays:
        ex.add_replay(replay)
    await ex.start()
    try:
        yield ex
    finally:
        await ex.stop()


async def http_get(url: str) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 GET on its own connection: (status, headers lower-cased, body)."""
    assert url.startswith("http://")
    hostport, _, path = url[7:].partition("/")
    host, _, port = hostport.partition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\r\n".encode())
    raw = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return status, headers, body


async def get_json(url: str) -> Any:
    status, _, body = await http_get(url)
    assert status == 200, body
    return json.loads(body)


def recorded(path: Path, streams: set[str] | None = None) -> list[bytes]:
    """The frames of a recording (only those streams), as recorded."""
    rec = Recording.open(path)
    wanted = {s.encode() for s in streams} if streams else None
    return [
        p for _, kind, key, p in rec.events() if kind == FRAME and (wanted is None or key in wanted)
    ]


class ClientBook:
    """A collector's book sync, written from the Binance docs, independent of the exchange."""

    def __init__(self, spot: bool) -> None:
        self.spot = spot
        self.buffer: list[dict[str, Any]] = []
        self.bids: dict[float, str] = {}
        self.asks: dict[float, str] = {}
        self.last_u: int | None = None
        self.gaps: list[int] = []  # index (among received diffs) of each chain break
        self.received = 0
        self.snapshot_range: tuple[float, float] | None = None

    def on_diff(self, d: dict[str, Any]) -> None:
        self.received += 1
        if self.last_u is None:
            self.buffer.append(d)
        else:
            self._apply(d)

    def on_snapshot(self, snap: dict[str, Any]) -> None:
        big = snap["lastUpdateId"]
        self.bids = {float(p): q for p, q in snap["bids"]}
        self.asks = {float(p): q for p, q in snap["asks"]}
        self.snapshot_range = (min(self.bids), max(self.asks))
        self.last_u = big
        self._first = True
        buffered, self.buffer = self.buffer, []
        for d in buffered:
            self._apply(d)

    def _apply(self, d: dict[str, Any]) -> None:
        last = self.last_u
        assert last is not None
        if self._first and (d["u"] <= last if self.spot else d["u"] < last):
            return  # older than the snapshot: dropped, not a gap (futures keep u == L)
        if self._first:
            ok = d["U"] <= last + 1 <= d["u"] if self.spot else d["U"] <= last <= d["u"]
            self._first = False
        else:
            ok = d["U"] == last + 1 if self.spot else d["pu"] == last
        if not ok:
            self.gaps.append(self.received - 1)
        for side, levels in ((self.bids, d["b"]), (self.asks, d["a"])):
            for p, q in levels:
                if float(q) == 0:
                    side.pop(float(p), None)
                else:
                    side[float(p)] = q
        self.last_u = d["u"]

    def region(self, bids: dict[float, str], asks: dict[float, str]) -> tuple[dict, dict]:
        """Levels inside the price range of the snapshot (deeper ones the client can't know)."""
        assert self.snapshot_range is not None
        low, high = self.snapshot_range
        return {p: q for p, q in bids.items() if p >= low}, {
            p: q for p, q in asks.items() if p <= high
        }


def assert_same_book(client: ClientBook, body: dict[str, Any]) -> None:
    assert body["lastUpdateId"] == client.last_u
    ex_bids = {float(p): q for p, q in body["bids"]}
    ex_asks = {float(p): q for p, q in body["asks"]}
    mine = client.region(client.bids, client.asks)
    theirs = client.region(ex_bids, ex_asks)
    assert mine[0] == theirs[0]
    assert mine[1] == theirs[1]
    assert len(mine[0]) > 100 and len(mine[1]) > 100


async def read_diffs(ws: ClientConnection, book: ClientBook, stop: Callable[[], bool]) -> None:
    while not stop():
        frame = json.loads(await ws.recv())
        if "@depth" in frame.get("stream", ""):
            book.on_diff(frame["data"])


async def sync_during_replay(path: Path, feed: str, spot: bool, fetch_after: int) -> None:
    """Buffer diffs, fetch the snapshot mid-replay, sync, and end with the exchange's book."""
    depth_stream = DEPTH if not spot else "btcusdt@depth@100ms"
    total = len(recorded(path, {depth_stream}))
    prefix = "/api/v3" if spot else "/fapi/v1"
    async with exchange(Replay.from_path(path, speed=0)) as ex:
        book = ClientBook(spot)
        url = f"{ex.ws_url(feed)}/stream?streams={depth_stream}/btcusdt@trade"
        async with connect(url) as ws:
            await read_diffs(ws, book, lambda: book.received >= fetch_after)
            # Keep reading while the snapshot is fetched, as a collector must.
            reader = asyncio.create_task(read_diffs(ws, book, lambda: book.received >= total))
            snap = await get_json(f"{ex.base_url(feed)}{prefix}/depth?symbol=BTCUSDT&limit=1000")
            assert book.received < total, "the snapshot must be taken mid-replay"
            book.on_snapshot(snap)
            await reader
            await ex.wait_replays_done(10)
        assert book.gaps == []
        assert_same_book(book, ex.depth(feed, "BTCUSDT", limit=100_000))


def test_usdm_snapshot_is_consistent_with_the_stream() -> None:
    run(sync_during_replay(USDM24, "binance_usdm", spot=False, fetch_after=1500))


def test_spot_snapshot_is_consistent_with_the_stream() -> None:
    run(sync_during_replay(SPOT24, "binance_spot", spot=True, fetch_after=800))


def test_combined_stream_gets_only_its_streams_verbatim_in_order() -> None:
    want = recorded(USDM24, {DEPTH, TRADE})

    async def main() -> None:
        async with exchange(Replay.from_path(USDM24)) as ex:
            async with connect(f"{ex.ws_url('binance_usdm')}/stream?streams={DEPTH}/{TRADE}") as ws:
                got = [await ws.recv(decode=False) for _ in range(len(want))]
            stats = ex.stats["feeds"]["binance_usdm"]
        assert got == want
        assert stats["frames_sent"] == len(want)

    run(main())


def test_usdm_public_and_market_paths_send_only_their_own_streams() -> None:
    """USDⓈ-M since 2026-04-23: books and best bid/ask on /public, trades (and every other
    stream) on /market; a stream asked on the other path is acknowledged and never sent."""
    want_public = recorded(USDM24, {DEPTH, BOOK})
    want_market = recorded(USDM24, {TRADE})

    async def read(ws: ClientConnection, n: int) -> list[bytes]:
        got: list[bytes] = []
        while len(got) < n:
            msg = await ws.recv(decode=False)
            if msg.startswith(b'{"stream"'):
                got.append(msg)
        return got

    async def main() -> None:
        # (held 1 s at the start: both clients subscribed before the first frame)
        replay = Replay.from_path(USDM24, speed=0, faults=Faults(stall_at=[(0, 1.0)]))
        async with exchange(replay) as ex:
            base = ex.ws_url("binance_usdm")
            async with connect(f"{base}/public/stream") as pub, \
                    connect(f"{base}/market/stream?streams={TRADE}/{DEPTH}") as mkt:
                await pub.send(json.dumps({"method": "SUBSCRIBE", "params": [DEPTH, BOOK, TRADE],
                                           "id": 1}))
                assert json.loads(await pub.recv()) == {"result": None, "id": 1}
                await pub.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 2}))
                assert json.loads(await pub.recv()) == {"result": [DEPTH, BOOK], "id": 2}
                got_public = await read(pub, len(want_public))
                got_market = await read(mkt, len(want_market))
        assert got_public == want_public  # every depth and bookTicker frame, no trade
        assert got_market == want_market  # every trade, no depth

    run(main())


def test_raw_endpoint_and_live_subscriptions() -> None:
    want = recorded(USDM24, {TRADE})[:50]

    async def main() -> None:
        async with exchange(Replay.from_path(USDM24), max_streams=5) as ex:
            async with connect(f"{ex.ws_url('binance_usdm')}/ws") as ws:
                await ws.send(json.dumps({"method": "SUBSCRIBE", "params": [TRADE, BOOK], "id": 1}))
                assert json.loads(await ws.recv()) == {"result": None, "id": 1}
                await ws.send(json.dumps({"method": "UNSUBSCRIBE", "params": [BOOK], "id": 2}))
                await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 3}))
                got: list[bytes] = []
                answers = []
                while len(got) < len(want) or len(answers) < 2:
                    msg = await ws.recv(decode=False)
                    if b'"id"' in msg and b'"e"' not in msg:
                        answers.append(json.loads(msg))
                    elif b'"bookTicker"' not in msg:
                        got.append(msg)
                assert {"result": None, "id": 2} in answers
                assert {"result": [TRADE], "id": 3} in answers
                # Raw /ws frames carry the data alone, sliced out of the recorded envelope.
                prefix = len(b'{"stream":"","data":') + len(TRADE)
                assert got[: len(want)] == [w[prefix:-1] for w in want]
                await ws.send(json.dumps({"method": "NOPE", "id": 4}))
                while b'"code"' not in (msg := await ws.recv(decode=False)):
                    pass
                assert json.loads(msg)["code"] == 2
            # More streams than allowed: closed with 1008.
            many = "/".join(f"s{i}@trade" for i in range(6))
            async with connect(f"{ex.ws_url('binance_usdm')}/stream?streams={many}") as ws:
                with pytest.raises(ConnectionClosed):
                    await ws.recv()
                assert ws.close_code == 1008
            # More than 10 messages a second: closed with 1008.
            async with connect(f"{ex.ws_url('binance_usdm')}/ws") as ws:
                with pytest.raises(ConnectionClosed):
                    for i in range(12):
                        await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
                    while True:
                        await ws.recv()
                assert ws.close_code == 1008

    run(main())


def test_2023_recording_is_contiguous_across_its_two_files() -> None:
    streams = {DEPTH, "btcusdt@markPrice@1s"}
    files = sorted(USDM23.iterdir())
    first_file_diffs = len(recorded(files[0], {DEPTH}))
    total = len(recorded(USDM23, {DEPTH}))
    marks = recorded(USDM23, {"btcusdt@markPrice@1s"})

    async def main() -> None:
        async with exchange(Replay.from_path(USDM23)) as ex:
            diffs = []
            async with connect(
                f"{ex.ws_url('binance_usdm')}/stream?streams={'/'.join(streams)}"
            ) as ws:
                for _ in range(total + len(marks)):
                    frame = json.loads(await ws.recv())
                    if frame["stream"] == DEPTH:
                        diffs.append(frame["data"])
            await ex.wait_replays_done(5)
            premium = await get_json(
                f"{ex.base_url('binance_usdm')}/fapi/v1/premiumIndex?symbol=BTCUSDT"
            )
            funding = await get_json(f"{ex.base_url('binance_usdm')}/fapi/v1/fundingInfo")
        assert len(diffs) == total == 16110
        breaks = [i for i in range(1, len(diffs)) if diffs[i]["pu"] != diffs[i - 1]["u"]]
        assert breaks == []
        boundary = diffs[first_file_diffs]
        assert boundary["pu"] == diffs[first_file_diffs - 1]["u"]
        # premiumIndex answers from the last replayed markPrice frame.
        last_mark = json.loads(marks[-1])["data"]
        assert premium["markPrice"] == last_mark["p"]
        assert premium["indexPrice"] == last_mark["i"]
        assert premium["lastFundingRate"] == last_mark["r"]
        assert premium["nextFundingTime"] == last_mark["T"]
        assert funding[0]["fundingIntervalHours"] == 8  # the recording crosses a funding time

    run(main())


def test_cryptofeed_coinm_capture_syncs_all_ten_books() -> None:
    rec = Recording.open(COINM21)
    symbols = sorted(rec.first_snapshots)
    depth_streams = [f"{s.lower()}@depth@100ms" for s in symbols]
    total = len(recorded(COINM21, set(depth_streams)))
    agg = [json.loads(f)["data"] for f in recorded(COINM21, {"etcusd_perp@aggTrade"})]
    info_line = (COINM21 / "BINANCE_DELIVERY.0.txt").read_bytes().split(b"\n")[0]
    recorded_info = info_line.split(b": ", 1)[1].rstrip()

    async def main() -> None:
        async with exchange(Replay.from_path(COINM21)) as ex:
            base = ex.base_url("binance_coinm")
            books = {s: ClientBook(spot=False) for s in symbols}
            received = 0
            async with connect(f"{ex.ws_url('binance_coinm')}/stream") as ws:
                await ws.send(json.dumps({"method": "SUBSCRIBE", "params": depth_streams, "id": 7}))
                assert json.loads(await ws.recv()) == {"result": None, "id": 7}
                for s in symbols:
                    snap = await get_json(f"{base}/dapi/v1/depth?symbol={s}&limit=1000")
                    assert snap["symbol"] == s and snap["pair"] == s.split("_")[0]
                    books[s].on_snapshot(snap)
                while received < total:
                    data = json.loads(await ws.recv())["data"]
                    books[data["s"]].on_diff(data)
                    received += 1
            await ex.wait_replays_done(5)
            for s in symbols:
                assert books[s].gaps == [], s
                assert_same_book(books[s], ex.depth("binance_coinm", s, limit=100_000))
            _, _, info = await http_get(f"{base}/dapi/v1/exchangeInfo")
            assert info == recorded_info  # the recording's own exchangeInfo, verbatim
            trades = await get_json(
                f"{base}/dapi/v1/aggTrades?symbol=ETCUSD_PERP&fromId={agg[3]['a']}"
            )
            assert [t["a"] for t in trades] == [a["a"] for a in agg[3:]]
            assert trades[0] == {k: agg[3][k] for k in "apqflTm"}
            status, _, body = await http_get(f"{base}/dapi/v1/depth?symbol=BTCUSDT")
            assert (status, json.loads(body)) == (400, {"code": -1121, "msg": "Invalid symbol."})
            # Without a recorded exchangeInfo one is synthesized: quarterlies, contract sizes.
            ex.feed("binance_coinm").exchange_info = None
            synth = {
                s["symbol"]: s for s in (await get_json(f"{base}/dapi/v1/exchangeInfo"))["symbols"]
            }
        btc = synth["BTCUSD_211231"]
        assert btc["contractType"] == "NEXT_QUARTER"  # the capture is from July 2021
        assert btc["deliveryDate"] == 1640937600000  # 2021-12-31 08:00 UTC
        assert (
            btc["contractSize"] == 100 and btc["pair"] == "BTCUSD" and btc["marginAsset"] == "BTC"
        )
        assert synth["BCHUSD_210924"]["contractType"] == "CURRENT_QUARTER"
        assert synth["BCHUSD_PERP"]["contractSize"] == 10
        assert synth["BCHUSD_PERP"]["contractType"] == "PERPETUAL"
        assert synth["BCHUSD_PERP"]["deliveryDate"] == 4133404800000

    run(main())


def test_dropped_diff_breaks_the_chain_at_the_right_place() -> None:
    want = [json.loads(f)["data"]["u"] for f in recorded(USDM24, {DEPTH})]

    async def main() -> None:
        faults = Faults(drop_depth=[("BTCUSDT", 100)])
        async with exchange(Replay.from_path(USDM24, faults=faults)) as ex:
            async with connect(f"{ex.ws_url('binance_usdm')}/stream?streams={DEPTH}") as ws:
                diffs = [json.loads(await ws.recv())["data"] for _ in range(len(want) - 1)]
            await ex.wait_replays_done(10)
            assert ex.stats["feeds"]["binance_usdm"]["dropped"] == 1
            # The exchange's own book still applied it: it ends where the recording ends.
            assert ex.depth("binance_usdm", "BTCUSDT")["lastUpdateId"] == want[-1]
        assert [d["u"] for d in diffs] == want[:99] + want[100:]
        breaks = [i for i in range(1, len(diffs)) if diffs[i]["pu"] != diffs[i - 1]["u"]]
        assert breaks == [99]
        assert diffs[99]["pu"] == want[99]

    run(main())


def test_malformed_frames_arrive_where_configured() -> None:
    want = recorded(USDM24, {DEPTH, TRADE, BOOK})[:200]

    async def main() -> None:
        faults = Faults(malformed=[(10, "truncated"), (20, "nonjson"), (30, "badprice")])
        async with exchange(Replay.from_path(USDM24, faults=faults)) as ex:
            url = f"{ex.ws_url('binance_usdm')}/stream?streams={DEPTH}/{TRADE}/{BOOK}"
            async with connect(url) as ws:
                got = [await ws.recv(decode=False) for _ in range(len(want) + 3)]
        bad = []
        good = []
        for i, msg in enumerate(got):
            try:
                frame = json.loads(msg)
            except ValueError:
                bad.append(i)
                continue
            data = frame["data"]
            if data.get("e") == "depthUpdate" and data["b"] and data["b"][0][0] == "not-a-price":
                bad.append(i)
            else:
                good.append(msg)
        assert bad[:2] == [10, 21]
        assert got[10] == want[10][: len(want[10]) // 2]
        assert len(bad) == 3 and good == want
        # badprice copies the next depth diff (ids included) and precedes it.
        bad_diff = json.loads(got[bad[2]])["data"]
        next_diff = json.loads(got[bad[2] + 1])["data"]
        assert (bad_diff["U"], bad_diff["u"], bad_diff["b"][1:]) == (
            next_diff["U"],
            next_diff["u"],
            next_diff["b"],
        )

    run(main())


def test_close_codes_arrive_as_configured_and_nothing_is_lost() -> None:
    want = recorded(USDM24, {DEPTH, TRADE, BOOK})[:500]
    codes = [1000, 1001, 1011, 1008, None]

    async def main() -> None:
        faults = Faults(close_at=[(100 * (i + 1), code) for i, code in enumerate(codes)])
        async with exchange(Replay.from_path(USDM24, faults=faults)) as ex:
            url = f"{ex.ws_url('binance_usdm')}/stream?streams={DEPTH}/{TRADE}/{BOOK}"
            got: list[bytes] = []
            seen: list[int | None] = []
            for _ in codes:
                async with connect(url) as ws:
                    try:
                        while True:
                            got.append(await ws.recv(decode=False))
                    except ConnectionClosed:
                        pass
                    seen.append(ws.close_code)
            # An abort sends no close frame: the client sees 1006.
            assert seen == [1000, 1001, 1011, 1008, 1006]
            assert ex.stats["feeds"]["binance_usdm"]["closed_by_fault"] == 5
        # The replay waited for each reconnection: every frame before the abort arrived once.
        assert got[:400] == want[:400]

    run(main())


def test_freeze_silences_open_connections_only() -> None:
    want = recorded(USDM24, {DEPTH, TRADE, BOOK})

    async def main() -> None:
        faults = Faults(freeze_at=[(50, 0.8)])
        async with exchange(Replay.from_path(USDM24, faults=faults), ping_interval=0.2) as ex:
            url = f"{ex.ws_url('binance_usdm')}/stream?streams={DEPTH}/{TRADE}/{BOOK}"
            async with connect(url) as ws:
                assert [await ws.recv(decode=False) for _ in range(50)] == want[:50]
                t0 = time.monotonic()
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(ws.recv(), 0.3)
                # A new connection is served at once, from where the stream stopped.
                async with connect(url) as fresh:
                    got = [await fresh.recv(decode=False) for _ in range(100)]
                assert got == want[50:150]
                # The frozen one resumes afterwards, with a gap: it missed those frames.
                resumed = await ws.recv(decode=False)
                assert 0.7 < time.monotonic() - t0 < 2.0
                assert resumed in want[150:]
                # It stayed alive throughout: it answered the server's pings, and ours.
                await asyncio.wait_for(await ws.ping(), 2)

    run(main())


def test_stall_silences_the_whole_market_and_loses_nothing() -> None:
    want = recorded(USDM24, {DEPTH, TRADE, BOOK})

    async def main() -> None:
        faults = Faults(stall_at=[(50, 0.6)])
        async with exchange(Replay.from_path(USDM24, faults=faults), ping_interval=0.2) as ex:
            url = f"{ex.ws_url('binance_usdm')}/stream?streams={DEPTH}/{TRADE}/{BOOK}"
            async with connect(url) as ws:
                assert [await ws.recv(decode=False) for _ in range(50)] == want[:50]
                t0 = time.monotonic()
                async with connect(url) as fresh:  # reconnecting does not help
                    with pytest.raises(TimeoutError):
                        await asyncio.wait_for(fresh.recv(), 0.3)
                assert await ws.recv(decode=False) == want[50]  # late, not lost
                assert 0.5 < time.monotonic() - t0 < 1.5

    run(main())


def test_rest_weight_budget_gives_429_with_retry_after() -> None:
    async def main() -> None:
        async with exchange(Replay.from_path(USDM24), rest_weight_limit=50) as ex:
            url = f"{ex.base_url('binance_usdm')}/fapi/v1/depth?symbol=BTCUSDT&limit=1000"
            answers = [await http_get(url) for _ in range(3)]
        (s1, h1, _), (s2, h2, _), (s3, h3, b3) = answers
        assert (s1, s2, s3) == (200, 200, 429)
        assert (h1["x-mbx-used-weight-1m"], h2["x-mbx-used-weight-1m"]) == ("20", "40")
        assert 1 <= int(h3["retry-after"]) <= 60
        assert json.loads(b3)["code"] == -1003

    run(main())


def test_trade_history_answers_backfill_requests() -> None:
    trades = [json.loads(f)["data"] for f in recorded(USDM24, {TRADE})]

    async def main() -> None:
        async with exchange(Replay.from_path(USDM24)) as ex:
            async with connect(f"{ex.ws_url('binance_usdm')}/stream?streams={TRADE}") as ws:
                for _ in range(len(trades)):
                    await ws.recv()
            await ex.wait_replays_done(10)
            base = f"{ex.base_url('binance_usdm')}/fapi/v1"
            from_id = trades[1000]["t"]
            hist = await get_json(
                f"{base}/historicalTrades?symbol=BTCUSDT&fromId={from_id}&limit=20"
            )
            recent = await get_json(f"{base}/trades?symbol=BTCUSDT&limit=3")
            aggs = await get_json(f"{base}/aggTrades?symbol=BTCUSDT&limit=1000")
            info = await get_json(f"{base}/exchangeInfo")
            oi = await get_json(f"{base}/openInterest?symbol=BTCUSDT")
        assert [t["id"] for t in hist] == list(range(from_id, from_id + 20))
        t = trades[1000]
        assert hist[0] == {
            "id": t["t"],
            "price": t["p"],
            "qty": t["q"],
            "quoteQty": hist[0]["quoteQty"],
            "time": t["T"],
            "isBuyerMaker": t["m"],
        }
        assert float(hist[0]["quoteQty"]) == pytest.approx(float(t["p"]) * float(t["q"]))
        assert [r["id"] for r in recent] == [x["t"] for x in trades[-3:]]
        # No aggTrade stream was recorded: aggregates are built from the trades, contiguously.
        assert all(
            a["l"] + 1 == b["f"] and a["a"] + 1 == b["a"] for a, b in itertools.pairwise(aggs)
        )
        assert aggs[-1]["l"] == trades[-1]["t"]
        (btc,) = info["symbols"]
        assert (btc["symbol"], btc["contractType"], btc["quoteAsset"]) == (
            "BTCUSDT",
            "PERPETUAL",
            "USDT",
        )
        filters = {f["filterType"]: f for f in btc["filters"]}
        assert filters["PRICE_FILTER"]["tickSize"] == "0.10"
        assert filters["LOT_SIZE"]["stepSize"] == "0.001"
        assert oi["symbol"] == "BTCUSDT" and float(oi["openInterest"]) > 0

    run(main())


# -- pings ---------------------------------------------------------------------------------------


async def raw_ws(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a websocket by hand: this client never answers pings."""
    hostport, _, path = url[5:].partition("/")
    host, _, port = hostport.partition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    return reader, writer


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", await reader.readexactly(2))
    elif n == 127:
        (n,) = struct.unpack("!Q", await reader.readexactly(8))
    return b0 & 0x0F, await reader.readexactly(n)


def test_server_pings_and_drops_a_client_that_does_not_pong() -> None:
    async def main() -> None:
        async with exchange(Replay.from_path(USDM24), ping_interval=0.3, ping_timeout=0.5) as ex:
            url = f"{ex.ws_url('binance_usdm')}/stream?streams=ethusdt@trade"
            reader, writer = await raw_ws(url)
            t0 = time.monotonic()
            opcodes = []
            close_payload = b""
            while True:
                opcode, payload = await asyncio.wait_for(read_frame(reader), 3)
                opcodes.append((opcode, round(time.monotonic() - t0, 1)))
                if opcode == 0x8:
                    close_payload = payload
                    break
            assert opcodes[0][0] == 0x9 and 0.2 <= opcodes[0][1] <= 0.6  # a ping after ~0.3 s
            assert struct.unpack("!H", close_payload[:2])[0] == 1011  # keepalive ping timeout
            assert await asyncio.wait_for(reader.read(), 3) == b""  # and the TCP connection ends
            writer.close()
            # A client that answers pings stays connected.
            async with connect(url) as ws:
                await asyncio.sleep(1.2)
                await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 1}))
                assert json.loads(await ws.recv()) == {"result": ["ethusdt@trade"], "id": 1}

    run(main())


def test_recorded_pace() -> None:
    rec = Recording.open(COINM21)
    span = (rec.last_ts - rec.first_ts) / 1e9

    async def main() -> None:
        async with exchange(Replay(rec, speed=20)) as ex:
            t0 = time.monotonic()
            async with connect(
                f"{ex.ws_url('binance_coinm')}/stream?streams=bchusd_perp@bookTicker"
            ):
                await ex.wait_replays_done(10)
            elapsed = time.monotonic() - t0
        assert span / 20 * 0.9 < elapsed < span / 20 + 1.0

    run(main())


def test_bad_arguments_are_one_line_errors(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    with pytest.raises(ExchangeError, match="recording not found"):
        build_exchange(parser.parse_args(["--replay", str(tmp_path / "missing.gz")]))
    with pytest.raises(ExchangeError, match="unknown recording format"):
        build_exchange(parser.parse_args(["--replay", str(FIX / "PROVENANCE.md")]))
    with pytest.raises(ExchangeError, match="close code"):
        build_exchange(parser.parse_args(["--replay", str(USDM24), "--close-at", "5:1234"]))
    args = parser.parse_args(
        [
            "--replay",
            str(USDM23 / "btcusdt_20230404.dat.gz"),
            "--replay",
            str(USDM23 / "btcusdt_20230405.dat.gz"),
            "--replay",
            str(SPOT24),
            "--speed",
            "0",
            "--port",
            "0",
            "--drop-depth",
            "btcusdt:3",
        ]
    )
    ex = build_exchange(args)
    usdm = ex.feed("binance_usdm").replay
    assert usdm is not None and usdm.recording.frames == 73764  # two files, one replay
    assert usdm.faults.drop_depth == [("BTCUSDT", 3)]
    assert ex.feed("binance_spot").replay is not None


def test_instrument_dates() -> None:
    assert delivery_ms("BTCUSD_211231") == 1640937600000
    assert delivery_ms("BTCUSD_PERP") is None
    july_2021 = 1626916402000
    assert contract_type("ETHUSD_210924", july_2021) == "CURRENT_QUARTER"
    assert contract_type("ETHUSD_211231", july_2021) == "NEXT_QUARTER"
    assert contract_type("BTCUSDT", july_2021) == "PERPETUAL"


def test_analyzer_capture_replays_with_its_rest_bodies(tmp_path: Path) -> None:
    import gzip

    lines = gzip.decompress((USDM24 / "btcusdt_20240808.gz").read_bytes()).split(b"\n")[:400]
    out = [b'1723161255000000000 {"result":null,"id":1}']
    for line in lines:
        ts, _, payload = line.partition(b" ")
        if payload.startswith(b'{"lastUpdateId"'):
            payload = b'{"rest":"/fapi/v1/depth?symbol=BTCUSDT&limit=1000","body":' + payload + b"}"
        out.append(ts + b" " + payload)
    oi = b'{"symbol":"BTCUSDT","openInterest":"81234.567","time":1723161256000}'
    out.append(
        lines[-1].split(b" ")[0]
        + b' {"rest":"/fapi/v1/openInterest?symbol=BTCUSDT","body":'
        + oi
        + b"}"
    )
    folder = tmp_path / "binance_usdm"
    folder.mkdir()
    data = gzip.compress(b"\n".join(out) + b"\n")
    # A second gzip member cut short, as a crash leaves it: read up to there, no error.
    (folder / "binance_usdm-20240808-23.gz").write_bytes(data + gzip.compress(b"1 x\n" * 1000)[:40])
    rec = Recording.open(folder)
    assert (rec.market, rec.frames, sorted(rec.first_snapshots)) == ("usdm", 399, ["BTCUSDT"])

    async def main() -> None:
        async with exchange(Replay(rec)) as ex:
            async with connect(
                f"{ex.ws_url('binance_usdm')}/stream?streams={DEPTH}/{TRADE}/{BOOK}"
            ) as ws:
                for _ in range(399):
                    await ws.recv()
            await ex.wait_replays_done(5)
            _, _, body = await http_get(
                f"{ex.base_url('binance_usdm')}/fapi/v1/openInterest?symbol=BTCUSDT"
            )
        assert body == oi

    run(main())


def test_exchange_thread_and_module_entry_point() -> None:
    import subprocess
    import sys
    import urllib.request

    from analyzer.exchange import ExchangeThread

    ex = LocalExchange()
    ex.add_replay(Replay.from_path(SPOT24))
    with ExchangeThread(ex) as thread:
        url = f"{thread.base_url('binance_spot')}/api/v3/exchangeInfo"
        with urllib.request.urlopen(url) as resp:
            info = json.loads(resp.read())
        assert thread.stats["rest_requests"] == 1
    filters = {f["filterType"]: f for f in info["symbols"][0]["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
    assert filters["LOT_SIZE"]["stepSize"] == "0.00001000"
    proc = subprocess.run(
        [sys.executable, "-m", "analyzer.exchange", "--replay", "/nonexistent/recording.gz"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "analyzer exchange: error: recording not found: /nonexistent/recording.gz"
    ]
