"""Conversions between ROS messages and the core's numpy / dataclass types.

The only module that knows both the message types and the core. Nothing here
needs ``rclpy.init()``.
"""

from __future__ import annotations

import sys

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point, Pose, Quaternion, Transform, Vector3
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker

from ..msg import ObjectInstance
from ..core.scene_query import ObjectBox, QueryRequest, QueryResult
from ..core.transforms import make_transform, matrix_from_quaternion, quaternion_from_matrix
from ..core.types import CameraIntrinsics

# encoding -> (numpy dtype, channels)
IMAGE_ENCODINGS = {
    'rgb8': (np.uint8, 3), 'bgr8': (np.uint8, 3), 'rgba8': (np.uint8, 4), 'bgra8': (np.uint8, 4),
    'mono8': (np.uint8, 1), 'mono16': (np.uint16, 1),
    '8UC1': (np.uint8, 1), '8UC3': (np.uint8, 3), '8UC4': (np.uint8, 4),
    '16UC1': (np.uint16, 1), '16SC1': (np.int16, 1), '32FC1': (np.float32, 1), '32SC1': (np.int32, 1),
    '64FC1': (np.float64, 1),
}


def time_to_msg(seconds: float) -> Time:
    nanoseconds = int(round(seconds * 1e9))
    return Time(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)


def time_from_msg(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def numpy_to_image(array: np.ndarray, encoding: str, stamp: Time, frame_id: str) -> Image:
    """Pack an HxW or HxWxC array into an Image (native byte order, no row padding)."""
    if encoding not in IMAGE_ENCODINGS:
        raise ValueError(f'unsupported image encoding {encoding!r}; supported: {sorted(IMAGE_ENCODINGS)}')
    dtype, channels = IMAGE_ENCODINGS[encoding]
    array = np.ascontiguousarray(array)
    expected_ndim = 2 if channels == 1 else 3
    if array.dtype != dtype or array.ndim != expected_ndim or (channels > 1 and array.shape[2] != channels):
        raise ValueError(f'{encoding} needs a {dtype.__name__} array of {channels} channel(s), '
                         f'got {array.dtype} with shape {array.shape}')
    msg = Image()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = array.shape[:2]
    msg.encoding = encoding
    msg.is_bigendian = int(sys.byteorder == 'big')
    msg.step = array.strides[0]
    msg.data = array.tobytes()
    return msg


def image_to_numpy(msg: Image) -> np.ndarray:
    """Unpack an Image into an HxW (one channel) or HxWxC array in native byte order.

    Honours row padding (``step``) and ``is_bigendian``; raises ValueError for
    an unknown encoding or a buffer that does not match the header.
    """
    if msg.encoding not in IMAGE_ENCODINGS:
        raise ValueError(f'unsupported image encoding {msg.encoding!r}; supported: {sorted(IMAGE_ENCODINGS)}')
    dtype, channels = IMAGE_ENCODINGS[msg.encoding]
    dtype = np.dtype(dtype).newbyteorder('>' if msg.is_bigendian else '<')
    row_bytes = msg.width * channels * dtype.itemsize
    if msg.height == 0 or msg.width == 0:
        raise ValueError(f'image has zero size ({msg.width}x{msg.height})')
    if msg.step < row_bytes:
        raise ValueError(f'image step {msg.step} is smaller than a row of {row_bytes} bytes')
    if len(msg.data) < msg.step * msg.height:
        raise ValueError(f'image data has {len(msg.data)} bytes; {msg.height} rows of step {msg.step} need '
                         f'{msg.step * msg.height}')
    buffer = np.frombuffer(bytes(msg.data), dtype=np.uint8, count=msg.step * msg.height)
    rows = buffer.reshape(msg.height, msg.step)[:, :row_bytes]
    array = np.ascontiguousarray(rows).view(dtype).reshape(msg.height, msg.width, channels)
    array = array.astype(dtype.newbyteorder('='), copy=False)
    return array[:, :, 0] if channels == 1 else array


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


def transform_to_pose(T: np.ndarray) -> Pose:
    x, y, z, w = quaternion_from_matrix(T[:3, :3])
    return Pose(position=Point(x=float(T[0, 3]), y=float(T[1, 3]), z=float(T[2, 3])),
                orientation=Quaternion(x=float(x), y=float(y), z=float(z), w=float(w)))


def transform_to_msg(T: np.ndarray) -> Transform:
    pose = transform_to_pose(T)
    return Transform(translation=Vector3(x=pose.position.x, y=pose.position.y, z=pose.position.z),
                     rotation=pose.orientation)


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


def object_box_to_msg(box: ObjectBox) -> ObjectInstance:
    msg = ObjectInstance()
    msg.id = int(box.id)
    msg.label = box.label
    msg.confidence = float(box.confidence)
    msg.center = Point(x=float(box.center_m[0]), y=float(box.center_m[1]), z=float(box.center_m[2]))
    msg.size = Vector3(x=float(box.size_m[0]), y=float(box.size_m[1]), z=float(box.size_m[2]))
    msg.num_points = int(box.num_points)
    return msg


def object_box_from_msg(msg) -> ObjectBox:
    return ObjectBox(id=msg.id, label=msg.label, center_m=(msg.center.x, msg.center.y, msg.center.z),
                     size_m=(msg.size.x, msg.size.y, msg.size.z), confidence=msg.confidence,
                     num_points=msg.num_points)


def query_request_from_msg(request) -> QueryRequest:
    return QueryRequest(question=request.question, task=request.task, object_ids=tuple(request.object_ids),
                        num_frames=request.num_frames, return_images=request.return_images)


def fill_query_response(result: QueryResult, response, instance_msgs_by_id: dict):
    """Copy ``result`` into a SceneQuery response, reusing the received instance messages."""
    response.success = result.success
    response.error_code = int(result.error_code)
    response.message = result.message
    response.answer = result.answer
    response.object_ids = [int(obj.id) for obj in result.objects]
    response.instances = [instance_msgs_by_id.get(obj.id) or object_box_to_msg(obj) for obj in result.objects]
    return response


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
    msg.fields = [PointField(name=name, offset=4 * i, datatype=PointField.FLOAT32, count=1)
                  for i, name in enumerate(('x', 'y', 'z', 'rgb'))]
    msg.is_bigendian = False
    msg.point_step = 16
    msg.row_step = 16 * len(points)
    msg.is_dense = True
    msg.data = cloud.tobytes()
    return msg


def point_cloud_from_msg(msg: PointCloud2) -> tuple:
    """Inverse of :func:`point_cloud_to_msg` (Nx3 float32 points, Nx3 uint8 colours)."""
    cloud = np.frombuffer(bytes(msg.data), dtype=[('x', '<f4'), ('y', '<f4'), ('z', '<f4'), ('rgb', '<u4')])
    points = np.stack([cloud['x'], cloud['y'], cloud['z']], axis=1)
    rgb = cloud['rgb']
    colors = np.stack([(rgb >> 16) & 255, (rgb >> 8) & 255, rgb & 255], axis=1).astype(np.uint8)
    return points, colors


def mesh_to_marker(vertices: np.ndarray, colors: np.ndarray, triangles: np.ndarray, stamp: Time,
                   frame_id: str) -> Marker:
    """A TRIANGLE_LIST marker with per-vertex colours (three points per triangle)."""
    marker = Marker(type=Marker.TRIANGLE_LIST, action=Marker.ADD, ns='gpt4scene_mesh', id=0)
    marker.header.stamp = stamp
    marker.header.frame_id = frame_id
    marker.pose.orientation.w = 1.0
    marker.scale.x = marker.scale.y = marker.scale.z = 1.0
    marker.color.a = 1.0
    corners = np.asarray(vertices, dtype=np.float64)[np.asarray(triangles).reshape(-1)]
    corner_colors = np.asarray(colors, dtype=np.float64)[np.asarray(triangles).reshape(-1)] / 255.0
    marker.points = [Point(x=x, y=y, z=z) for x, y, z in corners.tolist()]
    marker.colors = [ColorRGBA(r=r, g=g, b=b, a=1.0) for r, g, b in corner_colors.tolist()]
    return marker
