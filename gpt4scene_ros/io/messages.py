"""ROS image messages as numpy arrays, without ROS: one decoder for rclpy messages and rosbags' alike.

Anything with the fields of ``sensor_msgs/Image`` (``height``, ``width``,
``encoding``, ``is_bigendian``, ``step``, ``data``) or ``CompressedImage``
(``format``, ``data``) decodes here: the mapping node's live messages, the
messages ``rosbags`` reads from a bag, and the ROS conversions. Depth stays
as the sensor sent it (``16UC1`` units with their ``depth_scale``, or
``32FC1`` metres) down to the TSDF.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

ENCODINGS: dict[str, tuple[type[np.generic], int]] = {
    'rgb8': (np.uint8, 3),
    'bgr8': (np.uint8, 3),
    'rgba8': (np.uint8, 4),
    'bgra8': (np.uint8, 4),
    'mono8': (np.uint8, 1),
    'mono16': (np.uint16, 1),
    '8UC1': (np.uint8, 1),
    '8UC3': (np.uint8, 3),
    '8UC4': (np.uint8, 4),
    '16UC1': (np.uint16, 1),
    '16SC1': (np.int16, 1),
    '32FC1': (np.float32, 1),
    '32SC1': (np.int32, 1),
    '64FC1': (np.float64, 1),
}
"""Image encoding -> (numpy dtype, channels): every encoding this package reads or writes."""

COLOR_ENCODINGS: dict[str, int | None] = {
    'rgb8': None,
    'bgr8': cv2.COLOR_BGR2RGB,
    'rgba8': cv2.COLOR_RGBA2RGB,
    'bgra8': cv2.COLOR_BGRA2RGB,
    'mono8': cv2.COLOR_GRAY2RGB,
}
"""Colour encodings and the OpenCV conversion that makes them RGB (None: already RGB)."""

DEPTH_ENCODINGS: dict[str, float] = {'16UC1': 1000.0, 'mono16': 1000.0, '32FC1': 1.0}
"""Depth encodings and their depth scale (units per metre): ROS depth is millimetres (16-bit) or metres."""

COMPRESSED_IMAGE_TYPE = 'sensor_msgs/msg/CompressedImage'


def image_array(msg: Any) -> np.ndarray:
    """The pixels of an Image message: HxW (one channel) or HxWxC, native byte order.

    Without row padding and in native byte order this is a view of the
    message's buffer (no copy: read-only for ``bytes`` data, and writing to
    it would change the message otherwise; callers only read). Raises
    ValueError for an unknown encoding or a buffer that does not match the header.
    """
    if msg.encoding not in ENCODINGS:
        raise ValueError(f'unsupported image encoding {msg.encoding!r}; supported: {sorted(ENCODINGS)}')
    scalar_type, channels = ENCODINGS[msg.encoding]
    dtype = np.dtype(scalar_type).newbyteorder('>' if msg.is_bigendian else '<')
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    row_bytes = width * channels * dtype.itemsize
    if height == 0 or width == 0:
        raise ValueError(f'{msg.encoding} image has zero size ({width}x{height})')
    if step < row_bytes:
        raise ValueError(f'{msg.encoding} image step {step} is smaller than a row of {row_bytes} bytes')
    buffer = _bytes_of(msg)
    if buffer.size < step * height:
        raise ValueError(
            f'{msg.encoding} image {width}x{height} (step {step}) holds {buffer.size} bytes; '
            f'{height} rows of step {step} need {step * height}'
        )
    rows = buffer[: step * height].reshape(height, step)
    if step != row_bytes:
        rows = np.ascontiguousarray(rows[:, :row_bytes])
    array = rows.view(dtype).reshape(height, width, channels)
    if not dtype.isnative:
        array = array.astype(dtype.newbyteorder('='))
    return array[:, :, 0] if channels == 1 else array


def decode_compressed(msg: Any) -> np.ndarray:
    """HxWx3 uint8 RGB of a CompressedImage (PNG or JPEG); ValueError when it does not decode."""
    data = _bytes_of(msg)
    try:
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if len(data) else None
    except cv2.error as error:  # e.g. a header claiming more pixels than OpenCV agrees to allocate
        raise ValueError(
            f'compressed image ({msg.format!r}, {len(data)} bytes) does not decode: '
            f'{str(error).strip().splitlines()[-1]}'
        ) from None
    if bgr is None:
        raise ValueError(f'compressed image ({msg.format!r}, {len(data)} bytes) does not decode')
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def decode_color(msg: Any, msgtype: str = '') -> np.ndarray:
    """An Image (``rgb8``, ``bgr8``, ``rgba8``, ``bgra8``, ``mono8``) or a CompressedImage as HxWx3 uint8 RGB.

    ``msgtype`` names a compressed image (``sensor_msgs/msg/CompressedImage``);
    without it a message with a ``format`` field and no ``encoding`` is taken as one.
    Raises ValueError saying what is wrong.
    """
    if msgtype == COMPRESSED_IMAGE_TYPE or (not msgtype and not hasattr(msg, 'encoding') and hasattr(msg, 'format')):
        return decode_compressed(msg)
    if msg.encoding not in COLOR_ENCODINGS:
        raise ValueError(f'colour encoding {msg.encoding!r} is not supported ({", ".join(COLOR_ENCODINGS)})')
    image = image_array(msg)
    code = COLOR_ENCODINGS[msg.encoding]
    return image if code is None else cv2.cvtColor(image, code)


def decode_depth(msg: Any) -> tuple[np.ndarray, float]:
    """A depth Image as the sensor sent it and its depth scale (units per metre).

    ``16UC1``/``mono16``: uint16 millimetres, scale 1000; ``32FC1``: float32
    metres, scale 1. Invalid pixels stay as sent (0, NaN, inf); the TSDF and
    :func:`gpt4scene_ros.common.frames.depth_to_metres` treat them as no measurement.
    """
    scale = DEPTH_ENCODINGS.get(msg.encoding)
    if scale is None:
        raise ValueError(
            f'depth encoding {msg.encoding!r} is not supported ({", ".join(DEPTH_ENCODINGS)}: '
            f'16-bit millimetres or float metres)'
        )
    return image_array(msg), scale


MASK_ENCODINGS = ('mono16', '16UC1', 'mono8', '8UC1')
"""Encodings of an instance label image (0 = no mask)."""


def decode_masks(msg: Any) -> np.ndarray:
    """An instance label Image (``MASK_ENCODINGS``) as an HxW uint16 array; ValueError naming the encoding."""
    if msg.encoding not in MASK_ENCODINGS:
        raise ValueError(
            f'mask encoding {msg.encoding!r} is not supported ({", ".join(MASK_ENCODINGS)}: one label per pixel)'
        )
    return image_array(msg).astype(np.uint16, copy=False)


def _bytes_of(msg: Any) -> np.ndarray:
    """The message's ``data`` as a flat uint8 array without a copy (bytes, array.array or numpy, as rclpy
    and rosbags give it)."""
    data = msg.data
    if isinstance(data, np.ndarray):
        return data.view(np.uint8).reshape(-1)
    return np.frombuffer(data, dtype=np.uint8)
