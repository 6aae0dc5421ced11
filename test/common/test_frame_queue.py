"""The map thread's frame queue: bounded, newest frames kept under overload, the stride reported once."""

from __future__ import annotations

import threading
import time

import pytest

from gpt4scene_ros.common.frame_queue import FrameQueue
from gpt4scene_ros.common.schedule import Schedule


def test_a_full_queue_drops_its_oldest_frame_and_stays_bounded():
    queue = FrameQueue(3, max_wait_s=0.0)
    assert [queue.put(k, float(k)) for k in range(5)] == [True, True, True, False, False]
    assert len(queue) == 3 and queue.counts['dropped_queue_full'] == 2
    items = []
    while (head := queue.peek(10.0)[0]) is not None:
        items.append(head.item)
        queue.pop(head)
    assert items == [2, 3, 4], 'the newest frames are kept, in order'
    queue.put('old', 20.0)
    head = queue.peek(20.0)[0]
    queue.clear()  # time jumped back between peek and pop
    queue.put('new', 21.0)
    queue.pop(head)
    assert queue.peek(21.0)[0].item == 'new', 'a frame queued after the clear is not taken with the old head'


def test_a_short_stall_is_caught_up_and_a_long_backlog_skipped_to_the_newest():
    queue = FrameQueue(8, max_wait_s=0.25)
    for k in range(4):  # 30 Hz during a 100 ms stall
        queue.put(k, k / 30.0)
    head, note = queue.peek(0.12)
    assert (head.item, note) == (0, '') and queue.counts['frames_skipped_behind'] == 0
    assert not queue.overload(0.12)
    for k in range(4, 8):
        queue.put(k, k / 30.0)
    head, note = queue.peek(0.4)  # frames 0-4 waited more than 250 ms with newer ones behind them
    assert head.item == 5 and queue.counts['frames_skipped_behind'] == 5
    assert 'waited more than 250 ms' in note, 'the first engagement says why'
    assert queue.overload(0.4) and not queue.overload(10.0), 'engaged while skipping lately'
    queue.pop(head)
    queue.put(8, 0.1)
    assert queue.peek(1.0)[1] == '', 'said once'
    assert queue.counts['frames_skipped_behind'] == 7


def test_the_newest_frame_is_never_skipped_and_reliable_input_is_never_skipped():
    queue = FrameQueue(4, max_wait_s=0.05)
    queue.put('only', 0.0)
    assert queue.peek(100.0)[0].item == 'only', 'however old, a frame with none behind it is integrated'
    reliable = FrameQueue(4, max_wait_s=0.0)
    for k in range(4):
        reliable.put(k, 0.0)
    assert reliable.peek(100.0)[0].item == 0 and reliable.counts['frames_skipped_behind'] == 0


def test_wait_returns_on_a_frame_or_a_notification_and_otherwise_times_out():
    queue = FrameQueue(2, max_wait_s=0.0)
    started = time.monotonic()
    assert not queue.wait(0.05) and time.monotonic() - started >= 0.04
    threading.Timer(0.05, lambda: queue.put('frame', 0.0)).start()
    assert queue.wait(5.0)
    queue.notify()
    assert queue.wait(0.0), 'a notification before the wait is not lost'
    assert not queue.wait(0.0)
    assert queue.clear() == 1 and len(queue) == 0


@pytest.mark.parametrize('capacity, max_wait_s', [(0, 0.1), (True, 0.1), (2.0, 0.1), (2, -1.0), (2, float('nan'))])
def test_bad_settings_are_refused(capacity, max_wait_s):
    with pytest.raises(ValueError):
        FrameQueue(capacity, max_wait_s)


def test_schedule_aligns_periods_so_outputs_due_together_share_a_tick():
    schedule = Schedule({'bev': 1.0, 'cloud': 2.0, 'mesh': 5.0}, origin_s=100.0)
    assert schedule.due(100.0) == {'bev', 'cloud', 'mesh'}
    assert schedule.due(100.5) == set() and schedule.seconds_until_next(100.5) == pytest.approx(0.5)
    assert schedule.due(101.01) == {'bev'}
    assert schedule.due(102.0) == {'bev', 'cloud'}
    assert schedule.due(105.3) == {'bev', 'cloud', 'mesh'}, 'a late tick runs each job once'
    assert schedule.due(105.9) == set() and schedule.due(106.0) == {'bev', 'cloud'}
    with pytest.raises(ValueError, match="'bev'"):
        Schedule({'bev': 0.0}, 0.0)
