"""Start gpt4scene_ros: optional data player, the mapping node and the query node.

  ros2 launch gpt4scene_ros gpt4scene.launch.py use_player:=true data_dir:=/path/to/7scenes/folder rviz:=true
  ros2 launch gpt4scene_ros gpt4scene.launch.py sensor:=realsense_d435 rviz:=true

``sensor:=NAME`` applies a camera overlay from config/sensors/ (or a YAML file
of the same form): its topic remappings and mapping-node parameters (they
override params_file). ``color_topic:=...`` and the other topic arguments
remap one topic and win over the overlay. The node list is
gpt4scene_ros.common.graph.NODES, which gpt4scene-bringup starts as well.
"""

from pathlib import Path

from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import EnvironmentVariable, LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from gpt4scene_ros.common.graph import NODES, PACKAGE, SENSOR_TOPICS
from gpt4scene_ros.common.sensor_overlays import load_sensor_overlay, sensor_overlay_path
from launch import LaunchDescription

TOPIC_ARGUMENTS = ('color_topic', 'depth_topic', 'camera_info_topic', 'odom_topic')


def launch_nodes(context):
    """The nodes, with the sensor overlay and topic arguments resolved (they are read at launch time)."""
    share = FindPackageShare(PACKAGE).perform(context)
    remappings, mapping_parameters = {}, {}
    sensor = LaunchConfiguration('sensor').perform(context)
    if sensor:
        overlay = load_sensor_overlay(sensor_overlay_path(sensor, Path(share) / 'config' / 'sensors'))
        remappings.update(overlay.remappings)
        mapping_parameters = dict(overlay.mapping_parameters)
    for topic, argument in zip(SENSOR_TOPICS, TOPIC_ARGUMENTS):
        value = LaunchConfiguration(argument).perform(context)
        if value:
            remappings[topic] = value
    nodes = []
    for node in NODES:
        parameters = [LaunchConfiguration('params_file')]
        if node.needs_data:
            parameters.append({'data_dir': LaunchConfiguration('data_dir')})
        if node.name == 'query_node':
            parameters.append(LaunchConfiguration('vlm_params_file'))
        if node.name == 'mapping_node' and mapping_parameters:
            parameters.append(mapping_parameters)
        nodes.append(
            Node(
                package=PACKAGE,
                executable=node.executable,
                name=node.name,
                output='screen',
                parameters=parameters,
                remappings=list(remappings.items()) if node.sensor_topics else [],
                condition=IfCondition(LaunchConfiguration('use_player')) if node.needs_data else None,
            )
        )
    return nodes


def generate_launch_description():
    share = FindPackageShare(PACKAGE)
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                'params_file',
                default_value=PathJoinSubstitution([share, 'config', 'gpt4scene.yaml']),
                description='YAML file with the parameters of every node.',
            ),
            DeclareLaunchArgument(
                'vlm_params_file',
                default_value=PathJoinSubstitution([share, 'config', 'gpt4scene.yaml']),
                description="Overlay for the query node's model, e.g. config/vlm/desktop_gpu.yaml.",
            ),
            DeclareLaunchArgument(
                'use_player',
                default_value='false',
                description='Play a recorded sequence (data_dir) instead of a live camera.',
            ),
            DeclareLaunchArgument(
                'data_dir', default_value='', description='7-Scenes or TUM RGB-D folder or rosbag2 bag for the player.'
            ),
            DeclareLaunchArgument(
                'sensor',
                default_value='',
                description='Camera overlay: a name from config/sensors/ (e.g. realsense_d435) or a YAML file.',
            ),
            DeclareLaunchArgument(
                'rviz',
                default_value='false',
                description='Start RViz with rviz/gpt4scene.rviz (map, objects, marked BEV).',
            ),
            DeclareLaunchArgument('color_topic', default_value='', description='Colour image topic (remapping).'),
            DeclareLaunchArgument(
                'depth_topic', default_value='', description='Depth image topic, registered to colour.'
            ),
            DeclareLaunchArgument('camera_info_topic', default_value='', description='Colour CameraInfo topic.'),
            DeclareLaunchArgument('odom_topic', default_value='', description='Odometry topic.'),
            # Fast DDS: shared memory large enough for whole images (kept if the user set their own).
            SetEnvironmentVariable(
                'FASTDDS_DEFAULT_PROFILES_FILE',
                EnvironmentVariable(
                    'FASTDDS_DEFAULT_PROFILES_FILE',
                    default_value=PathJoinSubstitution([share, 'config', 'fastdds.xml']),
                ),
            ),
            OpaqueFunction(function=launch_nodes),
            Node(
                package='rviz2',
                executable='rviz2',
                name='rviz2',
                output='screen',
                arguments=['-d', PathJoinSubstitution([share, 'rviz', 'gpt4scene.rviz'])],
                condition=IfCondition(LaunchConfiguration('rviz')),
            ),
        ]
    )
