"""The package's own scene messages: object instances, image markers, keyframes, scene snapshots (with the BEV's
``nav_msgs/MapMetaData``) and the SceneQuery request / response. Nothing here needs ``rclpy.init()``.
"""

from __future__ import annotations

import math

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Vector3
from nav_msgs.msg import MapMetaData

from gpt4scene_ros.io.messages import decode_compressed
from gpt4scene_ros.mapping.bev import BevImage
from gpt4scene_ros.msg import ImageMarker, Keyframe, ObjectInstance, SceneSnapshot
from gpt4scene_ros.objects.boxes import OrientedBox
from gpt4scene_ros.objects.markers import Marker as Marker2D
from gpt4scene_ros.objects.markers import MarkerStyle
from gpt4scene_ros.objects.scene_objects import Keyframe as CoreKeyframe
from gpt4scene_ros.objects.scene_objects import ObjectsSnapshot
from gpt4scene_ros.objects.tracking import Instance
from gpt4scene_ros.query.scene_query import QueryRequest, QueryResult
from gpt4scene_ros.ros.conversions.camera_info import camera_info_to_intrinsics, intrinsics_to_camera_info
from gpt4scene_ros.ros.conversions.geometry import pose_to_transform, transform_to_pose, yaw_pose
from gpt4scene_ros.ros.conversions.images import encode_image, numpy_to_image
from gpt4scene_ros.ros.conversions.time import time_from_msg, time_to_msg


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
    box = OrientedBox(
        (msg.pose.position.x, msg.pose.position.y, msg.pose.position.z), (msg.size.x, msg.size.y, msg.size.z), yaw
    )
    return Instance(
        int(msg.id),
        box,
        int(msg.num_points),
        msg.label,
        float(msg.confidence),
        time_from_msg(msg.first_seen),
        time_from_msg(msg.last_seen),
        keyframe_ids=tuple(int(k) for k in msg.keyframe_ids),
    )


def markers_to_msgs(markers) -> list:
    return [ImageMarker(id=int(m.id), u=float(m.u), v=float(m.v), visible_px=int(m.visible_px)) for m in markers]


def markers_from_msgs(msgs) -> list:
    return [Marker2D(int(m.id), float(m.u), float(m.v), int(m.visible_px)) for m in msgs]


def bev_info_msg(bev: BevImage, stamp: Time) -> MapMetaData:
    info = MapMetaData(
        map_load_time=stamp, resolution=float(bev.metres_per_pixel), width=int(bev.width_px), height=int(bev.height_px)
    )
    info.origin.position.x, info.origin.position.y = (float(v) for v in bev.origin_xy_m)
    info.origin.orientation.w = 1.0
    return info


def snapshot_to_msg(snapshot: ObjectsSnapshot, frame_id: str, keyframe_images: dict | None = None) -> SceneSnapshot:
    """The snapshot as a message (BEV as PNG, keyframes as JPEG). ``keyframe_images``, a dict kept by the
    caller between snapshots, holds each keyframe's encoded image: a keyframe that stays is encoded once, and
    those no longer shown are forgotten."""
    stamp = time_to_msg(snapshot.stamp_s)
    msg = SceneSnapshot(map_version=int(snapshot.map_version), marker_radius_px=float(snapshot.marker_style.radius_px))
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.bev = encode_image(snapshot.bev.image, 'png', stamp, frame_id)
    msg.bev_info = bev_info_msg(snapshot.bev, stamp)
    msg.bev_max_height_m = float(snapshot.bev.max_height_m)
    msg.bev_markers = markers_to_msgs(snapshot.bev_markers)
    images = _convert_once(
        snapshot.keyframes,
        lambda k: (k.index, k.stamp_s, k.image.shape),
        lambda k: encode_image(k.image, 'jpeg', time_to_msg(k.stamp_s), 'camera'),
        keyframe_images,
    )
    for keyframe, image in zip(snapshot.keyframes, images):
        item = Keyframe(frame_index=int(keyframe.index), stamp=time_to_msg(keyframe.stamp_s), rank=int(keyframe.rank))
        item.image = image
        item.camera_info = intrinsics_to_camera_info(keyframe.intrinsics, item.stamp, 'camera')
        item.pose = transform_to_pose(keyframe.T_map_camera)
        item.markers = markers_to_msgs(keyframe.markers)
        msg.keyframes.append(item)
    msg.instances = [instance_to_msg(instance) for instance in snapshot.instances]
    return msg


def snapshot_from_msg(msg: SceneSnapshot, keyframe_images: dict | None = None) -> ObjectsSnapshot:
    """The core snapshot of a message (images decoded); ValueError for a malformed one. ``keyframe_images``, a
    dict kept by the caller between snapshots, holds each keyframe's decoded image: a keyframe that stays is
    decoded once, and those no longer shown are forgotten."""
    stamp_s = time_from_msg(msg.header.stamp)
    info = msg.bev_info
    if msg.bev.data:
        image = decode_compressed(msg.bev)
    else:  # a snapshot without a BEV (instances only): a blank image of the size the metadata gives
        image = np.full((max(1, info.height), max(1, info.width), 3), 255, np.uint8)
    bev = BevImage(
        image,
        (info.origin.position.x, info.origin.position.y),
        info.resolution or 1.0,
        msg.bev_max_height_m,
        msg.header.frame_id or 'map',
    )
    if msg.bev.data and (bev.width_px, bev.height_px) != (info.width, info.height):
        raise ValueError(
            f'snapshot BEV is {bev.width_px}x{bev.height_px}, its metadata says {info.width}x{info.height}'
        )
    images = _convert_once(
        msg.keyframes,
        lambda k: (int(k.frame_index), k.stamp.sec, k.stamp.nanosec, len(k.image.data)),
        lambda k: decode_compressed(k.image),
        keyframe_images,
    )
    keyframes = [
        CoreKeyframe(
            int(k.frame_index),
            time_from_msg(k.stamp),
            image,
            camera_info_to_intrinsics(k.camera_info),
            pose_to_transform(k.pose),
            tuple(markers_from_msgs(k.markers)),
            int(k.rank),
        )
        for k, image in zip(msg.keyframes, images)
    ]
    style = MarkerStyle(radius_px=msg.marker_radius_px) if msg.marker_radius_px > 0 else MarkerStyle()
    return ObjectsSnapshot(
        stamp_s,
        int(msg.map_version),
        tuple(instance_from_msg(i) for i in msg.instances),
        bev,
        tuple(markers_from_msgs(msg.bev_markers)),
        tuple(keyframes),
        style,
    )


def _convert_once(items, key, convert, cache: dict | None) -> list:
    """``convert(item)`` for each of ``items``, taken from ``cache`` (kept by the caller between snapshots, keyed
    by ``key(item)``) where it is there; the entries of items no longer given are forgotten."""
    cache = {} if cache is None else cache
    keys = [key(item) for item in items]
    for item, item_key in zip(items, keys):
        if item_key not in cache:
            cache[item_key] = convert(item)
    for stale in set(cache) - set(keys):
        del cache[stale]
    return [cache[item_key] for item_key in keys]


def query_request_from_msg(request) -> QueryRequest:
    return QueryRequest(
        question=request.question,
        task=request.task,
        object_ids=tuple(request.object_ids),
        num_frames=request.num_frames,
        return_images=request.return_images,
        situation=request.situation,
    )


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
