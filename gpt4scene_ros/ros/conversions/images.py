"""numpy arrays -> ``sensor_msgs/Image``, RGB images -> ``sensor_msgs/CompressedImage``.

Decoding is :mod:`gpt4scene_ros.io.messages` (``image_array``, ``decode_compressed``: ROS-free,
shared with rosbags' messages). Nothing here needs ``rclpy.init()``.
"""

from __future__ import annotations

import array
import sys

import cv2
import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CompressedImage, Image

from gpt4scene_ros.io.messages import ENCODINGS


def byte_array(data: np.ndarray | bytes) -> array.array:
    """The bytes of ``data`` (an array, C order, or bytes) as the ``array.array('B')`` a message's ``uint8[]``
    field stores: one copy, where assigning ``bytes`` makes the generated setter check every byte in Python
    on distributions that check fields (Humble, Jazzy: tens of milliseconds per image)."""
    buffer = array.array('B')
    buffer.frombytes(np.ascontiguousarray(data).reshape(-1).view(np.uint8) if isinstance(data, np.ndarray) else data)
    return buffer


def numpy_to_image(array: np.ndarray, encoding: str, stamp: Time, frame_id: str) -> Image:
    """Pack an HxW or HxWxC array into an Image (native byte order, no row padding)."""
    if encoding not in ENCODINGS:
        raise ValueError(f'unsupported image encoding {encoding!r}; supported: {sorted(ENCODINGS)}')
    dtype, channels = ENCODINGS[encoding]
    array = np.ascontiguousarray(array)
    expected_ndim = 2 if channels == 1 else 3
    if array.dtype != dtype or array.ndim != expected_ndim or (channels > 1 and array.shape[2] != channels):
        raise ValueError(
            f'{encoding} needs a {dtype.__name__} array of {channels} channel(s), '
            f'got {array.dtype} with shape {array.shape}'
        )
    msg = Image()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = array.shape[:2]
    msg.encoding = encoding
    msg.is_bigendian = int(sys.byteorder == 'big')
    msg.step = array.strides[0]
    msg.data = byte_array(array)
    return msg


def encode_image(image_rgb: np.ndarray, image_format: str, stamp: Time, frame_id: str) -> CompressedImage:
    """A CompressedImage of an RGB image: ``png`` (lossless) or ``jpeg`` (quality 95)."""
    bgr = cv2.cvtColor(np.ascontiguousarray(image_rgb), cv2.COLOR_RGB2BGR)
    if image_format == 'png':
        ok, data = cv2.imencode('.png', bgr, [cv2.IMWRITE_PNG_COMPRESSION, 3])
        label = 'rgb8; png compressed bgr8'
    elif image_format == 'jpeg':
        ok, data = cv2.imencode('.jpg', bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
        label = 'rgb8; jpeg compressed bgr8'
    else:
        raise ValueError(f'image format {image_format!r}: expected png or jpeg')
    if not ok:
        raise ValueError(f'could not encode a {image_rgb.shape} image as {image_format}')
    msg = CompressedImage(format=label, data=byte_array(data))
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    return msg
