"""Property-based fuzz tests (hypothesis) of the ROS-side conversions and fallbacks, on hand-built messages (no
rclpy.init, no DDS): images in every encoding with odd steps, byte orders and sizes, compressed images, camera infos,
the CvBridge stand-in and the ApproximateTimeSynchronizer stand-in.

Each property names its example count (``max_examples``); test/FUZZING.md lists them. No example database is
kept, and hypothesis' own cache goes to a temporary folder, so nothing is written into the repository.
"""

from __future__ import annotations

import array
import math
import os
import struct
import tempfile
import zlib

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

os.environ.setdefault('HYPOTHESIS_STORAGE_DIRECTORY', os.path.join(tempfile.gettempdir(), 'gpt4scene_hypothesis'))

from builtin_interfaces.msg import Time  # noqa: E402
from geometry_msgs.msg import PointStamped  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402

from gpt4scene_ros.ros.conversions import (IMAGE_ENCODINGS, camera_info_to_intrinsics, decode_image,  # noqa: E402
                                           encode_image, image_to_numpy, numpy_to_image)
from gpt4scene_ros.ros.fallbacks import (_ApproximateTimeSynchronizer, _CvBridge, _CvBridgeError,  # noqa: E402
                                         _SimpleFilter)

FUZZ = settings(database=None, deadline=None, print_blob=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ENCODINGS = sorted(IMAGE_ENCODINGS)
UNKNOWN_ENCODINGS = ['yuv422', 'bayer_rggb8', '16UC3', '8SC1', '32FC3', 'RGB8', 'mono8 ', '', 'passthrough']
COLOUR = {'rgb8': 'rgb', 'bgr8': 'bgr', 'rgba8': 'rgba', 'bgra8': 'bgra', 'mono8': 'l'}
SINGLE_TARGETS = ('8UC1', '16UC1', '16SC1', '32SC1', '32FC1', '64FC1')
MAX_TEST_BYTES = 1 << 20


# ---------------------------------------------------------------------------------------------------------------
# Raw images
# ---------------------------------------------------------------------------------------------------------------

def layout(encoding: str):
    """(dtype, channels) of a known encoding, None for an unknown one."""
    return IMAGE_ENCODINGS.get(encoding)


def element_values(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == 'f':
        return st.floats(width=8 * dtype.itemsize, allow_nan=True, allow_infinity=True)
    return st.integers(np.iinfo(dtype).min, np.iinfo(dtype).max)


@st.composite
def image_messages(draw):
    """An Image header (any encoding, size, step, byte order) and data of the right, a shorter or a longer length."""
    source = draw(st.sampled_from(['known'] * 4 + ['unknown', 'text']))
    encoding = draw(st.sampled_from(ENCODINGS) if source == 'known' else
                    st.sampled_from(UNKNOWN_ENCODINGS) if source == 'unknown' else st.text(max_size=8))
    dtype, channels = layout(encoding) or (np.uint8, draw(st.integers(1, 4)))
    width = draw(st.sampled_from([0, 1, 2, 3, 5, 8, 2 ** 32 - 1, 2 ** 31, 65536]) | st.integers(1, 9))
    height = draw(st.sampled_from([0, 1, 2, 4, 7, 2 ** 32 - 1, 5000]) | st.integers(1, 9))
    row_bytes = width * channels * np.dtype(dtype).itemsize
    step = {'exact': row_bytes, 'padded': row_bytes + draw(st.integers(1, 9)),       # padded, maybe to an odd step
            'short': row_bytes - draw(st.integers(1, 9)), 'random': draw(st.integers(0, 2 ** 32 - 1)), 'zero': 0}[
        draw(st.sampled_from(['exact', 'exact', 'padded', 'padded', 'short', 'random', 'zero']))]
    step = min(max(step, 0), 2 ** 32 - 1)
    needed = step * height
    length = draw(st.sampled_from([needed, needed, needed + 1, needed + draw(st.integers(2, 16)), needed - 1,
                                   needed - draw(st.integers(2, 16)), draw(st.integers(0, 64))]))
    if not 0 <= length <= MAX_TEST_BYTES:      # more than a test should allocate: a short buffer instead
        length = draw(st.integers(0, 64))
    data = draw(st.binary(min_size=length, max_size=length)) if length <= 4096 else \
        np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1))).integers(0, 256, length, np.uint8).tobytes()
    is_bigendian = draw(st.sampled_from([0, 1, 255]))
    msg = Image(height=height, width=width, encoding=encoding, is_bigendian=is_bigendian, step=step)
    msg.data = array.array('B', data)
    return msg


def decode_by_hand(msg: Image) -> np.ndarray | None:
    """What image_to_numpy must return, decoded row by row; None when the message is malformed (ValueError)."""
    known = layout(msg.encoding)
    if known is None or msg.width == 0 or msg.height == 0:
        return None
    dtype, channels = known
    dtype = np.dtype(dtype).newbyteorder('>' if msg.is_bigendian else '<')
    row_bytes = msg.width * channels * dtype.itemsize
    if msg.step < row_bytes or len(msg.data) < msg.step * msg.height:
        return None
    data = bytes(msg.data)
    rows = [np.frombuffer(data[r * msg.step:r * msg.step + row_bytes], dtype) for r in range(msg.height)]
    image = np.stack(rows).astype(dtype.newbyteorder('=')).reshape(msg.height, msg.width, channels)
    return image[:, :, 0] if channels == 1 else image


@settings(FUZZ, max_examples=600)
@given(image_messages())
def test_image_to_numpy_decodes_or_raises_value_error(msg):
    """Any header and data: an array equal to the data, row padding skipped and byte order honoured, or ValueError
    (unknown encoding, zero size, a step shorter than a row, too little data); more data than needed is ignored."""
    expected = decode_by_hand(msg)
    try:
        image = image_to_numpy(msg)
    except ValueError as error:
        event('ValueError')
        assert expected is None, f'refused a well-formed image: {error}'
        assert str(error)
        return
    event('decoded')
    assert expected is not None, 'decoded a malformed image'
    assert image.dtype == np.dtype(layout(msg.encoding)[0]) and image.dtype.isnative
    assert image.shape == expected.shape
    np.testing.assert_array_equal(image, expected)


@st.composite
def typed_images(draw, encodings=ENCODINGS):
    encoding = draw(st.sampled_from(encodings))
    dtype, channels = IMAGE_ENCODINGS[encoding]
    shape = (draw(st.integers(1, 8)), draw(st.integers(1, 8))) + (() if channels == 1 else (channels,))
    return encoding, draw(arrays(dtype, shape, elements=element_values(dtype)))


@settings(FUZZ, max_examples=300)
@given(typed_images(), st.sampled_from(['<', '>']), st.integers(0, 7))
def test_images_of_either_byte_order_and_any_padding_decode_to_their_values(case, byte_order, padding):
    """Hand-packed rows (little or big endian, ``padding`` junk bytes after each) decode to the values packed, as
    does numpy_to_image's own message; big-endian 16-bit depth included."""
    encoding, values = case
    rows = values.reshape(values.shape[0], -1).astype(values.dtype.newbyteorder(byte_order))
    data = b''.join(row.tobytes() + b'\xa5' * padding for row in rows)
    msg = Image(height=values.shape[0], width=values.shape[1], encoding=encoding,
                is_bigendian=int(byte_order == '>'), step=rows.shape[1] * values.itemsize + padding)
    msg.data = array.array('B', data)
    decoded = image_to_numpy(msg)
    assert decoded.dtype == values.dtype and decoded.dtype.isnative
    np.testing.assert_array_equal(decoded, values)
    np.testing.assert_array_equal(image_to_numpy(numpy_to_image(values, encoding, Time(), 'cam')), values)


def test_big_endian_16uc1_depth_has_the_millimetres_it_was_packed_with():
    msg = Image(height=1, width=3, encoding='16UC1', is_bigendian=1, step=7,
                data=b'\x03\xe8' + b'\x00\x01' + b'\xff\xfe' + b'\x00')      # 1000, 1, 65534 and one padding byte
    assert image_to_numpy(msg).tolist() == [[1000, 1, 65534]]


# ---------------------------------------------------------------------------------------------------------------
# The CvBridge stand-in
# ---------------------------------------------------------------------------------------------------------------

def rgba_of(image: np.ndarray, encoding: str) -> np.ndarray:
    """RGBA float64 of an 8-bit colour image in ``encoding``'s channel order (alpha 255 where it has none)."""
    order = COLOUR[encoding]
    pixels = image.astype(np.float64)
    if order == 'l':
        return np.stack([pixels, pixels, pixels, np.full_like(pixels, 255.0)], axis=-1)
    channels = {name: pixels[..., k] for k, name in enumerate(order)}
    opaque = np.full_like(pixels[..., 0], 255.0)
    return np.stack([channels['r'], channels['g'], channels['b'], channels.get('a', opaque)], axis=-1)


def saturated(values: np.ndarray, dtype) -> np.ndarray:
    """Round to nearest and saturate, as OpenCV's convertTo: the test's own version, in float64."""
    dtype = np.dtype(dtype)
    if dtype.kind == 'f':
        with np.errstate(over='ignore'):
            return values.astype(dtype)
    info = np.iinfo(dtype)
    wide = values.astype(np.float64)
    wide = np.where(np.isnan(wide), 0.0, np.clip(np.rint(wide), info.min, info.max))
    return wide.astype(dtype)


@settings(FUZZ, max_examples=300)
@given(st.one_of(typed_images(), image_messages()),
       st.sampled_from(ENCODINGS + ['passthrough'] + UNKNOWN_ENCODINGS))
@example(('32FC1', np.array([[3e9, -3e9, np.nan, 2.5, -0.5, np.inf]], np.float32)), '32SC1')
def test_cv_bridge_converts_as_documented_or_raises_cv_bridge_error(case, desired):
    """Every source and target encoding: passthrough returns the data; the 8-bit colour encodings convert with the
    channels in the named order (alpha kept or 255, grey by the usual luma weights); single-channel images cast to
    8UC1..64FC1 with rounding and saturation; everything else (and every malformed message) is CvBridgeError."""
    if isinstance(case, Image):
        msg = case
    else:
        msg = numpy_to_image(case[1], case[0], Time(), 'cam')
    source = msg.encoding
    try:
        values = image_to_numpy(msg)
    except ValueError:
        values = None
    try:
        with np.errstate(over='ignore'):         # 64FC1 beyond float32's range becomes inf, as it should
            result = _CvBridge().imgmsg_to_cv2(msg, desired)
    except _CvBridgeError as error:
        event('CvBridgeError')
        assert str(error)
        supported = desired in ('passthrough', source) or (desired in COLOUR and source in COLOUR) or \
            (desired in SINGLE_TARGETS and source in IMAGE_ENCODINGS and IMAGE_ENCODINGS[source][1] == 1)
        assert values is None or not supported, f'{source} -> {desired} refused: {error}'
        return
    assert values is not None, 'converted a malformed message'
    event('converted')
    if desired in ('passthrough', source):
        assert result.dtype == values.dtype
        np.testing.assert_array_equal(result, values)
    elif desired in COLOUR:
        assert source in COLOUR and result.dtype == np.uint8
        expected = rgba_of(values, source)
        if desired == 'mono8':
            assert result.shape == values.shape[:2]
            luma = expected[..., :3] @ np.array([0.299, 0.587, 0.114])
            assert np.max(np.abs(result - luma)) <= 1.0
        else:
            assert result.shape == values.shape[:2] + (len(COLOUR[desired]),)
            np.testing.assert_array_equal(rgba_of(result, desired)[..., :len(COLOUR[desired])],
                                          expected[..., :len(COLOUR[desired])])
    else:
        assert desired in SINGLE_TARGETS and values.ndim == 2
        np.testing.assert_array_equal(result, saturated(values, IMAGE_ENCODINGS[desired][0]))
        assert result.dtype == np.dtype(IMAGE_ENCODINGS[desired][0])


@settings(FUZZ, max_examples=150)
@given(typed_images(), st.booleans())
def test_cv2_to_imgmsg_round_trips(case, big_endian_array):
    """An array (also a big-endian one) packed by cv2_to_imgmsg comes back as the same values."""
    encoding, values = case
    packed = values.astype(values.dtype.newbyteorder('>')) if big_endian_array else values
    bridge = _CvBridge()
    for name in ('passthrough', encoding):
        msg = bridge.cv2_to_imgmsg(packed, name)
        np.testing.assert_array_equal(bridge.imgmsg_to_cv2(msg), values)


@settings(FUZZ, max_examples=100)
@given(st.one_of(st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(0, 255), max_size=4),
                 arrays(st.sampled_from([np.int64, np.uint32, np.complex64, np.bool_, np.float16]),
                        st.lists(st.integers(1, 3), max_size=4).map(tuple))),
       st.sampled_from(['passthrough'] + ENCODINGS + UNKNOWN_ENCODINGS))
def test_cv2_to_imgmsg_refuses_what_it_cannot_pack(cvim, encoding):
    """Non-arrays, arrays of a type no encoding has, or of the wrong shape: CvBridgeError, or a message that decodes
    back to the array."""
    try:
        msg = _CvBridge().cv2_to_imgmsg(cvim, encoding)
    except _CvBridgeError as error:
        assert str(error)
        return
    np.testing.assert_array_equal(image_to_numpy(msg), cvim)


# ---------------------------------------------------------------------------------------------------------------
# Compressed images and camera infos
# ---------------------------------------------------------------------------------------------------------------

def png_with_size(width: int, height: int) -> bytes:
    """A 4x4 PNG whose header (checksum fixed) claims ``width`` x ``height`` pixels."""
    ok, png = cv2.imencode('.png', np.zeros((4, 4, 3), np.uint8))
    content = bytearray(png.tobytes())
    struct.pack_into('>II', content, 16, width, height)
    struct.pack_into('>I', content, 29, zlib.crc32(bytes(content[12:29])))
    return bytes(content)


def jpeg_with_size(width: int, height: int) -> bytes:
    """An 8x8 JPEG whose frame header claims ``width`` x ``height`` pixels."""
    ok, jpeg = cv2.imencode('.jpg', np.zeros((8, 8, 3), np.uint8))
    content = bytearray(jpeg.tobytes())
    frame = content.index(b'\xff\xc0')
    struct.pack_into('>HH', content, frame + 5, height, width)
    return bytes(content)


@st.composite
def compressed_payloads(draw):
    kind = draw(st.sampled_from(['random', 'png', 'jpeg', 'truncated', 'corrupted', 'claims']))
    if kind == 'random':
        return draw(st.binary(max_size=2048) | st.binary(max_size=512).map(lambda b: b'\x89PNG\r\n\x1a\n' + b)
                    | st.binary(max_size=512).map(lambda b: b'\xff\xd8\xff\xe0' + b))
    if kind == 'claims':
        # Sizes a decoder may allocate are kept small; the huge ones are beyond what OpenCV agrees to allocate.
        make = draw(st.sampled_from([png_with_size, jpeg_with_size]))
        size = draw(st.tuples(st.integers(0, 1024), st.integers(0, 1024))
                    | st.sampled_from([(65535, 65535), (65500, 30000), (100000, 100000), (2 ** 31 - 1, 2 ** 31 - 1)]))
        if make is jpeg_with_size:
            size = tuple(min(side, 65535) for side in size)
        return make(*size)
    image = draw(arrays(np.uint8, (draw(st.integers(1, 12)), draw(st.integers(1, 12)), 3)))
    data = bytes(encode_image(image, 'png' if kind in ('png', 'truncated') else 'jpeg', Time(), 'cam').data)
    if kind == 'truncated':
        return data[:draw(st.integers(0, len(data) - 1))]
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
def test_decode_image_gives_rgb_or_value_error(payload):
    """Random bytes, truncated or corrupted PNG / JPEG, headers claiming huge sizes: an HxWx3 uint8 image or
    ValueError; a PNG decodes to exactly the image encoded."""
    original = None
    if isinstance(payload, tuple):
        original, payload = payload
    msg = CompressedImage(format='rgb8; png compressed bgr8')
    msg.data = array.array('B', payload)
    try:
        image = decode_image(msg)
    except ValueError as error:
        event('ValueError')
        assert original is None and str(error)
        return
    event('decoded')
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and min(image.shape[:2]) >= 1
    if original is not None:
        np.testing.assert_array_equal(image, original)


k_entries = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.0, -1.0, 1e-300]),
                      st.floats(-1e4, 1e4))
focal_lengths = st.floats(1.0, 2000.0) | k_entries


@settings(FUZZ, max_examples=300)
@given(fx=focal_lengths, fy=focal_lengths, cx=k_entries, cy=k_entries,
       skew=st.sampled_from([0.0, 0.0, 0.0, 1e-12, 0.5, math.nan]), bottom=st.sampled_from([(0.0, 0.0, 1.0)] * 6 + [
           (0.0, 0.0, 0.0), (0.0, 0.0, -1.0), (1e-3, 0.0, 1.0), (0.0, math.inf, 1.0)]),
       width=st.integers(0, 4096) | st.just(2 ** 32 - 1), height=st.integers(0, 4096) | st.just(2 ** 32 - 1),
       full=st.sampled_from([True, True, True, False]))
def test_camera_info_to_intrinsics_accepts_only_pinhole_matrices(fx, fy, cx, cy, skew, bottom, width, height, full):
    """Random K (NaN, inf, zero, negative focal lengths, skew, a wrong last row) and sizes (zero included): the
    intrinsics K holds, or ValueError."""
    k = [fx, skew, cx, 0.0, fy, cy, *bottom] if full else [0.0] * 9
    msg = CameraInfo(width=width, height=height, k=k)
    valid = full and all(math.isfinite(v) for v in k) and abs(skew) <= 1e-9 and bottom[:2] == (0.0, 0.0) \
        and bottom[2] == 1.0 and fx > 0 and fy > 0 and width > 0 and height > 0
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
        self.origin = {}          # id(message) -> (input, arrival number)
        self.arrived = 0

    def feed(self, index: int, msg) -> None:
        self.origin[id(msg)] = (index, self.arrived)
        self.arrived += 1
        self.filters[index].signalMessage(msg)
        assert all(len(queue) <= self.sync.queue_size for queue in self.sync._queues), 'a queue outgrew queue_size'


arrivals = st.lists(st.tuples(st.integers(0, 3), st.one_of(
    st.integers(0, 3).map(lambda s: (s, 0)),                                           # many duplicates
    st.tuples(st.integers(0, 3), st.integers(0, 999_999_999)),
    st.tuples(st.integers(-2 ** 31, 2 ** 31 - 1), st.integers(0, 2 ** 32 - 1)))),     # anything a Time holds
    max_size=60)


@settings(FUZZ, max_examples=300)
@given(inputs=st.integers(1, 4), queue_size=st.integers(1, 8),
       slop=st.sampled_from([0.0, 1e-9, 0.05, 0.5, 2.0, 1e300]) | st.floats(0.0, 5.0),
       sequence=arrivals, drift=st.lists(st.integers(0, 300_000_000), min_size=60, max_size=60))
@example(inputs=2, queue_size=3, slop=1e300, sequence=[(0, (1, 0)), (1, (2, 0))], drift=[0] * 60)
def test_synchroniser_emits_only_sets_within_the_slop(inputs, queue_size, slop, sequence, drift):
    """Random arrival orders, duplicate and decreasing stamps, queue sizes and slops: every emitted set has one
    message per input, in input order, stamps within the slop; no message is emitted twice; each input's messages
    are emitted in arrival order; queues stay within queue_size; every message is emitted, dropped or queued."""
    recorder = Recorder(inputs, queue_size, slop)
    slop_ns = slop * 1e9
    for k, (index, (sec, nanosec)) in enumerate(sequence):
        recorder.feed(index % inputs, stamped(sec, min(nanosec + drift[k], 2 ** 32 - 1)))
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
            assert number > last[index], 'an input\'s messages were emitted out of arrival order'
            emitted.add(number)
            last[index] = number
    queued = sum(len(queue) for queue in recorder.sync._queues)
    event('sets emitted' if recorder.sets else 'no set emitted')
    event('with a reset' if recorder.sync.reset_count else 'no reset')
    assert recorder.arrived == inputs * len(recorder.sets) + recorder.sync.dropped_count + queued


@settings(FUZZ, max_examples=200)
@given(inputs=st.integers(1, 4), queue_size=st.integers(1, 8), slop_ns=st.integers(0, 100_000_000),
       rounds=st.integers(1, 15), data=st.data())
def test_synchroniser_emits_every_complete_round(inputs, queue_size, slop_ns, rounds, data):
    """Inputs whose messages of one moment (stamps within the slop) arrive in any order before the next moment's:
    every moment is emitted, as one set, in order, and nothing is dropped."""
    recorder = Recorder(inputs, queue_size, slop_ns * 1e-9)
    moment, expected = 10 ** 9, []
    for _ in range(rounds):
        moment += slop_ns + data.draw(st.integers(1, 10 ** 9))
        offsets = data.draw(st.lists(st.integers(0, slop_ns), min_size=inputs, max_size=inputs))
        messages = [stamped((moment + offset) // 10 ** 9, (moment + offset) % 10 ** 9) for offset in offsets]
        for index in data.draw(st.permutations(range(inputs))):
            recorder.feed(index, messages[index])
        expected.append(tuple(messages))
    assert [tuple(map(id, msgs)) for msgs in recorder.sets] == [tuple(map(id, msgs)) for msgs in expected]
    assert recorder.sync.dropped_count == 0


@settings(FUZZ, max_examples=100)
@given(queue_size=st.one_of(st.integers(-3, 3), st.floats(allow_nan=True), st.booleans(), st.none(),
                            st.sampled_from([np.int64(2), 10 ** 30])),
       slop=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none(), st.text(max_size=2),
                      st.sampled_from([np.float32(0.1), 10 ** 400, 1e308])))
def test_synchroniser_settings_are_checked(queue_size, slop):
    """queue_size: an integer >= 1; slop: a finite number of seconds >= 0; anything else is ValueError."""
    valid_queue = isinstance(queue_size, (int, np.integer)) and not isinstance(queue_size, bool) and queue_size >= 1
    try:
        valid_slop = isinstance(slop, (int, float, np.integer, np.floating)) and not isinstance(slop, bool) and \
            math.isfinite(float(slop)) and slop >= 0
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
        recorder.feed(0, CameraInfo().header)     # a Header has a stamp but no header
