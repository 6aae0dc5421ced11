"""Conversions between ROS messages and the core's numpy / dataclass types.

The only module that knows both the message types and the core. Nothing here
needs ``rclpy.init()``.
"""

from __future__ import annotations

import math
import sys

import cv2
import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point, Pose, Quaternion, Transform, Vector3
from nav_msgs.msg import MapMetaData
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, PointField
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from gpt4scene_ros.mapping.bev import BevImage
from gpt4scene_ros.objects.boxes import OrientedBox
from gpt4scene_ros.objects.tracking import Instance, object_tag
from gpt4scene_ros.objects.markers import Marker as Marker2D
from gpt4scene_ros.objects.markers import MarkerStyle, marker_color
from gpt4scene_ros.objects.scene_objects import Keyframe as CoreKeyframe
from gpt4scene_ros.objects.scene_objects import ObjectsSnapshot
from gpt4scene_ros.query.scene_query import QueryRequest, QueryResult
from gpt4scene_ros.common.transforms import make_transform, matrix_from_quaternion, quaternion_from_matrix
from gpt4scene_ros.common.frames import CameraIntrinsics
from gpt4scene_ros.io.messages import ENCODINGS, image_array
from gpt4scene_ros.msg import ImageMarker, Keyframe, ObjectInstance, SceneSnapshot

def time_to_msg(seconds: float) -> Time:
    nanoseconds = int(round(seconds * 1e9))
    return Time(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)


def time_from_msg(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def numpy_to_image(array: np.ndarray, encoding: str, stamp: Time, frame_id: str) -> Image:
    """Pack an HxW or HxWxC array into an Image (native byte order, no row padding)."""
    if encoding not in ENCODINGS:
        raise ValueError(f'unsupported image encoding {encoding!r}; supported: {sorted(ENCODINGS)}')
    dtype, channels = ENCODINGS[encoding]
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


def yaw_pose(center, yaw: float) -> Pose:
    """A Pose at ``center`` turned by ``yaw`` about z."""
    return Pose(position=Point(x=float(center[0]), y=float(center[1]), z=float(center[2])),
                orientation=Quaternion(z=math.sin(yaw / 2.0), w=math.cos(yaw / 2.0)))


def instance_to_msg(instance: Instance) -> ObjectInstance:
    msg = ObjectInstance()
    msg.id = int(instance.id)
    msg.label = instance.label
    msg.confidence = float(instance.confidence)
    msg.pose = yaw_pose(instance.box.center, instance.box.yaw)
    msg.size = Vector3(x=float(instance.box.size[0]), y=float(instance.box.size[1]), z=float(instance.box.size[2]))
    msg.num_points = int(instance.num_points)
    msg.first_seen = time_to_msg(instance.first_seen_s)
    msg.last_seen = time_to_msg(instance.last_seen_s)
    msg.keyframe_ids = [int(k) for k in instance.keyframe_ids]
    return msg


def instance_from_msg(msg: ObjectInstance) -> Instance:
    """The core instance of a message; ValueError for a box that is not upright (turned about x or y)."""
    q = msg.pose.orientation
    T = pose_to_transform(msg.pose)
    if abs(T[2, 2] - 1.0) > 1e-3:
        raise ValueError(f'instance {msg.id}: its box is not upright (orientation {q.x, q.y, q.z, q.w})')
    yaw = math.atan2(T[1, 0], T[0, 0])
    box = OrientedBox((msg.pose.position.x, msg.pose.position.y, msg.pose.position.z),
                      (msg.size.x, msg.size.y, msg.size.z), yaw)
    return Instance(int(msg.id), box, int(msg.num_points), msg.label, float(msg.confidence),
                    time_from_msg(msg.first_seen), time_from_msg(msg.last_seen),
                    keyframe_ids=tuple(int(k) for k in msg.keyframe_ids))


def instances_to_marker_array(instances, gone_ids, stamp: Time, frame_id: str) -> MarkerArray:
    """RViz markers: per instance an oriented box (namespace ``gpt4scene_objects``) and a label
    (``gpt4scene_object_labels``), marker id = instance id; DELETE for the ids in ``gone_ids``."""
    array = MarkerArray()
    for instance in instances:
        r, g, b = (c / 255.0 for c in marker_color(instance.id))
        box = Marker(ns='gpt4scene_objects', id=int(instance.id), type=Marker.CUBE, action=Marker.ADD)
        box.pose = yaw_pose(instance.box.center, instance.box.yaw)
        box.scale = Vector3(x=max(instance.box.size[0], 1e-3), y=max(instance.box.size[1], 1e-3),
                            z=max(instance.box.size[2], 1e-3))
        box.color = ColorRGBA(r=r, g=g, b=b, a=0.35)
        text = Marker(ns='gpt4scene_object_labels', id=int(instance.id), type=Marker.TEXT_VIEW_FACING,
                      action=Marker.ADD)
        top = np.add(instance.box.center, (0.0, 0.0, instance.box.size[2] / 2 + 0.08))
        text.pose = yaw_pose(top, 0.0)
        text.scale.z = 0.1
        text.color = ColorRGBA(r=r, g=g, b=b, a=1.0)
        text.text = f'{object_tag(instance.id)} {instance.label}'.strip()
        array.markers.extend([box, text])
    for gone in sorted(gone_ids):
        for namespace in ('gpt4scene_objects', 'gpt4scene_object_labels'):
            array.markers.append(Marker(ns=namespace, id=int(gone), action=Marker.DELETE))
    for marker in array.markers:
        marker.header.stamp = stamp
        marker.header.frame_id = frame_id
    return array


def markers_to_msgs(markers) -> list:
    return [ImageMarker(id=int(m.id), u=float(m.u), v=float(m.v), visible_px=int(m.visible_px)) for m in markers]


def markers_from_msgs(msgs) -> list:
    return [Marker2D(int(m.id), float(m.u), float(m.v), int(m.visible_px)) for m in msgs]


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
    msg = CompressedImage(format=label, data=data.tobytes())
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    return msg


def decode_image(msg: CompressedImage) -> np.ndarray:
    """HxWx3 uint8 RGB of a CompressedImage (PNG or JPEG); ValueError when it does not decode."""
    data = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    try:
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if len(data) else None
    except cv2.error as error:      # e.g. a header claiming more pixels than OpenCV agrees to allocate
        raise ValueError(f'compressed image ({msg.format!r}, {len(data)} bytes) does not decode: '
                         f'{str(error).strip().splitlines()[-1]}') from None
    if bgr is None:
        raise ValueError(f'compressed image ({msg.format!r}, {len(data)} bytes) does not decode')
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def bev_info_msg(bev: BevImage, stamp: Time) -> MapMetaData:
    info = MapMetaData(map_load_time=stamp, resolution=float(bev.metres_per_pixel), width=int(bev.width_px),
                       height=int(bev.height_px))
    info.origin.position.x, info.origin.position.y = (float(v) for v in bev.origin_xy_m)
    info.origin.orientation.w = 1.0
    return info


def snapshot_to_msg(snapshot: ObjectsSnapshot, frame_id: str) -> SceneSnapshot:
    stamp = time_to_msg(snapshot.stamp_s)
    msg = SceneSnapshot(map_version=int(snapshot.map_version), marker_radius_px=float(snapshot.marker_style.radius_px))
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.bev = encode_image(snapshot.bev.image, 'png', stamp, frame_id)
    msg.bev_info = bev_info_msg(snapshot.bev, stamp)
    msg.bev_max_height_m = float(snapshot.bev.max_height_m)
    msg.bev_markers = markers_to_msgs(snapshot.bev_markers)
    for keyframe in snapshot.keyframes:
        item = Keyframe(frame_index=int(keyframe.index), stamp=time_to_msg(keyframe.stamp_s))
        item.image = encode_image(keyframe.image, 'jpeg', item.stamp, 'camera')
        item.camera_info = intrinsics_to_camera_info(keyframe.intrinsics, item.stamp, 'camera')
        item.pose = transform_to_pose(keyframe.T_map_camera)
        item.markers = markers_to_msgs(keyframe.markers)
        msg.keyframes.append(item)
    msg.instances = [instance_to_msg(instance) for instance in snapshot.instances]
    return msg


def snapshot_from_msg(msg: SceneSnapshot) -> ObjectsSnapshot:
    """The core snapshot of a message (images decoded); ValueError for a malformed one."""
    stamp_s = time_from_msg(msg.header.stamp)
    info = msg.bev_info
    if msg.bev.data:
        image = decode_image(msg.bev)
    else:  # a snapshot without a BEV (instances only): a blank image of the size the metadata gives
        image = np.full((max(1, info.height), max(1, info.width), 3), 255, np.uint8)
    bev = BevImage(image, (info.origin.position.x, info.origin.position.y), info.resolution or 1.0,
                   msg.bev_max_height_m, msg.header.frame_id or 'map')
    if msg.bev.data and (bev.width_px, bev.height_px) != (info.width, info.height):
        raise ValueError(f'snapshot BEV is {bev.width_px}x{bev.height_px}, its metadata says '
                         f'{info.width}x{info.height}')
    keyframes = tuple(
        CoreKeyframe(int(k.frame_index), time_from_msg(k.stamp), decode_image(k.image),
                     camera_info_to_intrinsics(k.camera_info), pose_to_transform(k.pose),
                     tuple(markers_from_msgs(k.markers)))
        for k in msg.keyframes)
    style = MarkerStyle(radius_px=msg.marker_radius_px) if msg.marker_radius_px > 0 else MarkerStyle()
    return ObjectsSnapshot(stamp_s, int(msg.map_version), tuple(instance_from_msg(i) for i in msg.instances), bev,
                           tuple(markers_from_msgs(msg.bev_markers)), keyframes, style)


def query_request_from_msg(request) -> QueryRequest:
    return QueryRequest(question=request.question, task=request.task, object_ids=tuple(request.object_ids),
                        num_frames=request.num_frames, return_images=request.return_images,
                        situation=request.situation)


def fill_query_response(result: QueryResult, response, instance_msgs_by_id: dict):
    """Copy ``result`` into a SceneQuery response, reusing the received instance messages."""
    response.success = result.success
    response.error_code = int(result.error_code)
    response.message = result.message
    response.answer = result.answer
    response.object_ids = [int(obj.id) for obj in result.objects]
    response.instances = [instance_msgs_by_id.get(obj.id) or instance_to_msg(obj) for obj in result.objects]
    response.images = [numpy_to_image(image, 'rgb8', response.map_stamp, 'model_input') for image in result.images]
    response.prepare_ms, response.model_ms = float(result.prepare_ms), float(result.model_ms)
    response.input_tokens, response.image_tokens = int(result.input_tokens), int(result.image_tokens)
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
