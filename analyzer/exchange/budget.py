"""The REST weight budget of the local exchange: per IP and market, in fixed windows; 429 over
it, 418 (a ban for ``ban_s``) once a client keeps going after ``ban_after`` 429s."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class _Usage:
    window: int = -1
    used: int = 0
    rejected: int = 0  # 429s in this window
    banned_until: float = 0.0


class WeightBudget:
    """Per-IP, per-market request weight in fixed windows (``limits`` and ``windows_s`` by
    feed id)."""

    def __init__(
        self,
        limits: dict[str, int],
        windows_s: dict[str, float],
        ban_after: int | None = None,
        ban_s: float = 120.0,
    ) -> None:
        self.limits = limits
        self.windows_s = windows_s
        self.ban_after = ban_after
        self.ban_s = ban_s
        self._usage: dict[tuple[str, str], _Usage] = {}
        self.rejected = 0
        self.banned = 0

    def charge(self, ip: str, market: str, weight: int, now: float) -> tuple[int, int, float]:
        """Returns (HTTP status 200/429/418, weight used in the window, seconds to retry after)."""
        usage = self._usage.setdefault((ip, market), _Usage())
        if usage.banned_until > now:
            self.banned += 1
            return 418, usage.used, usage.banned_until - now
        window_s = self.windows_s[market]
        window = int(now // window_s)
        if window != usage.window:
            usage.window, usage.used, usage.rejected = window, 0, 0
        retry = (window + 1) * window_s - now
        if usage.used + weight > self.limits[market]:
            usage.rejected += 1
            if self.ban_after is not None and usage.rejected > self.ban_after:
                usage.banned_until = now + self.ban_s
                self.banned += 1
                return 418, usage.used, self.ban_s
            self.rejected += 1
            return 429, usage.used, retry
        usage.used += weight
        return 200, usage.used, retry
