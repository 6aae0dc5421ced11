"""Periodic jobs on one clock, due at whole multiples of their periods.

Jobs whose periods divide each other fall due in the same tick (a 1 s BEV and a 2 s cloud at every
even second), so one tick's jobs can share one read-out of the map instead of each taking its own.
"""

from __future__ import annotations

import math


class Schedule:
    """``Schedule({'bev': 1.0, 'cloud': 2.0}, origin_s)``: :meth:`due` names the jobs due at ``now_s``."""

    def __init__(self, periods_s: dict[str, float], origin_s: float) -> None:
        for name, period in periods_s.items():
            if not (isinstance(period, (int, float)) and math.isfinite(period) and period > 0):
                raise ValueError(f'period of {name!r} must be a finite number of seconds > 0, got {period!r}')
        self.periods_s = dict(periods_s)
        self.origin_s = float(origin_s)
        self._next_s = {name: self.origin_s for name in periods_s}

    def due(self, now_s: float) -> set[str]:
        """The jobs due at ``now_s``; each moves on to its first multiple after ``now_s`` (missed ticks are not
        made up: a job late by several periods runs once)."""
        names = {name for name, at in self._next_s.items() if now_s >= at}
        for name in names:
            period = self.periods_s[name]
            self._next_s[name] = self.origin_s + (math.floor((now_s - self.origin_s) / period) + 1) * period
        return names

    def seconds_until_next(self, now_s: float) -> float:
        """Seconds until the next job falls due (0 when one is due already)."""
        return max(0.0, min(self._next_s.values(), default=math.inf) - now_s)
