"""Recorded RGB-D input: the sequence protocol, 7-Scenes/TUM folders, rosbag2 bags, ROS image decoding."""
