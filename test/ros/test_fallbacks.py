"""The message_filters fallback: hand-built messages (no rclpy.init), then one DDS test.

(Image decoding, once tested here through the cv_bridge fallback, is test/io/test_messages.py.)
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from conftest import wait_for
from sensor_msgs.msg import CameraInfo, Image

from gpt4scene_ros.io.messages import image_array
from gpt4scene_ros.ros import fallbacks
from gpt4scene_ros.ros.conversions.images import numpy_to_image
from gpt4scene_ros.ros.conversions.time import time_from_msg, time_to_msg
from gpt4scene_ros.ros.fallbacks import _ApproximateTimeSynchronizer, _SimpleFilter, _Subscriber


def test_module_selects_real_packages_or_fallbacks():
    assert isinstance(fallbacks.USING_MESSAGE_FILTERS, bool)
    if not fallbacks.USING_MESSAGE_FILTERS:
        assert fallbacks.Subscriber is _Subscriber
        assert fallbacks.ApproximateTimeSynchronizer is _ApproximateTimeSynchronizer
    assert not hasattr(fallbacks, 'CvBridge'), 'images are decoded by gpt4scene_ros.io.messages'


# ---------------------------------------------------------------------------
# ApproximateTimeSynchronizer on hand-fed inputs
# ---------------------------------------------------------------------------


def stamped(t: float, label: str = '') -> CameraInfo:
    msg = CameraInfo()
    msg.header.stamp = time_to_msg(t)
    msg.header.frame_id = label
    return msg


class Harness:
    """A synchroniser over bare filters; ``feed('a', 1.0)`` signals a message stamped 1.0 s on input a."""

    def __init__(self, queue_size: int = 10, slop: float = 0.05, inputs: str = 'abc'):
        self.names = inputs
        self.inputs = {name: _SimpleFilter() for name in inputs}
        self.sync = _ApproximateTimeSynchronizer(list(self.inputs.values()), queue_size, slop)
        self.sets = []
        self.sync.registerCallback(
            lambda *msgs: self.sets.append(tuple(round(time_from_msg(m.header.stamp), 6) for m in msgs))
        )

    def feed(self, name: str, *stamps: float):
        for t in stamps:
            self.inputs[name].signalMessage(stamped(t, name))


def test_exact_matches_are_emitted_in_input_order():
    h = Harness()
    received = []
    h.sync.registerCallback(
        lambda a, b, c, extra: received.append((a.header.frame_id, b.header.frame_id, c.header.frame_id, extra)),
        'extra',
    )
    h.feed('a', 1.0)
    h.feed('b', 1.0)
    assert h.sets == []
    h.feed('c', 1.0)
    h.feed('c', 1.1)
    h.feed('a', 1.1)
    h.feed('b', 1.1)
    assert h.sets == [(1.0, 1.0, 1.0), (1.1, 1.1, 1.1)]
    assert received == [('a', 'b', 'c', 'extra')] * 2
    assert h.sync.dropped_count == 0


def test_near_matches_within_slop():
    h = Harness(slop=0.05)
    h.feed('a', 2.0, 2.1)
    h.feed('b', 2.03, 2.12)
    h.feed('c', 1.98, 2.08)
    assert h.sets == [(2.0, 2.03, 1.98), (2.1, 2.12, 2.08)]


def test_nearest_message_to_the_pivot_is_chosen():
    h = Harness(slop=0.05, inputs='ab')
    h.feed('a', 1.00, 1.02, 1.04)  # the pivot will be b's 1.03: a's 1.02 and 1.04 are equally near
    h.feed('b', 1.035)
    assert h.sets == [(1.04, 1.035)]
    assert h.sync.dropped_count == 2  # a's 1.00 and 1.02 are older than the emitted set


def test_no_match_beyond_slop():
    h = Harness(slop=0.05, inputs='ab')
    h.feed('a', 1.0)
    h.feed('b', 1.2)
    assert h.sets == [] and h.sync.dropped_count == 1  # a's 1.0 can never match: dropped
    h.feed('a', 1.1)
    assert h.sets == [] and h.sync.dropped_count == 2
    h.feed('a', 1.19)
    assert h.sets == [(1.19, 1.2)]


def test_a_set_is_found_where_the_nearest_messages_do_not_match():
    h = Harness(slop=1.0)
    h.feed('a', 0.5, 1.4)
    h.feed('b', 1.0)
    h.feed('c', 0.1)  # nearest to the pivot 1.0 are 1.4, 1.0, 0.1 (spread 1.3); 0.5, 1.0, 0.1 fits
    assert h.sets == [(0.5, 1.0, 0.1)]
    h.feed('b', 1.5)
    h.feed('c', 1.45)
    assert h.sets[1:] == [(1.4, 1.5, 1.45)]


def test_a_lagging_input_is_matched_and_the_others_drop_their_oldest():
    h = Harness(queue_size=3, inputs='ab')
    h.feed('a', *(0.1 * i for i in range(6)))  # 0.0 ... 0.5 s while b lags behind
    assert len(h.sync._queues[0]) == 3 and h.sync.dropped_count == 3
    h.feed('b', 0.0)  # its partner was dropped from a's full queue: no set, b's 0.0 goes
    assert h.sets == []
    h.feed('b', 0.3, 0.4, 0.5)
    assert h.sets == [(0.3, 0.3), (0.4, 0.4), (0.5, 0.5)]


def test_queue_size_bounds_every_queue():
    h = Harness(queue_size=2, slop=0.01)
    for i in range(20):
        h.feed('a', i * 0.1)
        h.feed('b', i * 0.1 + 0.05)  # b never matches a; c never arrives
        assert all(len(queue) <= 2 for queue in h.sync._queues)
    assert h.sets == [] and h.sync.dropped_count == 36


def test_stamp_going_backwards_resets_the_queues():
    h = Harness(inputs='ab')
    h.feed('a', 10.0)
    h.feed('b', 10.0)
    h.feed('a', 10.1)
    h.feed('b', 0.0)  # the bag looped: a's 10.1 would otherwise wait for ever
    assert h.sync.reset_count == 1
    h.feed('a', 0.0)
    h.feed('a', 0.1)
    h.feed('b', 0.1)
    assert h.sets == [(10.0, 10.0), (0.0, 0.0), (0.1, 0.1)]
    assert h.sync.reset_count == 1 and h.sync.dropped_count == 1


def test_random_jittered_streams_are_all_matched_and_sets_respect_slop():
    rng = random.Random(7)
    h = Harness(queue_size=5, slop=0.01)
    events = []
    arrival = dict.fromkeys('abc', 0.0)
    for frame in range(200):
        for name in 'abc':
            # 30 Hz frames, stamps jittered by up to 4 ms, delivered in order per input after up to 50 ms
            stamp = frame / 30.0 + rng.uniform(-0.004, 0.004)
            arrival[name] = max(arrival[name], stamp + rng.uniform(0.0, 0.05))
            events.append((arrival[name], name, stamp))
    for _, name, stamp in sorted(events):
        h.feed(name, stamp)
    assert len(h.sets) == 200 and h.sync.dropped_count == 0
    for s in h.sets:
        assert max(s) - min(s) <= 0.01 + 1e-9
    for column in zip(*h.sets):
        assert all(t1 > t0 for t0, t1 in zip(column, column[1:]))


def test_messages_without_a_header_are_rejected():
    h = Harness(inputs='ab')
    with pytest.raises(TypeError, match='header'):
        h.inputs['a'].signalMessage(Time(sec=1))


@pytest.mark.parametrize(
    'queue_size, slop, words',
    [
        (0, 0.1, 'queue_size'),
        (2.5, 0.1, 'queue_size'),
        (10, -0.1, 'slop'),
        (10, float('nan'), 'slop'),
    ],
)
def test_synchroniser_arguments_are_checked(queue_size, slop, words):
    with pytest.raises(ValueError, match=words):
        _ApproximateTimeSynchronizer([_SimpleFilter()], queue_size, slop)


# ---------------------------------------------------------------------------
# Over DDS
# ---------------------------------------------------------------------------


def test_synchroniser_over_dds(ros_node):
    topics = [('sync_test/color', Image), ('sync_test/depth', Image), ('sync_test/camera_info', CameraInfo)]
    subscribers = [_Subscriber(ros_node, msg_type, topic, qos_profile=10) for topic, msg_type in topics]
    assert subscribers[0].getTopic().endswith('sync_test/color')
    sync = _ApproximateTimeSynchronizer(subscribers, queue_size=10, slop=0.01)
    received = []
    sync.registerCallback(lambda color, depth, info: received.append((color, depth, info)))
    publishers = [ros_node.create_publisher(msg_type, topic, 10) for topic, msg_type in topics]
    wait_for(lambda: all(p.get_subscription_count() >= 1 for p in publishers), 10.0, 'the subscriptions to match')

    for k in range(5):
        t = 100.0 + 0.1 * k
        color = numpy_to_image(np.full((4, 6, 3), k, np.uint8), 'rgb8', time_to_msg(t), '')
        depth = numpy_to_image(
            np.full((4, 6), 1000 + k, np.uint16), '16UC1', time_to_msg(t + 0.002), ''
        )  # 2 ms later: within slop
        info = CameraInfo(width=6, height=4)
        info.header.stamp = time_to_msg(t)
        for publisher, msg in zip(publishers, (color, depth, info)):
            publisher.publish(msg)

    wait_for(lambda: len(received) == 5, 10.0, 'five synchronised sets')
    for k, (color, depth, info) in enumerate(received):
        t = 100.0 + 0.1 * k
        assert time_from_msg(color.header.stamp) == pytest.approx(t)
        assert time_from_msg(info.header.stamp) == pytest.approx(t)
        assert time_from_msg(depth.header.stamp) == pytest.approx(t + 0.002)
        assert image_array(color)[0, 0, 0] == k
        assert image_array(depth)[0, 0] == 1000 + k
        assert isinstance(info, CameraInfo)
    assert sync.dropped_count == 0 and sync.reset_count == 0
