"""``sensor_msgs/CameraInfo`` <-> :class:`~gpt4scene_ros.common.frames.CameraIntrinsics`. No ``rclpy.init()`` needed."""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CameraInfo

from gpt4scene_ros.common.frames import CameraIntrinsics


def intrinsics_to_camera_info(intrinsics: CameraIntrinsics, stamp: Time, frame_id: str) -> CameraInfo:
    msg = CameraInfo()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.width, msg.height = intrinsics.width, intrinsics.height
    msg.distortion_model = 'plumb_bob'
    msg.d = [0.0] * 5
    K = intrinsics.matrix()
    msg.k = K.flatten().tolist()
    msg.r = np.eye(3).flatten().tolist()
    msg.p = np.hstack([K, np.zeros((3, 1))]).flatten().tolist()
    return msg


def camera_info_to_intrinsics(msg: CameraInfo) -> CameraIntrinsics:
    """Intrinsics from a CameraInfo; ValueError for a zero or malformed K."""
    return CameraIntrinsics.from_matrix(np.asarray(msg.k, dtype=np.float64).reshape(3, 3), msg.width, msg.height)
