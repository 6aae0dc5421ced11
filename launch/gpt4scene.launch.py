"""Start gpt4scene_ros: optional data player, the mapping node and the query node.

  ros2 launch gpt4scene_ros gpt4scene.launch.py use_player:=true data_dir:=/path/to/7scenes/folder

Arguments remap the sensor topics for a real camera, e.g.
color_topic:=/camera/camera/color/image_raw.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import EnvironmentVariable, LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

PACKAGE = 'gpt4scene_ros'


def generate_launch_description():
    share = FindPackageShare(PACKAGE)
    params_file = LaunchConfiguration('params_file')
    sensor_remappings = [
        ('camera/color/image_raw', LaunchConfiguration('color_topic')),
        ('camera/depth/image_raw', LaunchConfiguration('depth_topic')),
        ('camera/color/camera_info', LaunchConfiguration('camera_info_topic')),
        ('odom', LaunchConfiguration('odom_topic')),
    ]
    return LaunchDescription([
        DeclareLaunchArgument('params_file', default_value=PathJoinSubstitution([share, 'config', 'gpt4scene.yaml']),
                              description='YAML file with the parameters of every node.'),
        DeclareLaunchArgument('use_player', default_value='false',
                              description='Play a recorded sequence (data_dir) instead of a live camera.'),
        DeclareLaunchArgument('data_dir', default_value='',
                              description='7-Scenes or TUM RGB-D folder for the player.'),
        DeclareLaunchArgument('color_topic', default_value='camera/color/image_raw'),
        DeclareLaunchArgument('depth_topic', default_value='camera/depth/image_raw'),
        DeclareLaunchArgument('camera_info_topic', default_value='camera/color/camera_info'),
        DeclareLaunchArgument('odom_topic', default_value='odom'),
        # Fast DDS: shared memory large enough for whole images (kept if the user set their own).
        SetEnvironmentVariable('FASTDDS_DEFAULT_PROFILES_FILE', EnvironmentVariable(
            'FASTDDS_DEFAULT_PROFILES_FILE', default_value=PathJoinSubstitution([share, 'config', 'fastdds.xml']))),
        Node(package=PACKAGE, executable='player', name='player', output='screen',
             condition=IfCondition(LaunchConfiguration('use_player')),
             parameters=[params_file, {'data_dir': LaunchConfiguration('data_dir')}],
             remappings=sensor_remappings),
        Node(package=PACKAGE, executable='mapping_node', name='mapping_node', output='screen',
             parameters=[params_file], remappings=sensor_remappings),
        Node(package=PACKAGE, executable='query_node', name='query_node', output='screen',
             parameters=[params_file]),
    ])
