"""``geometry_msgs`` poses and transforms <-> 4x4 rigid transforms. Nothing here needs ``rclpy.init()``."""

from __future__ import annotations

import math

import numpy as np
from geometry_msgs.msg import Point, Pose, Quaternion, Transform, Vector3

from gpt4scene_ros.common.transforms import make_transform, matrix_from_quaternion, quaternion_from_matrix


def transform_to_pose(T: np.ndarray) -> Pose:
    x, y, z, w = quaternion_from_matrix(T[:3, :3])
    return Pose(
        position=Point(x=float(T[0, 3]), y=float(T[1, 3]), z=float(T[2, 3])),
        orientation=Quaternion(x=float(x), y=float(y), z=float(z), w=float(w)),
    )


def transform_to_msg(T: np.ndarray) -> Transform:
    pose = transform_to_pose(T)
    return Transform(
        translation=Vector3(x=pose.position.x, y=pose.position.y, z=pose.position.z), rotation=pose.orientation
    )


def _rigid_from(translation, quaternion) -> np.ndarray:
    if not np.all(np.isfinite(translation)):
        raise ValueError(f'translation is not finite: {translation}')
    return make_transform(matrix_from_quaternion(quaternion), translation)


def pose_to_transform(pose: Pose) -> np.ndarray:
    """4x4 matrix of a Pose; ValueError for NaN or a non-unit quaternion."""
    p, q = pose.position, pose.orientation
    return _rigid_from((p.x, p.y, p.z), (q.x, q.y, q.z, q.w))


def transform_from_msg(msg: Transform) -> np.ndarray:
    """4x4 matrix of a Transform; ValueError for NaN or a non-unit quaternion."""
    t, q = msg.translation, msg.rotation
    return _rigid_from((t.x, t.y, t.z), (q.x, q.y, q.z, q.w))


def yaw_pose(center, yaw: float) -> Pose:
    """A Pose at ``center`` turned by ``yaw`` about z."""
    return Pose(
        position=Point(x=float(center[0]), y=float(center[1]), z=float(center[2])),
        orientation=Quaternion(z=math.sin(yaw / 2.0), w=math.cos(yaw / 2.0)),
    )
