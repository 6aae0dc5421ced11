"""RViz ``visualization_msgs`` markers: the object instances' boxes and labels, the map mesh.

Nothing here needs ``rclpy.init()``.
"""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point, Vector3
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


def mesh_to_marker(
    vertices: np.ndarray, colors: np.ndarray, triangles: np.ndarray, stamp: Time, frame_id: str
) -> Marker:
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
