"""gpt4scene_ros.io.messages: Image / CompressedImage messages as numpy arrays, without ROS.

The messages are message-shaped objects (the fields of ``sensor_msgs/Image`` and ``CompressedImage``), with
``data`` as rclpy gives it (``array.array('B')``), as ``bytes``, or as rosbags gives it (a uint8 numpy array).
Nothing here imports ROS. The hypothesis properties (each names its ``max_examples``; test/FUZZING.md lists
them) keep no example database, and hypothesis' cache goes to a temporary folder.
"""

from __future__ import annotations

import array
import sys
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import pytest
from fuzzing import ENCODING_NAMES, FUZZ, png_with_size, typed_images
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from gpt4scene_ros.io.messages import ENCODINGS, decode_color, decode_depth, image_array  # noqa: E402

UNKNOWN_ENCODINGS = ['yuv422', 'bayer_rggb8', '16UC3', '8SC1', '32FC3', 'RGB8', 'mono8 ', '', 'passthrough']
COLOUR = {'rgb8': 'rgb', 'bgr8': 'bgr', 'rgba8': 'rgba', 'bgra8': 'bgra', 'mono8': 'l'}
DEPTH_SCALES = {'16UC1': 1000.0, 'mono16': 1000.0, '32FC1': 1.0}
MAX_TEST_BYTES = 1 << 20
RNG = np.random.default_rng(3)
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
COMPRESSED_IMAGE_TYPE = 'sensor_msgs/msg/CompressedImage'


@dataclass
class ImageMsg:
    """The fields of sensor_msgs/Image that the decoder reads (no header: it does not read one)."""

    height: int = 0
    width: int = 0
    encoding: str = ''
    is_bigendian: int = 0
    step: int = 0
    data: Any = b''


@dataclass
class CompressedImageMsg:
    """The fields of sensor_msgs/CompressedImage."""

    format: str = ''
    data: Any = b''


def as_container(data: bytes, kind: str):
    """``data`` as rclpy (``array``), rosbags (``numpy``) or a plain ``bytes`` message holds it."""
    return {
        'bytes': lambda: bytes(data),
        'array': lambda: array.array('B', data),
        'numpy': lambda: np.frombuffer(data, np.uint8).copy(),
    }[kind]()


def packed(
    values: np.ndarray, encoding: str, padding: int = 0, big_endian: bool = False, container: str = 'bytes'
) -> ImageMsg:
    """An Image of ``values`` (HxW or HxWxC), rows in the given byte order followed by ``padding`` junk bytes."""
    rows = values.reshape(values.shape[0], -1).astype(values.dtype.newbyteorder('>' if big_endian else '<'))
    data = b''.join(row.tobytes() + b'\xa5' * padding for row in rows)
    return ImageMsg(
        height=values.shape[0],
        width=values.shape[1],
        encoding=encoding,
        is_bigendian=int(big_endian),
        step=rows.shape[1] * values.itemsize + padding,
        data=as_container(data, container),
    )


def rgb_pixels() -> np.ndarray:
    """A 2x3 RGB image: red, green, blue / white, black, grey."""
    return np.array([[RED, GREEN, BLUE], [(255, 255, 255), (0, 0, 0), (100, 100, 100)]], dtype=np.uint8)


# ---------------------------------------------------------------------------------------------------------------
# image_array: the pixels as sent
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    'encoding, values',
    [
        ('rgb8', RNG.integers(0, 255, (4, 5, 3), dtype=np.uint8)),
        ('bgra8', RNG.integers(0, 255, (4, 5, 4), dtype=np.uint8)),
        ('mono8', RNG.integers(0, 255, (4, 5), dtype=np.uint8)),
        ('16UC1', RNG.integers(0, 65535, (4, 5), dtype=np.uint16)),
        ('32FC1', RNG.normal(size=(4, 5)).astype(np.float32)),
        ('64FC1', RNG.normal(size=(4, 5))),
        ('16SC1', RNG.integers(-32768, 32767, (4, 5), dtype=np.int16)),
    ],
)
def test_image_array_returns_the_data_as_sent(encoding, values):
    for container in ('bytes', 'array', 'numpy'):
        result = image_array(packed(values, encoding, container=container))
        assert result.dtype == values.dtype and result.dtype.isnative
        np.testing.assert_array_equal(result, values)


def test_image_array_is_a_view_of_the_message_buffer_without_padding():
    values = RNG.integers(0, 65535, (3, 4), dtype=np.uint16)
    for container in ('bytes', 'array', 'numpy'):
        msg = packed(values, '16UC1', big_endian=sys.byteorder == 'big', container=container)
        result = image_array(msg)
        np.testing.assert_array_equal(result, values)
        assert np.shares_memory(result, np.frombuffer(msg.data, np.uint8)), f'{container} data was copied'
    assert not image_array(packed(values, '16UC1', big_endian=sys.byteorder == 'big')).flags.writeable
    padded = image_array(packed(values, '16UC1', padding=2, container='numpy'))
    assert padded.flags.c_contiguous
    np.testing.assert_array_equal(padded, values)


def test_bgr8_is_in_bgr_order_and_decode_color_gives_rgb():
    rgb = rgb_pixels()
    bgr = rgb[:, :, ::-1]
    as_sent = image_array(packed(bgr, 'bgr8'))
    assert tuple(as_sent[0, 0]) == (0, 0, 255) and tuple(as_sent[0, 2]) == (255, 0, 0)  # red is (B, G, R)
    np.testing.assert_array_equal(decode_color(packed(bgr, 'bgr8')), rgb)
    np.testing.assert_array_equal(decode_color(packed(rgb, 'rgb8')), rgb)


def test_alpha_is_dropped():
    rgba = np.dstack([rgb_pixels(), np.full((2, 3), 7, np.uint8)])
    bgra = np.dstack([rgb_pixels()[:, :, ::-1], np.full((2, 3), 7, np.uint8)])
    for values, encoding in ((rgba, 'rgba8'), (bgra, 'bgra8')):
        assert image_array(packed(values, encoding)).shape == (2, 3, 4)  # as sent: alpha kept
        result = decode_color(packed(values, encoding))
        assert result.shape == (2, 3, 3) and result.dtype == np.uint8
        np.testing.assert_array_equal(result, rgb_pixels())


def test_mono8_to_colour_repeats_the_grey_value():
    mono = np.array([[0, 10], [200, 255]], dtype=np.uint8)
    rgb = decode_color(packed(mono, 'mono8'))
    assert rgb.shape == (2, 2, 3)
    np.testing.assert_array_equal(rgb, np.repeat(mono[:, :, None], 3, axis=2))


def test_row_padding_is_skipped():
    rgb = rgb_pixels()
    rows = [row.tobytes() + b'\xee' * 3 for row in rgb]  # 3 padding bytes after each 9-byte row
    msg = ImageMsg(height=2, width=3, encoding='rgb8', step=12, data=b''.join(rows))
    np.testing.assert_array_equal(image_array(msg), rgb)
    np.testing.assert_array_equal(decode_color(msg), rgb)
    bgr_rows = [row[:, ::-1].tobytes() + b'\xee' * 3 for row in rgb]
    np.testing.assert_array_equal(decode_color(replace(msg, encoding='bgr8', data=b''.join(bgr_rows))), rgb)


def test_big_endian_16uc1_with_padding():
    depth = np.array([[1, 2, 3], [400, 500, 65535]], dtype=np.uint16)
    rows = [row.astype('>u2').tobytes() + b'\x00\x01' for row in depth]
    msg = ImageMsg(height=2, width=3, encoding='16UC1', is_bigendian=1, step=8, data=b''.join(rows))
    result = image_array(msg)
    assert result.dtype == np.uint16 and result.dtype.isnative
    np.testing.assert_array_equal(result, depth)
    metres_units, scale = decode_depth(msg)
    np.testing.assert_array_equal(metres_units, depth)
    assert scale == 1000.0


def test_big_endian_16uc1_depth_has_the_millimetres_it_was_packed_with():
    msg = ImageMsg(
        height=1,
        width=3,
        encoding='16UC1',
        is_bigendian=1,
        step=7,
        data=b'\x03\xe8' + b'\x00\x01' + b'\xff\xfe' + b'\x00',
    )  # 1000, 1, 65534 and one padding byte
    assert image_array(msg).tolist() == [[1000, 1, 65534]]
    assert decode_depth(msg)[0].tolist() == [[1000, 1, 65534]]


@pytest.mark.parametrize(
    'decode, msg, words',
    [
        (
            image_array,
            ImageMsg(height=2, width=2, encoding='yuv422', step=4, data=bytes(8)),
            'unsupported image encoding',
        ),
        (image_array, ImageMsg(height=2, width=2, encoding='16UC1', step=2, data=bytes(8)), 'step 2 is smaller'),
        (image_array, ImageMsg(height=2, width=2, encoding='16UC1', step=4, data=bytes(5)), 'holds 5 bytes'),
        (image_array, ImageMsg(height=0, width=2, encoding='mono8', step=2, data=b''), 'zero size'),
        (decode_color, ImageMsg(height=2, width=2, encoding='16UC1', step=4, data=bytes(8)), "colour encoding '16UC1'"),
        (
            decode_color,
            ImageMsg(height=2, width=2, encoding='32FC1', step=8, data=bytes(16)),
            "colour encoding '32FC1'",
        ),
        (
            decode_color,
            ImageMsg(height=2, width=2, encoding='yuv422', step=4, data=bytes(8)),
            "colour encoding 'yuv422'",
        ),
        (decode_color, ImageMsg(height=2, width=2, encoding='rgb8', step=6, data=bytes(11)), 'holds 11 bytes'),
        (decode_depth, ImageMsg(height=2, width=2, encoding='rgb8', step=6, data=bytes(12)), "depth encoding 'rgb8'"),
        (decode_depth, ImageMsg(height=2, width=2, encoding='8UC1', step=2, data=bytes(4)), "depth encoding '8UC1'"),
        (decode_depth, ImageMsg(height=2, width=2, encoding='16UC1', step=4, data=bytes(5)), 'holds 5 bytes'),
        (decode_depth, ImageMsg(height=2, width=2, encoding='32FC1', step=7, data=bytes(16)), 'step 7 is smaller'),
    ],
)
def test_unsupported_encodings_and_short_buffers_raise_value_error_naming_the_problem(decode, msg, words):
    with pytest.raises(ValueError, match=words):
        decode(msg)


@pytest.mark.parametrize(
    'encoding, values, padding, big_endian',
    [
        ('rgb8', rgb_pixels(), 0, False),
        ('bgr8', rgb_pixels(), 3, False),
        ('bgra8', RNG.integers(0, 255, (3, 5, 4), dtype=np.uint8), 1, False),
        ('mono8', RNG.integers(0, 255, (3, 5), dtype=np.uint8), 3, False),
        ('16UC1', RNG.integers(0, 65535, (3, 5), dtype=np.uint16), 0, False),
        ('16UC1', RNG.integers(0, 65535, (3, 5), dtype=np.uint16), 2, True),
        ('32FC1', RNG.normal(size=(3, 5)).astype(np.float32), 4, True),
    ],
)
def test_the_same_bytes_as_a_rosbags_numpy_array_decode_identically(encoding, values, padding, big_endian):
    """rosbags' messages hold ``data`` as a uint8 numpy array, rclpy's as array.array: the same results."""
    messages = [packed(values, encoding, padding, big_endian, container) for container in ('bytes', 'array', 'numpy')]
    assert isinstance(messages[2].data, np.ndarray) and messages[2].data.dtype == np.uint8
    decoders = (
        [image_array]
        + ([decode_color] if encoding in COLOUR else [])
        + ([lambda m: decode_depth(m)[0]] if encoding in DEPTH_SCALES else [])
    )
    for decode in decoders:
        results = [decode(msg) for msg in messages]
        for result in results[1:]:
            assert result.dtype == results[0].dtype and result.shape == results[0].shape
            np.testing.assert_array_equal(result, results[0])
    ok, png = cv2.imencode('.png', rgb_pixels()[:, :, ::-1])
    compressed = [
        CompressedImageMsg('rgb8; png compressed bgr8', as_container(png.tobytes(), container))
        for container in ('bytes', 'array', 'numpy')
    ]
    for msg in compressed:
        np.testing.assert_array_equal(decode_color(msg, COMPRESSED_IMAGE_TYPE), rgb_pixels())


def test_a_simple_namespace_decodes_like_a_dataclass():
    msg = packed(rgb_pixels(), 'rgb8', padding=1)
    namespace = SimpleNamespace(**vars(msg))
    np.testing.assert_array_equal(decode_color(namespace), decode_color(msg))


# ---------------------------------------------------------------------------------------------------------------
# decode_depth: the depth as sent and its scale
# ---------------------------------------------------------------------------------------------------------------


def test_decode_depth_keeps_the_values_and_gives_their_scale():
    millimetres = np.array([[0, 1000], [1500, 65535]], dtype=np.uint16)
    for encoding in ('16UC1', 'mono16'):
        depth, scale = decode_depth(packed(millimetres, encoding))
        assert depth.dtype == np.uint16 and scale == 1000.0
        np.testing.assert_array_equal(depth, millimetres)  # still millimetres: no conversion
    metres = np.array([[0.0, 1.25, np.nan], [np.inf, -np.inf, 7.5]], dtype=np.float32)
    depth, scale = decode_depth(packed(metres, '32FC1', padding=4, big_endian=True, container='array'))
    assert depth.dtype == np.float32 and scale == 1.0
    np.testing.assert_array_equal(depth, metres)  # NaN and inf kept, as sent
    assert np.isnan(depth[0, 2]) and np.isposinf(depth[1, 0])


# ---------------------------------------------------------------------------------------------------------------
# decode_color of a CompressedImage
# ---------------------------------------------------------------------------------------------------------------


def test_decode_color_of_a_compressed_image():
    rgb = np.zeros((24, 32, 3), np.uint8)
    rgb[4:12, 6:20] = (200, 40, 10)
    rgb[14:22, 2:30] = (20, 90, 220)
    ok, png = cv2.imencode('.png', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    # Named by its message type, or recognised by its fields (a format, no encoding).
    msg = CompressedImageMsg('rgb8; png compressed bgr8', png.tobytes())
    for result in (
        decode_color(msg, COMPRESSED_IMAGE_TYPE),
        decode_color(msg),
        decode_color(SimpleNamespace(format='png', data=png.copy())),
    ):
        assert result.dtype == np.uint8 and result.shape == (24, 32, 3)
        np.testing.assert_array_equal(result, rgb)  # PNG: lossless
    ok, jpeg = cv2.imencode('.jpg', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    result = decode_color(CompressedImageMsg('jpeg', array.array('B', jpeg.tobytes())), COMPRESSED_IMAGE_TYPE)
    np.testing.assert_array_equal(result, cv2.cvtColor(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
    assert np.abs(result[8, 13].astype(int) - (200, 40, 10)).max() < 30  # JPEG: close
    with pytest.raises(ValueError, match=r"compressed image \('png', 12 bytes\) does not decode"):
        decode_color(CompressedImageMsg('png', b'not an image'))


@pytest.mark.parametrize('data', [b'', png_with_size(100000, 100000)], ids=['empty', 'huge header'])
def test_compressed_images_that_opencv_refuses_raise_value_error(data):
    with pytest.raises(ValueError, match='does not decode'):
        decode_color(CompressedImageMsg('png', data), COMPRESSED_IMAGE_TYPE)


# ---------------------------------------------------------------------------------------------------------------
# Fuzzing (hypothesis)
# ---------------------------------------------------------------------------------------------------------------


def layout(encoding: str):
    """(dtype, channels) of a known encoding, None for an unknown one."""
    return ENCODINGS.get(encoding)


@st.composite
def image_messages(draw):
    """An Image header (any encoding, size, step, byte order) and data of the right, a shorter or a longer length,
    held as bytes, array.array (rclpy) or a numpy array (rosbags)."""
    source = draw(st.sampled_from(['known'] * 4 + ['unknown', 'text']))
    encoding = draw(
        st.sampled_from(ENCODING_NAMES)
        if source == 'known'
        else st.sampled_from(UNKNOWN_ENCODINGS)
        if source == 'unknown'
        else st.text(max_size=8)
    )
    dtype, channels = layout(encoding) or (np.uint8, draw(st.integers(1, 4)))
    width = draw(st.sampled_from([0, 1, 2, 3, 5, 8, 2**32 - 1, 2**31, 65536]) | st.integers(1, 9))
    height = draw(st.sampled_from([0, 1, 2, 4, 7, 2**32 - 1, 5000]) | st.integers(1, 9))
    row_bytes = width * channels * np.dtype(dtype).itemsize
    step = {
        'exact': row_bytes,
        'padded': row_bytes + draw(st.integers(1, 9)),  # padded, maybe to an odd step
        'short': row_bytes - draw(st.integers(1, 9)),
        'random': draw(st.integers(0, 2**32 - 1)),
        'zero': 0,
    }[draw(st.sampled_from(['exact', 'exact', 'padded', 'padded', 'short', 'random', 'zero']))]
    step = min(max(step, 0), 2**32 - 1)
    needed = step * height
    length = draw(
        st.sampled_from(
            [
                needed,
                needed,
                needed + 1,
                needed + draw(st.integers(2, 16)),
                needed - 1,
                needed - draw(st.integers(2, 16)),
                draw(st.integers(0, 64)),
            ]
        )
    )
    if not 0 <= length <= MAX_TEST_BYTES:  # more than a test should allocate: a short buffer instead
        length = draw(st.integers(0, 64))
    data = (
        draw(st.binary(min_size=length, max_size=length))
        if length <= 4096
        else np.random.default_rng(draw(st.integers(0, 2**32 - 1))).integers(0, 256, length, np.uint8).tobytes()
    )
    is_bigendian = draw(st.sampled_from([0, 1, 255]))
    container = draw(st.sampled_from(['array', 'array', 'bytes', 'numpy']))
    return ImageMsg(
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=is_bigendian,
        step=step,
        data=as_container(data, container),
    )


def decode_by_hand(msg: ImageMsg) -> np.ndarray | None:
    """What image_array must return, decoded row by row; None when the message is malformed (ValueError)."""
    known = layout(msg.encoding)
    if known is None or msg.width == 0 or msg.height == 0:
        return None
    dtype, channels = known
    dtype = np.dtype(dtype).newbyteorder('>' if msg.is_bigendian else '<')
    row_bytes = msg.width * channels * dtype.itemsize
    data = bytes(msg.data)
    if msg.step < row_bytes or len(data) < msg.step * msg.height:
        return None
    rows = [np.frombuffer(data[r * msg.step : r * msg.step + row_bytes], dtype) for r in range(msg.height)]
    image = np.stack(rows).astype(dtype.newbyteorder('=')).reshape(msg.height, msg.width, channels)
    return image[:, :, 0] if channels == 1 else image


@settings(FUZZ, max_examples=600)
@given(image_messages())
def test_image_array_decodes_or_raises_value_error(msg):
    """Any header and data: an array equal to the data, row padding skipped and byte order honoured, or ValueError
    (unknown encoding, zero size, a step shorter than a row, too little data); more data than needed is ignored."""
    expected = decode_by_hand(msg)
    try:
        image = image_array(msg)
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


@settings(FUZZ, max_examples=300)
@given(typed_images(), st.sampled_from(['<', '>']), st.integers(0, 7), st.sampled_from(['bytes', 'array', 'numpy']))
def test_images_of_either_byte_order_and_any_padding_decode_to_their_values(case, byte_order, padding, container):
    """Hand-packed rows (little or big endian, ``padding`` junk bytes after each) decode to the values packed;
    big-endian 16-bit depth included."""
    encoding, values = case
    decoded = image_array(packed(values, encoding, padding, byte_order == '>', container))
    assert decoded.dtype == values.dtype and decoded.dtype.isnative
    np.testing.assert_array_equal(decoded, values)


def rgb_of(image: np.ndarray, encoding: str) -> np.ndarray:
    """RGB of an 8-bit colour image in ``encoding``'s channel order (grey repeated, alpha dropped)."""
    order = COLOUR[encoding]
    if order == 'l':
        return np.stack([image] * 3, axis=-1)
    return np.stack([image[..., order.index(name)] for name in 'rgb'], axis=-1)


@settings(FUZZ, max_examples=300)
@given(st.one_of(typed_images(), image_messages()))
@example(('32FC1', np.array([[3e9, -3e9, np.nan, 2.5, -0.5, np.inf]], np.float32)))
def test_decode_color_and_decode_depth_decode_or_raise_value_error(case):
    """Every encoding, well-formed or not: decode_color gives HxWx3 uint8 RGB of the colour encodings (channels
    from the named order, grey repeated, alpha dropped); decode_depth gives the values as sent and their scale for
    16UC1 / mono16 / 32FC1; anything else (another encoding, a malformed message) is ValueError."""
    msg = case if isinstance(case, ImageMsg) else packed(case[1], case[0], container='array')
    try:
        values = image_array(msg)
    except ValueError:
        values = None
    try:
        color = decode_color(msg)
    except ValueError as error:
        event('colour: ValueError')
        assert str(error)
        assert values is None or msg.encoding not in COLOUR, f'{msg.encoding} refused: {error}'
    else:
        event('colour: decoded')
        assert values is not None and msg.encoding in COLOUR
        assert color.dtype == np.uint8 and color.shape == values.shape[:2] + (3,)
        np.testing.assert_array_equal(color, rgb_of(values, msg.encoding))
    try:
        depth, scale = decode_depth(msg)
    except ValueError as error:
        event('depth: ValueError')
        assert str(error)
        assert values is None or msg.encoding not in DEPTH_SCALES, f'{msg.encoding} refused: {error}'
    else:
        event('depth: decoded')
        assert values is not None and msg.encoding in DEPTH_SCALES
        assert scale == DEPTH_SCALES[msg.encoding] and depth.dtype == values.dtype
        np.testing.assert_array_equal(depth, values)
