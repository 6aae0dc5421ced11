"""A stand-in for ``message_filters`` where it is not installed.

ROS distributions ship the package; the ROS 2 wheels on PyPI do not. Nodes
import ``Subscriber`` and ``ApproximateTimeSynchronizer`` from here: the real
classes where ``message_filters`` imports, the small implementations below
otherwise (same public interface for what this project uses).
``USING_MESSAGE_FILTERS`` says which. The fallbacks stay importable as
``_Subscriber`` and ``_ApproximateTimeSynchronizer`` so that tests exercise
them everywhere. (Images need no stand-in: they are decoded by the package's
own ROS-free :mod:`gpt4scene_ros.io.messages`.)
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque

import numpy as np

_logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------
# message_filters
# ---------------------------------------------------------------------------


class _SimpleFilter:
    """A message source: ``registerCallback`` connects outputs, ``signalMessage`` calls them."""

    def __init__(self):
        self._callbacks = {}
        self._next_connection = 0

    def registerCallback(self, callback, *args) -> int:  # noqa: N802 - message_filters' name
        """Call ``callback(*messages, *args)`` for every output; returns a connection id."""
        connection = self._next_connection
        self._next_connection += 1
        self._callbacks[connection] = (callback, args)
        return connection

    def signalMessage(self, *messages) -> None:  # noqa: N802 - message_filters' name
        for callback, args in list(self._callbacks.values()):
            callback(*(messages + args))


class _Subscriber(_SimpleFilter):
    """A filter fed by a ROS subscription: ``Subscriber(node, msg_type, topic, qos_profile=10)``.

    Further keyword arguments (``callback_group``, ...) go to ``node.create_subscription``.
    """

    def __init__(self, node, msg_type, topic: str, qos_profile=10, **kwargs):
        super().__init__()
        self.node = node
        self.topic = topic
        self.sub = node.create_subscription(msg_type, topic, self.signalMessage, qos_profile, **kwargs)

    def getTopic(self) -> str:  # noqa: N802 - message_filters' name
        return self.sub.topic_name


def _finite(value) -> bool:
    """math.isfinite, False (not OverflowError) for an int too large for a float."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _stamp_ns(msg) -> int:
    try:
        stamp = msg.header.stamp
    except AttributeError:
        raise TypeError(f'ApproximateTimeSynchronizer needs messages with a header, got {type(msg).__name__}') from None
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


class _ApproximateTimeSynchronizer(_SimpleFilter):
    """Emit one message per input whose header stamps lie within ``slop`` seconds of each other.

    ``ApproximateTimeSynchronizer(inputs, queue_size, slop)``; every input is a
    filter with ``registerCallback`` (e.g. a ``Subscriber``). Registered
    callbacks get the messages in input order, then their extra arguments.

    Algorithm (stamps are compared as integer nanoseconds):

    1. Each input has a queue of ``(stamp, message)`` in arrival order, at most
       ``queue_size`` long; an arriving message beyond that drops the oldest
       one of its queue.
    2. A message whose stamp is older than the previous message of the same
       input means time went backwards (a bag looping, a simulator restart):
       all queues are cleared and matching starts afresh with this message.
       (A message of another input still in flight from before the jump is
       queued, and that input's next, jumped message resets once more.)
    3. While every queue holds a message, the *pivot* is the newest of the
       queues' oldest stamps. Every possible set contains a message at or
       after the pivot (the pivot's queue has nothing older), so a set lies in
       a window ``[w, w + slop]`` with ``pivot - slop <= w <= pivot``.

       a. For each queue take the message nearest the pivot. If these lie
          within ``slop`` of each other, that is the set.
       b. Otherwise try the windows starting at each queued stamp in
          ``[pivot - slop, pivot]``, oldest first; in the first window that
          holds a message of every queue, take per queue the message in the
          window nearest the pivot.
       c. A set found is emitted, and in each queue its message and every
          older one are discarded. If none is found, the oldest message
          overall is dropped: no set can ever contain it, since later
          messages of an input are never older than the ones queued.

    ``dropped_count`` counts messages discarded unmatched, ``reset_count`` the
    resets of step 2. Thread safe; callbacks run under the synchroniser's lock,
    in stamp order.
    """

    def __init__(self, fs, queue_size: int, slop: float):
        super().__init__()
        inputs = list(fs)
        if not inputs:
            raise ValueError('ApproximateTimeSynchronizer needs at least one input filter')
        if isinstance(queue_size, bool) or not isinstance(queue_size, (int, np.integer)) or queue_size < 1:
            raise ValueError(f'ApproximateTimeSynchronizer queue_size must be an integer >= 1, got {queue_size!r}')
        if (
            isinstance(slop, bool)
            or not isinstance(slop, (int, float, np.integer, np.floating))
            or not _finite(slop)
            or slop < 0
        ):
            raise ValueError(
                f'ApproximateTimeSynchronizer slop must be a finite number of seconds >= 0, got {slop!r:.60}'
            )
        self.queue_size = int(queue_size)
        self.slop = float(slop)
        # Exact integer nanoseconds, also for a slop whose nanoseconds overflow a float (1e300 s: "any").
        self._slop_ns = round(self.slop * 1e9) if self.slop < 1e290 else int(self.slop) * 1_000_000_000
        self._lock = threading.RLock()
        self._queues = [deque() for _ in inputs]
        self._last_stamp_ns = [None] * len(inputs)
        self.dropped_count = 0
        self.reset_count = 0
        node = next((getattr(f, 'node', None) for f in inputs if getattr(f, 'node', None) is not None), None)
        self._log = node.get_logger() if node is not None else _logger
        self.input_connections = [f.registerCallback(self.add, index) for index, f in enumerate(inputs)]

    def add(self, msg, input_index: int) -> None:
        """Queue ``msg`` from input ``input_index`` and emit every set that is complete."""
        stamp = _stamp_ns(msg)
        with self._lock:
            last = self._last_stamp_ns[input_index]
            if last is not None and stamp < last:
                self._reset(input_index, last, stamp)
            self._last_stamp_ns[input_index] = stamp
            queue = self._queues[input_index]
            queue.append((stamp, msg))
            if len(queue) > self.queue_size:
                queue.popleft()
                self.dropped_count += 1
            while all(self._queues):
                choice = self._find_set()
                if choice is None:
                    oldest = min(range(len(self._queues)), key=lambda i: self._queues[i][0][0])
                    self._queues[oldest].popleft()
                    self.dropped_count += 1
                    continue
                messages = []
                for queue, index in zip(self._queues, choice):
                    for _ in range(index):
                        queue.popleft()
                    self.dropped_count += index
                    messages.append(queue.popleft()[1])
                self.signalMessage(*messages)

    def _reset(self, input_index: int, last: int, stamp: int) -> None:
        cleared = sum(len(queue) for queue in self._queues)
        for queue in self._queues:
            queue.clear()
        self._last_stamp_ns = [None] * len(self._queues)
        self.dropped_count += cleared
        self.reset_count += 1
        self._log.warning(
            f'stamp of input {input_index} went backwards ({last * 1e-9:.6f} s -> '
            f'{stamp * 1e-9:.6f} s): cleared {cleared} queued message(s)'
        )

    def _find_set(self):
        """Index into each queue of the set to emit, or None (steps 3a and 3b of the class docstring)."""
        queues = self._queues
        pivot = max(queue[0][0] for queue in queues)

        def nearest(queue, indices):
            return min(indices, key=lambda k: abs(queue[k][0] - pivot))

        choice = [nearest(queue, range(len(queue))) for queue in queues]
        stamps = [queue[k][0] for queue, k in zip(queues, choice)]
        if max(stamps) - min(stamps) <= self._slop_ns:
            return choice
        starts = sorted({stamp for queue in queues for stamp, _ in queue if pivot - self._slop_ns <= stamp <= pivot})
        for start in starts:
            choice = []
            for queue in queues:
                inside = [k for k, (stamp, _) in enumerate(queue) if start <= stamp <= start + self._slop_ns]
                if not inside:
                    break
                choice.append(nearest(queue, inside))
            else:
                return choice
        return None


# ---------------------------------------------------------------------------
# Selection: the real packages where installed
# ---------------------------------------------------------------------------

try:
    from message_filters import ApproximateTimeSynchronizer, Subscriber  # ROS distributions

    USING_MESSAGE_FILTERS = True
except ImportError:
    Subscriber, ApproximateTimeSynchronizer = _Subscriber, _ApproximateTimeSynchronizer
    USING_MESSAGE_FILTERS = False

__all__ = ['ApproximateTimeSynchronizer', 'Subscriber', 'USING_MESSAGE_FILTERS']
