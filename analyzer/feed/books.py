"""Keeping every order book of a feed exactly in sync with the venue.

Per symbol: buffer changes until a REST snapshot arrives, drop what the snapshot already
contains, apply the first change that bridges it, then require each change to follow the last
(the venue's ``SequenceRules``). A gap, a crossed book or a disagreement with the venue's own
best bid/ask marks that book invalid at once (nothing may be computed from it), writes a ``Gap``
and asks for a fresh snapshot of that symbol alone; the other books carry on.

Cross-check with the venue's top-of-book stream: a venue quote carrying update id ``b`` shows
the book as it was after every update ``<= b``. Our book passes through the states ``S(u_k)``
after each change ``[U_k, u_k]``; ``S(b)`` is observable exactly when ``u_k <= b < U_{k+1}``. Those
quotes are compared field by field; quotes whose id falls inside a change are not comparable.

Snapshot depth: a venue's REST snapshot holds at most ``snapshot_levels`` levels a side (e.g.
``depth?limit=1000``) and the diffs only mention levels that change, so a level beyond a full
side's last one that no diff has touched is never seen (venues document this). The book is
exact from its top down to that last level (the side's *horizon*). A top beyond it is usually
still right (levels near the top change all the time, so the diffs have shown them), but may
miss such a level: a venue quote that disagrees there is a ``beyond_snapshot`` gap, not a
``bbo_mismatch`` (which means the diffs were applied wrongly); both resync the book.

Refresh. The horizon is fixed at the snapshot, so as the price drifts towards one side's horizon
the exact part of that side shrinks (the analytics flag depth bands past it as lower bounds) and
its top may end up beyond it. Once a side's best price has covered ``refresh_fraction`` of the
way from the snapshot's mid to its horizon, the keeper takes a fresh snapshot while the book
stays live, logging the changes applied meanwhile. Once the book has reached the snapshot, the
snapshot's levels the book lacks and that no change since the snapshot has touched are added
(``_merge``): the book is then exact out to whichever horizon lies further, which only moves out
(at most one refresh per ``refresh_seconds`` of a book; a snapshot older than the request, one
that fails, or one that has not come after ``SNAPSHOT_TIMEOUT_NS`` abandons the refresh).

Snapshots on the socket (``ws_snapshots``: venues that send a book's snapshot when its stream is
subscribed, and may send one again at any time). A snapshot change replaces the book whatever
its state; the changes after it must follow it. Asking for a snapshot (the first, or a resync)
is the venue's resubscription of that book's stream alone; nothing needs bridging or refreshing.

Gap fills. A venue that serves its latest book changes over REST (``request_gap_fill``: the
last thousand commits of a book, say) has a gap in a live book mended from them first: the book
keeps its levels but is out of sync (``FILLING``: nothing computed from it, changes buffered)
until the changes come; those after the book's last id and the buffered ones are applied while
each follows the last (a ``gap`` row with action ``fill``). If they do not reach across the gap
(the venue's window is too short), fail to come within ``SNAPSHOT_TIMEOUT_NS`` or do not read,
the book resyncs from a snapshot as for any gap (a ``fill_failed`` row, action ``resync``).

Checksums. A venue that sends a checksum of its book with every change (``rules.checksum``) has
it compared after the change is applied, whenever it is non-zero: a difference is a
``checksum`` gap and a resync of that book alone.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable

from analyzer.events import BookChange, Gap, Quote
from analyzer.feed.book import OrderBook
from analyzer.venues.base import SequenceRules

log = logging.getLogger(__name__)

Top = tuple[float, float, float, float]

SYNCING = 0  # waiting for a snapshot, buffering changes
BRIDGING = 1  # snapshot applied, the next change must bridge it
LIVE = 2
FILLING = 3  # a gap in a live book: its levels kept, the missing changes asked for (doc)

# a snapshot not come after this is taken as lost (a request the REST client gave up on): a
# refresh is abandoned, a resync asks again
SNAPSHOT_TIMEOUT_NS = 30 * 1_000_000_000


class SymbolBook:
    __slots__ = (
        "book",
        "buffer",
        "early_quotes",
        "history",
        "horizon",
        "last_exchange_ns",
        "last_id",
        "last_ns",
        "pending",
        "refresh",
        "refreshed_ns",
        "requested_ns",
        "snapshot_requested",
        "state",
        "symbol",
        "top",
        "triggers",
        "updates",
    )

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.book = OrderBook()
        self.state = SYNCING
        self.last_id = -1
        self.last_ns = 0  # local time of the last applied change
        self.last_exchange_ns = 0  # venue time of the last applied change (freshness)
        self.buffer: list[BookChange] = []
        self.snapshot_requested = False
        self.requested_ns = 0  # local time of the last snapshot request
        self.top: Top | None = None
        # (lowest bid, highest ask) the book is exact to: a full snapshot side's last level
        self.horizon = (-math.inf, math.inf)
        # a best bid below / best ask above these asks for a refresh (module doc)
        self.triggers = (-math.inf, math.inf)
        self.refresh: Refresh | None = None
        self.refreshed_ns = 0  # local time of the last refresh request
        # (first id, last id, top after it) of the last applied changes, for the BBO check
        self.history: deque[tuple[int, int, Top | None]] = deque(maxlen=256)
        self.pending: list[Quote] = []
        # venue quotes that arrived while the book was syncing: checked once it is live
        self.early_quotes: deque[Quote] = deque(maxlen=5000)
        self.updates = 0

    @property
    def in_sync(self) -> bool:
        return self.state == LIVE


class Refresh:
    """A refresh in progress: the live book's last id when the snapshot was asked for, the
    changes it applied since, and the snapshot once it came (kept until the book reaches it)."""

    __slots__ = ("log", "snapshot", "start_id")

    def __init__(self, start_id: int) -> None:
        self.start_id = start_id
        self.log: list[BookChange] = []
        self.snapshot: BookChange | None = None


class BookStats:
    __slots__ = (
        "bbo_compared",
        "bbo_mismatched",
        "beyond_snapshot",
        "buffer_overflows",
        "checksums_failed",
        "checksums_verified",
        "crossed",
        "gap_fills",
        "gap_fills_failed",
        "gaps",
        "refreshes",
        "refreshes_abandoned",
        "resyncs",
        "snapshots_applied",
        "stale_dropped",
    )

    def __init__(self) -> None:
        self.gaps = 0  # sequence breaks
        self.crossed = 0
        self.beyond_snapshot = 0  # of bbo_mismatched: the book's top beyond the snapshot's depth
        self.resyncs = 0  # snapshots requested after the first
        self.refreshes = 0  # fresh snapshots merged into a live book
        self.refreshes_abandoned = 0  # a snapshot older than the request, failed or lost; a gap
        self.snapshots_applied = 0
        self.stale_dropped = 0  # changes already contained in the book (duplicates, overlap)
        self.bbo_compared = 0
        self.bbo_mismatched = 0
        self.buffer_overflows = 0
        self.checksums_verified = 0
        self.checksums_failed = 0
        self.gap_fills = 0  # gaps mended from the venue's latest changes (module doc)
        self.gap_fills_failed = 0  # ... that could not be: a snapshot resync followed


class BookKeeper:
    """The books of one feed.

    ``request_snapshot(symbol)`` must eventually call ``on_snapshot`` (through the venue's
    rate-limited REST queue); ``on_gap`` receives every ``Gap``; ``on_top`` receives a
    ``Quote(source="book")`` whenever the rebuilt book's best bid/ask changes.
    ``snapshot_levels``: the most levels a side of a snapshot holds (the ``limit`` requested);
    None if snapshots are whole books. ``ws_snapshots``: snapshots come on the socket (module
    doc); ``request_snapshot`` then resubscribes the book's stream. ``refresh_fraction`` /
    ``refresh_seconds``: when and how often a live book is refreshed (module doc); a fraction of
    0 never refreshes. ``request_gap_fill(symbol, last_id)``: asks for the venue's latest
    changes (venues that serve them), which must eventually reach ``on_gap_fill`` or
    ``gap_fill_failed`` (module doc).
    """

    def __init__(
        self,
        venue: str,
        symbols: list[str],
        rules: SequenceRules,
        request_snapshot: Callable[[str], None],
        on_gap: Callable[[Gap], None],
        on_top: Callable[[Quote], None],
        *,
        buffer_limit: int = 20_000,
        resync_on_bbo_mismatch: bool = True,
        snapshot_levels: int | None = None,
        refresh_fraction: float = 0.5,
        refresh_seconds: float = 60.0,
        ws_snapshots: bool = False,
        request_gap_fill: Callable[[str, int], None] | None = None,
    ) -> None:
        self.venue = venue
        self.request_gap_fill = request_gap_fill
        self._mending = False  # applying a gap fill's changes
        self.rules = rules
        self.checksum = rules.checksum
        self.ws_snapshots = ws_snapshots
        self.books = {s: SymbolBook(s) for s in symbols}
        self.request_snapshot = request_snapshot
        self.on_gap = on_gap
        self.on_top = on_top
        self.buffer_limit = buffer_limit
        self.resync_on_bbo_mismatch = resync_on_bbo_mismatch
        self.snapshot_levels = snapshot_levels
        self.refresh_fraction = refresh_fraction
        self.refresh_ns = int(refresh_seconds * 1e9)
        self.stats = BookStats()

    def start(self) -> None:
        """Request the first snapshot of every book (on the socket: the subscription does, so
        only its timeout is started)."""
        for sb in self.books.values():
            if self.ws_snapshots:
                sb.snapshot_requested = True
                sb.requested_ns = time.time_ns()
            else:
                self._request(sb)

    def add(self, symbol: str, *, request: bool = True) -> None:
        """Keep one more book (a new listing); its snapshot is requested at once unless
        ``request`` is false (before ``start``)."""
        if symbol not in self.books:
            self.books[symbol] = sb = SymbolBook(symbol)
            if request:
                self._request(sb)

    def remove(self, symbol: str) -> None:
        """Forget a book (an expired contract): no resync, no samples, late frames ignored."""
        self.books.pop(symbol, None)

    # -- hot path --

    def on_change(self, ev: BookChange) -> None:
        sb = self.books.get(ev.symbol)
        if sb is None:
            return
        if ev.is_snapshot and self.ws_snapshots:  # replaces the book whatever its state
            self._install_ws(sb, ev)
            return
        if sb.state == LIVE:
            # the rule first: some venues repeat an id (a change of nothing) or restart their
            # ids lower, and say so by the pointer to the previous one
            if self.rules.follows(sb.last_id, ev):
                self._apply(sb, ev)
            elif ev.last_id <= sb.last_id:
                self.stats.stale_dropped += 1
            else:
                self.stats.gaps += 1
                follows_id = ev.prev_id if ev.prev_id >= 0 else ev.first_id - 1
                if (self.request_gap_fill is not None and sb.refresh is None
                        and not self._mending):  # (a gap within a fill: a snapshot)
                    self._fill(sb, ev, follows_id)
                    return
                self._invalidate(sb, "gap", sb.last_id, follows_id)
                sb.buffer.append(ev)
            return
        if sb.state == FILLING:
            sb.buffer.append(ev)
            if (len(sb.buffer) > self.buffer_limit
                    or ev.ts_local - sb.requested_ns > SNAPSHOT_TIMEOUT_NS):
                self._fill_failed(sb)  # (a lost request: its answer is ignored if it comes)
            return
        if sb.state == BRIDGING:
            if self.rules.is_stale(sb.last_id, ev):
                self.stats.stale_dropped += 1
            elif self.rules.bridges(sb.last_id, ev):
                sb.state = LIVE
                self._apply(sb, ev)
                self._check_early_quotes(sb)
            else:  # the stream is already past the snapshot: it is too old
                sb.state = SYNCING
                sb.buffer.append(ev)
                self._request(sb)
            return
        buf = sb.buffer
        buf.append(ev)
        if len(buf) > self.buffer_limit:
            del buf[: len(buf) // 2]
            self.stats.buffer_overflows += 1
        if not sb.snapshot_requested:
            self._request(sb)
        elif ev.ts_local - sb.requested_ns > SNAPSHOT_TIMEOUT_NS:
            sb.snapshot_requested = False  # lost: ask again
            self._request(sb)

    def _apply(self, sb: SymbolBook, ev: BookChange) -> None:
        book = sb.book
        book.apply(ev.bids, ev.asks)
        sb.last_id = ev.last_id
        sb.last_ns = ev.ts_local
        sb.last_exchange_ns = ev.ts_exchange
        sb.updates += 1
        if ev.checksum and self.checksum is not None and not self._checksum_ok(sb, ev):
            return
        top = book.top()
        if top is not None and top[0] >= top[2]:
            self.stats.crossed += 1
            self._invalidate(sb, "crossed", -1, ev.last_id)
            return
        if sb.pending:
            self._settle_pending(sb, ev.first_id, ev.last_id, top)
            if sb.state != LIVE:
                return
        sb.history.append((ev.first_id, ev.last_id, top))
        if sb.refresh is not None:
            self._follow(sb, ev)
            top = sb.book.top()  # the merged book's, if the refresh just completed
        if top != sb.top:
            self._publish_top(sb, top)
            if top is not None:
                lo, hi = sb.triggers
                if (top[0] < lo or top[2] > hi) and sb.refresh is None:
                    self._refresh(sb, ev.ts_local)

    def _publish_top(self, sb: SymbolBook, top: Top | None) -> None:
        """A new best bid/ask of the book, as of its last applied change."""
        sb.top = top
        if top is not None:
            self.on_top(Quote(self.venue, sb.symbol, sb.last_exchange_ns, sb.last_ns, top[0],
                              top[1], top[2], top[3], sb.last_id, "book"))

    def on_venue_quote(self, q: Quote) -> None:
        """Compare the venue's own best bid/ask with the book where the ids make it exact."""
        if q.update_id < 0:  # no id: never exactly comparable
            return
        sb = self.books.get(q.symbol)
        if sb is None:
            return
        if sb.state != LIVE:
            sb.early_quotes.append(q)
            return
        b = q.update_id
        hist = sb.history
        if b >= hist[-1][1]:
            if b == hist[-1][1]:
                self._compare(sb, hist[-1][2], q)
            else:
                sb.pending.append(q)  # decided when the next change shows where it starts
            return
        for i in range(len(hist) - 2, -1, -1):
            _, last, top = hist[i]
            if last <= b:
                if b < hist[i + 1][0]:
                    self._compare(sb, top, q)
                return

    def _check_early_quotes(self, sb: SymbolBook) -> None:
        early = list(sb.early_quotes)
        sb.early_quotes.clear()
        for q in early:
            self.on_venue_quote(q)

    def _settle_pending(self, sb: SymbolBook, next_first: int, next_last: int,
                        next_top: Top | None) -> None:
        """A change [next_first, next_last] arrived: quotes waiting for it are decided."""
        keep = []
        before = sb.history[-1][2]
        for q in sb.pending:
            b = q.update_id
            if b < next_first:
                self._compare(sb, before, q)
            elif b == next_last:
                self._compare(sb, next_top, q)
            elif b > next_last:
                keep.append(q)
        sb.pending = keep

    def _compare(self, sb: SymbolBook, top: Top | None, q: Quote) -> None:
        self.stats.bbo_compared += 1
        if top == (q.bid_price, q.bid_size, q.ask_price, q.ask_size):
            return
        self.stats.bbo_mismatched += 1
        reason = "beyond_snapshot" if self._beyond_horizon(sb, top) else "bbo_mismatch"
        if reason == "beyond_snapshot":
            self.stats.beyond_snapshot += 1
        log.warning(
            "%s %s: book top %s differs from the venue's best bid/ask %s at update %d (%s)",
            self.venue, sb.symbol, top, q, q.update_id, reason,
        )
        if self.resync_on_bbo_mismatch and sb.state == LIVE:
            self._invalidate(sb, reason, q.update_id, sb.last_id)

    @staticmethod
    def _beyond_horizon(sb: SymbolBook, top: Top | None) -> bool:
        """The book's top lies beyond the last level of a full snapshot side."""
        lo, hi = sb.horizon
        return top is not None and (top[0] < lo or top[2] > hi)

    # -- snapshots and resyncs --

    def _checksum_ok(self, sb: SymbolBook, ev: BookChange) -> bool:
        assert self.checksum is not None
        ours = self.checksum(sb.symbol, sb.book)
        if ours == ev.checksum:
            self.stats.checksums_verified += 1
            return True
        self.stats.checksums_failed += 1
        self._invalidate(sb, "checksum", ev.checksum, ours)
        return False

    def _install_ws(self, sb: SymbolBook, ev: BookChange) -> None:
        """A snapshot from the socket: the book from scratch, live at once (the stream is
        ordered: every change before it is older, every change after it must follow it)."""
        sb.refresh = None
        sb.snapshot_requested = False
        sb.buffer = []
        sb.history.clear()
        sb.pending.clear()
        sb.top = None
        self.stats.snapshots_applied += 1
        sb.book.apply_snapshot(ev.bids, ev.asks)
        sb.last_id = ev.last_id
        sb.last_ns = ev.ts_local
        sb.last_exchange_ns = ev.ts_exchange or ev.ts_local
        sb.state = LIVE
        if ev.checksum and self.checksum is not None and not self._checksum_ok(sb, ev):
            return
        top = sb.book.top()
        sb.history.append((ev.last_id, ev.last_id, top))
        if top is not None and top[0] >= top[2]:
            self.stats.crossed += 1
            self._invalidate(sb, "crossed", -1, ev.last_id)
            return
        self._publish_top(sb, top)
        self._check_early_quotes(sb)

    def on_snapshot(self, ev: BookChange) -> None:
        sb = self.books.get(ev.symbol)
        if sb is None:
            return
        sb.snapshot_requested = False
        if sb.state == LIVE:
            r = sb.refresh
            if r is not None and r.snapshot is None:
                if ev.last_id < r.start_id:  # older than the log: try again later
                    self._abandon(sb)
                    return
                r.snapshot = ev
                if sb.last_id >= ev.last_id:
                    self._merge(sb)  # else when the book reaches it
            return  # else a late answer to a request that is no longer needed
        sb.refresh = None
        self.stats.snapshots_applied += 1
        sb.book.apply_snapshot(ev.bids, ev.asks)
        snapshot_id = ev.last_id
        sb.last_id = snapshot_id
        sb.last_ns = ev.ts_local
        sb.last_exchange_ns = ev.ts_exchange or ev.ts_local  # spot snapshots carry no time
        sb.history.clear()
        sb.pending.clear()
        sb.top = None
        self._set_horizon(sb, self._horizon(ev), sb.book.top())
        sb.history.append((snapshot_id, snapshot_id, sb.book.top()))
        buffered = [e for e in sb.buffer if not self.rules.is_stale(snapshot_id, e)]
        self.stats.stale_dropped += len(sb.buffer) - len(buffered)
        sb.buffer = []
        sb.state = BRIDGING
        for i, e in enumerate(buffered):
            self.on_change(e)
            if sb.state == SYNCING:
                # too old or a gap: a new snapshot was requested; keep the rest buffered
                sb.buffer.extend(buffered[i + 1 :])
                break
        if sb.state == LIVE:
            self._check_early_quotes(sb)

    def _horizon(self, ev: BookChange) -> tuple[float, float]:
        """(lowest bid, highest ask) a snapshot shows the book exact to."""
        full = self.snapshot_levels
        return (
            min(p for p, _ in ev.bids) if full and len(ev.bids) >= full else -math.inf,
            max(p for p, _ in ev.asks) if full and len(ev.asks) >= full else math.inf,
        )

    def _set_horizon(self, sb: SymbolBook, horizon: tuple[float, float], top: Top | None
                     ) -> None:
        """The book's horizon, and the best prices that will ask for a refresh: a side's best
        price ``refresh_fraction`` of the way from the mid to its horizon."""
        sb.horizon = lo, hi = horizon
        f = self.refresh_fraction
        if top is None or not f:
            sb.triggers = (-math.inf, math.inf)
            return
        mid = (top[0] + top[2]) / 2
        sb.triggers = (lo + (1 - f) * (mid - lo), hi - (1 - f) * (hi - mid))

    def _refresh(self, sb: SymbolBook, now_ns: int) -> None:
        """Ask for a fresh snapshot of a live book (module doc), at most once a period."""
        if sb.snapshot_requested or now_ns - sb.refreshed_ns < self.refresh_ns:
            return
        sb.refreshed_ns = now_ns
        sb.refresh = Refresh(sb.last_id)
        self._request(sb, refresh=True)

    def _follow(self, sb: SymbolBook, ev: BookChange) -> None:
        """A change the live book applied during a refresh: logged (the merge must not take a
        snapshot level it changed); the merge once the book has reached the snapshot."""
        r = sb.refresh
        assert r is not None
        r.log.append(ev)
        if r.snapshot is not None:
            if sb.last_id >= r.snapshot.last_id:
                self._merge(sb)
        elif len(r.log) > self.buffer_limit or ev.ts_local - sb.refreshed_ns > SNAPSHOT_TIMEOUT_NS:
            # its snapshot is not coming (a failed request): let a resync ask again
            self._abandon(sb)
            sb.snapshot_requested = False

    def _merge(self, sb: SymbolBook) -> None:
        """Complete a refresh: the live book is right wherever it holds a level, and exact
        within its horizon; the snapshot is exact within its own. So the snapshot's levels the
        book lacks, and no change since the snapshot has touched, are the ones the book could
        not see: added, the book is exact to whichever horizon lies further out."""
        r = sb.refresh
        assert r is not None and r.snapshot is not None
        snap = r.snapshot
        after = [e for e in r.log if not self.rules.is_stale(snap.last_id, e)]
        bids = {p for e in after for p, _ in e.bids}
        asks = {p for e in after for p, _ in e.asks}
        sb.book.add_missing([lv for lv in snap.bids if lv[0] not in bids],
                            [lv for lv in snap.asks if lv[0] not in asks])
        sb.refresh = None
        self.stats.refreshes += 1
        lo, hi = self._horizon(snap)
        top = sb.book.top()
        self._set_horizon(sb, (min(lo, sb.horizon[0]), max(hi, sb.horizon[1])), top)
        if sb.history:  # the BBO check compares quotes at this id with the merged book
            first, last, _ = sb.history[-1]
            sb.history[-1] = (first, last, top)
        if top != sb.top:  # the top was a level the book had not seen
            self._publish_top(sb, top)

    def _abandon(self, sb: SymbolBook) -> None:
        sb.refresh = None
        self.stats.refreshes_abandoned += 1

    def _request(self, sb: SymbolBook, *, refresh: bool = False) -> None:
        if sb.snapshot_requested:
            return
        if sb.last_id >= 0 and not refresh:  # this book was synced before: a resync
            self.stats.resyncs += 1
        sb.snapshot_requested = True
        sb.requested_ns = time.time_ns()
        self.request_snapshot(sb.symbol)

    def _invalidate(self, sb: SymbolBook, reason: str, expected: int, received: int) -> None:
        if sb.refresh is not None:
            self._abandon(sb)  # a pending snapshot now serves the resync
        sb.state = SYNCING
        sb.history.clear()
        sb.pending.clear()
        sb.early_quotes.clear()
        sb.top = None
        self.on_gap(Gap(self.venue, sb.symbol, sb.last_ns, reason, expected, received))
        self._request(sb)

    # -- gap fills --

    def _fill(self, sb: SymbolBook, ev: BookChange, follows_id: int) -> None:
        """A gap in a live book: ask for the venue's latest changes (module doc)."""
        sb.state = FILLING
        sb.history.clear()
        sb.pending.clear()
        sb.top = None
        sb.buffer = [ev]
        sb.requested_ns = ev.ts_local
        self.on_gap(Gap(self.venue, sb.symbol, sb.last_ns, "gap", sb.last_id, follows_id,
                        "fill"))
        assert self.request_gap_fill is not None
        self.request_gap_fill(sb.symbol, sb.last_id)

    def on_gap_fill(self, symbol: str, changes: list[BookChange]) -> None:
        """The venue's latest changes of a book waiting for them: those after the book and the
        buffered ones, in id order, applied while each follows the last."""
        sb = self.books.get(symbol)
        if sb is None or sb.state != FILLING:
            return  # late: the book has resynced meanwhile
        merged = {e.last_id: e for e in changes if e.last_id > sb.last_id}
        merged.update((e.last_id, e) for e in sb.buffer if e.last_id > sb.last_id)
        todo = [merged[k] for k in sorted(merged)]
        sb.buffer = []
        if not todo or not self.rules.follows(sb.last_id, todo[0]):
            sb.buffer = todo  # the venue's window does not reach back to the book
            self._fill_failed(sb)
            return
        sb.state = LIVE
        sb.history.append((sb.last_id, sb.last_id, sb.book.top()))
        self._mending = True
        try:
            for i, e in enumerate(todo):
                self.on_change(e)
                if sb.state != LIVE:  # another gap, crossed or a checksum: resyncing
                    sb.buffer.extend(todo[i + 1 :])
                    return
        finally:
            self._mending = False
        self.stats.gap_fills += 1
        self._check_early_quotes(sb)

    def gap_fill_failed(self, symbol: str) -> None:
        """The venue's latest changes could not be read: resync from a snapshot."""
        sb = self.books.get(symbol)
        if sb is not None and sb.state == FILLING:
            self._fill_failed(sb)

    def _fill_failed(self, sb: SymbolBook) -> None:
        self.stats.gap_fills_failed += 1
        sb.state = SYNCING  # the buffered changes wait for the snapshot
        self.on_gap(Gap(self.venue, sb.symbol, sb.last_ns, "fill_failed", sb.last_id, -1))
        self._request(sb)

    def snapshot_failed(self, symbol: str) -> None:
        """A requested snapshot could not be read: a refresh is abandoned (the book stays
        live); a book waiting for it resyncs."""
        sb = self.books.get(symbol)
        if sb is None:
            return
        sb.snapshot_requested = False
        if sb.state == LIVE:
            if sb.refresh is not None:
                self._abandon(sb)
            return
        self.invalidate(symbol, "bad_snapshot")

    def invalidate(self, symbol: str, reason: str) -> None:
        """Distrust a book (e.g. a stalled stream) and resync it."""
        sb = self.books.get(symbol)
        if sb is not None and sb.state != SYNCING:
            self._invalidate(sb, reason, -1, -1)
