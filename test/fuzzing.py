"""What the property-based (hypothesis) tests share: their settings and the strategies for images."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gpt4scene_ros.io.messages import ENCODINGS

FUZZ = settings(
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ENCODING_NAMES = sorted(ENCODINGS)


def element_values(dtype):
    """Every value of ``dtype``: full integer ranges, or floats with NaN and inf."""
    dtype = np.dtype(dtype)
    if dtype.kind == 'f':
        return st.floats(width=8 * dtype.itemsize, allow_nan=True, allow_infinity=True)
    return st.integers(np.iinfo(dtype).min, np.iinfo(dtype).max)


@st.composite
def typed_images(draw, encodings=ENCODING_NAMES):
    """(encoding, array of that encoding's dtype and channels), up to 8x8."""
    encoding = draw(st.sampled_from(encodings))
    dtype, channels = ENCODINGS[encoding]
    shape = (draw(st.integers(1, 8)), draw(st.integers(1, 8))) + (() if channels == 1 else (channels,))
    return encoding, draw(arrays(dtype, shape, elements=element_values(dtype)))


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
