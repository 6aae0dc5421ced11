"""Fallbacks for message_filters and cv_bridge: hand-built messages (no rclpy.init), then one DDS test."""

from __future__ import annotations

import random

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from conftest import wait_for
from gpt4scene_ros.ros import fallbacks
from gpt4scene_ros.ros.conversions import image_to_numpy, numpy_to_image, time_from_msg, time_to_msg
from gpt4scene_ros.ros.fallbacks import (_ApproximateTimeSynchronizer, _CvBridge, _CvBridgeError, _SimpleFilter,
                                         _Subscriber)

RNG = np.random.default_rng(3)
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


# ---------------------------------------------------------------------------
# CvBridge
# ---------------------------------------------------------------------------

def rgb_pixels() -> np.ndarray:
    """A 2x3 RGB image: red, green, blue / white, black, grey."""
    return np.array([[RED, GREEN, BLUE], [(255, 255, 255), (0, 0, 0), (100, 100, 100)]], dtype=np.uint8)


def image(array: np.ndarray, encoding: str) -> Image:
    return numpy_to_image(array, encoding, time_to_msg(1.0), 'cam')


@pytest.mark.parametrize('encoding, array', [
    ('rgb8', RNG.integers(0, 255, (4, 5, 3), dtype=np.uint8)),
    ('bgra8', RNG.integers(0, 255, (4, 5, 4), dtype=np.uint8)),
    ('mono8', RNG.integers(0, 255, (4, 5), dtype=np.uint8)),
    ('16UC1', RNG.integers(0, 65535, (4, 5), dtype=np.uint16)),
    ('32FC1', RNG.normal(size=(4, 5)).astype(np.float32)),
])
def test_passthrough_and_same_encoding_return_the_data(encoding, array):
    bridge = _CvBridge()
    for desired in ('passthrough', encoding):
        result = bridge.imgmsg_to_cv2(image(array, encoding), desired)
        assert result.dtype == array.dtype
        np.testing.assert_array_equal(result, array)
    np.testing.assert_array_equal(bridge.imgmsg_to_cv2(image(array, encoding)), array)   # default passthrough


def test_bgr8_is_in_bgr_order_like_cv_bridge():
    rgb = rgb_pixels()
    bgr = _CvBridge().imgmsg_to_cv2(image(rgb, 'rgb8'), 'bgr8')
    assert tuple(bgr[0, 0]) == (0, 0, 255) and tuple(bgr[0, 2]) == (255, 0, 0)   # red is (B, G, R) = (0, 0, 255)
    np.testing.assert_array_equal(_CvBridge().imgmsg_to_cv2(image(bgr, 'bgr8'), 'rgb8'), rgb)


def test_colour_to_mono8_uses_the_usual_luma_weights():
    mono = _CvBridge().imgmsg_to_cv2(image(rgb_pixels(), 'rgb8'), 'mono8')
    # 0.299 R + 0.587 G + 0.114 B, rounded
    np.testing.assert_array_equal(mono, [[76, 150, 29], [255, 0, 100]])
    bgr_mono = _CvBridge().imgmsg_to_cv2(image(rgb_pixels()[:, :, ::-1], 'bgr8'), 'mono8')
    np.testing.assert_array_equal(bgr_mono, mono)


def test_alpha_is_dropped_and_added():
    rgba = np.dstack([rgb_pixels(), np.full((2, 3), 7, np.uint8)])
    bridge = _CvBridge()
    np.testing.assert_array_equal(bridge.imgmsg_to_cv2(image(rgba, 'rgba8'), 'bgr8'), rgb_pixels()[:, :, ::-1])
    bgra = bridge.imgmsg_to_cv2(image(rgb_pixels(), 'rgb8'), 'bgra8')
    np.testing.assert_array_equal(bgra[:, :, :3], rgb_pixels()[:, :, ::-1])
    assert np.all(bgra[:, :, 3] == 255)


def test_mono8_to_colour_repeats_the_grey_value():
    mono = np.array([[0, 10], [200, 255]], dtype=np.uint8)
    rgb = _CvBridge().imgmsg_to_cv2(image(mono, 'mono8'), 'rgb8')
    assert rgb.shape == (2, 2, 3)
    np.testing.assert_array_equal(rgb, np.repeat(mono[:, :, None], 3, axis=2))


def test_depth_16uc1_to_32fc1_converts_the_type_only():
    depth_mm = np.array([[0, 1000], [1500, 65535]], dtype=np.uint16)
    result = _CvBridge().imgmsg_to_cv2(image(depth_mm, '16UC1'), '32FC1')
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result, [[0.0, 1000.0], [1500.0, 65535.0]])   # still millimetres


def test_32fc1_to_16uc1_rounds_and_saturates():
    depth = np.array([[1.4, 1.6, 2.5], [-3.0, 70000.0, np.nan]], dtype=np.float32)
    result = _CvBridge().imgmsg_to_cv2(image(depth, '32FC1'), '16UC1')
    assert result.dtype == np.uint16
    np.testing.assert_array_equal(result, [[1, 2, 2], [0, 65535, 0]])


def test_row_padding_is_skipped():
    rgb = rgb_pixels()
    rows = [row.tobytes() + b'\xee' * 3 for row in rgb]   # 3 padding bytes after each 9-byte row
    msg = Image(height=2, width=3, encoding='rgb8', step=12, data=b''.join(rows))
    bridge = _CvBridge()
    np.testing.assert_array_equal(bridge.imgmsg_to_cv2(msg), rgb)
    np.testing.assert_array_equal(bridge.imgmsg_to_cv2(msg, 'bgr8'), rgb[:, :, ::-1])


def test_big_endian_16uc1_with_padding():
    depth = np.array([[1, 2, 3], [400, 500, 65535]], dtype=np.uint16)
    rows = [row.astype('>u2').tobytes() + b'\x00\x01' for row in depth]
    msg = Image(height=2, width=3, encoding='16UC1', is_bigendian=1, step=8, data=b''.join(rows))
    bridge = _CvBridge()
    result = bridge.imgmsg_to_cv2(msg)
    assert result.dtype == np.uint16 and result.dtype.isnative
    np.testing.assert_array_equal(result, depth)
    np.testing.assert_array_equal(bridge.imgmsg_to_cv2(msg, '32FC1'), depth.astype(np.float32))


@pytest.mark.parametrize('msg, desired, words', [
    (image(rgb_pixels(), 'rgb8'), 'yuv422', 'rgb8 to yuv422'),
    (image(rgb_pixels(), 'rgb8'), '32FC1', 'rgb8 to 32FC1'),
    (image(np.zeros((2, 2), np.uint16), '16UC1'), 'rgb8', '16UC1 to rgb8'),
    (image(np.zeros((2, 2), np.uint16), '16UC1'), 'mono8', '16UC1 to mono8'),
    (image(np.zeros((2, 2), np.float32), '32FC1'), 'bgr8', '32FC1 to bgr8'),
    (Image(height=2, width=2, encoding='yuv422', step=4, data=bytes(8)), 'passthrough', 'unsupported image encoding'),
    (Image(height=2, width=2, encoding='16UC1', step=4, data=bytes(5)), 'passthrough', 'bytes'),
])
def test_unsupported_conversions_raise_cv_bridge_error(msg, desired, words):
    with pytest.raises(_CvBridgeError, match=words) as error:
        _CvBridge().imgmsg_to_cv2(msg, desired)
    assert isinstance(error.value, TypeError)


@pytest.mark.parametrize('array, encoding', [
    (RNG.integers(0, 255, (3, 4, 3), dtype=np.uint8), '8UC3'),
    (RNG.integers(0, 255, (3, 4), dtype=np.uint8), '8UC1'),
    (RNG.integers(0, 65535, (3, 4), dtype=np.uint16), '16UC1'),
    (RNG.normal(size=(3, 4)).astype(np.float32), '32FC1'),
])
def test_cv2_to_imgmsg_passthrough_names_the_type(array, encoding):
    msg = _CvBridge().cv2_to_imgmsg(array)
    assert (msg.encoding, msg.height, msg.width) == (encoding, 3, 4)
    np.testing.assert_array_equal(image_to_numpy(msg), array)


def test_cv2_to_imgmsg_with_an_encoding_and_header_round_trips():
    bridge = _CvBridge()
    header = Header(stamp=Time(sec=12, nanosec=5), frame_id='camera_color_optical_frame')
    bgr = rgb_pixels()[:, :, ::-1]
    msg = bridge.cv2_to_imgmsg(bgr, 'bgr8', header=header)   # a non-contiguous view is fine
    assert msg.encoding == 'bgr8' and msg.header == header
    np.testing.assert_array_equal(bridge.imgmsg_to_cv2(msg, 'rgb8'), rgb_pixels())
    big_endian = np.array([[1, 258]], dtype='>u2')
    np.testing.assert_array_equal(bridge.imgmsg_to_cv2(bridge.cv2_to_imgmsg(big_endian, '16UC1')), [[1, 258]])


@pytest.mark.parametrize('array, encoding, words', [
    (np.zeros((2, 2), np.float32), 'rgb8', 'rgb8'),
    (np.zeros((2, 2, 3), np.uint8), 'mono8', 'mono8'),
    (np.zeros((2, 2), np.int64), 'passthrough', '64SC1|int64'),
    (np.zeros((2, 2, 2), np.uint8), 'passthrough', '8UC2'),
    ([[1, 2]], 'mono8', 'numpy array'),
])
def test_cv2_to_imgmsg_rejects_mismatches(array, encoding, words):
    with pytest.raises(_CvBridgeError, match=words):
        _CvBridge().cv2_to_imgmsg(array, encoding)


def test_module_selects_real_packages_or_fallbacks():
    assert isinstance(fallbacks.USING_MESSAGE_FILTERS, bool) and isinstance(fallbacks.USING_CV_BRIDGE, bool)
    if not fallbacks.USING_MESSAGE_FILTERS:
        assert fallbacks.Subscriber is _Subscriber
        assert fallbacks.ApproximateTimeSynchronizer is _ApproximateTimeSynchronizer
    if not fallbacks.USING_CV_BRIDGE:
        assert fallbacks.CvBridge is _CvBridge and fallbacks.CvBridgeError is _CvBridgeError
    assert issubclass(fallbacks.CvBridgeError, TypeError)


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
        self.sync.registerCallback(lambda *msgs: self.sets.append(
            tuple(round(time_from_msg(m.header.stamp), 6) for m in msgs)))

    def feed(self, name: str, *stamps: float):
        for t in stamps:
            self.inputs[name].signalMessage(stamped(t, name))


def test_exact_matches_are_emitted_in_input_order():
    h = Harness()
    received = []
    h.sync.registerCallback(lambda a, b, c, extra: received.append(
        (a.header.frame_id, b.header.frame_id, c.header.frame_id, extra)), 'extra')
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
    h.feed('a', 1.00, 1.02, 1.04)   # the pivot will be b's 1.03: a's 1.02 and 1.04 are equally near
    h.feed('b', 1.035)
    assert h.sets == [(1.04, 1.035)]
    assert h.sync.dropped_count == 2   # a's 1.00 and 1.02 are older than the emitted set


def test_no_match_beyond_slop():
    h = Harness(slop=0.05, inputs='ab')
    h.feed('a', 1.0)
    h.feed('b', 1.2)
    assert h.sets == [] and h.sync.dropped_count == 1   # a's 1.0 can never match: dropped
    h.feed('a', 1.1)
    assert h.sets == [] and h.sync.dropped_count == 2
    h.feed('a', 1.19)
    assert h.sets == [(1.19, 1.2)]


def test_a_set_is_found_where_the_nearest_messages_do_not_match():
    h = Harness(slop=1.0)
    h.feed('a', 0.5, 1.4)
    h.feed('b', 1.0)
    h.feed('c', 0.1)   # nearest to the pivot 1.0 are 1.4, 1.0, 0.1 (spread 1.3); 0.5, 1.0, 0.1 fits
    assert h.sets == [(0.5, 1.0, 0.1)]
    h.feed('b', 1.5)
    h.feed('c', 1.45)
    assert h.sets[1:] == [(1.4, 1.5, 1.45)]


def test_a_lagging_input_is_matched_and_the_others_drop_their_oldest():
    h = Harness(queue_size=3, inputs='ab')
    h.feed('a', *(0.1 * i for i in range(6)))   # 0.0 ... 0.5 s while b lags behind
    assert len(h.sync._queues[0]) == 3 and h.sync.dropped_count == 3
    h.feed('b', 0.0)            # its partner was dropped from a's full queue: no set, b's 0.0 goes
    assert h.sets == []
    h.feed('b', 0.3, 0.4, 0.5)
    assert h.sets == [(0.3, 0.3), (0.4, 0.4), (0.5, 0.5)]


def test_queue_size_bounds_every_queue():
    h = Harness(queue_size=2, slop=0.01)
    for i in range(20):
        h.feed('a', i * 0.1)
        h.feed('b', i * 0.1 + 0.05)   # b never matches a; c never arrives
        assert all(len(queue) <= 2 for queue in h.sync._queues)
    assert h.sets == [] and h.sync.dropped_count == 36


def test_stamp_going_backwards_resets_the_queues():
    h = Harness(inputs='ab')
    h.feed('a', 10.0)
    h.feed('b', 10.0)
    h.feed('a', 10.1)
    h.feed('b', 0.0)           # the bag looped: a's 10.1 would otherwise wait for ever
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


@pytest.mark.parametrize('queue_size, slop, words', [
    (0, 0.1, 'queue_size'), (2.5, 0.1, 'queue_size'), (10, -0.1, 'slop'), (10, float('nan'), 'slop'),
])
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

    bridge = _CvBridge()
    for k in range(5):
        t = 100.0 + 0.1 * k
        color = bridge.cv2_to_imgmsg(np.full((4, 6, 3), k, np.uint8), 'rgb8', Header(stamp=time_to_msg(t)))
        depth = bridge.cv2_to_imgmsg(np.full((4, 6), 1000 + k, np.uint16), '16UC1',
                                     Header(stamp=time_to_msg(t + 0.002)))   # 2 ms later: within slop
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
        assert bridge.imgmsg_to_cv2(color)[0, 0, 0] == k
        assert bridge.imgmsg_to_cv2(depth, '32FC1')[0, 0] == 1000.0 + k
        assert isinstance(info, CameraInfo)
    assert sync.dropped_count == 0 and sync.reset_count == 0
