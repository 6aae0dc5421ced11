"""Message <-> numpy conversions, on hand-built messages (no rclpy.init)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Pose
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CameraInfo, Image
from visualization_msgs.msg import Marker

from gpt4scene_ros.common.frames import CameraIntrinsics
from gpt4scene_ros.common.transforms import make_transform, matrix_from_quaternion
from gpt4scene_ros.io.messages import image_array
from gpt4scene_ros.mapping.bev import BevImage
from gpt4scene_ros.objects.boxes import OrientedBox
from gpt4scene_ros.objects.markers import Marker as ImageMarker
from gpt4scene_ros.objects.scene_objects import Keyframe, ObjectsSnapshot
from gpt4scene_ros.objects.tracking import Instance
from gpt4scene_ros.ros.conversions.camera_info import camera_info_to_intrinsics, intrinsics_to_camera_info
from gpt4scene_ros.ros.conversions.geometry import (
    pose_to_transform,
    transform_from_msg,
    transform_to_msg,
    transform_to_pose,
)
from gpt4scene_ros.ros.conversions.images import numpy_to_image
from gpt4scene_ros.ros.conversions.markers import instances_to_marker_array, mesh_marker_bytes
from gpt4scene_ros.ros.conversions.scene import instance_from_msg, instance_to_msg, snapshot_from_msg, snapshot_to_msg
from gpt4scene_ros.ros.conversions.time import time_from_msg, time_to_msg

RNG = np.random.default_rng(0)


@pytest.mark.parametrize(
    'encoding, array',
    [
        ('rgb8', RNG.integers(0, 255, (4, 5, 3), dtype=np.uint8)),
        ('mono8', RNG.integers(0, 255, (4, 5), dtype=np.uint8)),
        ('16UC1', RNG.integers(0, 65535, (4, 5), dtype=np.uint16)),
        ('32FC1', RNG.normal(size=(4, 5)).astype(np.float32)),
    ],
)
def test_image_round_trip(encoding, array):
    msg = numpy_to_image(array, encoding, time_to_msg(1.5), 'cam')
    assert (msg.height, msg.width, msg.encoding, msg.header.frame_id) == (4, 5, encoding, 'cam')
    np.testing.assert_array_equal(image_array(msg), array)


def test_image_with_row_padding_and_big_endian_depth():
    depth = np.array([[1, 2, 3], [400, 500, 65535]], dtype=np.uint16)
    rows = [row.astype('>u2').tobytes() + b'\xff\xff' for row in depth]  # 2 padding bytes per row
    msg = Image(height=2, width=3, encoding='16UC1', is_bigendian=1, step=8, data=b''.join(rows))
    np.testing.assert_array_equal(image_array(msg), depth)


@pytest.mark.parametrize(
    'msg, words',
    [
        (Image(height=2, width=2, encoding='yuv422', step=4, data=bytes(8)), 'unsupported image encoding'),
        (Image(height=2, width=2, encoding='16UC1', step=2, data=bytes(8)), 'step'),
        (Image(height=2, width=2, encoding='16UC1', step=4, data=bytes(5)), 'bytes'),
        (Image(height=0, width=2, encoding='mono8', step=2, data=b''), 'zero size'),
    ],
)
def test_malformed_images_raise_value_error(msg, words):
    with pytest.raises(ValueError, match=words):
        image_array(msg)


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


# -- instances and scene snapshots ----------------------------------------------------------------------


def _instance(instance_id=7, yaw=0.4):
    return Instance(
        instance_id,
        OrientedBox((1.0, -2.0, 0.4), (0.5, 0.3, 0.8), yaw),
        321,
        'chair',
        0.7,
        10.5,
        12.25,
        keyframe_ids=(0, 3),
    )


def test_instance_round_trip_keeps_the_oriented_box():
    original = _instance()
    msg = instance_to_msg(original)
    assert msg.pose.orientation.z == pytest.approx(np.sin(0.2)) and msg.size.y == pytest.approx(0.3)
    back = instance_from_msg(msg)
    assert back.box.yaw == pytest.approx(0.4, abs=1e-6)
    np.testing.assert_allclose(back.box.center, original.box.center)
    assert (back.id, back.label, back.num_points, back.keyframe_ids) == (7, 'chair', 321, (0, 3))
    assert back.first_seen_s == pytest.approx(10.5) and back.last_seen_s == pytest.approx(12.25)
    msg.pose.orientation.x, msg.pose.orientation.w = 0.7071068, 0.7071068  # turned about x: not upright
    msg.pose.orientation.z = 0.0
    with pytest.raises(ValueError, match='upright'):
        instance_from_msg(msg)


def test_marker_array_has_a_box_and_a_label_per_instance_and_deletes_the_gone():
    array = instances_to_marker_array([_instance(3), _instance(12, 0.0)], {5}, Time(sec=9), 'odom')
    kinds = {(m.ns, m.id, m.type, m.action) for m in array.markers}
    assert ('gpt4scene_objects', 3, Marker.CUBE, Marker.ADD) in kinds
    assert ('gpt4scene_object_labels', 12, Marker.TEXT_VIEW_FACING, Marker.ADD) in kinds
    assert {(m.ns, m.id) for m in array.markers if m.action == Marker.DELETE} == {
        ('gpt4scene_objects', 5),
        ('gpt4scene_object_labels', 5),
    }
    text = next(m for m in array.markers if m.ns == 'gpt4scene_object_labels' and m.id == 3)
    assert text.text == '<OBJ003> chair'
    assert all(m.header.frame_id == 'odom' and m.header.stamp.sec == 9 for m in array.markers)


@pytest.mark.parametrize('triangles', [0, 1, 2, 5000])
def test_mesh_marker_serialised_from_numpy_is_the_marker_rclpy_reads(triangles):
    """The corners written into rclpy's own serialisation of a one-corner marker: deserialised by rclpy, the
    marker has every corner and colour in triangle order and the header and fields of a TRIANGLE_LIST."""
    rng = np.random.default_rng(triangles)
    vertices = rng.normal(size=(max(3, triangles), 3)).astype(np.float32)
    colors = rng.integers(0, 256, (len(vertices), 3), dtype=np.uint8)
    faces = rng.integers(0, len(vertices), (triangles, 3)).astype(np.int32)
    marker = deserialize_message(mesh_marker_bytes(vertices, colors, faces, Time(sec=12, nanosec=5), 'odom'), Marker)
    assert (marker.type, marker.action, marker.ns, marker.id) == (Marker.TRIANGLE_LIST, Marker.ADD, 'gpt4scene_mesh', 0)
    assert marker.header.frame_id == 'odom' and (marker.header.stamp.sec, marker.header.stamp.nanosec) == (12, 5)
    assert marker.pose.orientation.w == 1.0 and marker.scale.x == marker.scale.z == 1.0 and marker.color.a == 1.0
    corners = faces.reshape(-1)
    assert len(marker.points) == len(marker.colors) == len(corners)
    if len(corners):
        points = np.array([(q.x, q.y, q.z) for q in marker.points])
        rgba = np.array([(c.r, c.g, c.b, c.a) for c in marker.colors])
        np.testing.assert_array_equal(points, vertices.astype(np.float64)[corners])
        np.testing.assert_allclose(rgba[:, :3], colors[corners] / 255.0, atol=1e-7)
        assert np.all(rgba[:, 3] == 1.0)
    assert marker.text == '' and marker.mesh_resource == '' and marker.frame_locked is False


def test_scene_snapshot_round_trip():
    rng = np.random.default_rng(3)
    bev = BevImage(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8), (-1.5, 2.0), 0.05, 1.9)
    frame = np.full((48, 64, 3), 128, np.uint8)
    frame[10:30, 20:40] = (200, 30, 30)
    T = np.eye(4)
    T[:3, 3] = (0.5, 0.2, 1.4)
    keyframe = Keyframe(
        17, 3.25, frame, CameraIntrinsics(64, 48, 50.0, 50.0, 31.5, 23.5), T, (ImageMarker(7, 30.0, 20.0, 400),), 5
    )
    snapshot = ObjectsSnapshot(3.5, 9, (_instance(),), bev, (ImageMarker(7, 12.5, 30.0, 20),), (keyframe,))
    msg = snapshot_to_msg(snapshot, 'odom')
    assert msg.header.frame_id == 'odom' and msg.bev_info.width == 60 and len(msg.keyframes) == 1
    back = snapshot_from_msg(msg)
    np.testing.assert_array_equal(back.bev.image, bev.image)  # PNG: lossless
    assert back.bev.origin_xy_m == bev.origin_xy_m and back.bev.metres_per_pixel == pytest.approx(0.05)
    assert back.bev.max_height_m == pytest.approx(1.9) and back.map_version == 9 and back.stamp_s == 3.5
    assert back.bev_markers[0].id == 7 and back.bev_markers[0].u == 12.5
    k = back.keyframes[0]
    assert (k.index, k.stamp_s, k.intrinsics, k.rank) == (17, 3.25, keyframe.intrinsics, 5)
    # With a cache kept between snapshots, a keyframe that stays is decoded once and one no longer sent is dropped.
    decoded: dict = {}
    first = snapshot_from_msg(msg, decoded).keyframes[0].image
    assert snapshot_from_msg(msg, decoded).keyframes[0].image is first and len(decoded) == 1
    empty = snapshot_to_msg(dataclasses.replace(snapshot, keyframes=()), 'odom')
    assert snapshot_from_msg(empty, decoded).keyframes == () and decoded == {}
    assert np.abs(k.image.astype(int) - frame).mean() < 3  # JPEG: close
    np.testing.assert_allclose(k.T_map_camera, T, atol=1e-9)
    assert k.markers == keyframe.markers and back.instances[0].id == 7
    msg.bev.data = b'not an image'
    with pytest.raises(ValueError, match='does not decode'):
        snapshot_from_msg(msg)
