"""Thin ROS 2 adapters around :mod:`gpt4scene_ros.core`."""
