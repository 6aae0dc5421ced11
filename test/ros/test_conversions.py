"""Message <-> numpy conversions, on hand-built messages (no rclpy.init)."""

from __future__ import annotations

import numpy as np
import pytest
from geometry_msgs.msg import Pose
from sensor_msgs.msg import CameraInfo, Image

from gpt4scene_ros.core.transforms import make_transform, matrix_from_quaternion
from gpt4scene_ros.core.types import CameraIntrinsics
from gpt4scene_ros.ros.conversions import (camera_info_to_intrinsics, image_to_numpy, intrinsics_to_camera_info,
                                           numpy_to_image, pose_to_transform, time_from_msg, time_to_msg,
                                           transform_from_msg, transform_to_msg, transform_to_pose)

RNG = np.random.default_rng(0)


@pytest.mark.parametrize('encoding, array', [
    ('rgb8', RNG.integers(0, 255, (4, 5, 3), dtype=np.uint8)),
    ('mono8', RNG.integers(0, 255, (4, 5), dtype=np.uint8)),
    ('16UC1', RNG.integers(0, 65535, (4, 5), dtype=np.uint16)),
    ('32FC1', RNG.normal(size=(4, 5)).astype(np.float32)),
])
def test_image_round_trip(encoding, array):
    msg = numpy_to_image(array, encoding, time_to_msg(1.5), 'cam')
    assert (msg.height, msg.width, msg.encoding, msg.header.frame_id) == (4, 5, encoding, 'cam')
    np.testing.assert_array_equal(image_to_numpy(msg), array)


def test_image_with_row_padding_and_big_endian_depth():
    depth = np.array([[1, 2, 3], [400, 500, 65535]], dtype=np.uint16)
    rows = [row.astype('>u2').tobytes() + b'\xff\xff' for row in depth]  # 2 padding bytes per row
    msg = Image(height=2, width=3, encoding='16UC1', is_bigendian=1, step=8, data=b''.join(rows))
    np.testing.assert_array_equal(image_to_numpy(msg), depth)


@pytest.mark.parametrize('msg, words', [
    (Image(height=2, width=2, encoding='yuv422', step=4, data=bytes(8)), 'unsupported image encoding'),
    (Image(height=2, width=2, encoding='16UC1', step=2, data=bytes(8)), 'step'),
    (Image(height=2, width=2, encoding='16UC1', step=4, data=bytes(5)), 'bytes'),
    (Image(height=0, width=2, encoding='mono8', step=2, data=b''), 'zero size'),
])
def test_malformed_images_raise_value_error(msg, words):
    with pytest.raises(ValueError, match=words):
        image_to_numpy(msg)


def test_numpy_to_image_rejects_a_mismatched_array():
    with pytest.raises(ValueError, match='16UC1'):
        numpy_to_image(np.zeros((2, 2), np.float32), '16UC1', time_to_msg(0), 'cam')


def test_time_round_trip_keeps_nanoseconds():
    stamp = time_to_msg(1700000000.123456789)
    assert stamp.sec == 1700000000 and abs(stamp.nanosec - 123456789) < 300
    assert time_from_msg(time_to_msg(12.25)) == 12.25


def test_camera_info_round_trip_and_zero_k():
    intrinsics = CameraIntrinsics(640, 480, 585.0, 586.0, 320.5, 240.5)
    msg = intrinsics_to_camera_info(intrinsics, time_to_msg(0), 'cam')
    assert camera_info_to_intrinsics(msg) == intrinsics
    assert msg.p[0] == 585.0 and msg.p[3] == 0.0
    with pytest.raises(ValueError):
        camera_info_to_intrinsics(CameraInfo(width=640, height=480))


def test_pose_and_transform_round_trip():
    axis = np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8])
    q = np.append(axis * np.sin(0.6), np.cos(0.6))
    T = make_transform(matrix_from_quaternion(q), [1.0, -2.0, 0.5])
    np.testing.assert_allclose(pose_to_transform(transform_to_pose(T)), T, atol=1e-12)
    np.testing.assert_allclose(transform_from_msg(transform_to_msg(T)), T, atol=1e-12)


@pytest.mark.parametrize('orientation', [(0.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 2.0), (np.nan, 0.0, 0.0, 1.0)])
def test_pose_with_a_bad_quaternion_raises(orientation):
    pose = Pose()
    pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = orientation
    with pytest.raises(ValueError, match='quaternion'):
        pose_to_transform(pose)
