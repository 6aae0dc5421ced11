"""The nodes gpt4scene_ros starts, in one place: the launch file and ``gpt4scene-bringup`` both read this list.

Plain data (no ROS imports), so a launch file can import it on any distribution.
"""

from __future__ import annotations

from dataclasses import dataclass

PACKAGE = 'gpt4scene_ros'
SENSOR_TOPICS = ('camera/color/image_raw', 'camera/depth/image_raw', 'camera/color/camera_info', 'odom')
"""The sensor inputs of the mapping node (and outputs of the player), relative names, remappable."""


@dataclass(frozen=True)
class GraphNode:
    name: str
    executable: str
    sensor_topics: bool
    """Whether the node reads or writes :data:`SENSOR_TOPICS` (they are remapped together)."""
    needs_data: bool = False
    """Started only when a recorded sequence is given (the player)."""


NODES = (
    GraphNode('player', 'player', sensor_topics=True, needs_data=True),
    GraphNode('mapping_node', 'mapping_node', sensor_topics=True),
    GraphNode('query_node', 'query_node', sensor_topics=False),
)
