"""RViz ``visualization_msgs`` markers: the object instances' boxes and labels, the map mesh (serialised).

Nothing here needs ``rclpy.init()``.
"""

from __future__ import annotations

import struct

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point, Vector3
from rclpy.serialization import serialize_message
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from gpt4scene_ros.objects.markers import marker_color
from gpt4scene_ros.objects.tags import object_tag
from gpt4scene_ros.ros.conversions.geometry import yaw_pose


def instances_to_marker_array(instances, gone_ids, stamp: Time, frame_id: str) -> MarkerArray:
    """RViz markers: per instance an oriented box (namespace ``gpt4scene_objects``) and a label
    (``gpt4scene_object_labels``), marker id = instance id; DELETE for the ids in ``gone_ids``."""
    array = MarkerArray()
    for instance in instances:
        r, g, b = (c / 255.0 for c in marker_color(instance.id))
        box = Marker(ns='gpt4scene_objects', id=int(instance.id), type=Marker.CUBE, action=Marker.ADD)
        box.pose = yaw_pose(instance.box.center, instance.box.yaw)
        box.scale = Vector3(
            x=max(instance.box.size[0], 1e-3), y=max(instance.box.size[1], 1e-3), z=max(instance.box.size[2], 1e-3)
        )
        box.color = ColorRGBA(r=r, g=g, b=b, a=0.35)
        text = Marker(
            ns='gpt4scene_object_labels', id=int(instance.id), type=Marker.TEXT_VIEW_FACING, action=Marker.ADD
        )
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


def mesh_marker_bytes(
    vertices: np.ndarray, colors: np.ndarray, triangles: np.ndarray, stamp: Time, frame_id: str
) -> bytes:
    """A serialised TRIANGLE_LIST marker with per-vertex colours (three points per triangle), for
    ``publisher.publish(bytes)``.

    A Marker holds one Python ``Point`` and one ``ColorRGBA`` per corner: building them for a 100 k triangle
    mesh takes about a second of Python under the GIL. Instead, a marker with a single sentinel corner is
    serialised by rclpy, and the corner arrays are written into its two sequences from numpy. The sentinels
    locate the sequences in this ROS distribution's own serialisation (fields differ between distributions),
    and every field after them keeps its CDR alignment: the sequences grow by whole multiples of 8 bytes.
    """
    corners = np.asarray(vertices, dtype=np.float64)[np.asarray(triangles, dtype=np.int64).reshape(-1)]
    rgba = np.ones((len(corners), 4), np.float32)
    rgba[:, :3] = np.asarray(colors, dtype=np.float32)[np.asarray(triangles, dtype=np.int64).reshape(-1)] / 255.0
    marker = Marker(type=Marker.TRIANGLE_LIST, action=Marker.ADD, ns='gpt4scene_mesh', id=0)
    marker.header.stamp = stamp
    marker.header.frame_id = frame_id
    marker.pose.orientation.w = 1.0
    marker.scale.x = marker.scale.y = marker.scale.z = 1.0
    marker.color.a = 1.0
    marker.points = [Point(x=_SENTINEL_POINT[0], y=_SENTINEL_POINT[1], z=_SENTINEL_POINT[2])]
    marker.colors = [ColorRGBA(r=_SENTINEL_RGBA[0], g=_SENTINEL_RGBA[1], b=_SENTINEL_RGBA[2], a=_SENTINEL_RGBA[3])]
    data = serialize_message(marker)
    order = '<' if data[1] == 1 else '>'  # the CDR encapsulation header: 0x0001 little endian, 0x0000 big
    point_at = data.find(struct.pack(f'{order}3d', *_SENTINEL_POINT))
    color_at = data.find(struct.pack(f'{order}4f', *_SENTINEL_RGBA))
    one = struct.pack(f'{order}I', 1)
    point_count_at = point_at - 4 if data[point_at - 4 : point_at] == one else point_at - 8  # 4 bytes of padding
    color_count_at = color_at - 4
    if (
        min(point_at, color_at) < 0
        or data[point_count_at : point_count_at + 4] != one
        or data[color_count_at:color_at] != one
        or color_count_at != point_at + 24
    ):
        raise RuntimeError('unexpected Marker serialisation: cannot place the mesh corners')
    count = struct.pack(f'{order}I', len(corners))
    return b''.join(
        (
            data[:point_count_at],
            count,
            data[point_count_at + 4 : point_at],
            corners.astype(f'{order}f8', copy=False).tobytes(),
            count,
            rgba.astype(f'{order}f4', copy=False).tobytes(),
            data[color_at + 16 :],
        )
    )


_SENTINEL_POINT = (1234.5678125, -8765.4321875, 4242.0625)
_SENTINEL_RGBA = (0.1234, 0.5678, 0.9012, 0.3456)
