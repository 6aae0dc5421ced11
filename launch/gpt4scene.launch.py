"""Start gpt4scene_ros: optional data player, the mapping node and the query node.

  ros2 launch gpt4scene_ros gpt4scene.launch.py use_player:=true data_dir:=/path/to/7scenes/folder rviz:=true

Arguments remap the sensor topics for a real camera, e.g.
color_topic:=/camera/camera/color/image_raw. The node list is
gpt4scene_ros.graph.NODES, which gpt4scene-bringup starts as well.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import EnvironmentVariable, LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from gpt4scene_ros.graph import NODES, PACKAGE, SENSOR_TOPICS

TOPIC_ARGUMENTS = ('color_topic', 'depth_topic', 'camera_info_topic', 'odom_topic')


def generate_launch_description():
    share = FindPackageShare(PACKAGE)
    params_file = LaunchConfiguration('params_file')
    sensor_remappings = [(topic, LaunchConfiguration(argument))
                         for topic, argument in zip(SENSOR_TOPICS, TOPIC_ARGUMENTS)]
    actions = [
        DeclareLaunchArgument('params_file', default_value=PathJoinSubstitution([share, 'config', 'gpt4scene.yaml']),
                              description='YAML file with the parameters of every node.'),
        DeclareLaunchArgument('vlm_params_file',
                              default_value=PathJoinSubstitution([share, 'config', 'gpt4scene.yaml']),
                              description='Overlay for the query node\'s model, e.g. config/vlm/desktop_gpu.yaml.'),
        DeclareLaunchArgument('use_player', default_value='false',
                              description='Play a recorded sequence (data_dir) instead of a live camera.'),
        DeclareLaunchArgument('data_dir', default_value='',
                              description='7-Scenes or TUM RGB-D folder for the player.'),
        DeclareLaunchArgument('rviz', default_value='false',
                              description='Start RViz with rviz/gpt4scene.rviz (map, objects, marked BEV).'),
        DeclareLaunchArgument('color_topic', default_value='camera/color/image_raw'),
        DeclareLaunchArgument('depth_topic', default_value='camera/depth/image_raw'),
        DeclareLaunchArgument('camera_info_topic', default_value='camera/color/camera_info'),
        DeclareLaunchArgument('odom_topic', default_value='odom'),
        # Fast DDS: shared memory large enough for whole images (kept if the user set their own).
        SetEnvironmentVariable('FASTDDS_DEFAULT_PROFILES_FILE', EnvironmentVariable(
            'FASTDDS_DEFAULT_PROFILES_FILE', default_value=PathJoinSubstitution([share, 'config', 'fastdds.xml']))),
    ]
    for node in NODES:
        parameters = [params_file]
        if node.needs_data:
            parameters.append({'data_dir': LaunchConfiguration('data_dir')})
        if node.name == 'query_node':
            parameters.append(LaunchConfiguration('vlm_params_file'))
        actions.append(Node(package=PACKAGE, executable=node.executable, name=node.name, output='screen',
                            parameters=parameters, remappings=sensor_remappings if node.sensor_topics else [],
                            condition=IfCondition(LaunchConfiguration('use_player')) if node.needs_data else None))
    actions.append(Node(package='rviz2', executable='rviz2', name='rviz2', output='screen',
                        arguments=['-d', PathJoinSubstitution([share, 'rviz', 'gpt4scene.rviz'])],
                        condition=IfCondition(LaunchConfiguration('rviz'))))
    return LaunchDescription(actions)
