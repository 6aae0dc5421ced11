"""Which sensor inputs have gone quiet: the node's diagnostics name them (ConceptGraphs and Khronos users report
silence when camera_info never arrives; a robot's operator needs to see which topic is missing)."""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class QuietInput:
    name: str
    topic: str
    quiet_s: float  # since the last message, or since the watch started
    never: bool  # nothing ever arrived

    def describe(self) -> str:
        since = 'nothing received' if self.never else 'no message'
        return f'{self.name} ({self.topic}): {since} for {self.quiet_s:.1f} s'


class InputWatch:
    """Arrival times of named inputs (thread-safe); :meth:`quiet` lists those silent for ``timeout_s``."""

    def __init__(self, topics: dict[str, str], timeout_s: float, now_s: float) -> None:
        self.topics = dict(topics)
        self.timeout_s = timeout_s
        self._started_s = now_s
        self._last: dict[str, float | None] = {name: None for name in topics}
        self._lock = threading.Lock()

    def seen(self, name: str, now_s: float) -> None:
        with self._lock:
            self._last[name] = now_s

    def ages(self, now_s: float) -> dict[str, float | None]:
        """Seconds since each input's last message (None: never)."""
        with self._lock:
            return {name: None if last is None else now_s - last for name, last in self._last.items()}

    def quiet(self, now_s: float) -> list[QuietInput]:
        with self._lock:
            last = dict(self._last)
        found = []
        for name, topic in self.topics.items():
            seen = last[name]
            since = seen if seen is not None else self._started_s
            if now_s - since >= self.timeout_s:
                found.append(QuietInput(name, topic, now_s - since, last[name] is None))
        return found


class RecentCounts:
    """How much running counters grew over the last ``window_s`` seconds (e.g. frames dropped lately)."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._samples: collections.deque[tuple[float, dict[str, int]]] = collections.deque()

    def add(self, now_s: float, **counts: int) -> dict[str, int]:
        """Record the counters now; each one's growth since the oldest sample still inside the window."""
        self._samples.append((now_s, counts))
        while now_s - self._samples[0][0] > self.window_s:
            self._samples.popleft()
        oldest = self._samples[0][1]
        return {name: value - oldest[name] for name, value in counts.items()}
