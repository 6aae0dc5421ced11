"""ROS-free core: data, geometry and algorithms. Never imports rclpy or *_msgs."""
