"""Frames waiting for the map thread: bounded, and under overload the newest ones are integrated.

The sensor callbacks :meth:`FrameQueue.put` each synchronised frame and return at once; the map
thread waits for work (:meth:`FrameQueue.wait`), looks at the next frame (:meth:`FrameQueue.peek`: it
may still wait for its odometry) and removes it (:meth:`FrameQueue.pop`). Two bounds
keep latency and memory fixed whatever the input rate:

- at most ``capacity`` frames wait; a frame arriving at a full queue pushes the oldest out
  (counted as ``dropped_queue_full``);
- a frame that has waited longer than ``max_wait_s`` while a newer one waits behind it is skipped
  (``frames_skipped_behind``): when integration cannot keep up, the map takes the newest frames at a
  lower rate (an adaptive stride) instead of falling further behind. Short stalls (an output
  extraction, a save) are caught up: only a backlog older than ``max_wait_s`` is skipped.

:attr:`FrameQueue.overload` tells whether the stride is engaged now (frames were skipped in the last
``overload_window_s``), and :meth:`FrameQueue.peek` returns a note the first time it engages, so the
node logs it once, with its reason.
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar('T')


@dataclass(frozen=True)
class Queued(Generic[T]):
    """A frame and when it arrived (monotonic seconds)."""

    item: T
    arrival_s: float


class FrameQueue(Generic[T]):
    """See the module docstring. Thread-safe: ``put`` from any thread, ``take``/``wait`` from one."""

    def __init__(self, capacity: int, max_wait_s: float, overload_window_s: float = 5.0) -> None:
        """``max_wait_s`` 0: never skip (recorded data played reliably: every frame is integrated)."""
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f'FrameQueue capacity must be an integer >= 1, got {capacity!r}')
        if not max_wait_s >= 0.0:
            raise ValueError(f'FrameQueue max_wait_s must be >= 0, got {max_wait_s!r}')
        self.capacity = capacity
        self.max_wait_s = float(max_wait_s)
        self.overload_window_s = float(overload_window_s)
        self.counts: collections.Counter[str] = collections.Counter()
        self._frames: collections.deque[Queued[T]] = collections.deque()
        self._ready = threading.Condition()
        self._signalled = False
        self._last_skip_s: float | None = None
        self._engaged_once = False

    def __len__(self) -> int:
        return len(self._frames)

    def put(self, item: T, arrival_s: float) -> bool:
        """Queue a frame; False when the queue was full and its oldest frame was dropped to make room."""
        with self._ready:
            full = len(self._frames) >= self.capacity
            if full:
                self._frames.popleft()
                self.counts['dropped_queue_full'] += 1
            self._frames.append(Queued(item, arrival_s))
            self._signalled = True
            self._ready.notify()
        return not full

    def notify(self) -> None:
        """Wake :meth:`wait` (something other than a frame needs the map thread: a task, odometry)."""
        with self._ready:
            self._signalled = True
            self._ready.notify()

    def wait(self, timeout_s: float) -> bool:
        """Block until a frame was put or :meth:`notify` called since the last wait, or ``timeout_s`` passed."""
        with self._ready:
            if not self._signalled:
                self._ready.wait(max(0.0, timeout_s))
            signalled, self._signalled = self._signalled, False
        return signalled

    def clear(self) -> int:
        """Forget every queued frame (time jumped backwards); how many there were."""
        with self._ready:
            count = len(self._frames)
            self._frames.clear()
        return count

    def peek(self, now_s: float) -> tuple[Queued[T] | None, str]:
        """The frame to integrate next (left in the queue), after skipping what waited too long; and a note,
        non-empty the first time skipping engages."""
        note = ''
        with self._ready:
            if self.max_wait_s > 0.0:
                skipped = 0
                while len(self._frames) > 1 and now_s - self._frames[0].arrival_s > self.max_wait_s:
                    self._frames.popleft()
                    skipped += 1
                if skipped:
                    self.counts['frames_skipped_behind'] += skipped
                    self._last_skip_s = now_s
                    if not self._engaged_once:
                        self._engaged_once = True
                        note = (
                            f'{skipped} frame(s) waited more than {self.max_wait_s * 1000:.0f} ms with newer ones '
                            'behind them'
                        )
            head = self._frames[0] if self._frames else None
        return head, note

    def pop(self, head: Queued[T]) -> None:
        """Remove ``head`` (what :meth:`peek` gave) if it is still at the head: a :meth:`clear` (time jumped back)
        between the two must not take a newer frame with it."""
        with self._ready:
            if self._frames and self._frames[0] is head:
                self._frames.popleft()

    def overload(self, now_s: float) -> bool:
        """True while the adaptive stride is engaged: frames were skipped in the last ``overload_window_s``."""
        return self._last_skip_s is not None and now_s - self._last_skip_s <= self.overload_window_s
