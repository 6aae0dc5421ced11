"""Conversions between ROS messages and the core's numpy / dataclass types, one module per message kind."""
