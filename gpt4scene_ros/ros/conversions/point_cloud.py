"""Coloured points <-> ``sensor_msgs/PointCloud2``. Nothing here needs ``rclpy.init()``."""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import PointCloud2, PointField

from gpt4scene_ros.ros.conversions.images import byte_array


def point_cloud_to_msg(points: np.ndarray, colors: np.ndarray, stamp: Time, frame_id: str) -> PointCloud2:
    """PointCloud2 with float32 x, y, z and rgb packed in a float32 (the RViz convention)."""
    points = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    colors = np.asarray(colors, dtype=np.uint8).reshape(-1, 3)
    if len(points) != len(colors):
        raise ValueError(f'{len(points)} points but {len(colors)} colours')
    cloud = np.empty(len(points), dtype=[('x', '<f4'), ('y', '<f4'), ('z', '<f4'), ('rgb', '<u4')])
    cloud['x'], cloud['y'], cloud['z'] = points.T
    cloud['rgb'] = (colors[:, 0].astype(np.uint32) << 16) | (colors[:, 1].astype(np.uint32) << 8) | colors[:, 2]
    msg = PointCloud2()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = 1, len(points)
    msg.fields = [
        PointField(name=name, offset=4 * i, datatype=PointField.FLOAT32, count=1)
        for i, name in enumerate(('x', 'y', 'z', 'rgb'))
    ]
    msg.is_bigendian = False
    msg.point_step = 16
    msg.row_step = 16 * len(points)
    msg.is_dense = True
    msg.data = byte_array(cloud)
    return msg


def point_cloud_from_msg(msg: PointCloud2) -> tuple:
    """Inverse of :func:`point_cloud_to_msg` (Nx3 float32 points, Nx3 uint8 colours)."""
    cloud = np.frombuffer(msg.data, dtype=[('x', '<f4'), ('y', '<f4'), ('z', '<f4'), ('rgb', '<u4')])
    points = np.stack([cloud['x'], cloud['y'], cloud['z']], axis=1)
    rgb = cloud['rgb']
    colors = np.stack([(rgb >> 16) & 255, (rgb >> 8) & 255, rgb & 255], axis=1).astype(np.uint8)
    return points, colors
