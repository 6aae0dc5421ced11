"""Property-based fuzz tests (hypothesis) of the ROS-side conversions and fallbacks, on hand-built messages (no
rclpy.init, no DDS): Image messages packed by numpy_to_image in every encoding, compressed images, camera infos and
the ApproximateTimeSynchronizer stand-in. (Decoding Image messages of any header, step and byte order is fuzzed
without ROS in test/io/test_messages.py.)

Each property names its example count (``max_examples``); test/FUZZING.md lists them. No example database is
kept, and hypothesis' own cache goes to a temporary folder, so nothing is written into the repository.
"""

from __future__ import annotations

import array
import math

import numpy as np
import pytest
from builtin_interfaces.msg import Time  # noqa: E402
from fuzzing import FUZZ, jpeg_with_size, png_with_size, typed_images
from geometry_msgs.msg import PointStamped  # noqa: E402
from hypothesis import event, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402

from gpt4scene_ros.io.messages import (  # noqa: E402
    decode_compressed,  # noqa: E402
    image_array,
)
from gpt4scene_ros.ros.conversions.camera_info import camera_info_to_intrinsics  # noqa: E402
from gpt4scene_ros.ros.conversions.images import encode_image, numpy_to_image  # noqa: E402
from gpt4scene_ros.ros.fallbacks import _ApproximateTimeSynchronizer, _SimpleFilter  # noqa: E402

# ---------------------------------------------------------------------------------------------------------------
# Raw images
# ---------------------------------------------------------------------------------------------------------------


@settings(FUZZ, max_examples=300)
@given(typed_images())
def test_numpy_to_image_round_trips(case):
    """Random arrays of every encoding (NaN / inf, full integer ranges) packed by numpy_to_image into a real Image
    message (its data an array.array) decode to the values packed."""
    encoding, values = case
    msg = numpy_to_image(values, encoding, Time(), 'cam')
    assert isinstance(msg, Image) and (msg.encoding, msg.height, msg.width) == (encoding,) + values.shape[:2]
    decoded = image_array(msg)
    assert decoded.dtype == values.dtype and decoded.dtype.isnative
    np.testing.assert_array_equal(decoded, values)


# ---------------------------------------------------------------------------------------------------------------
# Compressed images and camera infos
# ---------------------------------------------------------------------------------------------------------------


@st.composite
def compressed_payloads(draw):
    kind = draw(st.sampled_from(['random', 'png', 'jpeg', 'truncated', 'corrupted', 'claims']))
    if kind == 'random':
        return draw(
            st.binary(max_size=2048)
            | st.binary(max_size=512).map(lambda b: b'\x89PNG\r\n\x1a\n' + b)
            | st.binary(max_size=512).map(lambda b: b'\xff\xd8\xff\xe0' + b)
        )
    if kind == 'claims':
        # Sizes a decoder may allocate are kept small; the huge ones are beyond what OpenCV agrees to allocate.
        make = draw(st.sampled_from([png_with_size, jpeg_with_size]))
        size = draw(
            st.tuples(st.integers(0, 1024), st.integers(0, 1024))
            | st.sampled_from([(65535, 65535), (65500, 30000), (100000, 100000), (2**31 - 1, 2**31 - 1)])
        )
        if make is jpeg_with_size:
            size = tuple(min(side, 65535) for side in size)
        return make(*size)
    image = draw(arrays(np.uint8, (draw(st.integers(1, 12)), draw(st.integers(1, 12)), 3)))
    data = bytes(encode_image(image, 'png' if kind in ('png', 'truncated') else 'jpeg', Time(), 'cam').data)
    if kind == 'truncated':
        return data[: draw(st.integers(0, len(data) - 1))]
    if kind == 'corrupted':
        content = bytearray(data)
        for _ in range(draw(st.integers(1, 6))):
            content[draw(st.integers(0, len(content) - 1))] ^= draw(st.integers(1, 255))
        return bytes(content)
    return data if kind == 'jpeg' else (image, data)


@settings(FUZZ, max_examples=200)
@example(png_with_size(100000, 100000))
@example(jpeg_with_size(65500, 65500))
@given(compressed_payloads())
def test_decode_compressed_gives_rgb_or_value_error(payload):
    """Random bytes, truncated or corrupted PNG / JPEG, headers claiming huge sizes: an HxWx3 uint8 image or
    ValueError; a PNG decodes to exactly the image encoded."""
    original = None
    if isinstance(payload, tuple):
        original, payload = payload
    msg = CompressedImage(format='rgb8; png compressed bgr8')
    msg.data = array.array('B', payload)
    try:
        image = decode_compressed(msg)
    except ValueError as error:
        event('ValueError')
        assert original is None and str(error)
        return
    event('decoded')
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and min(image.shape[:2]) >= 1
    if original is not None:
        np.testing.assert_array_equal(image, original)


k_entries = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.0, -1.0, 1e-300]), st.floats(-1e4, 1e4)
)
focal_lengths = st.floats(1.0, 2000.0) | k_entries


@settings(FUZZ, max_examples=300)
@given(
    fx=focal_lengths,
    fy=focal_lengths,
    cx=k_entries,
    cy=k_entries,
    skew=st.sampled_from([0.0, 0.0, 0.0, 1e-12, 0.5, math.nan]),
    bottom=st.sampled_from(
        [(0.0, 0.0, 1.0)] * 6 + [(0.0, 0.0, 0.0), (0.0, 0.0, -1.0), (1e-3, 0.0, 1.0), (0.0, math.inf, 1.0)]
    ),
    width=st.integers(0, 4096) | st.just(2**32 - 1),
    height=st.integers(0, 4096) | st.just(2**32 - 1),
    full=st.sampled_from([True, True, True, False]),
)
def test_camera_info_to_intrinsics_accepts_only_pinhole_matrices(fx, fy, cx, cy, skew, bottom, width, height, full):
    """Random K (NaN, inf, zero, negative focal lengths, skew, a wrong last row) and sizes (zero included): the
    intrinsics K holds, or ValueError."""
    k = [fx, skew, cx, 0.0, fy, cy, *bottom] if full else [0.0] * 9
    msg = CameraInfo(width=width, height=height, k=k)
    valid = (
        full
        and all(math.isfinite(v) for v in k)
        and abs(skew) <= 1e-9
        and bottom[:2] == (0.0, 0.0)
        and bottom[2] == 1.0
        and fx > 0
        and fy > 0
        and width > 0
        and height > 0
    )
    try:
        intrinsics = camera_info_to_intrinsics(msg)
    except ValueError as error:
        event('ValueError')
        assert not valid, f'refused a valid K: {error}'
        return
    event('intrinsics')
    assert valid, 'accepted a malformed K'
    assert (intrinsics.width, intrinsics.height) == (width, height)
    assert (intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy) == (fx, fy, cx, cy)


# ---------------------------------------------------------------------------------------------------------------
# The ApproximateTimeSynchronizer stand-in
# ---------------------------------------------------------------------------------------------------------------


def stamped(sec: int, nanosec: int) -> PointStamped:
    msg = PointStamped()
    msg.header.stamp = Time(sec=sec, nanosec=nanosec)
    return msg


def nanoseconds(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


class Recorder:
    """A synchroniser over bare filters that records every emitted set and checks its queues after each message."""

    def __init__(self, inputs: int, queue_size: int, slop: float):
        self.filters = [_SimpleFilter() for _ in range(inputs)]
        self.sync = _ApproximateTimeSynchronizer(self.filters, queue_size, slop)
        self.sets = []
        self.sync.registerCallback(lambda *msgs: self.sets.append(msgs))
        self.origin = {}  # id(message) -> (input, arrival number)
        self.arrived = 0

    def feed(self, index: int, msg) -> None:
        self.origin[id(msg)] = (index, self.arrived)
        self.arrived += 1
        self.filters[index].signalMessage(msg)
        assert all(len(queue) <= self.sync.queue_size for queue in self.sync._queues), 'a queue outgrew queue_size'


arrivals = st.lists(
    st.tuples(
        st.integers(0, 3),
        st.one_of(
            st.integers(0, 3).map(lambda s: (s, 0)),  # many duplicates
            st.tuples(st.integers(0, 3), st.integers(0, 999_999_999)),
            st.tuples(st.integers(-(2**31), 2**31 - 1), st.integers(0, 2**32 - 1)),
        ),
    ),  # anything a Time holds
    max_size=60,
)


@settings(FUZZ, max_examples=300)
@given(
    inputs=st.integers(1, 4),
    queue_size=st.integers(1, 8),
    slop=st.sampled_from([0.0, 1e-9, 0.05, 0.5, 2.0, 1e300]) | st.floats(0.0, 5.0),
    sequence=arrivals,
    drift=st.lists(st.integers(0, 300_000_000), min_size=60, max_size=60),
)
@example(inputs=2, queue_size=3, slop=1e300, sequence=[(0, (1, 0)), (1, (2, 0))], drift=[0] * 60)
def test_synchroniser_emits_only_sets_within_the_slop(inputs, queue_size, slop, sequence, drift):
    """Random arrival orders, duplicate and decreasing stamps, queue sizes and slops: every emitted set has one
    message per input, in input order, stamps within the slop; no message is emitted twice; each input's messages
    are emitted in arrival order; queues stay within queue_size; every message is emitted, dropped or queued."""
    recorder = Recorder(inputs, queue_size, slop)
    slop_ns = slop * 1e9
    for k, (index, (sec, nanosec)) in enumerate(sequence):
        recorder.feed(index % inputs, stamped(sec, min(nanosec + drift[k], 2**32 - 1)))
    emitted = set()
    last = [-1] * inputs
    for msgs in recorder.sets:
        assert len(msgs) == inputs
        origins = [recorder.origin[id(m)] for m in msgs]
        assert [index for index, _ in origins] == list(range(inputs)), 'one message per input, in input order'
        stamps = [nanoseconds(m) for m in msgs]
        assert max(stamps) - min(stamps) <= slop_ns + 1, f'set {stamps} spreads beyond the slop {slop} s'
        for index, number in origins:
            assert number not in emitted, 'a message was emitted twice'
            assert number > last[index], "an input's messages were emitted out of arrival order"
            emitted.add(number)
            last[index] = number
    queued = sum(len(queue) for queue in recorder.sync._queues)
    event('sets emitted' if recorder.sets else 'no set emitted')
    event('with a reset' if recorder.sync.reset_count else 'no reset')
    assert recorder.arrived == inputs * len(recorder.sets) + recorder.sync.dropped_count + queued


@settings(FUZZ, max_examples=200)
@given(
    inputs=st.integers(1, 4),
    queue_size=st.integers(1, 8),
    slop_ns=st.integers(0, 100_000_000),
    rounds=st.integers(1, 15),
    data=st.data(),
)
def test_synchroniser_emits_every_complete_round(inputs, queue_size, slop_ns, rounds, data):
    """Inputs whose messages of one moment (stamps within the slop) arrive in any order before the next moment's:
    every moment is emitted, as one set, in order, and nothing is dropped."""
    recorder = Recorder(inputs, queue_size, slop_ns * 1e-9)
    moment, expected = 10**9, []
    for _ in range(rounds):
        moment += slop_ns + data.draw(st.integers(1, 10**9))
        offsets = data.draw(st.lists(st.integers(0, slop_ns), min_size=inputs, max_size=inputs))
        messages = [stamped((moment + offset) // 10**9, (moment + offset) % 10**9) for offset in offsets]
        for index in data.draw(st.permutations(range(inputs))):
            recorder.feed(index, messages[index])
        expected.append(tuple(messages))
    assert [tuple(map(id, msgs)) for msgs in recorder.sets] == [tuple(map(id, msgs)) for msgs in expected]
    assert recorder.sync.dropped_count == 0


@settings(FUZZ, max_examples=100)
@given(
    queue_size=st.one_of(
        st.integers(-3, 3), st.floats(allow_nan=True), st.booleans(), st.none(), st.sampled_from([np.int64(2), 10**30])
    ),
    slop=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
        st.none(),
        st.text(max_size=2),
        st.sampled_from([np.float32(0.1), 10**400, 1e308]),
    ),
)
def test_synchroniser_settings_are_checked(queue_size, slop):
    """queue_size: an integer >= 1; slop: a finite number of seconds >= 0; anything else is ValueError."""
    valid_queue = isinstance(queue_size, (int, np.integer)) and not isinstance(queue_size, bool) and queue_size >= 1
    try:
        valid_slop = (
            isinstance(slop, (int, float, np.integer, np.floating))
            and not isinstance(slop, bool)
            and math.isfinite(float(slop))
            and slop >= 0
        )
    except OverflowError:
        valid_slop = False
    try:
        sync = _ApproximateTimeSynchronizer([_SimpleFilter(), _SimpleFilter()], queue_size, slop)
    except ValueError as error:
        assert not (valid_queue and valid_slop), f'refused valid settings: {error}'
        return
    assert valid_queue and valid_slop
    assert sync.queue_size == queue_size and sync.slop == float(slop)


def test_synchroniser_needs_messages_with_a_header():
    recorder = Recorder(2, 3, 0.1)
    with pytest.raises(TypeError, match='header'):
        recorder.feed(0, CameraInfo().header)  # a Header has a stamp but no header
