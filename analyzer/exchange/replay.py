"""What to replay and how: a recording, its pace, and the faults to inject into it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from analyzer.exchange.errors import ExchangeError
from analyzer.exchange.recordings import Recording

MALFORMED_KINDS = ("truncated", "nonjson", "badprice")
CLOSE_CODES = (1000, 1001, 1008, 1011)


@dataclass
class Faults:
    """Faults injected during the first pass of a replay.

    A frame position counts the recording's websocket frames from 0 (snapshots excluded); a
    fault at position N acts just before frame N would be sent.

    drop_depth  (SYMBOL, n): the n-th depth diff (from 1) of SYMBOL never goes out; the
                exchange's own book still applies it, like a venue whose message got lost.
    malformed   (position, kind): an extra frame before frame N, to the subscribers of frame
                N's stream: ``truncated`` (frame N cut in half), ``nonjson`` (an HTML error
                page), ``badprice`` (a copy of the next depth diff whose first bid price is
                not a number, to that diff's subscribers).
    close_at    (position, code): close every connection of the market with that close code
                (1000, 1001, 1008, 1011), or ``None``: abort the TCP connection without a close
                frame. The replay then waits for a subscriber again (as-fast-as-possible mode).
    stall_at    (position, seconds): the whole market sends nothing for that long, to old
                and new connections alike (reconnecting does not help); connections stay open
                and pings go on. The replay pauses: frames are late, not lost.
    freeze_at   (position, seconds): only the connections open then get no data for that
                long (they stay open, pings go on); frames released meanwhile are not sent to
                them, so one that outlives the freeze resumes with a gap. New connections are
                served at once: reconnecting heals it. As fast as possible, the replay waits
                while every subscriber is frozen.
    mute_at     (position, stream, seconds): as freeze_at, for one stream only (a stream as
                the venue names it): the connection stays up and its other streams flow.
    """

    drop_depth: list[tuple[str, int]] = field(default_factory=list)
    malformed: list[tuple[int, str]] = field(default_factory=list)
    close_at: list[tuple[int, int | None]] = field(default_factory=list)
    stall_at: list[tuple[int, float]] = field(default_factory=list)
    freeze_at: list[tuple[int, float]] = field(default_factory=list)
    mute_at: list[tuple[int, str, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.drop_depth = [(s.upper(), int(n)) for s, n in self.drop_depth]
        for _, kind in self.malformed:
            if kind not in MALFORMED_KINDS:
                raise ExchangeError(
                    f"unknown malformed frame kind {kind!r}: "
                    f"use one of {', '.join(MALFORMED_KINDS)}"
                )
        for _, code in self.close_at:
            if code is not None and code not in CLOSE_CODES:
                raise ExchangeError(
                    f"close code {code} not supported: use one of {CLOSE_CODES} or abort"
                )

    @classmethod
    def from_cli(
        cls,
        drop_depth: Sequence[str] = (),
        malformed: Sequence[str] = (),
        close_at: Sequence[str] = (),
        stall_at: Sequence[str] = (),
        freeze_at: Sequence[str] = (),
    ) -> Faults:
        """From ``SYMBOL:N``, ``POS:KIND``, ``POS:CODE|abort``, ``POS:SECONDS`` strings."""

        def split(text: str, what: str) -> tuple[str, str]:
            left, sep, right = text.rpartition(":")
            if not sep or not left or not right:
                raise ExchangeError(f"bad {what} {text!r}")
            return left, right

        def number(text: str, what: str, kind: type = int) -> int | float:
            try:
                return kind(text)
            except ValueError:
                raise ExchangeError(f"bad {what}: {text!r} is not a number") from None

        drops = []
        for item in drop_depth:
            sym, n = split(item, "--drop-depth (SYMBOL:N)")
            drops.append((sym, int(number(n, "--drop-depth"))))
        bad = []
        for item in malformed:
            pos, kind = split(item, "--malformed (POS:KIND)")
            bad.append((int(number(pos, "--malformed")), kind))
        closes: list[tuple[int, int | None]] = []
        for item in close_at:
            pos, code = split(item, "--close-at (POS:CODE|abort)")
            closes.append(
                (
                    int(number(pos, "--close-at")),
                    None if code == "abort" else int(number(code, "--close-at")),
                )
            )

        def timed(items: Sequence[str], flag: str) -> list[tuple[int, float]]:
            out = []
            for item in items:
                pos, secs = split(item, f"{flag} (POS:SECONDS)")
                out.append((int(number(pos, flag)), float(number(secs, flag, float))))
            return out

        return cls(
            drops, bad, closes, timed(stall_at, "--stall-at"), timed(freeze_at, "--freeze-at")
        )

    def positions(self) -> list[tuple[int, str, object]]:
        """Position-triggered faults, in order: (position, what, argument)."""
        out: list[tuple[int, str, object]] = [(p, "malformed", k) for p, k in self.malformed]
        out += [(p, "close", c) for p, c in self.close_at]
        out += [(p, "stall", s) for p, s in self.stall_at]
        out += [(p, "freeze", s) for p, s in self.freeze_at]
        out += [(p, "mute", (stream, s)) for p, stream, s in self.mute_at]
        return sorted(out, key=lambda item: item[0])


class Replay:
    """A recording of one market replayed by the local exchange.

    speed: 1.0 is the recorded pace (local timestamps), N is N times faster, 0 is as fast as
    the subscribed clients read (their websocket backpressure paces the replay; it pauses while
    no client is subscribed). loop: start over at the end instead of going idle.
    """

    def __init__(
        self,
        recording: Recording,
        *,
        speed: float = 0.0,
        loop: bool = False,
        faults: Faults | None = None,
    ) -> None:
        if speed < 0:
            raise ExchangeError(
                f"speed must be 0 (as fast as clients read) or positive, not {speed}"
            )
        self.recording = recording
        self.speed = float(speed)
        self.loop = loop
        self.faults = faults or Faults()

    @classmethod
    def from_path(
        cls,
        path: str | Path | Sequence[str | Path],
        market: str | None = None,
        *,
        speed: float = 0.0,
        loop: bool = False,
        faults: Faults | None = None,
    ) -> Replay:
        """A file, a folder (all its recording files in name order, or a cryptofeed capture),
        or a list of them replayed one after the other; market inferred unless given."""
        return cls(Recording.open(path, market), speed=speed, loop=loop, faults=faults)

    @property
    def market(self) -> str:
        return self.recording.market

    @property
    def feed(self) -> str:
        return self.recording.feed
