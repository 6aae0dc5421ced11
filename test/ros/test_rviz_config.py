"""rviz/gpt4scene.rviz shows what the nodes publish: every display's topic exists on a running mapping node
with the display's message type, with the durability the display asks for, in the map's frame. (RViz itself
cannot run here.)"""

from __future__ import annotations

import yaml
from conftest import REPO_ROOT, wait_for
from rclpy.qos import DurabilityPolicy

RVIZ = REPO_ROOT / 'rviz' / 'gpt4scene.rviz'
MESSAGE_OF_DISPLAY = {
    'rviz_default_plugins/Image': 'sensor_msgs/msg/Image',
    'rviz_default_plugins/PointCloud2': 'sensor_msgs/msg/PointCloud2',
    'rviz_default_plugins/Marker': 'visualization_msgs/msg/Marker',
    'rviz_default_plugins/MarkerArray': 'visualization_msgs/msg/MarkerArray',
}


def displayed_topics() -> dict:
    config = yaml.safe_load(RVIZ.read_text())
    manager = config['Visualization Manager']
    assert manager['Global Options']['Fixed Frame'] == 'odom'
    topics = {}
    for display in manager['Displays']:
        if 'Topic' in display:
            topics[display['Topic']['Value']] = (
                MESSAGE_OF_DISPLAY[display['Class']],
                display['Topic']['Durability Policy'],
            )
    return topics


def test_every_display_shows_a_topic_the_mapping_node_publishes(ros_node, start_node):
    topics = displayed_topics()
    assert {
        '/mapping_node/map_cloud',
        '/mapping_node/mesh',
        '/mapping_node/object_markers',
        '/mapping_node/bev',
        '/mapping_node/bev_marked',
        '/mapping_node/keyframe_marked',
    } == set(topics)
    start_node('mapping_node', {'instances_enabled': True})

    def published():
        return {name: types for name, types in ros_node.get_topic_names_and_types()}

    wait_for(lambda: set(topics) <= set(published()), 60, 'the displayed topics', details=lambda: sorted(published()))
    found = published()
    for topic, (message_type, durability) in topics.items():
        assert found[topic] == [message_type], f'{topic}: RViz shows {message_type}, published {found[topic]}'
        publishers = ros_node.get_publishers_info_by_topic(topic)
        assert publishers and all(p.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for p in publishers)
        assert durability == 'Transient Local', f'{topic} is latched: the display must ask for Transient Local'
