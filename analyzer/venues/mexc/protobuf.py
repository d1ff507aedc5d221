"""MEXC spot's push frames in the protobuf wire format: a small reader (the collector's hot
path) and the writer the local exchange renders them with.

Schema: mexcdevelop/websocket-proto @ 7b8ac7a6681f28551612a5a7cefbb7e09b56bb85 (2026-06-17,
"增加推送字段 2026.6": ``version`` and ``lastOrderCreateTime`` on the bookTicker, ``tradeId`` on
deals, ``lastOrderCreateTime`` on depth), files ``PushDataV3ApiWrapper.proto``,
``PublicAggreDepthsV3Api.proto``, ``PublicAggreDealsV3Api.proto``,
``PublicAggreBookTickerV3Api.proto``. The field numbers read here:

    PushDataV3ApiWrapper        1 channel (string), 3 symbol, 4 symbolId (strings), 5 createTime,
                                6 sendTime (int64, ms); the body, a oneof: 313
                                publicAggreDepths, 314 publicAggreDeals, 315
                                publicAggreBookTicker (others: 301-312, not subscribed here)
    PublicAggreDepthsV3Api      1 asks, 2 bids (repeated items), 3 eventType, 4 fromVersion,
                                5 toVersion (strings), 6 lastOrderCreateTime (int64)
    PublicAggreDepthV3ApiItem   1 price, 2 quantity (decimal strings; quantity 0 removes)
    PublicAggreDealsV3Api       1 deals (repeated items), 2 eventType
    PublicAggreDealsV3ApiItem   1 price, 2 quantity (strings), 3 tradeType (int32: 1 buy, 2
                                sell), 4 time (int64, ms), 5 tradeId (string, not read)
    PublicAggreBookTickerV3Api  1 bidPrice, 2 bidQuantity, 3 askPrice, 4 askQuantity,
                                5 version (strings), 6 lastOrderCreateTime (int64)

The wire format (protobuf.dev/programming-guides/encoding): a message is a run of fields, each
a varint key ``field << 3 | wire type`` then its value: wire type 0 a varint (7 bits a byte,
least significant first, the high bit set on every byte but the last; at most 10 bytes), 2 a
varint length and that many bytes (strings, nested messages, packed repeats), 1 and 5 eight
and four bytes (fixed64, fixed32). Unknown fields are skipped by their wire type (new fields
appear: the 2026-06 ones above did); fields may come in any order, a repeated message field
once per element. Groups (wire types 3 and 4, deprecated) and 6, 7 do not exist in proto3: a
frame holding one is broken. A field past the end of its message, a varint of more than 10
bytes, a key with field number 0: ``DecodeError``. proto3 omits a field holding its default
("" or 0): an absent version reads as "", which is no number (a ``DecodeError``, never a book).

Speed: a frame is read in one pass. The layouts recorded frames have (the wrapper's channel,
symbol, sendTime, then the body to the end; a bookTicker's fields in order; a level's price
then quantity; times as 6-byte varints) are read on fast paths of a few index checks, falling
back to the general loop over fields for anything else (which also says what is wrong); keys
and lengths below 128 need no call. Levels and deals become tuples directly, no object per
field. Decimal strings become floats with ``float(bytes)`` (C), checked in range as
``analyzer.venues.bounds`` bounds every venue's numbers. Still, a level costs a few hundred ns
in Python, several times msgspec's JSON (README, "Performance").
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.venues.base import DecodeError
from analyzer.venues.bounds import MAX_ID, MAX_MS, MAX_PRICE, MAX_SIZE

# the wrapper's fields, and the bodies' field numbers in its oneof
CHANNEL, SYMBOL, SYMBOL_ID, CREATE_TIME, SEND_TIME = 1, 3, 4, 5, 6
DEPTH, DEALS, BOOK_TICKER = 313, 314, 315
VARINT, FIXED64, LEN, FIXED32 = 0, 1, 2, 5

Level = tuple[float, float]
Deal = tuple[float, float, int, int]  # price, quantity, tradeType, time (ms)


def _more(buf: bytes, pos: int, first: int) -> tuple[int, int]:
    """The rest of a varint whose first byte (>= 0x80) was ``first``; (value, next position)."""
    value = first & 0x7F
    shift = 7
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise DecodeError("protobuf: a varint longer than 10 bytes")


def _ms(buf: bytes, pos: int) -> int:
    """A 6-byte varint at ``pos`` (every ms time from 2004 to 2109: 2^35 to 2^42), else -1."""
    t = buf[pos:pos + 6]
    if len(t) == 6 and t[5] < 0x80 and t[0] & t[1] & t[2] & t[3] & t[4] & 0x80:
        return ((t[0] & 0x7F) | (t[1] & 0x7F) << 7 | (t[2] & 0x7F) << 14 | (t[3] & 0x7F) << 21
                | (t[4] & 0x7F) << 28 | t[5] << 35)
    return -1


def _skip(buf: bytes, pos: int, key: int, end: int) -> int:
    """Past the value of a field of key ``key`` (its key read): the next position."""
    wt = key & 7
    if key < 8:
        raise DecodeError("protobuf: field number 0")
    if wt == VARINT:
        b = buf[pos]
        pos += 1
        if b >= 0x80:
            _, pos = _more(buf, pos, b)
    elif wt == LEN:
        n = buf[pos]
        pos += 1
        if n >= 0x80:
            n, pos = _more(buf, pos, n)
        pos += n
    elif wt == FIXED64:
        pos += 8
    elif wt == FIXED32:
        pos += 4
    else:
        raise DecodeError(f"protobuf: wire type {wt} (field {key >> 3})")
    if pos > end:
        raise DecodeError(f"protobuf: field {key >> 3} runs past the end")
    return pos


def read_push(buf: bytes) -> tuple[bytes, bytes, int, int, int, int]:
    """A ``PushDataV3ApiWrapper``: (channel, symbol, time in ms, body field, body start, body
    end). The time is ``sendTime`` (the docs' event time), else ``createTime``, else 0; the
    body is the last of the oneof's fields present (0 if none: a frame with no data). The
    recorded layout (channel, symbol, sendTime, the body to the end) is read on a fast path;
    anything else by the general loop."""
    try:
        n = buf[1]
        p = 2 + n
        if buf[0] == 0x0A and n < 0x80 and buf[p] == 0x1A:
            m = buf[p + 1]
            q = p + 2 + m
            if m < 0x80 and buf[q] == 0x30:
                ms = _ms(buf, q + 1)
                i = q + 7
                if ms < 0:
                    ms, i = _more(buf, q + 2, buf[q + 1]) if buf[q + 1] >= 0x80 else (
                        buf[q + 1], q + 2)
                key = buf[i]
                if (key == 0xCA or key == 0xD2 or key == 0xDA) and buf[i + 1] == 0x13:
                    size = buf[i + 2]
                    start = i + 3
                    if size >= 0x80:
                        size, start = _more(buf, start, size)
                    if start + size == len(buf):  # (the body's field: the key's bits 3-13)
                        return buf[2:p], buf[p + 2:q], ms, (key & 0x7F | 0x980) >> 3, start, \
                            start + size
    except IndexError:
        pass
    return _read_push(buf)


def _read_push(buf: bytes) -> tuple[bytes, bytes, int, int, int, int]:
    end = len(buf)
    pos = 0
    channel = symbol = b""
    send = create = body = start = stop = 0
    try:
        while pos < end:
            key = buf[pos]
            pos += 1
            if key >= 0x80:
                b = buf[pos]
                if b < 0x80:  # a two-byte key (the body's: 313-315)
                    key = (key & 0x7F) | b << 7
                    pos += 1
                else:
                    key, pos = _more(buf, pos, key)
            if key & 7 == LEN:
                n = buf[pos]
                pos += 1
                if n >= 0x80:
                    n, pos = _more(buf, pos, n)
                nxt = pos + n
                if nxt > end:
                    raise DecodeError(f"protobuf: field {key >> 3} runs past the end")
                field = key >> 3
                if field == CHANNEL:
                    channel = buf[pos:nxt]
                elif field == SYMBOL:
                    symbol = buf[pos:nxt]
                elif field > 300:
                    body, start, stop = field, pos, nxt
                elif field == 0:
                    raise DecodeError("protobuf: field number 0")
                pos = nxt
            elif key == 0x30 or key == 0x28:  # sendTime, createTime (varints)
                v = buf[pos]
                pos += 1
                if v >= 0x80:
                    v, pos = _more(buf, pos, v)
                if key == 0x30:
                    send = v
                else:
                    create = v
            else:
                pos = _skip(buf, pos, key, end)
    except IndexError:
        raise DecodeError("protobuf: the frame ends inside a field") from None
    return channel, symbol, send or create, body, start, stop


def _text(buf: bytes, pos: int, end: int) -> tuple[bytes, int]:
    """A length-delimited value (its key read): (the bytes, next position)."""
    n = buf[pos]
    pos += 1
    if n >= 0x80:
        n, pos = _more(buf, pos, n)
    nxt = pos + n
    if nxt > end:
        raise DecodeError("protobuf: a string runs past the end")
    return buf[pos:nxt], nxt


def _price(text: bytes) -> float:
    try:
        p = float(text)
    except ValueError:
        raise DecodeError(f"price {text[:30]!r} is no number") from None
    if not 0.0 < p < MAX_PRICE:  # (NaN fails too)
        raise DecodeError(f"price {text[:30]!r} out of range")
    return p


def _size(text: bytes) -> float:
    try:
        q = float(text)
    except ValueError:
        raise DecodeError(f"quantity {text[:30]!r} is no number") from None
    if not 0.0 <= q < MAX_SIZE:
        raise DecodeError(f"quantity {text[:30]!r} out of range")
    return q


def version(text: bytes) -> int:
    """A version string (fromVersion, toVersion, version) as an int; "" (absent) is none."""
    if not text.isdigit():
        raise DecodeError(f"version {text[:30]!r} is no number")
    v = int(text)
    if v > MAX_ID:
        raise DecodeError(f"version {text[:30]!r} out of range")
    return v


def _level(buf: bytes, pos: int, end: int) -> Level:
    """A ``PublicAggreDepthV3ApiItem``: (price, quantity)."""
    price = qty = b""
    while pos < end:
        key = buf[pos]
        pos += 1
        if key == 0x0A or key == 0x12:
            n = buf[pos]
            pos += 1
            if n >= 0x80:
                n, pos = _more(buf, pos, n)
            nxt = pos + n
            if nxt > end:
                raise DecodeError("protobuf: a level's field runs past it")
            if key == 0x0A:
                price = buf[pos:nxt]
            else:
                qty = buf[pos:nxt]
            pos = nxt
        else:
            if key >= 0x80:
                key, pos = _more(buf, pos, key)
            pos = _skip(buf, pos, key, end)
    return _price(price), _size(qty)


def read_depth(buf: bytes, pos: int, end: int) -> tuple[list[Level], list[Level], int, int]:
    """A ``PublicAggreDepthsV3Api`` at ``buf[pos:end]``: (asks, bids, fromVersion,
    toVersion); levels in frame order."""
    asks: list[Level] = []
    bids: list[Level] = []
    ask, bid = asks.append, bids.append
    first = last = b""
    try:
        while pos < end:
            key = buf[pos]
            if key == 0x0A or key == 0x12:  # an ask, a bid
                # the usual item, ``0a|12 <n> 0a <m> price 12 <k> quantity``, read inline
                n = buf[pos + 1]
                m = buf[pos + 3]
                q = pos + 4 + m  # the quantity's key
                nxt = pos + 2 + n
                if (n < 0x80 and m < 0x80 and buf[pos + 2] == 0x0A and buf[q] == 0x12
                        and q + 2 + buf[q + 1] == nxt and nxt <= end):
                    price = float(buf[pos + 4:q])
                    qty = float(buf[q + 2:nxt])
                    if not (0.0 < price < MAX_PRICE and 0.0 <= qty < MAX_SIZE):
                        _price(buf[pos + 4:q])
                        _size(buf[q + 2:nxt])
                    (ask if key == 0x0A else bid)((price, qty))
                    pos = nxt
                    continue
                pos += 1
                n = buf[pos]
                pos += 1
                if n >= 0x80:
                    n, pos = _more(buf, pos, n)
                nxt = pos + n
                if nxt > end:
                    raise DecodeError("protobuf: a level runs past the body")
                (ask if key == 0x0A else bid)(_level(buf, pos, nxt))
                pos = nxt
                continue
            pos += 1
            if key == 0x22:
                first, pos = _text(buf, pos, end)
            elif key == 0x2A:
                last, pos = _text(buf, pos, end)
            else:
                if key >= 0x80:
                    key, pos = _more(buf, pos, key)
                pos = _skip(buf, pos, key, end)
    except IndexError:
        raise DecodeError("protobuf: the depth body ends inside a field") from None
    except ValueError:  # a float() of the fast path: say which
        raise DecodeError(f"a level's price or quantity is no number: {buf[pos:pos + 40]!r}"
                          ) from None
    return asks, bids, version(first), version(last)


def read_deals(buf: bytes, pos: int, end: int) -> list[Deal]:
    """A ``PublicAggreDealsV3Api``: its deals (price, quantity, tradeType, time ms) in frame
    order; tradeType 1 or 2 and a time are required."""
    out: list[Deal] = []
    try:
        while pos < end:
            key = buf[pos]
            pos += 1
            if key != 0x0A:
                if key >= 0x80:
                    key, pos = _more(buf, pos, key)
                pos = _skip(buf, pos, key, end)
                continue
            n = buf[pos]
            pos += 1
            if n >= 0x80:
                n, pos = _more(buf, pos, n)
            stop = pos + n
            if stop > end:
                raise DecodeError("protobuf: a deal runs past the body")
            price = qty = b""
            side = ms = 0
            while pos < stop:
                key = buf[pos]
                pos += 1
                if key == 0x0A or key == 0x12:
                    m = buf[pos]
                    pos += 1
                    if m >= 0x80:
                        m, pos = _more(buf, pos, m)
                    nxt = pos + m
                    if nxt > stop:
                        raise DecodeError("protobuf: a deal's string runs past it")
                    if key == 0x0A:
                        price = buf[pos:nxt]
                    else:
                        qty = buf[pos:nxt]
                    pos = nxt
                elif key == 0x18 or key == 0x20:
                    v = buf[pos]
                    pos += 1
                    if v >= 0x80:
                        v, pos = _more(buf, pos, v)
                    if key == 0x18:
                        side = v
                    else:
                        ms = v
                else:
                    if key >= 0x80:
                        key, pos = _more(buf, pos, key)
                    pos = _skip(buf, pos, key, stop)
            if pos > stop:
                raise DecodeError("protobuf: a deal's field runs past it")
            if side != 1 and side != 2:
                raise DecodeError(f"deal tradeType {side} (1 buy, 2 sell)")
            if not 0 < ms < MAX_MS:
                raise DecodeError(f"deal time {ms} out of range")
            q = _size(qty)
            if q == 0.0:
                raise DecodeError("a deal of quantity 0")
            out.append((_price(price), q, side, ms))
    except IndexError:
        raise DecodeError("protobuf: the deals body ends inside a field") from None
    return out


def read_book_ticker(buf: bytes, pos: int, end: int
                     ) -> tuple[float, float, float, float, int] | None:
    """A ``PublicAggreBookTickerV3Api``: (bid, bid quantity, ask, ask quantity, version: -1
    when absent); None when a side is empty (no price sent). The recorded layout (fields 1 to
    5 in order, one-byte lengths, then the time to the end) is read on a fast path."""
    try:
        a = pos + 2
        b = a + buf[pos + 1]
        c = b + 2
        d = c + buf[b + 1]
        e = d + 2
        f = e + buf[d + 1]
        g = f + 2
        h = g + buf[f + 1]
        i = h + 2
        j = i + buf[h + 1]
        if (buf[pos] == 0x0A and buf[b] == 0x12 and buf[d] == 0x1A and buf[f] == 0x22
                and buf[h] == 0x2A and buf[pos + 1] | buf[b + 1] | buf[d + 1] | buf[f + 1]
                | buf[h + 1] < 0x80 and (j == end or (buf[j] == 0x30 and _ms(buf, j + 1) >= 0
                                                      and j + 7 == end))):
            bid, bid_qty = float(buf[a:b]), float(buf[c:d])
            ask, ask_qty = float(buf[e:f]), float(buf[g:h])
            ver = buf[i:j]
            if (0.0 < bid < MAX_PRICE and 0.0 <= bid_qty < MAX_SIZE and 0.0 < ask < MAX_PRICE
                    and 0.0 <= ask_qty < MAX_SIZE and ver.isdigit() and len(ver) < 19):
                return bid, bid_qty, ask, ask_qty, int(ver)
    except (IndexError, ValueError):
        pass  # the general loop says what is wrong
    return _read_book_ticker(buf, pos, end)


def _read_book_ticker(buf: bytes, pos: int, end: int
                      ) -> tuple[float, float, float, float, int] | None:
    f: list[bytes] = [b"", b"", b"", b"", b""]
    try:
        while pos < end:
            key = buf[pos]
            pos += 1
            if 0x0A <= key <= 0x2A and key & 7 == LEN:  # fields 1-5, strings
                n = buf[pos]
                pos += 1
                if n >= 0x80:
                    n, pos = _more(buf, pos, n)
                nxt = pos + n
                if nxt > end:
                    raise DecodeError("protobuf: a string runs past the end")
                f[(key >> 3) - 1] = buf[pos:nxt]
                pos = nxt
            else:
                if key >= 0x80:
                    key, pos = _more(buf, pos, key)
                pos = _skip(buf, pos, key, end)
    except IndexError:
        raise DecodeError("protobuf: the bookTicker body ends inside a field") from None
    if not f[0] or not f[2]:
        return None
    return (_price(f[0]), _size(f[1]), _price(f[2]), _size(f[3]),
            version(f[4]) if f[4] else -1)


def fields(buf: bytes, pos: int = 0, end: int | None = None
           ) -> Iterator[tuple[int, int, int | bytes]]:
    """Every field of a message, in order: (field number, wire type, value: an int for
    varints, the bytes otherwise). For tools and the local exchange, not the hot path."""
    end = len(buf) if end is None else end
    try:
        while pos < end:
            key = buf[pos]
            pos += 1
            if key >= 0x80:
                key, pos = _more(buf, pos, key)
            field, wt = key >> 3, key & 7
            if field == 0:
                raise DecodeError("protobuf: field number 0")
            if wt == VARINT:
                v = buf[pos]
                pos += 1
                if v >= 0x80:
                    v, pos = _more(buf, pos, v)
                yield field, wt, v
                continue
            nxt = _skip(buf, pos, key, end)
            if wt == LEN:  # the value follows its length
                n = buf[pos]
                pos += 1
                if n >= 0x80:
                    n, pos = _more(buf, pos, n)
            yield field, wt, buf[pos:nxt]
            pos = nxt
    except IndexError:
        raise DecodeError("protobuf: the message ends inside a field") from None


# ---- the writer (the local exchange) ----------------------------------------------------------


def varint(n: int) -> bytes:
    """The varint of a non-negative int."""
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def key(field: int, wire_type: int) -> bytes:
    return varint(field << 3 | wire_type)


def string(field: int, data: bytes) -> bytes:
    """A length-delimited field (a string or a nested message)."""
    return key(field, LEN) + varint(len(data)) + data


def integer(field: int, n: int) -> bytes:
    return key(field, VARINT) + varint(n)


def push(channel: bytes, symbol: bytes, send_ms: int, body_field: int, body: bytes) -> bytes:
    """A ``PushDataV3ApiWrapper`` as MEXC lays it out (recorded frames: channel, symbol,
    sendTime, then the body)."""
    return (string(CHANNEL, channel) + string(SYMBOL, symbol) + integer(SEND_TIME, send_ms)
            + string(body_field, body))


def level(price: bytes, qty: bytes) -> bytes:
    """A ``PublicAggreDepthV3ApiItem``'s content."""
    return string(1, price) + string(2, qty)


def depth_body(asks: list[bytes], bids: list[bytes], event_type: bytes, first: int,
               last: int) -> bytes:
    """A ``PublicAggreDepthsV3Api`` of levels made by ``level``."""
    return b"".join([*(string(1, a) for a in asks), *(string(2, b) for b in bids),
                     string(3, event_type), string(4, b"%d" % first), string(5, b"%d" % last)])


def deal(price: bytes, qty: bytes, side: int, ms: int) -> bytes:
    """A ``PublicAggreDealsV3ApiItem``'s content (side: 1 buy, 2 sell)."""
    return string(1, price) + string(2, qty) + integer(3, side) + integer(4, ms)


def deals_body(deals: list[bytes], event_type: bytes) -> bytes:
    return b"".join([*(string(1, d) for d in deals), string(2, event_type)])


def book_ticker_body(bid: bytes, bid_qty: bytes, ask: bytes, ask_qty: bytes, ver: int,
                     ms: int) -> bytes:
    return (string(1, bid) + string(2, bid_qty) + string(3, ask) + string(4, ask_qty)
            + string(5, b"%d" % ver) + integer(6, ms))


__all__ = [
    "BOOK_TICKER",
    "DEALS",
    "DEPTH",
    "Deal",
    "Level",
    "book_ticker_body",
    "deal",
    "deals_body",
    "depth_body",
    "fields",
    "integer",
    "key",
    "level",
    "push",
    "read_book_ticker",
    "read_deals",
    "read_depth",
    "read_push",
    "string",
    "varint",
    "version",
]
